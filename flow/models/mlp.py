"""MLP builder shared by emit-rtl and the labs: Flatten, then Linear (+BatchNorm1d) + activation."""
from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

from torch import nn


def build_mlp(
    in_features: int,
    hidden: Sequence[int],
    out_features: int,
    activation: str = "relu",
    leaky_shift: int = 3,
    batchnorm: bool = False,
) -> nn.Sequential:
    """Layers named ``fc1, bn1, act1, fc2, ...`` so configs can address them by name."""
    if in_features <= 0 or out_features <= 0 or any(h <= 0 for h in hidden):
        raise ValueError(f"layer sizes must be positive, got in={in_features} hidden={list(hidden)} out={out_features}")
    layers: OrderedDict[str, nn.Module] = OrderedDict(flatten=nn.Flatten())
    sizes = [in_features, *hidden, out_features]
    for index, (n_in, n_out) in enumerate(zip(sizes, sizes[1:]), start=1):
        layers[f"fc{index}"] = nn.Linear(n_in, n_out)
        if index == len(sizes) - 1:
            break
        if batchnorm:
            layers[f"bn{index}"] = nn.BatchNorm1d(n_out)
        if activation == "relu":
            layers[f"act{index}"] = nn.ReLU()
        elif activation == "leaky_relu":
            layers[f"act{index}"] = nn.LeakyReLU(negative_slope=2.0 ** -leaky_shift)
        else:
            raise ValueError(f"activation {activation!r} is not supported; use 'relu' or 'leaky_relu'")
    return nn.Sequential(layers)
