"""``flow search hw``: a hardware-aware multi-objective search (Optuna NSGA-II) over each Linear's
width, frac widths, parallelism and pruning sparsity.

Objectives: maximize validation accuracy (the exact fixed-point model on a validation split held
out of the training split; PTQ of the design's cached float model, pruned by l1 per layer), and
minimize the estimated cost (LUT + DSP48E1, from flow.estimate.model in milliseconds) and the
latency in cycles. The study is stored in SQLite and resumes. At the end the Pareto front is
drawn (accuracy against estimated LUT + DSP) and the chosen points of the front are emitted,
simulated bit-exact on the whole test split and synthesized, to confirm their estimates.
"""
from __future__ import annotations

import copy
import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import torch
from torch import nn

from flow.cluster import open_executor
from flow.config.load import load_config
from flow.config.schema import DesignConfig
from flow.data.tabular import Split, load_split
from flow.design.compile import compile_config
from flow.design.train import trained_float_model
from flow.estimate.model import Calibration, estimate
from flow.passes import make_permanent, prune_module
from flow.search import StudySpec, run_study

WIDTHS = (3, 4, 5, 6, 8)
SPARSITIES = (0.0, 0.25, 0.5, 0.75)
FOLDS = (1, 2, 8)  # elements per beat = features / fold (1: fully parallel), where that divides
MULTIPLIERS = ("lut", "dsp")  # lut: shift-add wherever the layer is fully parallel, DSPs elsewhere


def _fold(features: int, fold: int | None) -> int:
    """Elements per beat for a fold: features // fold when fold divides, else every element."""
    return features // fold if fold and features % fold == 0 else features


@dataclass
class HwSearch:
    """The float model, the data split, the estimator and the config a hardware search varies."""

    config: DesignConfig
    data: Split
    val: tuple[torch.Tensor, torch.Tensor]
    model: nn.Module
    layers: list[str]
    calibration: Calibration

    @classmethod
    def from_config(cls, path: str | Path | None, val_fraction: float = 0.2, log=print) -> HwSearch:
        config = load_config(path)
        d = config.dataset
        data = load_split(d.name, d.path, d.test_fraction, d.seed)
        model = trained_float_model(config, data, log=log)
        generator = torch.Generator().manual_seed(1)
        order = torch.randperm(len(data.y_train), generator=generator)
        cut = int(len(order) * val_fraction)
        val = (data.x_train[order[:cut]], data.y_train[order[:cut]])
        layers = [name for name, module in model.named_modules() if isinstance(module, nn.Linear)]
        return cls(config, data, val, model, layers, Calibration.load())

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        """Per layer: width, frac widths, output parallelism (and the first layer's input
        parallelism), multiplier style and sparsity."""
        choice = {}
        for index, layer in enumerate(self.layers):
            width = trial.suggest_categorical(f"{layer}.width", WIDTHS)
            choice[layer] = {
                "width": width,
                "weight_frac": width - trial.suggest_categorical(f"{layer}.weight_int_bits", (1, 2)),
                "data_frac": width - (0 if index == 0 else trial.suggest_categorical(f"{layer}.data_int_bits", (3, 4, 5))),
                "in_fold": trial.suggest_categorical(f"{layer}.in_fold", FOLDS) if index == 0 else None,
                "out_fold": trial.suggest_categorical(f"{layer}.out_fold", FOLDS),
                "multiplier": trial.suggest_categorical(f"{layer}.multiplier", MULTIPLIERS),
                "sparsity": trial.suggest_categorical(f"{layer}.sparsity", SPARSITIES),
            }
        return choice

    def design_config(self, choice: dict[str, Any], name: str = "hw_search") -> DesignConfig:
        """The design config of a choice: a layer's in_par is the previous layer's out_par (the
        first layer's is its own fold of the input); shift-add wherever a layer ends up fully parallel."""
        config = self.config.with_name(name)
        quant, par = config.quantization, config.parallelism
        modules = dict(self.model.named_modules())
        for index, (layer, c) in enumerate(choice.items()):
            quant = quant.with_layer(layer, data_in_width=c["width"], data_in_frac_width=c["data_frac"],
                                     data_in_signed=False, weight_width=c["width"], weight_frac_width=c["weight_frac"],
                                     bias_width=8, bias_frac_width=6)
            module = modules[layer]
            par = par.with_layer(layer, out_par=_fold(module.out_features, c["out_fold"]),
                                 in_par=_fold(module.in_features, c["in_fold"]) if index == 0 else "auto",
                                 multiplier="auto" if c["multiplier"] == "lut" else "dsp", pipeline_every=0)
        return dataclasses.replace(config, quantization=quant, parallelism=par)

    def build(self, choice: dict[str, Any], name: str = "hw_search"):
        model = copy.deepcopy(self.model)
        for layer, c in choice.items():
            if c["sparsity"]:
                prune_module(model, c["sparsity"], method="l1", targets=(layer,))
        make_permanent(model)
        return compile_config(model, self.data.x_test[:2], self.design_config(choice, name))

    def plot(self, study: optuna.Study, path: Path) -> Path:
        return plot_front(study, path)

    def record(self, study: optuna.Study, out: Path) -> None:
        """A search's own results file in ``out`` beside hw_search.json (bert-tiny's); none here."""

    def objective(self, trial: optuna.Trial) -> tuple[float, float, float]:
        choice = self.suggest(trial)
        design = self.build(choice)
        x, y = self.val
        codes = design.reference(design.quantize_inputs(x))
        accuracy = float((codes.argmax(dim=1) == y).float().mean())
        est = estimate(design.graph, self.calibration)
        trial.set_user_attr("estimate", est["total"])
        trial.set_user_attr("initiation_interval", est["initiation_interval"])
        return accuracy, float(est["total"]["LUT"] + est["total"]["DSP48E1"]), float(est["latency"])


def pareto_front(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    return sorted(study.best_trials, key=lambda t: t.values[1])


def plot_front(study: optuna.Study, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    front = pareto_front(study)
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    ax.scatter([t.values[1] for t in done], [t.values[0] for t in done], s=10, alpha=0.4, label="trials")
    ax.plot([t.values[1] for t in front], [t.values[0] for t in front], "o", color="C3",
            label="Pareto front (accuracy, cost, latency)")
    ax.set(xscale="log", xlabel="estimated LUT + DSP48E1", ylabel="validation accuracy (exact fixed point)",
           title=f"hardware-aware search, {len(done)} trials (NSGA-II)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def confirm(search: HwSearch, trial: optuna.trial.FrozenTrial, folder: Path, log=print) -> dict[str, Any]:
    """Emit, simulate and synthesize one trial's design: bit-exactness, measured cycles, real resources."""
    from flow.estimate.design import estimate_design
    from flow.simulation.simulate import simulate_design

    choice = search.suggest(optuna.trial.FixedTrial(trial.params))
    name = f"pareto_{trial.number}"
    design = search.build(choice, name)
    design.emit(folder / name, search.data.x_test, search.data.y_test, log=lambda _: None)
    sim = simulate_design(folder / name, log=lambda _: None)
    synth = estimate_design(folder / name, ("xc7",), pnr=False, log=lambda _: None)["xc7"]
    row = {"trial": trial.number, "val_accuracy": trial.values[0], "hardware_accuracy": sim["hardware_accuracy"],
           "mismatches": sim["mismatches"], "estimated": trial.user_attrs["estimate"],
           "synthesized": {k: synth["total"][k] for k in ("LUT", "FF", "DSP48E1")},
           "latency_model": trial.values[2], "latency_measured": sim["latency_cycles"],
           "ii_model": trial.user_attrs["initiation_interval"], "ii_measured": sim["initiation_interval"],
           "choice": choice}
    log(json.dumps({k: v for k, v in row.items() if k != "choice"}))
    return row


@dataclass(frozen=True)
class ConfirmJob:
    """One Pareto point to emit, simulate and synthesize: an executor job."""

    search: HwSearch
    trial: optuna.trial.FrozenTrial
    folder: Path


def _confirm_job(job: ConfirmJob) -> dict[str, Any]:
    return confirm(job.search, job.trial, job.folder, lambda _: None)


def run(config: str | None, trials: int, storage: str, out: Path, seed: int = 0, confirm_points: int = 4,
        worker: int = 0, log=print, cluster: str | None = None, search: HwSearch | None = None) -> dict[str, Any]:
    """The study (its trials as tasks on ``cluster`` when given), its front, and ``confirm_points``
    points of it emitted, simulated and synthesized (one executor job each). ``search`` replaces the
    config's tabular search (bert-tiny's comes from flow.labs.bert_rtl)."""
    search = search if search is not None else HwSearch.from_config(config, log=log)
    spec = StudySpec(f"hw-{search.config.design.name}-seed{seed}", storage, "nsga2", seed, trials,
                     directions=("maximize", "minimize", "minimize"), worker=worker, attrs={"config": str(config)})
    with open_executor(cluster, log) as executor:
        study = run_study(spec, search.objective, log, executor)
        if worker:
            return {}
        out.mkdir(parents=True, exist_ok=True)
        search.plot(study, out / "pareto.png")
        search.record(study, out)
        front = pareto_front(study)
        picks = [front[round(i * (len(front) - 1) / max(confirm_points - 1, 1))]
                 for i in range(min(confirm_points, len(front)))]
        jobs = [ConfirmJob(search, t, out / "designs") for t in {t.number: t for t in picks}.values()]
        rows = list(executor.map(_confirm_job, jobs, label=lambda job: f"confirm trial {job.trial.number}"))
        for row in rows:
            log(json.dumps({k: v for k, v in row.items() if k != "choice"}))
    record = {"trials": len(study.trials), "front": [{"trial": t.number, "values": t.values, "params": t.params}
                                                     for t in front], "confirmed": rows}
    (out / "hw_search.json").write_text(json.dumps(record, indent=2) + "\n")
    return record
