"""Emit one fuzzed design, simulate every vector, and hold it to every promise flow makes.

A design passes when the RTL matches flow's exact reference on every element (random gaps and
backpressure), hardware accuracy equals the reference's, the measured II and latency equal the
cycle model, and the integer model read from the emitted SystemVerilog alone agrees too.
"""
from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from flow.config.load import load_config
from flow.design.compile import compile_config
from flow.emit.vectors import read_rows, read_vectors
from flow.simulation.rtl_model import RtlModel
from flow.simulation.simulate import simulate_design
from tests.fuzz.spec import DesignSpec, build_model, config_overrides, inputs, masks


class DesignFailure(AssertionError):
    """A fuzzed design broke a promise; the message lists every broken check."""


def quiet(_: str) -> None:
    pass


def _differing(a: list[list[int]], b: list[list[int]]) -> int:
    return sum(x != y for row_a, row_b in zip(a, b) for x, y in zip(row_a, row_b))


def emit(spec: DesignSpec, output_dir: Path, name: str = "fuzz") -> tuple[Path, Any]:
    """Build the spec's model and data, lower and quantize it by its config, emit the design."""
    model = build_model(spec)
    x, m = inputs(spec), masks(spec)
    with torch.no_grad():  # a sequence design: over its tokens, one after another
        labels = (model(x) if m is None else model(x, m)).flatten(1).argmax(dim=1)
    example = x[:2] if m is None else (x[:2], m[:2])
    design = compile_config(model, example, load_config(None, config_overrides(spec, str(output_dir), name)))
    folder = output_dir / name
    design.emit(folder, x, labels, masks=m, source="tests.fuzz", fields={"fuzz_spec": spec.to_json()})
    return folder, design.graph


def model_check(folder: Path) -> dict[str, int]:
    """Compare the RTL-derived integer model with flow's reference and with what the RTL sent."""
    vectors = read_vectors(folder / "vectors")
    model = RtlModel(folder / "rtl", vectors.meta["top"])
    rows = vectors.inputs.tolist()
    predicted = ([model(row) for row in rows] if vectors.masks is None else
                 [model(row, mask) for row, mask in zip(rows, vectors.masks.tolist())])
    expected = vectors.expected.tolist()
    received_path = folder / "sim" / "received.txt"
    received = read_rows(received_path).tolist() if received_path.exists() else []
    return {"model_vs_reference": _differing(predicted, expected),
            "model_vs_rtl": _differing(predicted, received) if received else -1,
            "reference_vs_rtl": _differing(expected, received) if received else -1}


def check_design(spec: DesignSpec, keep: Path | None = None, sim_seed: int = 1) -> dict[str, Any]:
    """Emit, simulate and check one design; raise DesignFailure naming every broken promise.

    Returns the figures the fuzzer totals (elements compared, mismatches, cycles). The design
    folder and its build are deleted afterwards unless it failed and ``keep`` names a folder.
    """
    work = Path(tempfile.mkdtemp(prefix=f"flow-fuzz-{spec.key}-"))
    failed = True
    try:
        folder, hw = emit(spec, work / "designs")
        sim = simulate_design(folder, seed=sim_seed, log=quiet, build_root=work / "build")
        models = model_check(folder)
        problems = []
        if sim["mismatches"]:
            problems.append(f"{sim['mismatches']} RTL elements differ from flow's reference "
                            f"(e.g. {sim['examples'][:2]})")
        if sim["out_beats"] != sim["expected_out_beats"]:
            problems.append(f"{sim['out_beats']} output beats, expected {sim['expected_out_beats']}")
        if sim["hardware_accuracy"] != sim["reference_accuracy"]:
            problems.append(f"hardware accuracy {sim['hardware_accuracy']} != reference {sim['reference_accuracy']}")
        measured = (sim["initiation_interval"], sim["initiation_interval_max"], sim["latency_cycles"])
        modelled = (hw.initiation_interval, hw.initiation_interval_max, hw.latency_estimate)
        if measured != modelled:
            problems.append(f"cycles measured II {measured[0]}..{measured[1]}, latency {measured[2]}; "
                            f"the model says II {modelled[0]}..{modelled[1]}, latency {modelled[2]}")
        if models["model_vs_reference"]:
            culprit = ("flow's reference" if models["model_vs_rtl"] == 0 else
                       "the RTL-derived model" if models["reference_vs_rtl"] == 0 else "both")
            problems.append(f"the RTL-derived integer model and flow's reference disagree on "
                            f"{models['model_vs_reference']} elements; {culprit} differs from the RTL "
                            f"(model vs RTL {models['model_vs_rtl']}, reference vs RTL {models['reference_vs_rtl']})")
        if problems:
            raise DesignFailure("; ".join(problems))
        failed = False
        return {"elements_compared": sim["elements_compared"], "mismatches": sim["mismatches"],
                "vectors": sim["vectors"], "initiation_interval": sim["initiation_interval"],
                "latency": sim["latency_cycles"], "build_seconds": sim["build_seconds"],
                "stages": [type(s).__name__ for s in hw.stages]}
    finally:
        if failed and keep is not None:
            target = keep / spec.key
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(work / "designs", target, dirs_exist_ok=True) if (work / "designs").exists() else None
        shutil.rmtree(work, ignore_errors=True)
