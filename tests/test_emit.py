"""emit-rtl end to end: two emitted variants simulated bit-exact, and the flow's refusals."""
import re
from pathlib import Path

import pytest
import torch
from torch import nn

from flow.compiler.lower import LoweringError, lower
from flow.config.load import ConfigError, load_config
from flow.design.pipeline import emit_design
from flow.emit.design_folder import MARKER
from flow.emit.vectors import read_rows
from flow.graph import capture
from flow.simulation.simulate import simulate_design

CONFIG = Path(__file__).resolve().parent.parent / "configs" / "digits_mlp.toml"


def config_for(tmp_path: Path, **overrides):
    return load_config(CONFIG, {"design.output_dir": str(tmp_path), **overrides})


def quiet(_: str) -> None:
    pass


VARIANTS = {
    "default": {},
    # fully parallel, leaky ReLU, per-layer formats (a cast is inserted), half_even + wrap
    "parallel_mixed": {
        "design.name": "parallel_mixed",
        "model.activation": "leaky_relu",
        "parallelism.default.out_par": "full",
        "parallelism.fc1.in_par": "full",
        "parallelism.fc3.out_par": "full",
        "quantization.fc2.data_in_width": 6, "quantization.fc2.data_in_frac_width": 2,
        "quantization.fc2.weight_width": 5, "quantization.fc2.weight_frac_width": 4,
        "quantization.fc2.rounding": "half_even", "quantization.fc3.overflow": "wrap",
        "quantization.fc3.data_out_width": 10,
    },
}


@pytest.mark.sim
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_emitted_design_matches_reference_bit_for_bit(variant, tmp_path):
    result = emit_design(config_for(tmp_path, **VARIANTS[variant]), str(CONFIG), log=quiet)
    report = result.report
    assert report["reference_matches_fake_quant"]
    assert report["accuracy"]["hardware_reference"] == report["accuracy"]["quantized"]
    assert report["accuracy"]["float"] >= 0.95
    kinds = [row["kind"] for row in report["stages"]]
    if variant == "parallel_mixed":
        assert kinds == ["linear", "leaky_relu", "cast", "linear", "leaky_relu", "linear"]
        assert report["cycles"]["initiation_interval"] == 1
    sim = simulate_design(result.folder, vectors=36, log=quiet)
    assert sim["mismatches"] == 0, sim["examples"]
    assert sim["out_beats"] == sim["expected_out_beats"] == 36 * 10 // result.graph.stages[-1].out_par
    assert sim["hardware_correct"] == sim["reference_correct"]
    assert sim["hardware_accuracy"] == sim["reference_accuracy"]
    assert sim["initiation_interval"] == report["cycles"]["initiation_interval"]
    assert sim["latency_cycles"] == report["cycles"]["latency_estimate"]
    files = (result.folder / "rtl" / "filelist.f").read_text().split()
    assert files[-1] == f"{report['design']}_top.sv" and "linear.sv" in files
    assert len((result.folder / "vectors" / "labels.txt").read_text().split()) == 360


class ConvNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3)
        self.fc = nn.Linear(72, 10)

    def forward(self, x):
        return self.fc(self.conv(x).flatten(1))


def test_unsupported_layer_names_node_op_module_and_the_supported_list():
    model = ConvNet().eval()
    graph = capture(model, {"x": torch.zeros(2, 1, 8, 8)}, mode="eval")
    with pytest.raises(LoweringError) as error:
        lower(graph, model)
    message = str(error.value)
    assert "aten.conv2d" in message and "node 'conv2d'" in message and "Conv2d" in message
    assert "Linear, ReLU, LeakyReLU" in message


def test_misspelt_config_key_names_the_nearest_valid_key(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown config key 'training\.epochz'.*'training\.epochs'"):
        config_for(tmp_path, **{"training.epochz": 3})
    bad = tmp_path / "bad.toml"
    bad.write_text("[quantization.default]\nweight_frac_widht = 4\n")
    with pytest.raises(ConfigError, match="weight_frac_width"):
        load_config(bad)


def test_parallelism_not_dividing_a_layer_is_refused_before_any_rtl(tmp_path):
    config = config_for(tmp_path, **{"parallelism.fc1.out_par": 5})
    with pytest.raises(ConfigError, match=r"parallelism\.fc1\.out_par=5 does not divide .* 32 .* 1, 2, 4, 8, 16, 32"):
        emit_design(config, log=quiet)
    assert list(tmp_path.iterdir()) == []  # nothing written, not even a temporary folder


def test_output_folder_with_foreign_files_is_refused_and_kept(tmp_path):
    target = tmp_path / "digits_mlp"
    target.mkdir()
    (target / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match="holds files flow did not write"):
        emit_design(config_for(tmp_path), log=quiet)
    assert (target / "notes.txt").read_text() == "mine" and not (target / MARKER).exists()


def test_failed_emit_leaves_no_half_written_folder(tmp_path, monkeypatch):
    import flow.design.write as write

    def broken(*_):
        raise RuntimeError("disk full")

    monkeypatch.setattr(write, "write_reports", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        emit_design(config_for(tmp_path), log=quiet)
    assert list(tmp_path.iterdir()) == []


def test_cli_flags_override_config_and_errors_are_one_line(tmp_path, capsys):
    from flow.cli import main

    code = main(["emit-rtl", "--config", str(CONFIG), "--design.output_dir", str(tmp_path),
                 "--parallelism.fc2.in_par", "4"])
    assert code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "parallelism.fc2.in_par=4" in err and "set it to 8" in err


@pytest.mark.parametrize("flag,value,message", [
    ("design.name", "a-b", "'a-b' is not a SystemVerilog identifier"),
    ("design.name", "../escape", "'../escape' is not a SystemVerilog identifier"),
    ("design.name", "module", "'module' is a SystemVerilog keyword"),
    ("model.hidden", "[0]", r"model\.hidden must be a list of positive integers, e\.g\. 32,16"),
    ("model.hidden", "x", r"model\.hidden must be a list of positive integers.*got 'x'"),
    ("training.epochs", "-1", r"training\.epochs must be at least 1"),
    ("training.qat_epochs", "-2", r"training\.qat_epochs must be at least 0"),
    ("training.lr", "0", r"training\.lr must be a positive number"),
])
def test_bad_values_are_refused_in_one_line_before_any_work(flag, value, message, tmp_path, capsys):
    from flow.cli import main

    assert main(["emit-rtl", "--design.output_dir", str(tmp_path), f"--{flag}", value]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert re.search(message, err), err
    assert list(tmp_path.iterdir()) == [] and not (tmp_path.parent / "escape").exists()


def test_hidden_sizes_parse_as_a_list_literal():
    assert load_config(None, {"model.hidden": "[24, 12]"}).model.hidden == (24, 12)
    assert load_config(None, {"model.hidden": "24,12"}).model.hidden == (24, 12)


@pytest.mark.parametrize("body,shown", [
    ("assign nothing = ;", "%Error: "),  # a syntax error
    ("assign nothing = clk;", "%Warning-IMPLICIT"),  # a warning Verilator makes fatal
])
def test_a_failing_verilator_build_names_its_first_error_and_log(body, shown, tmp_path):
    from flow.simulation.verilator import build

    bad = tmp_path / "broken.sv"
    bad.write_text(f"module broken(input logic clk);\n  {body}\nendmodule\n")
    with pytest.raises(RuntimeError) as error:
        build("broken", [bad], build_root=tmp_path / "build")
    message = str(error.value)
    assert "\n" not in message and shown in message and "broken.sv:2" in message
    log = message.rsplit("full log: ", 1)[1].rstrip(")")
    assert Path(log).exists()


def test_a_failing_yosys_run_names_its_first_error_and_log(tmp_path):
    from flow.estimate.yosys import YosysError, run_yosys

    bad = tmp_path / "broken.sv"
    bad.write_text("module broken(input logic clk);\n  assign nothing = ;\nendmodule\n")
    with pytest.raises(YosysError) as error:
        run_yosys([f"read_verilog -sv {bad}"], timeout=60)
    message = str(error.value)
    assert "\n" not in message and "ERROR" in message and "full log: " in message
    assert Path(message.rsplit("full log: ", 1)[1].rstrip(")")).exists()


def test_compile_is_in_memory_and_emits_what_it_computes(tmp_path):
    import flow

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3))
    x = torch.randn(20, 6)
    design = flow.compile(model, x[:2], quant={"data_in_width": 6, "data_in_frac_width": 3,
                                               "data_out_signed": False, "data_out_frac_width": 3},
                          parallelism={"default": {"out_par": 1}}, name="tiny")
    assert list(tmp_path.iterdir()) == []  # nothing written until emit
    # fc1 takes its 6 inputs at once (in_par auto = full) and sends 5 beats; fc2 follows with in_par 1.
    # Stages: fc1 (II 5), a cast (fc1 sends u8.3, fc2 reads s6.3), fc2 (II 15). The ReLU reads
    # unsigned codes, so it is the identity and gets no stage.
    assert [type(s).__name__ for s in design.graph.stages] == ["LinearStage", "CastStage", "LinearStage"]
    assert list(design.graph.elided) == ["1"] and "identity" in design.graph.elided["1"]
    assert (design.initiation_interval, design.latency) == (5 * 3, (5 + 2) + 1 + (15 + 2))
    codes = design.quantize_inputs(x)
    assert codes.dtype == torch.int64 and int(codes.max()) <= 31 and int(codes.min()) >= -32
    reference = design.reference(codes)
    with torch.no_grad():
        fake = design.fake_quant_model()(x)
    assert torch.equal(fake, reference.float() * 2.0 ** -3)
    report = design.emit(tmp_path / "tiny", x)
    assert report["labels"].startswith("the exact reference's argmax")
    assert report["accuracy"]["hardware_reference"] == 1.0
    assert torch.equal(read_rows(tmp_path / "tiny" / "vectors" / "expected.txt"), reference)


def test_compile_refuses_misspelt_tables_with_the_nearest_key():
    import flow

    with pytest.raises(ConfigError, match=r"did you mean 'quantization\.default\.weight_width'"):
        flow.compile(nn.Sequential(nn.Linear(2, 2)), torch.zeros(1, 2), quant={"default": {"weight_widht": 4}})


def test_weights_beyond_verilators_literal_limit_are_emitted_as_a_concatenation(tmp_path):
    """81,920 weight bits: one literal would stop Verilator ('Width of number exceeds
    implementation limit'); chunks of at most 16,384 bits lint clean and read back exactly."""
    import subprocess

    import flow
    from flow.circuits.packing import CHUNK_BITS
    from flow.simulation.rtl_model import RtlModel, read_package
    from flow.toolchain import setup_verilator

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(40, 128), nn.ReLU(), nn.Linear(128, 4)).eval()
    design = flow.compile(model, torch.zeros(2, 40), quant={"weight_width": 16, "weight_frac_width": 12},
                          name="wide")
    x = torch.randn(6, 40)
    design.emit(tmp_path / "wide", x)
    rtl = tmp_path / "wide" / "rtl"
    package = (rtl / "wide_weights_pkg.sv").read_text()
    literals = re.findall(r"(\d+)'h", package)
    assert max(map(int, literals)) == CHUNK_BITS and literals.count(str(CHUNK_BITS)) == 5  # 81,920 = 5 chunks
    weights = design.graph.linear_stages[0].layer.weight_codes().flatten().tolist()
    constants = read_package(package)
    assert set(constants) == {"L0_WEIGHTS", "L0_BIAS", "L2_WEIGHTS", "L2_BIAS"}  # Sequential's "0": not an identifier
    assert constants["L0_WEIGHTS"] & 0xFFFF == weights[0] & 0xFFFF
    assert constants["L0_WEIGHTS"] >> (16 * (len(weights) - 1)) == weights[-1] & 0xFFFF
    setup_verilator()
    files = [str(rtl / name) for name in (rtl / "filelist.f").read_text().split()]
    result = subprocess.run(["verilator", "--lint-only", "--top-module", "wide_top", *files],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[:2000]
    codes = design.quantize_inputs(x)
    assert [RtlModel(rtl, "wide_top")(row) for row in codes.tolist()] == design.reference(codes).tolist()


@pytest.mark.sim
def test_folded_weights_live_in_rom_files_read_wherever_the_folder_goes(tmp_path, monkeypatch):
    """A folded layer's weights are a hex ROM file next to the RTL (one word a step), not a package
    literal; the folder simulates bit-exact after a move, from another working directory, on the
    cached build (the file is read at run time); Yosys finds the file next to the sources; the RTL
    model reads the same file."""
    import shutil

    import flow
    from flow.estimate.yosys import read_commands, run_yosys
    from flow.ops.linear import weight_words
    from flow.simulation.rtl_model import RtlModel, read_memory, read_package

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 6), nn.ReLU(), nn.Linear(6, 4)).eval()
    x = torch.randn(24, 12)
    # 0: 3 beats x 4 groups; 2: 4 beats x 1 group; 4: fully parallel (its WEIGHTS stay a parameter)
    design = flow.compile(model, x[:2], quant={"data_in_width": 6, "data_in_frac_width": 3},
                          parallelism={"0": {"in_par": 4, "out_par": 2}, "2": {"out_par": 6},
                                       "4": {"out_par": 4}}, name="roms")
    stages = design.graph.linear_stages
    assert [(s.in_par, s.out_par) for s in stages] == [(4, 2), (2, 6), (6, 4)]
    folder = tmp_path / "first" / "roms"
    design.emit(folder, x)
    rtl = folder / "rtl"
    assert sorted(p.name for p in rtl.glob("*.hex")) == ["roms_0_weights.hex", "roms_2_weights.hex"]
    assert not any(name.endswith(".hex") for name in (rtl / "filelist.f").read_text().split())
    assert set(read_package((rtl / "roms_weights_pkg.sv").read_text())) == {"L0_BIAS", "L2_BIAS", "L4_WEIGHTS",
                                                                            "L4_BIAS"}
    top = (rtl / "roms_top.sv").read_text()
    assert '.WEIGHTS_FILE("roms_0_weights.hex")' in top and '.WEIGHTS_FILE("roms_2_weights.hex")' in top
    for stage, name in zip(stages[:2], ["roms_0_weights.hex", "roms_2_weights.hex"]):
        lines = (rtl / name).read_text().splitlines()
        bits = stage.in_par * stage.out_par * stage.layer.config.weight.width
        assert len(lines) == stage.initiation_interval  # one word per step
        assert {len(line) for line in lines} == {(bits + 3) // 4}
        words = weight_words(stage.layer, stage.in_par, stage.out_par)
        assert read_memory(rtl / name, len(words), bits) == words
    first = simulate_design(folder, log=quiet)
    assert first["mismatches"] == 0, first["examples"]

    moved = tmp_path / "second" / "roms"
    moved.parent.mkdir()
    shutil.move(folder, moved)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    again = simulate_design(moved, log=quiet)
    assert again["build_cached"]  # the same binary, now reading the moved files
    assert again["mismatches"] == 0 and again["out_beats"] == again["expected_out_beats"], again["examples"]
    assert again["initiation_interval"] == design.initiation_interval
    assert again["latency_cycles"] == design.latency
    codes = design.quantize_inputs(x)
    assert [RtlModel(moved / "rtl", "roms_top")(row) for row in codes.tolist()] == design.reference(codes).tolist()
    files = [moved / "rtl" / name for name in (moved / "rtl" / "filelist.f").read_text().split()]
    assert "Top module:  \\roms_top" in run_yosys(read_commands(files, "roms_top"), timeout=120)
    (moved / "rtl" / "roms_2_weights.hex").unlink()
    with pytest.raises(RuntimeError, match="cannot open WEIGHTS_FILE .*roms_2_weights.hex"):
        simulate_design(moved, log=quiet)
