"""Baseline: bert-tiny on IMDb with flow's loop; test accuracy on the full 25,000-review test split.

`python -m flow.labs.baseline --preset smoke|full` writes results/baseline/bert_tiny.json; the
checkpoint (git-ignored) is what later labs start from. Pretrained weights are fine-tuned like the
reference (lr 5e-5, 1 epoch); a from-scratch model gets a larger lr, warmup and more epochs.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import torch

from flow.data.loader import make_loader
from flow.data.pipeline import prepare_imdb
from flow.labs.common import check_preset, run_metadata, write_json
from flow.models.bert import build_bert, parameter_count
from flow.paths import results_dir
from flow.train import TrainConfig, evaluate, train

PRESETS: dict[str, dict[str, Any]] = {
    "smoke": {"max_length": 64, "batch_size": 32, "train_limit": 512, "test_limit": 256, "epochs": 1},
    "full": {"max_length": 256, "batch_size": 32, "train_limit": None, "test_limit": None, "epochs": None},
}
SCRATCH = {"lr": 5e-4, "epochs": 2, "warmup_ratio": 0.1}
PRETRAINED = {"lr": 5e-5, "epochs": 1, "warmup_ratio": 0.0}


def checkpoint_path(kind: str, out: Path) -> Path:
    return out / "checkpoints" / f"bert_tiny_{kind}.pt"


def run(preset: str = "smoke", out: str | Path | None = None, pretrained: str = "auto", tokenizer: str = "auto",
        epochs: float | None = None, lr: float | None = None, batch_size: int | None = None,
        max_length: int | None = None, seed: int = 0, imdb_dir: str | None = None,
        progress: bool = True) -> dict[str, Any]:
    """Train and evaluate; returns (and writes) the results record."""
    check_preset(preset)
    p = dict(PRESETS[preset])
    folder = Path(out) if out is not None else results_dir("baseline")
    wall0 = time.perf_counter()
    model, source = build_bert({"auto": "auto", "yes": True, "no": False}[pretrained], seed=seed)
    recipe = dict(PRETRAINED if source.kind == "pretrained" else SCRATCH)
    epochs = epochs or p["epochs"] or recipe["epochs"]
    lr = lr or recipe["lr"]
    batch_size = batch_size or p["batch_size"]
    max_length = max_length or p["max_length"]
    data = prepare_imdb(max_length, tokenizer, seed=seed, imdb_dir=imdb_dir,
                        train_limit=p["train_limit"], test_limit=p["test_limit"])
    prep_s = time.perf_counter() - wall0
    cfg = TrainConfig(epochs=epochs, lr=lr, warmup_ratio=recipe["warmup_ratio"], seed=seed)
    pad = data.tokenizer.pad_token_id
    train_loader = make_loader(data.train, batch_size, shuffle=True, seed=seed, pad_id=pad)
    val_loader = make_loader(data.val, 256, sort_by_length=True, pad_id=pad)
    val_curve: list[dict[str, float]] = []

    def on_epoch(epoch: int) -> None:
        r = evaluate(model, val_loader, progress=progress, desc=f"val (epoch {epoch})")
        val_curve.append({"epoch": epoch, "accuracy": r.accuracy, "loss": r.loss})

    ckpt = checkpoint_path(source.kind, folder)
    tr = train(model, train_loader, cfg, progress=progress, checkpoint=ckpt, on_epoch=on_epoch)
    val = evaluate(model, val_loader, progress=progress, desc="val")
    test = evaluate(model, make_loader(data.test, 256, sort_by_length=True, pad_id=pad), progress=progress, desc="test")
    record = {
        "task": "baseline", "preset": preset, "seed": seed,
        "model": {**source.as_dict(), "parameters": parameter_count(model)},
        **data.describe(),
        "train_config": {**cfg.__dict__, "batch_size": batch_size},
        "train": tr.as_dict(),
        "val_per_epoch": val_curve,
        "val": val.as_dict(),
        "test": test.as_dict(),
        "data_prep_seconds": round(prep_s, 1),
        "wall_seconds": round(time.perf_counter() - wall0, 1),
        "checkpoint": str(ckpt),
        "meta": run_metadata(),
    }
    write_json(folder / ("bert_tiny.json" if preset == "full" else "bert_tiny_smoke.json"), record)
    return record


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flow.labs.baseline", description=__doc__.splitlines()[0])
    ap.add_argument("--preset", choices=["smoke", "full"], default="smoke")
    ap.add_argument("--out", default=None, help="output folder (default results/baseline)")
    ap.add_argument("--pretrained", choices=["auto", "yes", "no"], default="auto")
    ap.add_argument("--tokenizer", choices=["auto", "bert-base-uncased", "wordpiece"], default="auto")
    ap.add_argument("--epochs", type=float, default=None)
    ap.add_argument("--lr", type=float, default=None)
    ap.add_argument("--batch-size", type=int, default=None)
    ap.add_argument("--max-length", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    ap.add_argument("--imdb-dir", default=None, help="local IMDb folder (else $FLOW_IMDB_DIR or ../shared/data/imdb)")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    try:
        r = run(a.preset, a.out, a.pretrained, a.tokenizer, a.epochs, a.lr, a.batch_size, a.max_length, a.seed,
                a.imdb_dir)
    except (ValueError, FileNotFoundError, RuntimeError) as exc:
        print(f"baseline: {exc}", file=sys.stderr)
        return 2
    print(f"model: {r['model']['kind']} ({r['model']['name']}); tokenizer: {r['tokenizer']['kind']}; "
          f"max_length {r['max_length']}, batch {r['train_config']['batch_size']}, epochs {r['train_config']['epochs']}, "
          f"lr {r['train_config']['lr']}")
    print(f"test accuracy {r['test']['accuracy']:.4f} on {r['test']['samples']} reviews "
          f"(eval {r['test']['seconds']:.1f} s); train {r['train']['seconds']:.0f} s "
          f"({r['train']['samples_per_s']:.1f} samples/s); wall {r['wall_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
