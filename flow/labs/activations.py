"""Real bert-tiny activations at the integer ops' inputs, for the error tests of flow.arith.

`python -m flow.labs.activations --preset full --seed 0` runs lab 1's base model of a seed, with
flow's integer ops in place, on the first test reviews and stores what each op receives: the
attention scores (scaled, mask added) before every softmax, the inputs of every GELU and
LayerNorm (with the LayerNorm's weight, bias and eps), ``tokens`` rows of each, in
results/integer_ops/activations_seed<N>.pt (a few hundred kB, committed: the tests read it), and
each op's error against float on them in activations_seed<N>.json (what the LOGBOOK quotes).
"""
from __future__ import annotations

import argparse
import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

from flow.data.loader import PadCollate
from flow.formats.fixed import dequantize, quantize
from flow.labs.common import check_preset, lab_arguments, relative_paths, run_lab, write_json
from flow.labs.lab1 import Lab1
from flow.nn.transformer import QuantGELU, QuantLayerNorm, QuantSoftmax
from flow.passes.integer_ops import IntegerOpsConfig, use_integer_ops
from flow.paths import current_commit, results_dir

KINDS = {QuantSoftmax: "softmax", QuantGELU: "gelu", QuantLayerNorm: "layer_norm"}
#: what else a kind's capture keeps besides its inputs (LayerNorm's affine constants)
EXTRAS: dict[str, Callable[[nn.Module], dict[str, Any]]] = {
    "layer_norm": lambda module: {"weight": module.weight.detach().clone(), "bias": module.bias.detach().clone(),
                                  "eps": module.eps},
}


@torch.inference_mode()
def capture(model: nn.Module, batch: dict[str, torch.Tensor], tokens: int) -> dict[str, Any]:
    """The first ``tokens`` rows (query positions for the softmax) that each integer op of
    ``model`` receives on ``batch``, by op kind, in module order."""
    work = copy.deepcopy(model).eval()
    use_integer_ops(work)
    seen: dict[str, list[dict[str, Any]]] = {kind: [] for kind in KINDS.values()}

    def hook(name: str, kind: str):
        def record(module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
            x = args[0].detach().float()
            rows = x[..., :tokens, :].contiguous()
            extras = EXTRAS[kind](module) if kind in EXTRAS else {}
            seen[kind].append({"module": name, "inputs": rows} | extras)
        return record

    handles = [module.register_forward_pre_hook(hook(name, KINDS[type(module)]))
               for name, module in work.named_modules() if type(module) in KINDS]
    try:
        work(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"])
    finally:
        for handle in handles:
            handle.remove()
    return seen


def _errors(got: torch.Tensor, ref: torch.Tensor) -> dict[str, float]:
    error = (got.double() - ref).abs()
    return {"max_lsb": round(float(error.max()), 4), "mean_lsb": round(float(error.mean()), 4),
            "elements": error.numel()}


def op_errors(record: dict[str, Any], config: IntegerOpsConfig | None = None) -> list[dict[str, Any]]:
    """Each captured op's error against the float op on the same quantized input, in output LSBs."""
    c = config or IntegerOpsConfig()
    rows = []
    for entry in record["softmax"]:
        op, q = QuantSoftmax(c.softmax_in, c.softmax_out_frac), quantize(entry["inputs"], c.softmax_in)
        ref = torch.softmax(dequantize(q, c.softmax_in).double(), -1) * 2 ** op.out_frac
        rows.append({"module": entry["module"], "op": "softmax", **_errors(op.forward_codes(q), ref)})
    for entry in record["gelu"]:
        op, q = QuantGELU(c.gelu_in, c.gelu_out), quantize(entry["inputs"], c.gelu_in)
        ref = nn.functional.gelu(dequantize(q, c.gelu_in).double()) * 2 ** c.gelu_out.frac
        rows.append({"module": entry["module"], "op": "gelu", **_errors(op.forward_codes(q), ref)})
    for entry in record["layer_norm"]:
        features = entry["inputs"].shape[-1]
        op = QuantLayerNorm(features, c.layer_norm_in, c.layer_norm_out, c.layer_norm_affine, entry["eps"])
        with torch.no_grad():
            op.weight.copy_(entry["weight"])
            op.bias.copy_(entry["bias"])
        q = quantize(entry["inputs"], c.layer_norm_in)
        weight, bias = (dequantize(codes, c.layer_norm_affine).double() for codes in (op.weight_codes(), op.bias_codes()))
        ref = nn.functional.layer_norm(dequantize(q, c.layer_norm_in).double(), (features,), weight, bias,
                                       entry["eps"]) * 2 ** c.layer_norm_out.frac
        rows.append({"module": entry["module"], "op": "layer_norm", **_errors(op.forward_codes(q), ref)})
    return rows


def run(preset: str = "full", seed: int = 0, reviews: int = 2, tokens: int = 16, out: str | Path | None = None,
        imdb_dir: str | None = None, progress: bool = True, log=print) -> Path:
    check_preset(preset)
    folder = Path(out) if out is not None else results_dir("integer_ops")
    folder.mkdir(parents=True, exist_ok=True)
    lab = Lab1(preset, results_dir("lab1") if out is None else folder, imdb_dir, progress, seed)
    batch = PadCollate(lab.data.tokenizer.pad_token_id)([lab.data.test[i] for i in range(reviews)])
    record = {"seed": seed, "preset": preset, "reviews": reviews, "tokens": tokens, "commit": current_commit(),
              "model": relative_paths(lab.base_source.get("checkpoint")), **capture(lab.base, batch, tokens)}
    path = folder / f"activations_seed{seed}{'' if preset == 'full' else '_' + preset}.pt"
    torch.save(record, path)
    write_json(path.with_suffix(".json"), {key: value for key, value in record.items() if key not in KINDS.values()}
               | {"errors": op_errors(record)})
    log(f"wrote {path}: " + ", ".join(f"{len(record[kind])} {kind}" for kind in KINDS.values()))
    return path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flow.labs.activations", description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=0, help="lab 1's base model of this seed")
    ap.add_argument("--reviews", type=int, default=2, help="test reviews to run (the first of the test split)")
    ap.add_argument("--tokens", type=int, default=16, help="rows kept of each op's input per review")
    lab_arguments(ap, "integer_ops")
    a = ap.parse_args(argv)
    return run_lab("activations", a.threads, lambda: run(a.preset, a.seed, a.reviews, a.tokens, a.out, a.imdb_dir,
                                                          progress=not a.no_progress), a.device)


if __name__ == "__main__":
    raise SystemExit(main())
