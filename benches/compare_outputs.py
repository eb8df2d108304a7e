"""Emit a fixed set of designs into a folder, or compare two such folders file by file.

    python -m benches.compare_outputs emit DIR      # write every design's RTL, vectors and reports
    python -m benches.compare_outputs compare A B   # byte-compare two folders; exit 1 on a difference

The set: the default design (`make emit-rtl`), the variant matrix of `make verify-designs`, the
residual example (fully parallel on breast cancer, and folded at par 4 on wine), every design
in `tests/corpus/`, the fuzz tests' hand-written designs and a derandomized slice of fuzzed
designs. Nothing is simulated: each design is trained (cached) or built, compiled and emitted,
so a refactoring can prove it changes no emitted byte. Besides `rtl/` and `vectors/`, each
design holds `report.json` (without its wall time and output folder), `report.md` and `estimate.json` (the
analytical estimator's per-stage figures), which cover the report rows and estimator features.
"""
from __future__ import annotations

import argparse
import filecmp
import json
import sys
import time
from pathlib import Path

import torch

FUZZ_SLICE = 24
SHOWN = 30  # differing files listed by name  # derandomized fuzzed designs (deterministic for one Hypothesis version)


def _finish(folder: Path, graph) -> None:
    """Drop the report's wall time and add the analytical estimate of the graph."""
    from flow.estimate.model import estimate

    path = folder / "report.json"
    report = json.loads(path.read_text())
    report.pop("emit_seconds", None)
    if "config" in report:  # the folder the design went to differs between the two runs
        report["config"]["design"]["output_dir"] = "(compared)"
    path.write_text(json.dumps(report, indent=2) + "\n")
    (folder / "estimate.json").write_text(json.dumps(estimate(graph), indent=2) + "\n")


def emit_matrix(out: Path) -> list[str]:
    """The default design (configs/digits_mlp.toml), benches.verify_designs' variants, and the
    fully parallel variant with shift-add layers registered every two adder levels."""
    from benches.verify_designs import CONFIG, FULL, VARIANTS
    from flow.config.load import load_config
    from flow.design.pipeline import emit_design

    names = []
    variants = {"digits_mlp": {}, **{f"variant_{name}": overrides for name, overrides in VARIANTS.items()},
                "shift_add": {**FULL, "parallelism.default.multiplier": "auto",
                              "parallelism.default.pipeline_every": 2}}
    for name, overrides in variants.items():  # "default" alone is a SystemVerilog keyword: prefixed
        config = load_config(CONFIG, {"design.output_dir": str(out / "matrix"), "design.name": name, **overrides})
        result = emit_design(config, str(CONFIG), log=lambda _: None)
        _finish(result.folder, result.graph)
        names.append(f"matrix/{name}")
    return names


def emit_residual(out: Path) -> list[str]:
    """examples/residual_mlp.py's design, as its main() builds it, for two of its command lines."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    import residual_mlp

    import flow

    names = []
    for dataset, par in (("breast_cancer", "full"), ("wine", 4)):
        x_train, y_train, x_test, y_test = residual_mlp.load(dataset, 0)
        torch.manual_seed(0)
        model = residual_mlp.ResidualMLP(x_train.shape[1], 16, int(y_train.max()) + 1)
        residual_mlp.train(model, x_train, y_train, 60, 0)
        design = flow.compile(model, x_test[:2], quant={"data_in_frac_width": 4, "data_out_frac_width": 4},
                              parallelism={"fc_in": {"out_par": par}, "fc_res": {"out_par": par}},
                              name="residual_mlp")
        folder = out / "residual" / f"{dataset}_par_{par}"
        design.emit(folder, x_test, y_test, source="examples/residual_mlp.py")
        _finish(folder, design.graph)
        names.append(f"residual/{folder.name}")
    return names


def _fuzz_specs() -> dict[str, object]:
    from hypothesis import HealthCheck, Phase, given, settings

    from tests.fuzz.__main__ import CORPUS
    from tests.fuzz.spec import DesignSpec
    from tests.fuzz.strategies import designs
    from tests.test_fuzz_designs import LOCKSTEP, UNSIGNED_RELU

    specs: dict[str, object] = {}
    for path in sorted(CORPUS.glob("*.json")):  # a design name is an identifier: no '-'
        specs[f"corpus_{path.stem.replace('-', '_')}"] = DesignSpec.from_json(json.loads(path.read_text())["spec"])
    specs.update(lockstep=LOCKSTEP, unsigned_relu=UNSIGNED_RELU)
    drawn: list[object] = []

    @settings(max_examples=FUZZ_SLICE, derandomize=True, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(spec=designs())
    def collect(spec) -> None:
        drawn.append(spec)

    collect()
    specs.update((f"drawn_{index:02d}", spec) for index, spec in enumerate(drawn))
    return specs


def emit_fuzz(out: Path) -> list[str]:
    """Every corpus design, the hand-written fuzz designs and a derandomized slice, as the fuzzer emits them."""
    from tests.fuzz.check import emit

    names = []
    for name, spec in _fuzz_specs().items():
        (out / "fuzz").mkdir(parents=True, exist_ok=True)
        (out / "fuzz" / f"{name}.spec.json").write_text(json.dumps(spec.to_json(), indent=1) + "\n")
        folder, graph = emit(spec, out / "fuzz", name)
        _finish(folder, graph)
        names.append(f"fuzz/{name}")
    return names


def emit_all(out: Path) -> None:
    if out.exists() and any(out.iterdir()):
        raise SystemExit(f"{out} is not empty; give a new folder")
    start = time.perf_counter()
    names = emit_matrix(out) + emit_residual(out) + emit_fuzz(out)
    files = sum(1 for p in out.rglob("*") if p.is_file())
    print(f"emitted {len(names)} designs, {files} files into {out} in {time.perf_counter() - start:.0f} s")


def _files(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*") if p.is_file()}


def compare(a: Path, b: Path) -> int:
    fa, fb = _files(a), _files(b)
    common = sorted(fa & fb)
    differ = [f for f in common if not filecmp.cmp(a / f, b / f, shallow=False)]
    designs = sorted({str(Path(f).parent) for f in common if f.endswith("report.json")})
    kinds: dict[str, list[int]] = {}
    for f in common:
        kind = "rtl" if "/rtl/" in f else "vectors" if "/vectors/" in f else "reports"
        kinds.setdefault(kind, [0, 0])[0] += 1
        kinds[kind][1] += f in differ
    print(f"compared {a} with {b}: {len(designs)} designs, {len(common)} files in both")
    for kind, (total, bad) in sorted(kinds.items()):
        print(f"  {kind:8} {total:5} files, {bad} differ")
    listed = [f"  only in {a}: {f}" for f in sorted(fa - fb)] + [f"  only in {b}: {f}" for f in sorted(fb - fa)]
    listed += [f"  differs: {f}" for f in differ]
    print("\n".join(listed[:SHOWN]) + (f"\n  ... and {len(listed) - SHOWN} more" if len(listed) > SHOWN else ""))
    same = not differ and fa == fb
    print("BYTE-IDENTICAL" if same else f"DIFFERENT: {len(differ)} files differ, "
                                        f"{len(fa ^ fb)} in one folder only")
    return 0 if same else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("emit").add_argument("out", type=Path)
    cmp = sub.add_parser("compare")
    cmp.add_argument("a", type=Path)
    cmp.add_argument("b", type=Path)
    args = parser.parse_args()
    if args.command == "emit":
        emit_all(args.out)
    else:
        raise SystemExit(compare(args.a, args.b))


if __name__ == "__main__":
    main()
