"""``flow search hw`` on bert-tiny (issue 23, item 5): per Linear the weight width, the design's elements
a beat and each encoder layer's intermediate Linear's own; objectives the fake-quant model's accuracy on a
fixed seeded subset of lab 1's validation reviews, the estimated LUT + DSP48E1 and the latency in cycles
(flow.estimate.model only: no synthesis, no simulation).

A weight width w takes the frac width that puts the Linear's largest |weight| at the top of a signed
w-bit format (``weight_frac``). The first version took s<w>.<w-4> (s8.4 at 8 bits): bert-tiny's weights
are all below 0.125 in magnitude, so its 5- and 6-bit points (steps 0.5 and 0.25) rounded every weight to
0 and the model's logits no longer depended on the review: those trials scored the validation subset's
class balance (0.5 on a balanced subset), not a measure of the quantization.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import optuna
import torch
from torch import nn

from flow.config.schema import DesignConfig
from flow.design.compile import Design
from flow.estimate.model import Calibration, estimate
from flow.labs.bert_rtl import BertBody, base_model, compile_bert, host_embeddings
from flow.labs.stats import coin_bound
from flow.paths import current_commit, portable
from flow.search.hardware import HwSearch

WEIGHT_WIDTHS = (2, 3, 4, 6, 8)  # every Linear's weights: s<w>.<weight_frac(w)>
PARS = (4, 8, 16, 32)  # elements a beat: the design's (global) and each intermediate Linear's own
DESIGN_POINTS = Path("results/bert_rtl/design_points.json")  # the three parallelism points (s8.4 weights)


def weight_frac(weight: torch.Tensor, width: int) -> int:
    """The frac width at which a signed ``width``-bit format spans the largest |weight| (2^-frac steps):
    width - 1 - ceil(log2 max|w|); an all-zero weight keeps width - 1."""
    top = float(weight.detach().abs().max())
    return width - 1 - (math.ceil(math.log2(top)) if top > 0 else 0)


def at_chance(accuracy: float, reviews: int) -> bool:
    """Accuracy inside the 95 % binomial interval of a coin on ``reviews`` balanced reviews."""
    return accuracy <= coin_bound(reviews)


@dataclass
class BertHwSearch(HwSearch):
    """The bert-tiny design config, its float body, the validation reviews' host embeddings and labels."""

    seq: int = 128
    describe: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_bert_config(cls, path: str | Path, reviews: int = 64, log=print) -> BertHwSearch:
        """lab 1's base model of the config and the first ``reviews`` reviews of lab 1's validation split
        (stratified seeded split of the training reviews, DATA_SEED 0, in its seeded order) that have at
        least ``bert.seq`` tokens (full length: the key mask is all ones)."""
        from flow.config.load import load_config
        from flow.data.imdb import load_imdb, train_val_split
        from flow.data.loader import tokenize
        from flow.data.tokenizer import get_tokenizer

        config = load_config(path)
        base = base_model(config, progress=False)
        imdb = load_imdb()
        tokenizer, _ = get_tokenizer("auto", train_texts=imdb.train.texts)
        _, val = train_val_split(imdb.train, 0.1, 0)  # lab 1's validation split (DATA_SEED 0)
        data = tokenize(val, tokenizer, config.bert.seq)
        keep = [i for i, ids in enumerate(data.input_ids) if len(ids) == config.bert.seq][:reviews]
        ids = torch.stack([data.input_ids[i] for i in keep])
        x, y = host_embeddings(base.model, ids), data.labels[keep]
        describe = {"split": "lab 1's validation split (10 % of the IMDb training reviews, stratified, seed 0)",
                    "selection": f"its first {len(keep)} reviews (seeded order) with at least {config.bert.seq} tokens",
                    "reviews": len(keep), "positive": int(y.sum()), "validation_reviews": len(val),
                    "data_source": portable(str(imdb.source)), "model": base.info, "config": portable(str(path))}
        search = cls.for_body(config, BertBody(base.model).eval(), x, y, describe)
        log(f"bert-tiny hardware search: {len(search.layers)} Linears, {len(keep)} validation reviews "
            f"({describe['positive']} positive) of {config.bert.seq} tokens, model {base.info['weights']}")
        return search

    @classmethod
    def for_body(cls, config: DesignConfig, body: nn.Module, x: torch.Tensor, y: torch.Tensor,
                 describe: dict[str, Any] | None = None) -> BertHwSearch:
        layers = [name for name, module in body.named_modules() if isinstance(module, nn.Linear)]
        return cls(config, None, (x, y), body, layers, Calibration.load(), x.shape[1], describe or {})

    def suggest(self, trial: optuna.Trial) -> dict[str, Any]:
        choice: dict[str, Any] = {layer: {"weight_width": trial.suggest_categorical(f"{layer}.weight_width",
                                                                                      WEIGHT_WIDTHS)}
                                  for layer in self.layers}
        choice["par"] = trial.suggest_categorical("par", PARS)
        for i in range(len(self.model.encoder.layer)):
            choice[f"encoder.layer.{i}.intermediate.dense"]["out_par"] = trial.suggest_categorical(
                f"encoder.layer.{i}.intermediate.dense.out_par", PARS)
        return choice

    def design_config(self, choice: dict[str, Any], name: str = "hw_search") -> DesignConfig:
        config = self.config.with_name(name)
        quant, par = config.quantization, config.parallelism
        modules = dict(self.model.named_modules())
        for layer in self.layers:
            w = choice[layer]["weight_width"]
            quant = quant.with_layer(layer, weight_width=w, weight_frac_width=weight_frac(modules[layer].weight, w))
        par = dataclasses.replace(par, default=dataclasses.replace(par.default, out_par=choice["par"]))
        par = par.with_layer("encoder.layer.0.attention.self.query", in_par=choice["par"], out_par=choice["par"])
        for layer, c in choice.items():
            if isinstance(c, dict) and "out_par" in c:
                par = par.with_layer(layer, out_par=c["out_par"])
        return dataclasses.replace(config, quantization=quant, parallelism=par)

    def build(self, choice: dict[str, Any], name: str = "hw_search") -> Design:
        return compile_bert(self.model, self.design_config(choice, name), self.seq)

    def score(self, design: Design) -> tuple[float, float]:
        """The fake-quant model's accuracy on the validation reviews and the share it calls positive
        (0 or 1: its logits do not depend on the review)."""
        with torch.no_grad():
            pred = design.fake_quant_model()(self.val[0]).argmax(dim=1)
        return float((pred == self.val[1]).float().mean()), float(pred.float().mean())

    def objective(self, trial: optuna.Trial) -> tuple[float, float, float]:
        design = self.build(self.suggest(trial))
        accuracy, positive = self.score(design)
        est = estimate(design.graph, self.calibration)
        trial.set_user_attr("estimate", est["total"])
        trial.set_user_attr("initiation_interval", est["initiation_interval"])
        trial.set_user_attr("positive_rate", positive)
        return accuracy, float(est["total"]["LUT"] + est["total"]["DSP48E1"]), float(est["latency"])

    def base_accuracy(self) -> float:
        """The config's own design (s8.4 weights, the three design points' numbers) on the same reviews."""
        if "base_design_accuracy" not in self.describe:
            self.describe["base_design_accuracy"] = self.score(compile_bert(self.model, self.config, self.seq))[0]
        return self.describe["base_design_accuracy"]

    def plot(self, study: optuna.Study, path: Path) -> Path:
        points = json.loads(DESIGN_POINTS.read_text())["points"] if DESIGN_POINTS.exists() else {}
        return plot_bert_front(study, path, len(self.val[1]), self.seq, points, self.base_accuracy() if points else None)

    def record(self, study: optuna.Study, out: Path) -> dict[str, Any]:
        """Every complete trial and the front, as bert_hw_search.json in ``out`` (relative paths only)."""
        record = study_record(study, len(self.val[1]), self.layers)
        modules = dict(self.model.named_modules())
        record.update({"command": self.describe.get("command", ""), "commit": current_commit(),
                       "config": self.describe.get("config", ""), "reviews": self.describe, "weight_widths": list(WEIGHT_WIDTHS), "pars": list(PARS),
                       "weight_frac_rule": "width - 1 - ceil(log2 max|w|) per Linear",
                       "weight_frac_minus_width": {layer: weight_frac(modules[layer].weight, 8) - 8
                                                   for layer in self.layers},
                       "base_design_accuracy": self.base_accuracy()})
        out.mkdir(parents=True, exist_ok=True)
        (out / "bert_hw_search.json").write_text(json.dumps(record, indent=2) + "\n")
        return record


def trial_row(t: optuna.trial.FrozenTrial, reviews: int, layers: list[str]) -> dict[str, Any]:
    est = t.user_attrs["estimate"]
    return {"trial": t.number, "accuracy": t.values[0], "reviews": reviews, "cost": t.values[1],
            "latency": int(t.values[2]), "initiation_interval": t.user_attrs["initiation_interval"],
            "LUT": est["LUT"], "FF": est["FF"], "DSP48E1": est["DSP48E1"],
            "positive_rate": t.user_attrs.get("positive_rate"),
            "constant_output": t.user_attrs.get("positive_rate") in (0.0, 1.0),
            "at_chance": at_chance(t.values[0], reviews),
            "weight_widths": [t.params[f"{layer}.weight_width"] for layer in layers],
            "par": t.params["par"],
            "intermediate_out_par": [t.params[k] for k in sorted(t.params) if k.endswith("intermediate.dense.out_par")],
            "seconds": round((t.datetime_complete - t.datetime_start).total_seconds(), 1)}


def study_record(study: optuna.Study, reviews: int, layers: list[str]) -> dict[str, Any]:
    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    front = {t.number for t in study.best_trials}
    rows = [{**trial_row(t, reviews, layers), "front": t.number in front} for t in done]
    return {"study": study.study_name, "sampler": "NSGA-II", "trials": len(done), "layers": layers,
            "objectives": ["maximize validation accuracy (fake-quant = exact reference)",
                           "minimize estimated LUT + DSP48E1", "minimize latency (cycles)"],
            "at_chance": sum(r["at_chance"] for r in rows), "constant_output": sum(r["constant_output"] for r in rows),
            "rows": rows, "wall_seconds": round(sum(r["seconds"] for r in rows), 1), "recorded": time.strftime("%Y-%m-%d")}


def plot_bert_front(study: optuna.Study, path: Path, reviews: int, seq: int, points: dict[str, Any] | None = None,
                    base_accuracy: float | None = None) -> Path:
    """Validation accuracy against estimated LUT of every trial, the Pareto front marked, and the three
    design points (s8.4 weights) at the config's own accuracy on the same reviews."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    front = {t.number for t in study.best_trials}
    fig, ax = plt.subplots(figsize=(6.4, 4.2))
    for on_front in (False, True):
        pts = [t for t in done if (t.number in front) == on_front]
        ax.scatter([t.user_attrs["estimate"]["LUT"] for t in pts], [t.values[0] for t in pts], s=28 if on_front else 12,
                   color="C3" if on_front else "C0", alpha=1.0 if on_front else 0.5,
                   label="Pareto front (accuracy, LUT + DSP, latency)" if on_front else "trials")
    if points and base_accuracy is not None:
        for i, (name, p) in enumerate(points.items()):
            ax.scatter([p["estimate"]["LUT"]], [base_accuracy], marker="s", s=36, color=f"C{i + 4}",
                       label=f"design point {name} (s8.4 weights, par {p['parallelism']['out_par']})")
    ax.axhline(0.5, color="grey", lw=0.8, ls=":")
    ax.set(xscale="log", xlabel="estimated xc7 LUT (flow.estimate.model)",
           ylabel=f"accuracy, {reviews} validation reviews",
           title=f"bert-tiny in hardware ({seq} tokens): NSGA-II, {len(done)} trials")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
