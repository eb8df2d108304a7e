"""Models and data from the user: entry points, checkpoints, scikit-learn sets and .npz files,
and the one-line refusals when one of them is wrong."""
import filecmp
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import flow
from flow.cli import main
from flow.config.load import load_config
from flow.data.tabular import load_split
from flow.design.train import fit
from flow.models.mlp import build_mlp

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "digits_mlp.toml"


def one_line_error(capsys, *argv: str) -> str:
    assert main(list(argv)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return err


def test_checkpoint_round_trip_emits_the_same_bytes_as_compiling_the_module(tmp_path, capsys):
    data = load_split("digits")
    torch.manual_seed(0)
    model = build_mlp(64, [32, 16], 10)
    fit(model, data, epochs=3, lr=0.002, batch_size=16, seed=0)
    checkpoint = tmp_path / "digits.pt"
    torch.save(model.state_dict(), checkpoint)

    tables = load_config(CONFIG).to_dict()  # flow.compile takes the TOML's tables as dicts
    design = flow.compile(model, data.x_test[:2], quant=tables["quantization"],
                          parallelism=tables["parallelism"], name="roundtrip")
    design.emit(tmp_path / "direct" / "roundtrip", data.x_test, data.y_test)

    assert main(["emit-rtl", "--config", str(CONFIG), "--model.checkpoint", str(checkpoint),
                 "--design.name", "roundtrip", "--design.output_dir", str(tmp_path / "cli")]) == 0
    assert "not trained" in capsys.readouterr().out
    for sub in ("rtl", "vectors"):
        left, right = tmp_path / "direct" / "roundtrip" / sub, tmp_path / "cli" / "roundtrip" / sub
        names = sorted(p.name for p in left.iterdir())
        assert names == sorted(p.name for p in right.iterdir()) and names
        match, mismatch, errors = filecmp.cmpfiles(left, right, names, shallow=False)
        assert mismatch == [] and errors == [] and len(match) == len(names)


def test_safetensors_checkpoint_loads_like_a_state_dict(tmp_path):
    from safetensors.torch import save_file

    from flow.models.loading import load_checkpoint

    source = build_mlp(4, [3], 2)
    save_file(source.state_dict(), tmp_path / "w.safetensors")
    loaded = load_checkpoint(build_mlp(4, [3], 2), tmp_path / "w.safetensors")
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), loaded.state_dict().values()))


def test_entry_point_model_on_a_scikit_learn_set(tmp_path, monkeypatch, capsys):
    (tmp_path / "wine_model.py").write_text(
        "from torch import nn\n\n"
        "def build():\n"
        "    return nn.Sequential(nn.Linear(13, 8), nn.ReLU(), nn.Linear(8, 3))\n")
    monkeypatch.chdir(tmp_path)
    assert main(["emit-rtl", "--model.entry_point", "wine_model:build", "--dataset.name", "wine",
                 "--training.epochs", "30", "--design.name", "wine", "--design.output_dir", str(tmp_path / "out")]) == 0
    report = json.loads((tmp_path / "out" / "wine" / "report.json").read_text())
    assert report["config"]["model"]["entry_point"] == "wine_model:build"
    assert [s["name"] for s in report["stages"]] == ["0", "1", "2"]  # the user's own module names
    assert report["stages"][-1]["features"] == [8, 3] and report["accuracy"]["float"] > 0.8
    vectors = tmp_path / "out" / "wine" / "vectors" / "inputs.txt"
    assert len(vectors.read_text().splitlines()[0].split()) == 13  # wine has 13 features


def test_npz_data_sets_the_sizes(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(60, 5)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64) + (x[:, 1] > 1)
    np.savez(tmp_path / "d.npz", x_train=x[:40], y_train=y[:40], x_test=x[40:], y_test=y[40:])
    split = load_split("npz", str(tmp_path / "d.npz"))
    assert (split.in_features, len(split.y_test)) == (5, 20)
    assert split.classes == int(y.max()) + 1


@pytest.mark.parametrize("case", ["entry_import", "entry_missing_function", "checkpoint_keys", "npz_missing",
                                  "unknown_dataset", "not_a_state_dict"])
def test_bad_models_and_data_are_one_line_errors(case, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = ["emit-rtl", "--design.output_dir", str(tmp_path / "out"), "--training.epochs", "1"]
    if case == "entry_import":
        err = one_line_error(capsys, *base, "--model.entry_point", "no_such_pkg.models:build")
        assert "cannot import no_such_pkg.models" in err and "PYTHONPATH" in err
    elif case == "entry_missing_function":
        (tmp_path / "mine.py").write_text("x = 1\n")
        err = one_line_error(capsys, *base, "--model.entry_point", "mine:build")
        assert "mine has no function 'build'" in err
    elif case == "checkpoint_keys":
        torch.save(build_mlp(64, [8], 10).state_dict(), tmp_path / "small.pt")  # hidden 8, config says 32,16
        err = one_line_error(capsys, *base, "--model.checkpoint", str(tmp_path / "small.pt"))
        assert "does not match the model" in err and "missing fc3.weight" in err and "shape fc1.weight (8, 64)" in err
    elif case == "npz_missing":
        np.savez(tmp_path / "d.npz", x_train=np.zeros((4, 2)), y_train=np.zeros(4, dtype=np.int64))
        err = one_line_error(capsys, *base, "--dataset.name", "npz", "--dataset.path", str(tmp_path / "d.npz"))
        assert "lacks x_test, y_test" in err and "np.savez" in err
    elif case == "unknown_dataset":
        err = one_line_error(capsys, *base, "--dataset.name", "mnist")
        assert "'mnist' is unknown" in err and "breast_cancer" in err
    else:
        torch.save({"model": build_mlp(2, [2], 2)}, tmp_path / "pickled.pt")  # a pickled module, not tensors
        err = one_line_error(capsys, *base, "--model.checkpoint", str(tmp_path / "pickled.pt"))
        assert "can load safely" in err or "not a state_dict" in err
    assert not (tmp_path / "out").exists()


class ResidualConcatNet(nn.Module):
    """fc_out(cat([h + relu(fc_res(h)), x])) with h = relu(fc_in(x)): a residual add, then a concat."""

    def __init__(self) -> None:
        super().__init__()
        self.fc_in, self.fc_res, self.fc_out = nn.Linear(6, 8), nn.Linear(8, 8), nn.Linear(14, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc_in(x))
        return self.fc_out(torch.cat([h + torch.relu(self.fc_res(h)), x], dim=-1))


@pytest.mark.sim
def test_a_fully_parallel_residual_concat_model_keeps_ii_1_with_shift_add_on_every_layer(tmp_path):
    """Both inputs of the concat are one beat a vector, so it is a lockstep join (one beat of
    8 + 6 elements): fc_out reads it fully parallel and is shift-add too, and the design keeps II 1."""
    from flow.compiler.hardware_graph import ConcatStage
    from flow.emit.rtl import component_of
    from flow.simulation.bulk_engine import CLEAN_VECTORS
    from flow.simulation.rtl_model import RtlModel, RtlModelError
    from tests.fuzz.check import model_check

    torch.manual_seed(0)
    model = ResidualConcatNet().eval()
    design = flow.compile(model, torch.zeros(2, 6), name="rescat",
                          quant={"default": dict(data_in_width=8, data_in_frac_width=4),
                                 "cat": dict(data_out_width=7, data_out_frac_width=3, rounding="half_even")},
                          parallelism={"default": {"multiplier": "auto"}, "fc_res": {"pipeline_every": 2}})
    graph = design.graph
    assert [s.name for s in graph.linear_stages] == ["fc_in", "fc_res", "fc_out"]
    assert all(s.constant is not None for s in graph.linear_stages)  # every Linear is shift-add
    assert graph.linear_stages[-1].in_par == 14
    (cat,) = [s for s in graph.stages if isinstance(s, ConcatStage)]
    assert cat.lockstep and (cat.in_par, cat.out_par, cat.initiation_interval, cat.latency) == (8, 14, 1, 1)
    assert component_of(cat) == "concat_lockstep"
    assert design.initiation_interval == 1

    x = (torch.rand(300, 6) * 2 - 1) * 10  # s8.4 holds [-8, 7.9375]: many inputs saturate
    x[0], x[1] = 7.9375, -8.0  # every input element at its largest and smallest code
    codes = design.quantize_inputs(x)
    assert int(codes.max()) == 127 and int(codes.min()) == -128
    folder = tmp_path / "rescat"
    report = design.emit(folder, x)
    assert "concat_lockstep.sv" in (folder / "rtl" / "filelist.f").read_text().split()
    assert "concat.sv" not in (folder / "rtl" / "filelist.f").read_text().split()
    sim = design.simulate(folder)
    assert sim["mismatches"] == 0, sim["examples"]
    # every vector of the random phase and the first CLEAN_VECTORS again in the clean (timing) phase
    assert sim["elements_compared"] == (300 + CLEAN_VECTORS) * 3
    assert sim["out_beats"] == sim["expected_out_beats"] == 300
    assert sim["hardware_accuracy"] == sim["reference_accuracy"] == 1.0
    assert (sim["initiation_interval"], sim["initiation_interval_max"], sim["latency_cycles"]) == (
        1, 1, design.latency)
    assert report["cycles"]["initiation_interval"] == 1
    assert model_check(folder) == {"model_vs_reference": 0, "model_vs_rtl": 0, "reference_vs_rtl": 0}
    top = folder / "rtl" / "rescat_top.sv"  # the RTL model reads the concat's own parameters
    assert top.read_text().count(".A_ELEMENTS(8)") == 1
    top.write_text(top.read_text().replace(".A_ELEMENTS(8)", ".A_ELEMENTS(7)"))
    with pytest.raises(RtlModelError, match=r"concat_lockstep takes 7 \+ 6 elements, the streams carry 8 \+ 6"):
        RtlModel(folder / "rtl", "rescat_top")(codes[0].tolist())
