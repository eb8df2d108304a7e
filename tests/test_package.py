"""flow installs whole: layering contracts hold, and a wheel installed outside the checkout
emits and simulates the default design with nothing from the repository."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def test_import_layers_hold():
    result = subprocess.run([str(BIN / "lint-imports")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "Contracts: 5 kept, 0 broken." in result.stdout


def test_library_links_point_at_the_checkout_folders():
    from flow.toolchain import rtl_dir, testbench_dir

    assert rtl_dir().resolve() == (REPO / "hw" / "rtl").resolve()
    assert testbench_dir().resolve() == (REPO / "sim").resolve()
    assert (testbench_dir() / "tb_stream.py").is_file() and (rtl_dir() / "linear.sv").is_file()


@pytest.mark.sim
def test_installed_wheel_emits_and_simulates_outside_the_checkout(tmp_path):
    wheel_dir, site, work, source = tmp_path / "wheel", tmp_path / "site", tmp_path / "work", tmp_path / "src"
    # build from a copy: setuptools writes build/ folders beside the sources
    shutil.copytree(REPO, source, symlinks=True, ignore=shutil.ignore_patterns(
        ".venv", ".git", "build", ".cache", "results", "gen", "*.egg-info", "__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
                    str(source), "-w", str(wheel_dir)], check=True, capture_output=True, cwd=tmp_path)
    (wheel,) = wheel_dir.glob("flow-*.whl")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
                   check=True, capture_output=True)
    work.mkdir()
    # the wheel's flow shadows the editable checkout; the dependencies come from this environment
    env = {**os.environ, "PYTHONPATH": str(site), "FLOW_CACHE_DIR": str(work / "cache")}
    for variable in ("FLOW_RTL_DIR", "FLOW_BUILD_DIR", "FLOW_RESULTS_DIR"):
        env.pop(variable, None)  # defaults must resolve beside the user's work

    def flow(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "flow.cli", *args], cwd=work, env=env,
                              capture_output=True, text=True, timeout=600)

    where = subprocess.run([sys.executable, "-c", "import flow; print(flow.__file__)"], cwd=work, env=env,
                           capture_output=True, text=True).stdout.strip()
    assert where.startswith(str(site)), where
    emitted = flow("emit-rtl", "--training.epochs", "20", "--design.name", "installed")
    assert emitted.returncode == 0, emitted.stderr[-2000:]
    design = work / "hw" / "gen" / "installed"
    assert (design / "rtl" / "linear.sv").is_file()
    simulated = flow("sim", str(design), "--vectors", "40")
    assert simulated.returncode == 0, simulated.stdout[-2000:] + simulated.stderr[-2000:]
    report = json.loads((design / "sim" / "sim_report.json").read_text())
    assert report["mismatches"] == 0 and report["vectors"] == 40
    assert report["hardware_accuracy"] == report["reference_accuracy"]
    assert (work / "build" / "sim").is_dir()  # the build cache lives beside the user's work, not in site-packages
    estimated = subprocess.run([sys.executable, "-c", "from flow.estimate.model import Calibration; "
                                "print(len(Calibration.load().coefficients))"], cwd=work, env=env,
                               capture_output=True, text=True)
    assert estimated.returncode == 0 and int(estimated.stdout) >= 5, estimated.stderr  # the calibration ships


def test_results_json_names_paths_relative_to_the_checkout(tmp_path):
    import json

    from flow.labs.common import write_json
    from flow.paths import REPO_ROOT

    shared = REPO_ROOT.parent / "shared" / "data" / "imdb"
    path = write_json(tmp_path / "r.json", {"storage": str(REPO_ROOT / "results" / "lab2" / "studies.db"),
                                            "data": [f"4 reviews ({shared}), length 64"], "n": 3})
    assert json.loads(path.read_text()) == {"storage": "results/lab2/studies.db",
                                            "data": ["4 reviews (../shared/data/imdb), length 64"], "n": 3}
