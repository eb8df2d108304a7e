"""The bulk simulation engine (sim/tb_bulk.sv) against the cocotb one (sim/tb_stream.py): the same
received outputs, mismatch counts, latency and II on small emitted designs, a corrupted reference
caught and named, and the random phase really pausing both ports."""
import json
import shutil
from pathlib import Path

import pytest
import torch
from torch import nn

import flow
from flow.emit.vectors import read_rows, read_vectors
from flow.simulation.bulk_engine import beat_bytes, build_bulk, pack_beats, pause_threshold, run_bulk, unpack_beats
from flow.simulation.simulate import simulate_design

# Odd widths on purpose: the beats (72, 42, 18 and 21 bits) are no whole number of bytes or words.
QUANT = {"default": {"data_in_width": 6, "data_in_frac_width": 3, "data_out_width": 7, "data_out_frac_width": 3}}
DESIGNS = {
    "bulk_par": None,  # fully parallel: II 1
    "bulk_fold": {"0": {"in_par": 3, "out_par": 2}, "2": {"out_par": 3}},  # folded: II 16
}
VECTORS = 40


def quiet(_: str) -> None:
    pass


@pytest.fixture(scope="module")
def emitted(tmp_path_factory) -> dict[str, Path]:
    """The two small designs, emitted once: a 12 -> 8 -> 6 MLP on random inputs."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 6)).eval()
    x = torch.randn(VECTORS, 12)
    root = tmp_path_factory.mktemp("bulk_designs")
    folders = {}
    for name, parallelism in DESIGNS.items():
        design = flow.compile(model, x[:2], quant=QUANT, parallelism=parallelism, name=name)
        design.emit(root / name, x)
        folders[name] = root / name
    return folders


def copy_design(folder: Path, tmp_path: Path) -> Path:
    target = tmp_path / folder.name
    shutil.copytree(folder, target, ignore=shutil.ignore_patterns("sim"))
    return target


def test_beats_pack_element_zero_low_and_round_trip():
    rows = [[-1, 2, -32, 31], [0, 1, -2, 3]]
    beats = pack_beats(rows, 6, 2)
    assert beats == [(2 << 6) | 0x3F, (31 << 6) | 32, 1 << 6, (3 << 6) | 62]
    assert beat_bytes(beats[:1], 12) == bytes([0x00, 0xBF])  # most significant byte first
    assert unpack_beats([format(b, "x") for b in beats], 6, 2, True) == [v for row in rows for v in row]
    assert pause_threshold(0.3) == round(0.3 * 2**32) and pause_threshold(1.0) == 2**32
    with pytest.raises(ValueError, match="probability"):
        pause_threshold(1.5)


@pytest.mark.sim
@pytest.mark.parametrize("name", list(DESIGNS))
def test_bulk_and_cocotb_engines_agree_and_meet_the_cycle_model(name, emitted, tmp_path):
    folder = copy_design(emitted[name], tmp_path)
    meta = json.loads((folder / "vectors" / "meta.json").read_text())
    reports, received = {}, {}
    for engine in ("cocotb", "bulk"):
        reports[engine] = simulate_design(folder, seed=3, log=quiet, engine=engine)
        received[engine] = (folder / "sim" / "received.txt").read_text()
    bulk, cocotb = reports["bulk"], reports["cocotb"]
    assert received["bulk"] == received["cocotb"]
    assert read_rows(folder / "sim" / "received.txt").tolist() == read_vectors(folder / "vectors").expected.tolist()
    assert set(bulk) == set(cocotb)
    for report in (bulk, cocotb):
        assert report["mismatches"] == 0 and report["first_mismatch"] is None, report["examples"]
        assert report["out_beats"] == report["expected_out_beats"] == VECTORS * meta["out_features"] // meta["out_par"]
        assert report["latency_cycles"] == meta["latency"]
        assert report["initiation_interval"] == report["initiation_interval_max"] == meta["initiation_interval"]
        assert report["hardware_correct"] == report["reference_correct"] == VECTORS
    for key in ("elements_compared", "throughput_vectors_per_cycle", "vectors"):
        assert bulk[key] == cocotb[key], key
    assert bulk["engine"] == "bulk" and cocotb["engine"] == "cocotb"
    assert bulk["vectors_per_second"] > cocotb["vectors_per_second"]


@pytest.mark.sim
@pytest.mark.parametrize("engine", ["bulk", "cocotb"])
def test_a_corrupted_reference_is_caught_and_named(engine, emitted, tmp_path):
    folder = copy_design(emitted["bulk_fold"], tmp_path)
    path = folder / "vectors" / "expected.txt"
    rows = [line.split() for line in path.read_text().splitlines()]
    original = int(rows[13][4])
    rows[13][4] = str(original + 1 if original < 63 else original - 1)  # stays a 7-bit code
    rows[20][0] = str(-int(rows[20][0]) - 1)
    path.write_text("\n".join(" ".join(row) for row in rows) + "\n")
    report = simulate_design(folder, seed=5, log=quiet, engine=engine)
    assert report["mismatches"] == 2
    assert report["first_mismatch"] == {"phase": "random", "vector": 13, "element": 4,
                                        "expected": int(rows[13][4]), "actual": original}
    assert report["out_beats"] == report["expected_out_beats"]


@pytest.mark.sim
def test_the_clean_phase_is_checked_too(emitted, tmp_path):
    folder = copy_design(emitted["bulk_par"], tmp_path)
    path = folder / "vectors" / "expected.txt"
    rows = [line.split() for line in path.read_text().splitlines()]
    actual = int(rows[2][5])
    rows[2][5] = str(actual ^ 1)
    path.write_text("\n".join(" ".join(row) for row in rows) + "\n")
    report = simulate_design(folder, log=quiet)
    assert report["mismatches"] == 2  # vector 2 runs in both phases
    assert report["first_mismatch"] == {"phase": "clean", "vector": 2, "element": 5,
                                        "expected": actual ^ 1, "actual": actual}


def bulk_run(folder: Path, tmp_path: Path, **kwargs) -> dict:
    data = read_vectors(folder / "vectors")
    sources = [folder / "rtl" / n for n in (folder / "rtl" / "filelist.f").read_text().split()]
    built = build_bulk(data.meta["top"], sources, data.meta)
    return run_bulk(built, data.meta, data.inputs.tolist(), data.expected.tolist(), tmp_path / "run", **kwargs)


@pytest.mark.sim
def test_the_random_phase_pauses_both_ports_at_the_requested_rates(emitted, tmp_path):
    folder = emitted["bulk_par"]  # II 1: every pause costs a cycle
    still = bulk_run(folder, tmp_path, gap=0.0, stall=0.0)
    paused = bulk_run(folder, tmp_path, seed=7, gap=0.3, stall=0.3)
    for results in (still, paused):
        assert results["mismatches"] == 0 and not results["timed_out"]
    assert still["gap_measured"] == still["stall_measured"] == 0.0
    # without pauses the random phase streams as the clean one: a vector every II cycles
    latency, ii = paused["latency_cycles"], paused["initiation_interval"]
    assert still["random_cycles"] == latency + (VECTORS - 1) * ii
    assert paused["random_cycles"] > latency + 1.3 * (VECTORS - 1) * ii
    other = bulk_run(folder, tmp_path, seed=8, gap=0.3, stall=0.3)
    assert other["random_cycles"] != paused["random_cycles"]  # the seed sets the pattern
    assert bulk_run(folder, tmp_path, seed=7, gap=0.3, stall=0.3)["random_cycles"] == paused["random_cycles"]
    # the rates, over the folded design's longer run (about 700 cycles: 3 sigma is 0.05)
    folded = bulk_run(emitted["bulk_fold"], tmp_path, seed=7, gap=0.3, stall=0.2)
    assert abs(folded["gap_measured"] - 0.3) < 0.05 and abs(folded["stall_measured"] - 0.2) < 0.05


@pytest.mark.sim
def test_a_stream_that_never_drains_stops_at_its_budget(emitted, tmp_path):
    results = bulk_run(emitted["bulk_par"], tmp_path, stall=1.0)  # the sink is never ready
    assert results["timed_out"]
    assert results["out_beats"] == 0
    assert results["mismatches"] == VECTORS * 6  # every element of the random phase is missing
