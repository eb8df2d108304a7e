"""Command-line entry point `flow`: emit-rtl, sim, estimate and search (labs run as `python -m flow.labs.<lab>`)."""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def _emit(args: argparse.Namespace, extra: list[str]) -> int:
    from flow.config.load import flag_overrides, load_config
    from flow.design.pipeline import emit_design

    config = load_config(args.config, flag_overrides(extra))
    if config.model.kind == "bert_tiny":  # lab 1's bert-tiny (flow.labs.bert_rtl): IMDb reviews as vectors
        from flow.labs.bert_rtl import emit_bert

        emit_bert(config, str(args.config) if args.config else "(defaults)")
        return 0
    emit_design(config, str(args.config) if args.config else "(defaults)")
    return 0


def _sim(args: argparse.Namespace, extra: list[str]) -> int:
    from flow.simulation.simulate import simulate_design

    if extra:
        raise ValueError(f"unexpected arguments {' '.join(extra)}; see `flow sim --help`")
    report = simulate_design(Path(args.design), args.vectors, args.seed, args.gap, args.stall, engine=args.engine)
    ok = report["mismatches"] == 0 and report["out_beats"] == report["expected_out_beats"]
    return 0 if ok else 1


SEARCHES = {"lab2": "architecture search (random, grid, TPE; compression-aware)",
            "lab3": "mixed-precision search (per-layer width and format)",
            "hw": "hardware-aware NSGA-II over width, frac, parallelism and sparsity of a design config"}


def _search_hw(argv: list[str]) -> int:
    from flow.search.hardware import run

    ap = argparse.ArgumentParser(prog="flow search hw", description=SEARCHES["hw"])
    ap.add_argument("--config", default=None, help="design TOML (default: the built-in digits MLP)")
    ap.add_argument("--trials", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--storage", default="results/hw_search/studies.db",
                    help="a .db path, journal:<file> or an Optuna storage URL")
    ap.add_argument("--out", default="results/hw_search", help="figure, results JSON and confirmed designs")
    ap.add_argument("--confirm", type=int, default=4, help="Pareto points to emit, simulate and synthesize")
    ap.add_argument("--worker", type=int, default=0, help="join the study as extra worker N (N >= 1)")
    ap.add_argument("--cluster", default=None, help="trials and confirmations as tasks on a Dask cluster: local:N or "
                                                    "tcp://host:port (default: in this process)")
    ap.add_argument("--reviews", type=int, default=64, help="bert_tiny configs: validation reviews a trial reads")
    a = ap.parse_args(argv)
    search = None
    if a.config:
        from flow.config.load import load_config

        if load_config(a.config).model.kind == "bert_tiny":  # lab 1's bert-tiny: flow.labs.bert_rtl's search
            from flow.labs.bert_search import BertHwSearch

            search = BertHwSearch.from_bert_config(a.config, a.reviews)
            search.describe["command"] = "flow search hw " + " ".join(argv)
            if a.confirm:
                print(f"bert_tiny: --confirm {a.confirm} ignored (estimator only: emitting and simulating a point "
                      "takes about an hour; see flow.labs.bert_rtl)")
                a.confirm = 0
    run(a.config, a.trials, a.storage, Path(a.out), a.seed, a.confirm, worker=a.worker, cluster=a.cluster,
        search=search)
    return 0


def _search(args: argparse.Namespace, extra: list[str]) -> int:
    import importlib

    if args.search == "hw":
        return _search_hw(extra)
    lab = importlib.import_module(f"flow.labs.{args.search}")
    return lab.main(extra, prog=f"flow search {args.search}")


def _estimate(args: argparse.Namespace, extra: list[str]) -> int:
    from flow.estimate.design import estimate_design, estimate_markdown

    if extra:
        raise ValueError(f"unexpected arguments {' '.join(extra)}; see `flow estimate --help`")
    targets = tuple(t.strip() for t in args.target.split(",") if t.strip())
    results = estimate_design(Path(args.design), targets, args.timeout, not args.no_pnr, args.pnr_timeout)
    print(estimate_markdown(results))
    if args.json:  # a copy to commit (the design folder is generated, so git-ignored)
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps({"design": Path(args.design).name, **results}, indent=2) + "\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="flow", description="Hardware-aware RTL generation toolflow.")
    sub = parser.add_subparsers(dest="command", required=True)
    emit = sub.add_parser("emit-rtl", help="train, quantize and emit a design to hw/gen/<name>",
                          description="Every config key is also a flag: --section.key value "
                                      "(e.g. --training.epochs 40 --parallelism.fc1.in_par 64).")
    emit.add_argument("--config", type=Path, default=None, help="design TOML (default: built-in defaults)")
    emit.set_defaults(handler=_emit)
    sim = sub.add_parser("sim", help="simulate an emitted design against its exact reference")
    sim.add_argument("design", help="the design folder, e.g. hw/gen/digits_mlp")
    sim.add_argument("--vectors", type=int, default=None, help="first N test vectors (default: all)")
    sim.add_argument("--seed", type=int, default=1, help="seed of the random gaps and backpressure")
    sim.add_argument("--gap", type=float, default=0.3, help="probability of an idle input cycle")
    sim.add_argument("--stall", type=float, default=0.3, help="probability of output backpressure")
    sim.add_argument("--engine", choices=("bulk", "cocotb"), default="bulk",
                     help="bulk: the whole vector set in one Verilator binary (default); cocotb: every beat "
                          "driven from Python, for protocol debugging")
    sim.set_defaults(handler=_sim)
    est = sub.add_parser("estimate", help="synthesize an emitted design (xc7, ecp5), per layer, with logic depth "
                                          "and an ECP5 Fmax; writes report.json/report.md")
    est.add_argument("design", help="the design folder, e.g. hw/gen/digits_mlp")
    est.add_argument("--target", default="xc7,ecp5", help="comma-separated: xc7, ecp5 (default both)")
    est.add_argument("--timeout", type=float, default=900.0, help="seconds per Yosys run (default 900)")
    est.add_argument("--no-pnr", action="store_true", help="skip nextpnr-ecp5 place and route (no Fmax)")
    est.add_argument("--pnr-timeout", type=float, default=1800.0, help="seconds for nextpnr (default 1800)")
    est.add_argument("--json", default=None, help="also write the figures to this file (e.g. under results/)")
    est.set_defaults(handler=_estimate)
    search = sub.add_parser("search", help="run or join an Optuna study: " + "; ".join(
        f"{k}: {v}" for k, v in SEARCHES.items()), description="The lab's own flags follow the lab name, e.g. "
        "`flow search lab2 --task samplers --preset full`; `--worker 1` joins its studies from another process "
        "or machine (with a shared --storage).", add_help=False)
    search.add_argument("search", choices=sorted(SEARCHES), help="which search")
    search.set_defaults(handler=_search)
    args, extra = parser.parse_known_args(argv)
    try:
        return args.handler(args, extra)
    except (ValueError, FileNotFoundError, RuntimeError) as error:
        print(f"flow {args.command}: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
