"""The typed design config: parsing at the edge, defaults, one-line errors, and ``to_dict`` giving
back the untyped config exactly (report.json and the float checkpoint's cache key depend on it)."""
from __future__ import annotations

import copy
import dataclasses
import json
import tomllib
from pathlib import Path

import pytest

from flow.config.load import (
    DEFAULTS,
    LAYER_PAR_DEFAULTS,
    LAYER_QUANT_DEFAULTS,
    ConfigError,
    hardware_config,
    load_config,
    parse_design_config,
    split_key,
)
from flow.config.schema import DesignConfig, LayerQuant, QuantizationConfig
from flow.formats.base import Overflow, Rounding
from flow.ops import LayerParallelism

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = sorted((ROOT / "configs").glob("*.toml"))
DIGITS = ROOT / "configs" / "digits_mlp.toml"


def _merged(base: dict, update: dict) -> dict:
    """The untyped config as load_config built it before it was typed: the TOML's tables merged
    into a copy of the defaults, new keys (per-layer tables) appended in the order written."""
    for key, value in update.items():
        if isinstance(value, dict):
            _merged(base.setdefault(key, {}), value)
        else:
            base[key] = value
    return base


def test_the_defaults_are_the_dataclasses_defaults():
    config = load_config()
    assert config == DesignConfig()
    assert config.model.hidden == (32, 16) and config.training.lr == 0.002 and config.estimate.timeout == 900
    assert config.quantization.by == "name" and config.quantization.layers == {}
    assert config.quantization.default == LayerQuant() and config.quantization.default.data_in_frac_width == 4
    assert config.parallelism.default == LayerParallelism("auto", "full", "dsp", 0)
    assert DEFAULTS == DesignConfig().to_dict()
    assert list(DEFAULTS) == ["design", "model", "dataset", "training", "quantization", "parallelism", "estimate", "bert"]
    assert DEFAULTS["model"]["hidden"] == [32, 16]  # the schema's list, as the TOML writes it
    assert list(LAYER_QUANT_DEFAULTS)[:4] == ["name", "data_in_width", "data_in_frac_width", "data_in_signed"]
    assert LAYER_PAR_DEFAULTS == {"in_par": "auto", "out_par": "full", "multiplier": "dsp", "pipeline_every": 0}


def test_the_digits_config_parses_into_typed_sections():
    config = load_config(DIGITS)
    assert config.design.folder == Path("hw/gen/digits_mlp")
    assert config.dataset.name == "digits" and config.dataset.test_fraction == 0.2
    quant = config.quantization
    assert quant.default.data_in_frac_width == 3 and quant.default.data_out_frac_width == 3
    assert list(quant.layers) == ["fc1"] and quant.written == {"fc1": ("data_in_frac_width",)}
    assert quant.for_layer("fc1", "linear") == dataclasses.replace(quant.default, data_in_frac_width=4)
    assert quant.for_layer("fc2", "linear") is quant.default
    par = config.parallelism
    assert par.default.out_par == 8 and par.table("fc1").in_par == 16 and par.table("fc1").out_par == 8
    assert par.table("fc3") == LayerParallelism("auto", 10, "dsp", 0) and par.table("fc2") is par.default
    linear = quant.for_layer("fc1", "linear").linear_config("quantization.fc1")
    assert (linear.data_in.width, linear.data_in.frac, linear.weight.frac) == (8, 4, 6)
    assert (linear.rounding, linear.overflow) == (Rounding.HALF_UP, Overflow.SATURATE)


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_to_dict_is_the_untyped_config_key_for_key_and_in_order(path):
    expected = _merged(copy.deepcopy(DEFAULTS), tomllib.loads(path.read_text()))
    config = load_config(path)
    assert config.to_dict() == expected
    assert json.dumps(config.to_dict()) == json.dumps(expected)  # report.json's bytes: the same key order
    assert parse_design_config(tomllib.loads(path.read_text())) == config


def test_the_training_hash_is_the_untyped_configs():
    """The float checkpoints cached before the config was typed stay valid: same keys."""
    assert load_config(DIGITS).training_hash() == "e6f0d4c212d8" == load_config().training_hash()
    flags = {"model.hidden": "24,12", "training.lr": 1, "quantization.fc1.weight_width": "6"}
    assert load_config(DIGITS, flags).training_hash() == "05d77ebdbbf2"
    assert load_config(DIGITS, {"parallelism.fc1.in_par": 4}).training_hash() == "e6f0d4c212d8"  # hardware only


def test_command_line_values_are_coerced_and_layer_tables_keep_their_order():
    config = load_config(DIGITS, {"training.epochs": "5", "training.lr": "1", "estimate.resources": "TRUE",
                                  "quantization.fc1.weight_width": "6", "quantization.fc1.data_in_width": 9,
                                  "parallelism.fc2.in_par": "8", "parallelism.fc2.pipeline_every": "2"})
    assert config.training.epochs == 5 and config.training.lr == 1.0 and isinstance(config.training.lr, float)
    assert config.estimate.resources is True
    fc1 = config.quantization.layers["fc1"]
    assert (fc1.data_in_width, fc1.data_in_frac_width, fc1.weight_width, fc1.weight_frac_width) == (9, 4, 6, 6)
    assert list(config.to_dict()["quantization"]["fc1"]) == ["data_in_frac_width", "weight_width", "data_in_width"]
    assert config.parallelism.layers["fc2"] == LayerParallelism("8", 8, "dsp", 2)  # in_par as written
    assert config.to_dict()["parallelism"]["fc2"] == {"in_par": "8", "pipeline_every": 2}


def test_by_type_reads_the_kinds_table():
    config = parse_design_config({"quantization": {"by": "type", "linear": {"rounding": "floor"}}})
    assert isinstance(config.quantization, QuantizationConfig)
    assert config.quantization.for_layer("fc1", "linear").rounding == "floor"
    assert config.quantization.for_layer("add", "add") is config.quantization.default
    config.check_layer_names(["fc1", "fc2"])  # a kind is a valid key under by = "type"


def test_flow_compile_arguments_parse_through_the_same_schema():
    config = hardware_config({"default": {"data_in_width": 6}, "fc_res": {"weight_width": 4}},
                             {"fc_in": {"out_par": 4}}, name="residual_mlp")
    assert config.design.name == "residual_mlp" and config.design.output_dir == "hw/gen"
    assert config.quantization.default.data_in_width == 6 and config.quantization.layers["fc_res"].data_in_width == 6
    assert config.parallelism.table("fc_in").out_par == 4
    assert hardware_config() == DesignConfig(design=dataclasses.replace(DesignConfig().design, name="flow_design"))


def test_the_typed_config_is_frozen_and_changes_by_copies():
    config = load_config(DIGITS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.training.epochs = 3  # type: ignore[misc]
    renamed = config.with_name("other")
    assert renamed.design.name == "other" and config.design.name == "digits_mlp"
    par = config.parallelism.with_layer("fc1", out_par=2, multiplier="auto")
    assert par.table("fc1") == LayerParallelism(16, 2, "auto", 0) and par.written["fc1"] == ("in_par", "out_par",
                                                                                                 "multiplier")
    assert config.parallelism.table("fc1").out_par == 8  # the original is untouched
    with pytest.raises(ValueError, match="name different tables"):
        QuantizationConfig(layers={"fc1": LayerQuant()}, written={})


@pytest.mark.parametrize("overrides, message", [
    ({"training.epochz": 3}, "unknown config key 'training.epochz'; did you mean 'training.epochs'?"),
    ({"quantization.fc1.weightwidth": 3},
     "unknown config key 'quantization.fc1.weightwidth'; did you mean 'quantization.fc1.weight_width'?"),
    ({"training.epochs": "x"}, "training.epochs must be an integer, got 'x'"),
    ({"training.epochs": 0}, "training.epochs must be at least 1 (training epochs), got 0"),
    ({"training.lr": 0}, "training.lr must be a positive number, got 0.0"),
    ({"estimate.resources": "maybe"}, "estimate.resources must be true or false, got 'maybe'"),
    ({"model.hidden": "[0, 3]"}, "model.hidden must be a list of positive integers, e.g. 32,16 or [32, 16]; "
                                 "got [0, 3]"),
    ({"model.activation": "gelu"}, "model.activation must be 'relu' or 'leaky_relu', got 'gelu'"),
    ({"quantization.by": "kind"}, "quantization.by must be 'name' or 'type' (MASE's two ways to match layers)"),
    ({"quantization.fc1": 3}, "unknown config key 'quantization.fc1'; did you mean 'quantization.default'?"),
    ({"quantization.default.name": "posit"}, "quantization.default.name 'posit' is not a format flow knows"),
    ({"design.name": "module"}, "design.name 'module' is a SystemVerilog keyword"),
])
def test_errors_are_one_line_naming_the_key(overrides, message):
    with pytest.raises(ConfigError) as error:
        load_config(DIGITS, overrides)
    assert str(error.value).startswith(message) and "\n" not in str(error.value)


def test_errors_at_the_other_edges():
    with pytest.raises(ConfigError, match=r"^config file nope\.toml not found; pass --config"):
        load_config("nope.toml")
    with pytest.raises(ConfigError, match=r"^training must be a table, got 5$"):
        parse_design_config({"training": 5})
    with pytest.raises(ConfigError, match=r"^parallelism must be a dict of tables \(default and per layer\), got list$"):
        hardware_config(None, [1])  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^parallelism\.fc9 names no layer of the model \(layers: fc1, fc2\); "
                                          r"did you mean 'fc2'\?$"):
        parse_design_config({"parallelism": {"fc9": {"out_par": 2}}}).check_layer_names(["fc1", "fc2"])


def test_a_flag_names_a_dotted_layer_in_quotes():
    assert split_key('quantization."encoder.layer.0.output.dense".weight_width') == [
        "quantization", "encoder.layer.0.output.dense", "weight_width"]
    config = load_config(Path("configs/bert_tiny.toml"), {
        'quantization."encoder.layer.0.output.dense".weight_width': "6"})
    assert config.quantization.table("encoder.layer.0.output.dense").weight_width == 6
    assert config.quantization.table("encoder.layer.1.output.dense").weight_width == 8  # only the named layer


@pytest.mark.parametrize("key, message", [
    ('quantization."fc1.weight_width', "has an unclosed quote"),
    ('quantization.f"c1".weight_width', "a quote may only open a whole part"),
    ('quantization."fc1"x.weight_width', "a quoted part must end at a dot"),
    ("quantization..weight_width", "has an empty part"),
])
def test_a_badly_quoted_key_is_one_line(key, message):
    with pytest.raises(ConfigError, match=message):
        split_key(key)
