"""bert-tiny to RTL (issue 23): lab 1's base bert-tiny, quantized as the integer_ops lab's "every tensor
fixed point" setting, emitted as one streaming design (both encoder layers, the pooler and the
classifier) with test vectors of real IMDb test reviews.

The token, position and type embeddings and the embedding LayerNorm stay on the host
(``host_embeddings``): the design's input stream is that LayerNorm's output, quantized to the first
Linears' input format (s8.4). ``flow emit-rtl --config configs/bert_tiny.toml`` (``make emit-bert``)
runs ``emit_bert``; ``python -m flow.labs.bert_rtl --task accuracy`` measures the exact reference on
the whole test split against the float and fake-quant models.
"""
from __future__ import annotations

import argparse
import json
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from flow.config.schema import DesignConfig
from flow.design.compile import Design, compile_config
from flow.emit.design_folder import check_replaceable
from flow.errors import ConfigError
from flow.formats.fixed import FixedFormat
from flow.labs.integer_ops import END_TO_END, linear_config
from flow.paths import current_commit, portable, results_dir

#: lab 1's preset whose base model the design takes (its full preset: 128 tokens, the whole train split)
LAB1_PRESET = "full"
#: flow's matmul reads both operands in one format: A·V takes s12.8 (the lab: probabilities u.8, V s8.4)
CONTEXT_IN = FixedFormat(12, 8)


class BertBody(nn.Module):
    """BertForSequenceClassification after the embeddings: the encoder, the pooler and the classifier
    on the embedding LayerNorm's output (batch, sequence, hidden), with the (batch, sequence) 0/1
    attention mask made 4-D as BertModel makes it (``create_bidirectional_mask``); None: no mask."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.config = model.config
        self.encoder, self.pooler, self.classifier = model.bert.encoder, model.bert.pooler, model.classifier

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        if attention_mask is not None:
            from transformers.masking_utils import create_bidirectional_mask

            attention_mask = create_bidirectional_mask(config=self.config, inputs_embeds=x,
                                                       attention_mask=attention_mask)
        return self.classifier(self.pooler(self.encoder(x, attention_mask=attention_mask)[0]))


def host_embeddings(model: nn.Module, ids: torch.Tensor) -> torch.Tensor:
    """What the host computes: word + position + type embeddings and their LayerNorm (eval mode)."""
    model.eval()
    with torch.no_grad():
        return model.bert.embeddings(input_ids=ids)


def expected_tables() -> dict[str, dict[str, tuple[int, int]]]:
    """The formats of configs/bert_tiny.toml by layer role, from the integer_ops lab's definitions
    (END_TO_END and lab 1's fixed Linears with s16.8 outputs): role -> key -> (width, frac)."""
    linear = linear_config(8, True)["linear"]
    c = END_TO_END

    def pair(fmt: FixedFormat) -> tuple[int, int]:
        return fmt.width, fmt.frac

    return {
        "linear": {k: (linear[f"{k}_width"], linear[f"{k}_frac_width"]) for k in ("data_in", "weight", "bias", "data_out")},
        "scores": {"data_in": pair(c.attention_in), "data_out": pair(c.softmax_in)},
        "softmax": {"data_in": pair(c.softmax_in), "data_out_frac": (c.softmax_out_frac, c.softmax_out_frac)},
        "context": {"data_in": pair(CONTEXT_IN), "data_out": pair(c.context_out)},
        "concat": {"data_out": pair(c.context_out)},
        "add": {"data_out": pair(c.layer_norm_in)},
        "layer_norm": {"data_in": pair(c.layer_norm_in), "weight": pair(c.layer_norm_affine),
                       "data_out": pair(c.layer_norm_out)},
        "gelu": {"data_in": pair(c.gelu_in), "data_out": pair(c.gelu_out)},
        "tanh": {"data_in": pair(c.tanh_in), "data_out_frac": (c.tanh_out_frac, c.tanh_out_frac)},
    }


# ---- the model ----
@dataclass
class BaseModel:
    """The float BertForSequenceClassification and where its weights came from."""

    model: nn.Module
    info: dict[str, Any]


def base_model(config: DesignConfig, imdb_dir: str | None = None, progress: bool = True) -> BaseModel:
    """lab 1's base bert-tiny of ``bert.seed`` (its checkpoint, trained by lab 1's own code when absent),
    or for ``bert.weights = "random"`` a seeded model of the configured shape (smoke tests)."""
    from flow.models.bert import build_bert

    b = config.bert
    if b.weights == "random":
        model, source = build_bert(False, seed=b.seed, hidden_size=b.hidden_size, intermediate_size=b.intermediate_size)
        torch.manual_seed(b.seed)
        for module in model.modules():  # nn.Linear's own init: BERT's std 0.02 rounds to 0 at frac 4
            if isinstance(module, nn.Linear):
                module.reset_parameters()
        info = {**source.as_dict(), "weights": "random (seeded nn.Linear init)", "trained_here": False}
    else:
        from flow.labs.lab1 import Lab1

        start = time.perf_counter()
        lab = Lab1(LAB1_PRESET, results_dir("lab1"), imdb_dir, progress, b.seed)
        model = lab.base
        info = {**lab.base_source, "weights": f"lab 1 base model (preset {LAB1_PRESET}, seed {b.seed})",
                "lab1_seconds": round(time.perf_counter() - start, 1)}
        info["checkpoint"] = portable(str(info["checkpoint"]))
    model.set_attn_implementation("eager")
    return BaseModel(model.eval(), info)


# ---- the reviews ----
@dataclass
class Reviews:
    """IMDb test reviews tokenized to at most ``seq`` tokens: ids padded with [PAD] to ``seq``, their
    lengths, labels and index in the test split."""

    ids: torch.Tensor
    lengths: torch.Tensor
    labels: torch.Tensor
    index: torch.Tensor
    describe: dict[str, Any]

    def masks(self) -> torch.Tensor:
        """The attention mask (reviews, seq): 1 on a review's tokens, 0 on its padding."""
        return (torch.arange(self.ids.shape[1])[None, :] < self.lengths[:, None]).long()

    def full(self) -> Reviews:
        """The reviews with at least ``seq`` tokens (no padding: no attention mask needed)."""
        keep = self.lengths == self.ids.shape[1]
        return Reviews(self.ids[keep], self.lengths[keep], self.labels[keep], self.index[keep], self.describe)

    def first(self, count: int) -> Reviews:
        return Reviews(self.ids[:count], self.lengths[:count], self.labels[:count], self.index[:count], self.describe)


def test_reviews(seq: int, imdb_dir: str | None = None, seed: int = 0) -> Reviews:
    """The whole IMDb test split tokenized with the project's tokenizer (the one lab 1 trains with),
    truncated to ``seq`` tokens, in a seeded shuffle (``TextSplit.subset``): the split is sorted by
    label (12,500 negative reviews first), so its first reviews would all be negative."""
    from flow.data.imdb import load_imdb
    from flow.data.loader import tokenize
    from flow.data.tokenizer import get_tokenizer

    imdb = load_imdb(path=imdb_dir)
    tokenizer, source = get_tokenizer("auto", train_texts=imdb.train.texts)
    order = list(range(len(imdb.test)))
    random.Random(seed).shuffle(order)  # the order TextSplit.subset(None, seed) takes
    split = imdb.test.subset(None, seed)
    data = tokenize(split, tokenizer, seq)
    ids = torch.full((len(data), seq), tokenizer.pad_token_id, dtype=torch.long)
    lengths = torch.tensor([len(row) for row in data.input_ids])
    for row, tokens in enumerate(data.input_ids):
        ids[row, :len(tokens)] = tokens
    return Reviews(ids, lengths, data.labels, torch.tensor(order), {
        "data_source": portable(str(imdb.source)), "tokenizer": source.as_dict(), "seq": seq,
        "order": f"the test split in a seeded shuffle (seed {seed}; the split is sorted by label)"})


# ---- the design ----
def compile_bert(body: BertBody, config: DesignConfig, seq: int) -> Design:
    """The design of ``body`` at ``seq`` tokens, captured with the attention mask as its second input:
    the design takes the key mask as a second stream (s_axis_mask; a mask of ones where none is given)."""
    hidden = body.encoder.layer[0].attention.self.query.in_features
    return compile_config(body, (torch.zeros(2, seq, hidden), torch.ones(2, seq, dtype=torch.long)), config)


@dataclass
class BertEmit:
    folder: Path
    design: Design
    report: dict[str, Any]


def emit_bert(config: DesignConfig, config_path: str = "(defaults)", imdb_dir: str | None = None,
              log: Callable[[str], None] = print, progress: bool = True) -> BertEmit:
    """emit-rtl of a ``model.kind = "bert_tiny"`` config: base model, quantization, lowering, RTL and
    test vectors of the first ``bert.reviews`` IMDb test reviews with at least ``bert.seq`` tokens."""
    start = time.perf_counter()
    if config.dataset.name != "imdb":
        raise ConfigError(f"model.kind = 'bert_tiny' reads IMDb; set dataset.name = 'imdb' (got {config.dataset.name!r})")
    folder = config.design.folder
    check_replaceable(folder)
    b = config.bert
    base = base_model(config, imdb_dir, progress)
    log(f"float model: {base.info['weights']}, {base.info['kind']} ({base.info['reason']})"
        + (f"; trained here in {base.info.get('train_seconds', 0):.0f} s" if base.info.get("trained_here") else ""))
    reviews = test_reviews(b.seq, imdb_dir, config.dataset.seed).first(b.reviews)
    if len(reviews.labels) < b.reviews:
        log(f"only {len(reviews.labels)} test reviews in the split")
    short = int((reviews.lengths < b.seq).sum())
    log(f"test vectors: the first {len(reviews.labels)} test reviews (seeded shuffle, seed {config.dataset.seed}) "
        f"whatever their length, {short} shorter than {b.seq} tokens (padded, the padding masked)")
    body = BertBody(base.model).eval()
    design = compile_bert(body, config, b.seq)
    x = host_embeddings(base.model, reviews.ids)
    masks = reviews.masks()
    with torch.no_grad():
        floating = body(x, masks)
        fake = design.fake_quant_model()(x, masks)
    exact = design.reference(design.quantize_inputs(x), masks)
    matches = bool(torch.equal(fake, design.graph.last.out_format.dequantize(exact)))
    if not matches:
        log("WARNING: the exact reference differs from the fake-quant model")
    labels = reviews.labels

    def acc(out: torch.Tensor) -> float:
        return float((out.argmax(dim=1) == labels).float().mean())

    report = design.emit(folder, x, labels, masks=masks, source=config_path, log=log, started=start,
                         yosys_timeout=config.estimate.timeout if config.estimate.resources else None, fields={
                             "config_path": config_path, "config": config.to_dict(), "model": base.info,
                             "reviews": {**reviews.describe, "count": len(labels),
                                         "test_index": reviews.index.tolist(), "host": "embeddings + LayerNorm",
                                         "attention_mask": "s_axis_mask (1 = a real token)",
                                         "shorter_than_seq": short,
                                         "lengths": reviews.lengths.tolist(),
                                         "input_format": str(design.graph.input.fmt)},
                             "accuracy": {"float": acc(floating), "quantized": acc(fake)},
                             "reference_matches_fake_quant": matches})
    log(summary(report, folder))
    return BertEmit(folder, design, report)


def summary(report: dict[str, Any], folder: Path) -> str:
    acc, c = report["accuracy"], report["cycles"]
    kinds: dict[str, int] = {}
    for row in report["stages"]:
        kinds[row["kind"]] = kinds.get(row["kind"], 0) + 1
    return "\n".join([
        f"design {report['design']} -> {folder}/ ({report['emit_seconds']:.0f} s)",
        f"  model: {report['model']['weights']} ({report['model']['kind']}: {report['model']['reason']})",
        f"  accuracy on the {report['vectors']} vectors: float {acc['float']:.4f}, fake-quant {acc['quantized']:.4f}, "
        f"hardware reference {acc['hardware_reference']:.4f}; reference = fake-quant: {report['reference_matches_fake_quant']}",
        "  stages: " + ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())),
        f"  cycles: II {c['initiation_interval']}, latency {c['latency_estimate']} (cycle model); "
        f"simulate with `flow sim {folder}`"])


# ---- accuracy on the whole test split ----
def accuracy_task(config: DesignConfig, out: Path, imdb_dir: str | None = None, progress: bool = True,
                  batch: int = 100, check: int = 300, log=print, save_every: int = 10,
                  limit: int | None = None) -> dict[str, Any]:
    """Accuracy on every test review of the float model (Hugging Face's, with its attention mask, as lab
    1 evaluates it, and the design's float model, BertBody on the host's embeddings with the same mask)
    and of the design's fake-quant model with the mask; on the first ``check`` reviews of the seeded
    shuffle (all of them when ``check`` covers the split) also the exact reference (the integer model
    the RTL matches), batched over reviews and compared with the fake-quant model code for code. The
    hardware accuracy is the reference's where it ran on the whole split; else the fake-quant model's
    where every checked review agrees (the file says which)."""
    from tqdm import tqdm

    start = time.perf_counter()
    b = config.bert
    base = base_model(config, imdb_dir, progress)
    reviews = test_reviews(b.seq, imdb_dir, config.dataset.seed)
    if limit is not None:
        reviews = reviews.first(limit)
    body = BertBody(base.model).eval()
    design = compile_bert(body, config, b.seq)
    fake_model = design.fake_quant_model()
    out_fmt = design.graph.last.out_format
    preds: dict[str, list[torch.Tensor]] = {"float_masked": [], "float": [], "fake_quant": []}
    exact_preds: list[torch.Tensor] = []
    equal, exact_seconds = 0, 0.0
    count = len(reviews.labels)

    def write(preds, exact_preds, equal, done):
        labels, full = reviews.labels[:done], reviews.lengths[:done] == b.seq
        result = {name: torch.cat(p) for name, p in preds.items()}
        checked = sum(len(p) for p in exact_preds)
        exact = torch.cat(exact_preds)

        def acc(pred: torch.Tensor, keep: torch.Tensor) -> float:
            return float((pred == labels[:len(pred)])[keep[:len(pred)]].float().mean())

        everything = torch.ones_like(labels, dtype=torch.bool)
        accuracy = {name: acc(pred, everything) for name, pred in result.items()}
        complete_check = checked == done
        if complete_check:
            accuracy["exact"] = acc(exact, everything)
        hardware = (accuracy["exact"] if complete_check else accuracy["fake_quant"] if equal == checked else None)
        source = (f"the exact reference itself on all {done} reviews" if complete_check else
                  f"the fake-quant model, equal to the exact reference code for code on the first {checked} reviews"
                  if equal == checked else
                  f"none: the exact reference differs from the fake-quant model on {checked - equal} of {checked} reviews")
        record = {
            "task": "bert_rtl accuracy", "commit": current_commit(), "model": base.info, **reviews.describe,
            "reviews": done, "reviews_in_split": count, "complete": done == count, "reviews_full_length": int(full.sum()),
            "accuracy": accuracy,
            "accuracy_full_length": {name: acc(pred, full) for name, pred in
                                     (result | ({"exact": exact} if complete_check else {})).items()},
            "reference_check": {"reviews": checked, "equal_code_for_code": equal,
                                "exact_accuracy": acc(exact, everything),
                                "fake_quant_accuracy": acc(result["fake_quant"][:checked], everything)},
            "hardware_accuracy": hardware, "hardware_accuracy_source": source,
            "notes": "every model with the attention mask, reviews truncated or padded with [PAD] to seq tokens; "
                     "float_masked: the Hugging Face model (lab 1's evaluation); float: the design's float model "
                     "(encoder, pooler, classifier on the host's embeddings); fake_quant: the design's fake-quant model; "
                     "exact: the design's exact integer reference (the RTL's numbers); *_full_length: the reviews of "
                     "at least seq tokens only",
            "exact_seconds": round(exact_seconds, 1),
            "seconds": round(time.perf_counter() - start, 1)}
        out.mkdir(parents=True, exist_ok=True)
        (out / "accuracy.json").write_text(json.dumps(record, indent=2) + "\n")
        return record

    for first in tqdm(range(0, count, batch), desc="test reviews", unit="batch", disable=not progress):
        ids = reviews.ids[first:first + batch]
        mask = (torch.arange(b.seq)[None, :] < reviews.lengths[first:first + batch, None]).long()
        with torch.no_grad():
            preds["float_masked"].append(base.model(input_ids=ids, attention_mask=mask).logits.argmax(1))
            x = host_embeddings(base.model, ids)
            preds["float"].append(body(x, mask).argmax(1))
            fake = fake_model(x, mask)
        preds["fake_quant"].append(fake.argmax(1))
        if first < check:
            take = min(check - first, len(ids))
            began = time.perf_counter()
            exact = design.reference(design.quantize_inputs(x[:take]), mask[:take])
            exact_seconds += time.perf_counter() - began
            exact_preds.append(exact.argmax(1))
            equal += int((fake[:take] == out_fmt.dequantize(exact)).all(dim=1).sum())
        if (first // batch) % save_every == save_every - 1:  # a partial record: the reviews so far
            write(preds, exact_preds, equal, done=first + len(ids))
    record = write(preds, exact_preds, equal, done=count)
    log(json.dumps({k: record[k] for k in ("accuracy", "accuracy_full_length", "reference_check")}))
    return record


def record_rtl(folder: Path, out: Path, emit_seconds: float | None, sim_seconds: float | None,
               emit_command: str, sim_command: str) -> dict[str, Any]:
    """results/bert_rtl/rtl.json: the emitted design's report (cycle model, formats, vectors) and its
    simulation (mismatches, measured II and latency), with the wall times of the two commands."""
    report = json.loads((folder / "report.json").read_text())
    sim = json.loads((folder / "sim" / "sim_report.json").read_text())
    c = report["cycles"]
    record = {
        "design": report["design"], "commit": current_commit(), "model": report["model"],
        "reviews": {k: v for k, v in report["reviews"].items() if k not in ("test_index", "lengths")},
        "accuracy_on_vectors": report["accuracy"], "reference_matches_fake_quant": report["reference_matches_fake_quant"],
        "stages": len(report["stages"]), "parallelism": report["config"]["parallelism"],
        "cycle_model": {"initiation_interval": c["initiation_interval"],
                        "initiation_interval_max": c.get("initiation_interval_max", c["initiation_interval"]),
                        "latency": c["latency_estimate"]},
        "sim": {k: sim[k] for k in ("vectors", "mismatches", "elements_compared", "out_beats", "expected_out_beats",
                                    "initiation_interval", "initiation_interval_max", "latency_cycles", "gap", "stall",
                                    "seed", "hardware_accuracy", "reference_accuracy", "build_seconds", "sim_seconds",
                                    "engine")},
        "wall_seconds": {"emit": emit_seconds, "sim": sim_seconds},
        "commands": {"emit": emit_command, "sim": sim_command}}
    record["sim"]["equals_cycle_model"] = (
        (sim["initiation_interval"], sim["initiation_interval_max"], sim["latency_cycles"])
        == (record["cycle_model"]["initiation_interval"], record["cycle_model"]["initiation_interval_max"],
            record["cycle_model"]["latency"]))
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{report['design']}.json").write_text(json.dumps(record, indent=2) + "\n")
    return record


def main(argv: list[str] | None = None) -> int:
    from flow.config.load import flag_overrides, load_config

    ap = argparse.ArgumentParser(prog="python -m flow.labs.bert_rtl", description=__doc__.splitlines()[0])
    ap.add_argument("--task", choices=("accuracy", "record"), default="accuracy",
                    help="accuracy: the whole test split; record: write results/bert_rtl/<design>.json from an emitted, "
                         "simulated design (--design, --emit-seconds, --sim-seconds)")
    ap.add_argument("--design", default="hw/gen/bert_tiny")
    ap.add_argument("--emit-seconds", type=float, default=None)
    ap.add_argument("--sim-seconds", type=float, default=None)
    ap.add_argument("--emit-command", default="make emit-bert")
    ap.add_argument("--sim-command", default="flow sim hw/gen/bert_tiny")
    ap.add_argument("--config", default="configs/bert_tiny.toml")
    ap.add_argument("--out", default=None, help="results folder (default results/bert_rtl)")
    ap.add_argument("--imdb-dir", default=None)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--check", type=int, default=300,
                    help="reviews (the first of the seeded shuffle) the exact reference runs on (25000: all)")
    ap.add_argument("--limit", type=int, default=None, help="only the first N reviews (a rate measurement)")
    ap.add_argument("--no-progress", action="store_true")
    a, extra = ap.parse_known_args(argv)
    torch.set_num_threads(a.threads)
    out = Path(a.out) if a.out else results_dir("bert_rtl")
    if a.task == "record":
        record_rtl(Path(a.design), out, a.emit_seconds, a.sim_seconds, a.emit_command, a.sim_command)
        return 0
    config = load_config(a.config, flag_overrides(extra))
    accuracy_task(config, out, a.imdb_dir, progress=not a.no_progress, check=a.check, limit=a.limit)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
