"""The user examples under examples/ run as a user would run them (small versions)."""
import importlib.util
import json
from pathlib import Path

import pytest

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.mark.sim
def test_residual_mlp_example_is_bit_exact_with_the_cycle_model(tmp_path, capsys):
    example = load_example("residual_mlp")
    out = tmp_path / "residual"
    status = example.main(["--hidden", "8", "--epochs", "5", "--par", "2", "--vectors", "30", "--out", str(out)])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert printed.count("PASS") == 4 and "FAIL" not in printed
    sim = json.loads((out / "sim" / "sim_report.json").read_text())
    report = json.loads((out / "report.json").read_text())
    assert sim["vectors"] == 30 and sim["mismatches"] == 0 and sim["elements_compared"] == 30 * 2 + 8 * 2  # the random phase, and 8 clean vectors
    kinds = [row["kind"] for row in report["stages"]]
    assert kinds == ["linear", "relu", "fork", "linear", "relu", "fifo", "add", "linear"]
    assert sim["latency_cycles"] == report["cycles"]["latency_estimate"]
    assert sim["initiation_interval"] == report["cycles"]["initiation_interval"] == 16  # fc_res: 4 beats x 4 groups
