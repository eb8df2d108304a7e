"""Small emitted designs shared by the estimate tests: one recipe, so both synthesize the same thing."""
from pathlib import Path

import torch
from torch import nn

import flow


def emit_two_linear(folder: Path, name: str, vectors: int) -> Path:
    """A 6-5-3 ReLU MLP (seed 0) compiled at u6.3 in, one output element a beat, emitted with
    ``vectors`` test vectors into ``folder``."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    x = torch.randn(vectors, 6)
    design = flow.compile(model, x[:2], quant={"data_in_width": 6, "data_in_frac_width": 3, "data_out_signed": False,
                                               "data_out_frac_width": 3},
                          parallelism={"default": {"out_par": 1}}, name=name)
    design.emit(folder, x)
    return folder
