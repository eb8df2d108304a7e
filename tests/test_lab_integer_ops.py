"""The integer-ops accuracy run on the smoke preset: float, then the integer ops before and after
fine-tuning for both variants, stored point by point, resumed, plotted."""
import json

import pytest
import torch

from flow.labs import integer_ops
from tests.test_lab1 import write_reviews


@pytest.fixture(scope="module")
def smoke(tmp_path_factory):
    root = tmp_path_factory.mktemp("integer_ops")
    write_reviews(root / "imdb", 300, seed=1)
    torch.set_num_threads(1)
    record = integer_ops.run("smoke", out=root / "out", imdb_dir=str(root / "imdb"), progress=False, log=lambda _: None)
    return root, record


def test_every_variant_and_stage_is_measured_and_stored(smoke):
    root, record = smoke
    keys = [(p["variant"], p["stage"]) for p in record["points"]]
    assert keys == sorted([("float", "float")] + [(v, s) for v in integer_ops.VARIANTS for s in integer_ops.STAGES])
    assert all(0.0 <= p["test"] <= 1.0 and 0.0 <= p["val"] <= 1.0 for p in record["points"])
    assert record["seeds"] == [0] and record["integer_ops"]["softmax_in"] == "fixed<s16.8>"
    assert json.loads((root / "out" / "qat_smoke.json").read_text())["points"] == record["points"]
    assert (root / "out" / "qat_smoke.png").stat().st_size > 10_000


def test_a_rerun_measures_nothing_again(smoke, monkeypatch):
    root, record = smoke
    monkeypatch.setattr(integer_ops.Lab1, "finetune", lambda *a: pytest.fail("a stored point was measured again"))
    again = integer_ops.run("smoke", out=root / "out", imdb_dir=str(root / "imdb"), progress=False, log=lambda _: None)
    assert again["points"] == record["points"]
