"""Calibrate the analytical estimator for the transformer ops (gelu, softmax, layer_norm, matmul, tanh, key_mask), additively.

`python -m benches.calibrate_transformer_ops`: a few small designs (Linear(8, N) then one op, the
op driving the output) are synthesized with Yosys ``synth_xilinx``; each op instance's LUT and FF
are fitted per kind by non-negative least squares on its estimator features (flow/ops/gelu.py,
softmax.py, layer_norm.py), and written to flow/estimate/calibration_transformer.json, which
flow.estimate.model reads beside calibration.json for kinds that file lacks. The Linear and shift-add
calibration is not touched. Prints each design's measured and fitted counts.
"""
from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
from torch import nn

import flow
from benches.calibrate_estimator import fit, instance_rows
from flow.emit.rtl import stage_instance
from flow.estimate.model import TRANSFORMER_CALIBRATION, Calibration, dsp_count, stage_features

# (op, features, parallelism, width, frac): small rows, one to a few lanes, 8 to 16 bits; the
# even-numbered designs of each kind are fitted, the odd-numbered held out
SPECS = [("gelu", 8, 1, 8, 4), ("gelu", 8, 2, 12, 6), ("gelu", 8, 4, 16, 8), ("gelu", 16, 8, 10, 5),
         ("gelu", 12, 3, 14, 7), ("gelu", 8, 2, 9, 4), ("gelu", 16, 4, 12, 5), ("gelu", 8, 1, 16, 10),
         ("softmax", 8, 1, 8, 4), ("softmax", 8, 2, 12, 6), ("softmax", 16, 4, 10, 5), ("softmax", 16, 2, 16, 8),
         ("softmax", 32, 4, 8, 4), ("softmax", 12, 3, 14, 7), ("softmax", 32, 8, 12, 6), ("softmax", 8, 4, 9, 5),
         ("layer_norm", 8, 1, 8, 4), ("layer_norm", 8, 2, 12, 6), ("layer_norm", 16, 4, 10, 5),
         ("layer_norm", 16, 2, 16, 8), ("layer_norm", 32, 4, 8, 4), ("layer_norm", 12, 3, 14, 7),
         ("layer_norm", 32, 8, 12, 6), ("layer_norm", 8, 4, 9, 5),
         # matmul: (op, d, parallelism, width, frac) on 8 tokens; even: Q·Kᵀ (8 x d by d x 8, B transposed),
         # odd: A·V (8 x 8 by 8 x d)
         ("matmul", 8, 1, 8, 4), ("matmul", 8, 2, 12, 6), ("matmul", 16, 4, 8, 4), ("matmul", 16, 2, 10, 5),
         ("matmul", 16, 8, 8, 4), ("matmul", 8, 4, 12, 6), ("matmul", 32, 4, 8, 4), ("matmul", 16, 1, 12, 6),
         # tanh (flow/ops/tanh.py): its output frac is the frac
         ("tanh", 8, 1, 8, 4), ("tanh", 8, 2, 12, 6), ("tanh", 8, 4, 10, 5), ("tanh", 16, 2, 16, 8),
         ("tanh", 8, 1, 12, 8), ("tanh", 12, 3, 14, 7), ("tanh", 16, 4, 8, 4), ("tanh", 8, 2, 9, 5),
         # key_mask (flow/ops/key_mask.py): (op, tokens, Q·Kᵀ's parallelism, scores width, frac), masked scores
         ("key_mask", 8, 1, 8, 4), ("key_mask", 8, 2, 12, 6), ("key_mask", 16, 4, 10, 5), ("key_mask", 16, 2, 16, 8),
         ("key_mask", 16, 8, 8, 4), ("key_mask", 8, 4, 14, 7), ("key_mask", 32, 4, 12, 6), ("key_mask", 16, 1, 9, 5),
         ("key_mask", 32, 8, 16, 8), ("key_mask", 8, 8, 10, 5)]
OPS = {"gelu": nn.GELU, "softmax": lambda: nn.Softmax(dim=-1), "layer_norm": None, "matmul": None, "tanh": nn.Tanh}
SEQUENCE = 8  # the matmul designs' tokens a sample


class Product(nn.Module):
    """A matmul sweep design: fc(x) @ fc(x)ᵀ (``transposed``) or fa(x) @ fv(x), on 8 tokens of 8."""

    def __init__(self, d: int, transposed: bool) -> None:
        super().__init__()
        self.transposed = transposed
        self.fc, self.fa, self.fv = nn.Linear(8, d), nn.Linear(8, SEQUENCE), nn.Linear(8, d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.transposed:
            y = self.fc(x)
            return y @ y.transpose(-2, -1)
        return self.fa(x) @ self.fv(x)


class MaskedScores(nn.Module):
    """A key_mask sweep design: softmax(fc(x) @ fc(x)ᵀ + (1 - mask) * min) on ``tokens`` tokens of 8."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(8, 8)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        y = self.fc(x)
        scores = y @ y.transpose(-2, -1)
        return torch.softmax(scores + (1 - mask[:, None, :]) * torch.finfo(scores.dtype).min, dim=-1)


def build(index: int):
    """The compiled design of spec ``index`` and its input batch."""
    op, features, par, width, frac = SPECS[index]
    torch.manual_seed(index)
    quant = {"data_in_width": width, "data_in_frac_width": frac, "data_out_width": width,
             "data_out_frac_width": frac, "weight_width": 8, "weight_frac_width": 6}
    if op == "key_mask":
        x, mask = torch.randn(16, features, 8), torch.ones(16, features, dtype=torch.long)
        parallelism = {"default": {"in_par": "auto", "out_par": par}, "fc": {"in_par": 8}}
        return flow.compile(MaskedScores(), (x[:2], mask[:2]), quant={"default": quant}, parallelism=parallelism,
                            name="tx_sweep"), x
    if op == "matmul":
        transposed = index % 2 == 0
        first = "fc" if transposed else "fa"
        parallelism = {"default": {"in_par": "auto", "out_par": par}, first: {"in_par": 8}}
        x = torch.randn(16, SEQUENCE, 8)
        return flow.compile(Product(features, transposed), x[:2], quant={"default": quant}, parallelism=parallelism,
                            name="tx_sweep"), x
    model = nn.Sequential(nn.Linear(8, features), nn.LayerNorm(features) if op == "layer_norm" else OPS[op]())
    quant = {"data_in_width": width, "data_in_frac_width": frac, "data_out_width": width,
             "data_out_frac_width": frac, "weight_width": 8, "weight_frac_width": 6}
    parallelism = {"default": {"in_par": "auto", "out_par": par}, "0": {"in_par": 8}}
    x = torch.randn(16, 8)
    return flow.compile(model, x[:2], quant={"default": quant}, parallelism=parallelism, name="tx_sweep"), x


def measure(index: int) -> list[dict]:
    """Synthesize design ``index``; one row per instance of its spec's op (its ``design``: ``index``)."""
    rows = [row for row in instance_rows(*build(index), index) if row["kind"] == SPECS[index][0]]
    return [{**row, "design": index} for row in rows]


def rebuilt_stage(row: dict):
    """The stage of a stored row, rebuilt from its spec (no synthesis)."""
    design, _ = build(row["design"])
    return next(s for i, s in enumerate(design.graph.stages) if stage_instance(i, s) == row["instance"])


def remodel_dsp(path: Path) -> int:
    """Recompute the stored rows' dsp_model from the op files; nothing else changes."""
    data = json.loads(path.read_text())
    for row in data["rows"]:
        row["dsp_model"] = dsp_count(rebuilt_stage(row))
        print(f"{row['design']} {row['kind']}: DSP48E1 {row['DSP48E1']} model {row['dsp_model']}")
    path.write_text(json.dumps(data, indent=1) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(TRANSFORMER_CALIBRATION))
    ap.add_argument("--refit", action="store_true",
                    help="keep the stored measurements, recompute the features from the designs and fit again")
    ap.add_argument("--remodel-dsp", action="store_true",
                    help="keep everything stored, recompute only each row's dsp_model (the ops' dsp_count) "
                         "from its design, no synthesis, and print it beside the measured DSP48E1")
    ap.add_argument("--kinds", nargs="*", default=None,
                    help="synthesize only these kinds' designs (e.g. matmul) and keep every stored row of the others "
                         "as it is; then fit all")
    a = ap.parse_args(argv)
    if a.remodel_dsp:
        return remodel_dsp(Path(a.out))
    rows = json.loads(Path(a.out).read_text())["rows"] if a.refit else []
    for row in rows:  # the features and DSPs as the op files compute them now (no synthesis)
        stage = rebuilt_stage(row)
        row["features"], row["dsp_model"] = stage_features(stage), dsp_count(stage)
    measured = range(0 if a.refit else len(SPECS))
    if a.kinds:
        rows = [row for row in json.loads(Path(a.out).read_text())["rows"] if row["kind"] not in a.kinds]
        measured = [index for index, spec in enumerate(SPECS) if spec[0] in a.kinds]
    for index in measured:
        rows += measure(index)
        print(f"design {index} {SPECS[index]}: {rows[-1]['LUT']} LUT, {rows[-1]['FF']} FF, "
              f"{rows[-1]['DSP48E1']} DSP (model {rows[-1]['dsp_model']}), {rows[-1]['synth_seconds']} s", flush=True)
    coefficients = fit([row for row in rows if row["design"] % 2 == 0])
    calibration = Calibration(coefficients)
    held_out: dict[str, dict[str, list[float]]] = {}
    for row in rows:
        row["fitted"] = {resource: round(calibration.predict(row["kind"], resource, row["features"]))
                         for resource in ("LUT", "FF")}
        print(f"{row['design']} {row['kind']}{' (held out)' if row['design'] % 2 else ''}: LUT {row['LUT']} fitted "
              f"{row['fitted']['LUT']}, FF {row['FF']} fitted {row['fitted']['FF']}")
        if row["design"] % 2:
            for resource in ("LUT", "FF"):
                error = abs(row["fitted"][resource] - row[resource]) / max(row[resource], 1)
                held_out.setdefault(row["kind"], {}).setdefault(resource, []).append(error)
    summary = {kind: {resource: {"median": statistics.median(errors), "worst": max(errors)}
                      for resource, errors in by_resource.items()} for kind, by_resource in held_out.items()}
    print(json.dumps(summary, indent=1))
    Path(a.out).write_text(json.dumps({"specs": SPECS, "rows": rows, "coefficients": coefficients,
                                       "held_out": summary}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
