"""LOGBOOK blocks of the shared setup: the baseline and the training and format benchmarks."""
from __future__ import annotations

import statistics
from pathlib import Path

from flow.labs.logbook.blocks import register
from flow.labs.logbook.fmt import load, table, thousands


@register("baseline")
def baseline(root: Path) -> str:
    r = load(root, "results/baseline/bert_tiny.json")
    cfg, sizes, tr, test = r["train_config"], r["sizes"], r["train"], r["test"]
    kind = "**from scratch** (hub unreachable)" if r["model"]["kind"] == "scratch" else "**pretrained**"
    epochs = ", ".join(f"{e['accuracy']:.3f} after epoch {e['epoch']}" for e in r["val_per_epoch"])
    rows = [
        ["model", f"bert-tiny shape {kind}, seed {r['seed']}"],
        ["tokenizer", f"{r['tokenizer']['kind']} ({thousands(r['tokenizer']['vocab_size'])} tokens)"],
        ["data", f"{thousands(sizes['train'])} training / {thousands(sizes['val'])} validation reviews (seeded "
                 f"stratified split of train), {thousands(sizes['test'])} test"],
        ["max length, batch", f"{r['max_length']} tokens (longer reviews truncated), batch {cfg['batch_size']}, "
                              "dynamic padding"],
        ["optimiser", f"AdamW lr {cfg['lr']:g}, {100 * cfg['warmup_ratio']:.0f} % linear warmup then linear decay, "
                      f"weight decay {cfg['weight_decay']}, clip {cfg['max_grad_norm']}, {cfg['epochs']} epochs "
                      f"({thousands(tr['steps'])} steps)"],
        ["**test accuracy**", f"**{test['accuracy']:.4f} on all {thousands(test['samples'])} test reviews** "
                              f"(loss {test['loss']:.3f})"],
        ["validation accuracy", f"{epochs}; {r['val']['accuracy']:.3f} after training"],
        ["time", f"training {tr['seconds']:.0f} s ({tr['samples_per_s']:.1f} samples/s), test evaluation "
                 f"{test['seconds']:.1f} s ({test['samples_per_s']:.0f} reviews/s), wall {r['wall_seconds']:.0f} s "
                 f"including {r['data_prep_seconds']:.0f} s of data preparation"],
    ]
    return table(["", ""], rows)


@register("bench.train")
def bench_train(root: Path) -> str:
    r = load(root, "results/bench/train.json")
    flow, trainer = r["flow_samples_per_s"], r["trainer_samples_per_s"]
    rounds = list(range(1, len(flow) + 1))
    return table(["round", *map(str, rounds), "median"], [
        ["flow (samples/s)", *(f"{v:.1f}" for v in flow), f"**{statistics.median(flow):.1f}**"],
        ["Trainer (samples/s)", *(f"{v:.1f}" for v in trainer), f"**{statistics.median(trainer):.1f}**"],
        ["flow / Trainer", *(f"{f / t:.2f}" for f, t in zip(flow, trainer, strict=True)),
         f"{r['ratio_flow_over_trainer']:.3f} (of medians)"],
    ])


@register("bench.formats")
def bench_formats(root: Path) -> str:
    r = load(root, "results/bench/formats.json")
    rows = [["float", f"{r['float_ms']:.0f}", "1.00", "yes"]]
    rows += [[f"{f['format']} ({f['layers']} layers)", f"{f['ms']:.0f}", f"{f['ratio']:.2f}",
              "yes" if f["ratio"] <= r["target_ratio"] else "NO"] for f in r["formats"]]
    return (f"Batch {r['batch']} x {r['length']} tokens, {r['threads']} thread, medians of {r['steps']} steps:\n\n"
            + table(["format", "ms per step", "vs float", f"within {r['target_ratio']}x"], rows))
