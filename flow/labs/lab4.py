"""Lab 4: the hardware stream. Emit the quantized digits MLP, simulate it bit-exact in
Verilator, then swap ReLU for the leaky ReLU component and measure the effect on accuracy,
latency and resources (Yosys synth_xilinx).

    python -m flow.labs.lab4 --preset smoke   # 36 vectors, component-level resources only
    python -m flow.labs.lab4 --preset full    # whole test split, whole-design synthesis
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path
from typing import Any

from flow.design.config import load_config
from flow.design.pipeline import emit_design
from flow.estimate.yosys import synthesize_xilinx
from flow.hardware.simulate import simulate_design
from flow.labs.common import check_preset, run_metadata, write_json
from flow.paths import REPO_ROOT, results_dir
from flow.toolchain import rtl_dir

CONFIG = REPO_ROOT / "configs" / "digits_mlp.toml"
ACTIVATIONS = {"relu": {"model.activation": "relu"},
               "leaky_relu": {"model.activation": "leaky_relu", "model.leaky_shift": 3}}


def component_resources() -> dict[str, dict[str, int]]:
    """The activation components alone: 8 lanes of 8-bit elements."""
    sources = sorted(rtl_dir().glob("*.sv"))
    return {
        "relu": synthesize_xilinx(sources, "relu", {"PAR": 8, "WIDTH": 8}, timeout=300),
        "leaky_relu": synthesize_xilinx(sources, "leaky_relu", {"PAR": 8, "WIDTH": 8, "SHIFT": 3}, timeout=300),
    }


def seed_study(seeds: list[int]) -> dict[str, list[dict[str, float]]]:
    """Float and quantized (= hardware reference) test accuracy per training seed, both activations:
    one seed's difference is a handful of the 360 test images, so compare over several."""
    from flow.data.digits import load_digits_split
    from flow.design.quantize import build_hardware_graph
    from flow.design.train import accuracy, trained_float_model
    from flow.graph import capture
    from flow.hardware.lower import lower

    study: dict[str, list[dict[str, float]]] = {}
    for name, overrides in ACTIVATIONS.items():
        study[name] = []
        for seed in seeds:
            config = load_config(CONFIG, {**overrides, "training.seed": seed})
            data = load_digits_split(config["dataset"]["test_fraction"], config["dataset"]["seed"])
            model = trained_float_model(config, data, log=lambda _: None)
            hw = build_hardware_graph(lower(capture(model, {"input": data.x_test[:2]}, mode="eval"), model), config)
            codes = hw.forward_codes(hw.quantize_input(data.x_test))
            study[name].append({"seed": seed, "float": accuracy(model, data.x_test, data.y_test),
                                "quantized": float((codes.argmax(1) == data.y_test).double().mean())})
    return study


def run(preset: str, out: Path) -> dict[str, Any]:
    check_preset(preset)
    vectors = 36 if preset == "smoke" else None
    designs: dict[str, Any] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, overrides in ACTIVATIONS.items():
            config = load_config(CONFIG, {"design.output_dir": tmp, "design.name": f"lab4_{name}",
                                          "estimate.resources": preset == "full", **overrides})
            result = emit_design(config, str(CONFIG.relative_to(REPO_ROOT)))
            sim = simulate_design(result.folder, vectors=vectors)
            report = result.report
            designs[name] = {
                "accuracy": report["accuracy"], "sim": sim, "cycles": report["cycles"],
                "resources": report["resources"], "stages": report["stages"],
            }
    seeds = [0, 1] if preset == "smoke" else [0, 1, 2, 3, 4]
    payload = {"lab": 4, "preset": preset, "config": str(CONFIG.relative_to(REPO_ROOT)),
               "designs": designs, "components": component_resources(), "seeds": seed_study(seeds),
               "meta": run_metadata()}
    write_json(out / "leaky_relu.json", payload)
    plot(payload, out / "leaky_relu.png")
    return payload


def plot(payload: dict[str, Any], path: Path) -> None:
    """Three panels, ReLU against leaky ReLU: accuracy, cycles, resources."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(payload["designs"])
    designs = payload["designs"]
    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    width = 0.38
    for offset, key, label in ((-width / 2, "float", "float"), (width / 2, "quantized", "quantized = hardware")):
        axes[0].bar([i + offset for i in range(len(names))], [designs[n]["accuracy"][key] for n in names],
                    width, label=label)
    axes[0].set_ylim(0.9, 1.0)
    axes[0].set_title("test accuracy")
    axes[0].legend(fontsize=8)
    for offset, key, label in ((-width / 2, "latency_cycles", "latency"), (width / 2, "initiation_interval", "II")):
        axes[1].bar([i + offset for i in range(len(names))], [designs[n]["sim"][key] for n in names], width,
                    label=label)
    axes[1].set_title("cycles (measured in simulation)")
    axes[1].legend(fontsize=8)
    source = {n: designs[n]["resources"] or payload["components"][n] for n in names}
    kinds = ["LUT", "FF", "CARRY4", "DSP48E1"]
    for k, kind in enumerate(kinds):
        axes[2].bar([i + (k - 1.5) * 0.2 for i in range(len(names))], [source[n][kind] for n in names], 0.2,
                    label=kind)
    whole = all(designs[n]["resources"] for n in names)
    axes[2].set_title("resources, " + ("whole design" if whole else "activation component (8 x 8-bit)"))
    axes[2].legend(fontsize=8)
    for ax in axes:
        ax.set_xticks(range(len(names)), names)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Lab 4: leaky ReLU as a new hardware component.")
    parser.add_argument("--preset", default="smoke", choices=["smoke", "full"])
    parser.add_argument("--out", type=Path, default=None, help="results folder (default results/lab4)")
    args = parser.parse_args(argv)
    payload = run(args.preset, args.out or results_dir("lab4"))
    for name, runs in payload["seeds"].items():
        q = [r["quantized"] for r in runs]
        print(f"{name:10} quantized accuracy over seeds {[r['seed'] for r in runs]}: mean {sum(q) / len(q):.4f}, "
              f"min {min(q):.4f}, max {max(q):.4f}")
    for name, d in payload["designs"].items():
        print(f"{name:10} quantized {d['accuracy']['quantized']:.4f} hardware {d['sim']['hardware_accuracy']:.4f} "
              f"mismatches {d['sim']['mismatches']} latency {d['sim']['latency_cycles']} II "
              f"{d['sim']['initiation_interval']} resources {d['resources'] or payload['components'][name]}")


if __name__ == "__main__":
    main()
