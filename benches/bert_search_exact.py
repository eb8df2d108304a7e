"""Check one trial of bert-tiny's hardware search: its fake-quant model (what the search scores) against
the exact integer reference (what the RTL computes) on the first N of the search's validation reviews.

`python -m benches.bert_search_exact --trial 6 --reviews 16` writes results/bert_rtl/hw_search/exact_check.json
(the reference at 128 tokens takes about 10 s a review on one core).
"""
from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import optuna
import torch

from flow.labs.bert_search import BertHwSearch


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trial", type=int, required=True)
    ap.add_argument("--reviews", type=int, default=16)
    ap.add_argument("--storage", default="results/bert_rtl/hw_search/studies.db")
    ap.add_argument("--out", default="results/bert_rtl/hw_search/exact_check.json")
    a = ap.parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.load_study(study_name="hw-bert_tiny-seed0", storage=f"sqlite:///{a.storage}")
    trial = study.trials[a.trial]
    search = BertHwSearch.from_bert_config("configs/bert_tiny.toml", a.reviews, log=lambda _: None)
    start = time.perf_counter()
    design = search.build(search.suggest(optuna.trial.FixedTrial(trial.params)))
    x, y = search.val
    with torch.no_grad():
        fake = design.fake_quant_model()(x)
    exact = design.reference(design.quantize_inputs(x))
    equal = int((fake == design.graph.last.out_format.dequantize(exact)).all(dim=1).sum())
    record = {"check": "fake-quant model against the exact integer reference (the RTL's), one trial of the study",
              "command": f"python -m benches.bert_search_exact --trial {a.trial} --reviews {a.reviews}",
              "trial": trial.number, "reviews": len(y), "equal_code_for_code": equal,
              "fake_acc": float((fake.argmax(1) == y).float().mean()),
              "exact_acc": float((exact.argmax(1) == y).float().mean()),
              "seconds": round(time.perf_counter() - start, 1)}
    Path(a.out).write_text(json.dumps(record, indent=2) + "\n")
    print(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
