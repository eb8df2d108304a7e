"""The peer generator of issue 10, run on flow's own weights: da4ml (multiplier-free CMVM, pipelined)
builds the same fully parallel MLP, its output is checked bit for bit against flow's exact
reference, and its Verilog goes through the same Yosys flow. Optional: ``import da4ml`` must work.
"""
from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from flow.compiler.hardware_graph import HardwareGraph, LinearStage
from flow.formats.fixed import FixedFormat


def available() -> bool:
    try:
        import da4ml  # noqa: F401
    except ImportError:
        return False
    return True


def version() -> str:
    import da4ml

    return str(da4ml.__version__)


def _kif(fmt: FixedFormat) -> tuple[int, int, int]:
    """da4ml's (keep sign, integer bits without the sign, fractional bits) of a fixed format."""
    return int(fmt.signed), fmt.width - fmt.frac - int(fmt.signed), fmt.frac


def _chain(graph: HardwareGraph) -> list[LinearStage]:
    stages = [s for s in graph.stages if len(s.outputs) == 1]  # a fork (two outputs) passes codes on
    linears = graph.linear_stages
    if stages != linears:
        kinds = sorted({s.report_row()["kind"] for s in stages if s not in linears})
        raise ValueError(f"the da4ml peer takes a chain of linear layers (ReLUs on unsigned codes elided); "
                         f"this design also has {kinds}")
    return stages


def build_comb(graph: HardwareGraph) -> Any:
    """da4ml's combinational logic for the design's linear chain: each layer's weights and bias (the
    same codes flow uses), then its output cast (round half up, saturate) as da4ml's quantize."""
    from da4ml.trace import FixedVariableArrayInput, comb_trace

    stages = _chain(graph)
    first = stages[0].in_format
    inp = FixedVariableArrayInput((stages[0].in_features,))
    x = inp.quantize(*_kif(first))
    for stage in stages:
        c = stage.layer.config
        if c.rounding.value != "half_up" or c.overflow.value != "saturate":
            raise ValueError(f"layer {stage.name}: the peer is built for half_up/saturate casts, not "
                             f"{c.rounding.value}/{c.overflow.value}")
        weight = stage.layer.weight_codes().numpy().astype(np.float64) * 2.0 ** -c.weight.frac
        bias = stage.layer.bias_codes().numpy().astype(np.float64) * 2.0 ** -stage.layer.acc_format.frac  # acc units
        x = x @ weight.T.astype(np.float32) + bias
        x = x.quantize(*_kif(c.data_out), overflow_mode="SAT", round_mode="RND")
    return inp, x, comb_trace(inp, x)


def mismatches(comb: Any, graph: HardwareGraph, codes: torch.Tensor) -> int:
    """Output elements where da4ml's logic (its own interpreter) differs from flow's exact reference."""
    first, last = _chain(graph)[0].in_format, graph.last.out_format
    got = comb.predict(codes.numpy().astype(np.float64) * 2.0 ** -first.frac)
    expected = graph.forward_codes(codes).numpy()
    return int((np.round(got * 2.0 ** last.frac).astype(np.int64) != expected).sum())


def write_verilog(comb: Any, folder: Path, name: str, latency_cutoff: float) -> tuple[list[Path], str, int]:
    """da4ml's Verilog (pipelined at ``latency_cutoff``, its delay units; <= 0: combinational) and
    the files and top module to synthesize; returns the register stages too."""
    from da4ml.codegen.rtl import VerilogModel

    model = VerilogModel(comb, name, folder, latency_cutoff=latency_cutoff, print_latency=False)
    model.write()
    src = folder / "src"
    files = sorted(p for p in src.rglob("*.v") if "lookup_table" not in p.name and "wrapper" not in p.name)
    stages = len(model._pipe.solutions) if model._pipe is not None else 1
    return files, name, stages


def cutoff_for(comb: Any, stages: int) -> float:
    """The largest latency cutoff (da4ml's delay units) that splits the logic into ``stages``
    register stages, so the peer runs at the latency it is compared at."""
    from da4ml.trace import to_pipeline

    fits = [cut for cut in range(1, 200) if len(to_pipeline(comb, cut, verbose=False).solutions) == stages]
    if not fits:
        raise ValueError(f"no latency cutoff gives da4ml {stages} stages")
    return float(max(fits))


def run(graph: HardwareGraph, codes: torch.Tensor, folder: Path, stages: int, synthesize: Any) -> dict[str, Any]:
    """Build, check and synthesize da4ml's design at ``stages`` register stages;
    ``synthesize(files, top)`` is flow's Yosys flow."""
    start = time.perf_counter()
    _, _, comb = build_comb(graph)
    build_s = time.perf_counter() - start
    wrong = mismatches(comb, graph, codes)
    files, top, stages = write_verilog(comb, folder, "da4ml_mlp", cutoff_for(comb, stages))
    return {"version": version(), "mismatches": wrong, "vectors": len(codes), "build_s": round(build_s, 1),
            "register_stages": stages, "adders": int(sum(op.opcode in (0, 1) for op in comb.ops)),
            "synthesis": synthesize(files, top), "files": files, "top": top}
