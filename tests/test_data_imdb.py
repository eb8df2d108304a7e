"""IMDb loading: local folders, env var, the hub fallback and its one-line errors, the validation split."""

import gzip
import json

import pytest

from flow.data import imdb
from flow.data.imdb import TextSplit, load_imdb, load_local, train_val_split


def write_imdb(folder, n=20, files=("train.jsonl.gz", "test.jsonl.gz")):
    folder.mkdir(parents=True, exist_ok=True)
    for name in files:
        with gzip.open(folder / name, "wt", encoding="utf-8") as fh:
            for i in range(n):  # all negatives first, like the real files
                fh.write(json.dumps({"text": f"review {name} {i} <br />fine", "label": int(i >= n // 2)}) + "\n")
    return folder


def test_local_folder_loads_both_splits(tmp_path):
    d = load_local(write_imdb(tmp_path / "imdb"))
    assert len(d.train) == 20 and len(d.test) == 20 and sum(d.train.labels) == 10
    assert d.source == str(tmp_path / "imdb")


def test_env_var_selects_the_folder(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOW_IMDB_DIR", str(write_imdb(tmp_path / "x", n=6)))
    d = load_imdb()
    assert len(d.train) == 6 and d.source == str(tmp_path / "x")


def test_missing_folder_is_one_line_error_naming_flag_and_env(tmp_path):
    with pytest.raises(FileNotFoundError) as exc:
        load_imdb(source="local", path=tmp_path / "nope")
    msg = str(exc.value)
    assert "\n" not in msg and "--imdb-dir" in msg and "FLOW_IMDB_DIR" in msg and "does not exist" in msg


def test_folder_without_the_files_names_them(tmp_path):
    folder = write_imdb(tmp_path / "half", files=("train.jsonl.gz",))
    with pytest.raises(FileNotFoundError) as exc:
        load_local(folder)
    msg = str(exc.value)
    assert "\n" not in msg and "lacks test.jsonl.gz" in msg and "train.jsonl.gz and test.jsonl.gz" in msg


def test_no_hub_and_no_local_copy_names_both_options(tmp_path, monkeypatch):
    monkeypatch.setenv("FLOW_OFFLINE", "1")
    monkeypatch.delenv("FLOW_IMDB_DIR", raising=False)
    monkeypatch.setattr(imdb, "DEFAULT_LOCAL", tmp_path / "absent")
    with pytest.raises(FileNotFoundError) as exc:
        load_imdb()
    msg = str(exc.value)
    assert "\n" not in msg
    assert "hub" in msg and "FLOW_OFFLINE is set" in msg and "--imdb-dir" in msg and "FLOW_IMDB_DIR" in msg


def test_hub_only_fails_fast_when_offline(monkeypatch):
    monkeypatch.setenv("FLOW_OFFLINE", "1")
    with pytest.raises(RuntimeError, match="hub failed: FLOW_OFFLINE is set.*FLOW_IMDB_DIR"):
        load_imdb(source="hub")


def test_malformed_record_is_reported_with_line(tmp_path):
    folder = write_imdb(tmp_path / "bad")
    with gzip.open(folder / "test.jsonl.gz", "wt") as fh:
        fh.write('{"text": "ok", "label": 1}\n{"txt": "no label"}\n')
    with pytest.raises(ValueError, match=r"test.jsonl.gz:2: not a review record"):
        load_local(folder)


def test_validation_split_is_stratified_disjoint_and_seeded():
    split = TextSplit([f"t{i}" for i in range(100)], [0] * 50 + [1] * 50)
    tr, va = train_val_split(split, 0.2, seed=1)
    assert len(tr) == 80 and len(va) == 20 and sum(va.labels) == 10
    assert not set(tr.texts) & set(va.texts)
    assert tr.labels[:10] != [0] * 10 or tr.labels[-10:] != [1] * 10  # shuffled, not class-sorted
    assert train_val_split(split, 0.2, seed=1)[1].texts == va.texts
    assert train_val_split(split, 0.2, seed=2)[1].texts != va.texts
    with pytest.raises(ValueError, match="between 0 and 1"):
        train_val_split(split, 1.0)


def test_subset_is_seeded_sample():
    split = TextSplit([str(i) for i in range(50)], [0] * 25 + [1] * 25)
    a = split.subset(10, seed=3)
    assert len(a) == 10 and a.texts == split.subset(10, seed=3).texts and 0 < sum(a.labels) < 10
