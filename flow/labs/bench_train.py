"""Benchmark: flow's training loop against Hugging Face's Trainer on the same model, data, batch,
sequence length, optimiser settings and thread count, in one run (rounds interleaved, median).

`python -m flow.labs.bench_train` prints samples/s for both and the ratio flow / Trainer, and
with `--eval` the time to evaluate the full 25,000-review test split; writes results/bench/train.json.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from typing import Any

import torch

from flow.data.loader import PadCollate, make_loader
from flow.data.pipeline import prepare_imdb
from flow.labs.common import run_metadata, write_json
from flow.models.bert import build_bert
from flow.paths import results_dir
from flow.train import TrainConfig, evaluate, train


class _Timer:
    """Records the wall time of every optimiser step (both loops call it after each step)."""

    def __init__(self) -> None:
        self.stamps: list[float] = []

    def __call__(self, *_: Any, **__: Any) -> None:
        self.stamps.append(time.perf_counter())

    def rate(self, warmup: int, batch: int) -> float:
        timed = self.stamps[warmup:]
        return (len(timed) - 1) * batch / (timed[-1] - timed[0])


def bench_flow(data, batch: int, steps: int, warmup: int, seed: int) -> float:
    model, _ = build_bert(False, seed=seed)
    timer = _Timer()
    loader = make_loader(data.train, batch, shuffle=True, seed=seed, pad_id=data.tokenizer.pad_token_id)
    train(model, loader, TrainConfig(max_steps=warmup + steps + 1, lr=5e-5, seed=seed), progress=False,
          on_step=lambda step: timer())
    return timer.rate(warmup, batch)


def bench_trainer(data, batch: int, steps: int, warmup: int, seed: int) -> tuple[float, str]:
    from transformers import Trainer, TrainerCallback, TrainingArguments

    model, _ = build_bert(False, seed=seed)
    timer = _Timer()

    class StepTimer(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            timer()

    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(
            output_dir=tmp, per_device_train_batch_size=batch, max_steps=warmup + steps + 1, learning_rate=5e-5,
            weight_decay=0.01, lr_scheduler_type="linear", max_grad_norm=1.0, seed=seed, use_cpu=True,
            report_to=[], save_strategy="no", logging_strategy="no", disable_tqdm=True, dataloader_num_workers=0,
        )
        trainer = Trainer(model=model, args=args, train_dataset=data.train,
                          data_collator=PadCollate(data.tokenizer.pad_token_id), callbacks=[StepTimer()])
        trainer.train()
        optim = f"{type(trainer.optimizer.optimizer if hasattr(trainer.optimizer, 'optimizer') else trainer.optimizer).__name__}" \
                f" ({args.optim})"
    return timer.rate(warmup, batch), optim


def bench_eval(data, batch: int, seed: int) -> dict[str, Any]:
    """Full test-split evaluation time: flow's evaluate (length-sorted) and Trainer.predict."""
    from transformers import Trainer, TrainingArguments

    model, _ = build_bert(False, seed=seed)
    pad = data.tokenizer.pad_token_id
    res = evaluate(model, make_loader(data.test, batch, sort_by_length=True, pad_id=pad), progress=False)
    with tempfile.TemporaryDirectory() as tmp:
        args = TrainingArguments(output_dir=tmp, per_device_eval_batch_size=batch, use_cpu=True, report_to=[],
                                 disable_tqdm=True, dataloader_num_workers=0)
        trainer = Trainer(model=model, args=args, data_collator=PadCollate(pad))
        t0 = time.perf_counter()
        pred = trainer.predict(data.test)
        hf_s = time.perf_counter() - t0
    hf_acc = float((torch.as_tensor(pred.predictions).argmax(-1) == data.test.labels).float().mean())
    return {"samples": res.samples, "flow_seconds": res.seconds, "flow_accuracy": res.accuracy,
            "trainer_seconds": hf_s, "trainer_accuracy": hf_acc, "batch_size": batch}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flow.labs.bench_train", description=__doc__.splitlines()[0])
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--steps", type=int, default=30, help="timed steps per measurement")
    ap.add_argument("--warmup", type=int, default=5, help="untimed steps first")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (median reported)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--eval", action="store_true", help="also time evaluation of the full test split")
    ap.add_argument("--eval-batch-size", type=int, default=256)
    ap.add_argument("--out", default=None, help="output folder (default results/bench)")
    a = ap.parse_args(argv)
    if a.threads:
        torch.set_num_threads(a.threads)
    need = (a.warmup + a.steps + 2) * a.batch_size
    data = prepare_imdb(a.max_length, seed=a.seed, train_limit=need, test_limit=None if a.eval else 16)
    flow_rates, hf_rates, optim = [], [], ""
    for r in range(a.rounds):
        order = ("flow", "trainer") if r % 2 == 0 else ("trainer", "flow")
        for which in order:
            if which == "flow":
                flow_rates.append(bench_flow(data, a.batch_size, a.steps, a.warmup, a.seed))
            else:
                rate, optim = bench_trainer(data, a.batch_size, a.steps, a.warmup, a.seed)
                hf_rates.append(rate)
        print(f"round {r + 1}: flow {flow_rates[-1]:.1f} samples/s, Trainer {hf_rates[-1]:.1f} samples/s")
    flow_med, hf_med = statistics.median(flow_rates), statistics.median(hf_rates)
    record: dict[str, Any] = {
        "task": "train_throughput", "model": "bert-tiny shape from BertConfig (scratch init, same seed for both)",
        **data.describe(), "batch_size": a.batch_size, "steps": a.steps, "warmup": a.warmup, "rounds": a.rounds,
        "threads": torch.get_num_threads(), "trainer_optimizer": optim,
        "flow_samples_per_s": flow_rates, "trainer_samples_per_s": hf_rates,
        "flow_median": flow_med, "trainer_median": hf_med, "ratio_flow_over_trainer": flow_med / hf_med,
        "meta": run_metadata(),
    }
    print(f"median: flow {flow_med:.1f} samples/s, Trainer {hf_med:.1f} samples/s, ratio {flow_med / hf_med:.3f}")
    if a.eval:
        ev = bench_eval(data, a.eval_batch_size, a.seed)
        record["eval"] = ev
        print(f"eval of {ev['samples']} test reviews: flow {ev['flow_seconds']:.1f} s, Trainer.predict "
              f"{ev['trainer_seconds']:.1f} s")
    folder = results_dir("bench") if a.out is None else a.out
    write_json(f"{folder}/train.json", record)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
