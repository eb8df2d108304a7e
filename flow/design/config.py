"""Design configs: TOML files validated against a schema, with every key also a CLI flag.

Quantization keys follow MASE's names (``data_in_width``, ``weight_frac_width``, ...) so
MASE users can bring their configs; a misspelt key is an error naming the nearest valid one.
"""
from __future__ import annotations

import copy
import difflib
import hashlib
import json
import re
import tomllib
from pathlib import Path
from typing import Any

import flow.formats.fixed  # noqa: F401  registers fixed point
from flow.errors import ConfigError
from flow.formats.base import format_from_table, format_names, parse_overflow, parse_rounding
from flow.nn import LinearQuantConfig
from flow.ops import table_kinds

LAYER_QUANT_DEFAULTS: dict[str, Any] = {
    "name": "fixed",
    "data_in_width": 8, "data_in_frac_width": 4, "data_in_signed": True,
    "weight_width": 8, "weight_frac_width": 6, "weight_signed": True,
    "bias_width": 8, "bias_frac_width": 6, "bias_signed": True,
    "data_out_width": 8, "data_out_frac_width": 4, "data_out_signed": True,
    "rounding": "half_up", "overflow": "saturate",
}
LAYER_PAR_DEFAULTS: dict[str, Any] = {"in_par": "auto", "out_par": "full", "multiplier": "dsp", "pipeline_every": 0}

DEFAULTS: dict[str, Any] = {
    "design": {"name": "digits_mlp", "output_dir": "hw/gen", "seed": 0},
    "model": {"kind": "mlp", "hidden": [32, 16], "activation": "relu", "leaky_shift": 3,
              "batchnorm": False, "entry_point": "", "checkpoint": ""},
    "dataset": {"name": "digits", "path": "", "test_fraction": 0.2, "seed": 0},
    "training": {"epochs": 100, "lr": 0.002, "batch_size": 16, "weight_decay": 0.0, "seed": 0,
                 "qat_epochs": 0, "qat_lr": 0.0005},
    "quantization": {"by": "name", "default": dict(LAYER_QUANT_DEFAULTS)},
    "parallelism": {"default": dict(LAYER_PAR_DEFAULTS)},
    "estimate": {"resources": False, "timeout": 900},
}
# Tables whose other keys are layer names, each holding the same keys as their "default".
LAYER_TABLES = {"quantization": LAYER_QUANT_DEFAULTS, "parallelism": LAYER_PAR_DEFAULTS}
TRAINING_SECTIONS = ("model", "dataset", "training")  # what the float checkpoint depends on


def _nearest(key: str, choices: list[str], prefix: str = "") -> str:
    match = difflib.get_close_matches(key, choices, n=1, cutoff=0.0)
    return f"; did you mean {prefix + match[0]!r}?" if match else ""


def _check_value(path: str, value: Any, default: Any) -> Any:
    """Coerce/validate one leaf against the type of its default."""
    if isinstance(default, bool):
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise ConfigError(f"{path} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):  # bools were handled above
        if isinstance(value, str):
            try:
                return int(value)
            except ValueError:
                pass
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"{path} must be an integer, got {value!r}")
    if isinstance(default, float):
        try:
            return float(value)
        except (TypeError, ValueError):
            raise ConfigError(f"{path} must be a number, got {value!r}") from None
    if isinstance(default, list):
        expected = f"{path} must be a list of positive integers, e.g. 32,16 or [32, 16]"
        if isinstance(value, str):
            items = [v.strip() for v in value.strip().strip("[]").split(",") if v.strip()]
            if not all(re.fullmatch(r"[+-]?\d+", v) for v in items):
                raise ConfigError(f"{expected}; got {value!r}")
            value = [int(v) for v in items]
        if not isinstance(value, list) or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0
                                                  for v in value):
            raise ConfigError(f"{expected}; got {value!r}")
        return value
    return value


def _merge(path: str, base: dict[str, Any], update: dict[str, Any], schema: dict[str, Any],
           layer_schema: dict[str, Any] | None = None) -> None:
    """Merge ``update`` into ``base`` in place, refusing unknown keys with the nearest match."""
    for key, value in update.items():
        full = f"{path}.{key}" if path else key
        if key in schema and isinstance(schema[key], dict):
            if not isinstance(value, dict):
                raise ConfigError(f"{full} must be a table, got {value!r}")
            base.setdefault(key, {})
            _merge(full, base[key], value, schema[key], LAYER_TABLES.get(full))
        elif key in schema:
            base[key] = _check_value(full, value, schema[key])
        elif layer_schema is not None and isinstance(value, dict):
            base.setdefault(key, {})  # a per-layer override; the layer name is checked later
            _merge(full, base[key], value, layer_schema)
        else:
            raise ConfigError(f"unknown config key {full!r}{_nearest(key, list(schema), full[: -len(key)])}")


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    """Defaults, then the TOML file, then ``{"a.b.c": value}`` overrides (CLI flags)."""
    config = copy.deepcopy(DEFAULTS)
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found; pass --config with an existing TOML file")
        try:
            data = tomllib.loads(path.read_text())
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path} is not valid TOML ({error}); fix the syntax") from None
        _merge("", config, data, DEFAULTS)
    for dotted, value in (overrides or {}).items():
        nested: Any = value
        for part in reversed(dotted.split(".")):
            nested = {part: nested}
        _merge("", config, nested, DEFAULTS)
    _validate(config)
    return config


# IEEE 1800-2017 keywords: a design name becomes module and package names.
SV_KEYWORDS = frozenset("""
accept_on alias always always_comb always_ff always_latch and assert assign assume automatic before
begin bind bins binsof bit break buf bufif0 bufif1 byte case casex casez cell chandle checker class
clocking cmos config const constraint context continue cover covergroup coverpoint cross deassign
default defparam design disable dist do edge else end endcase endchecker endclass endclocking
endconfig endfunction endgenerate endgroup endinterface endmodule endpackage endprimitive endprogram
endproperty endspecify endsequence endtable endtask enum event eventually expect export extends
extern final first_match for force foreach forever fork forkjoin function generate genvar global
highz0 highz1 if iff ifnone ignore_bins illegal_bins implements implies import incdir include
initial inout input inside instance int integer interconnect interface intersect join join_any
join_none large let liblist library local localparam logic longint macromodule matches medium
modport module nand negedge nettype new nexttime nmos nor noshowcancelled not notif0 notif1 null or
output package packed parameter pmos posedge primitive priority program property protected pull0
pull1 pulldown pullup pulsestyle_ondetect pulsestyle_onevent pure rand randc randcase randsequence
rcmos real realtime ref reg reject_on release repeat restrict return rnmos rpmos rtran rtranif0
rtranif1 s_always s_eventually s_nexttime s_until s_until_with scalared sequence shortint shortreal
showcancelled signed small soft solve specify specparam static string strong strong0 strong1 struct
super supply0 supply1 sync_accept_on sync_reject_on table tagged task this throughout time
timeprecision timeunit tran tranif0 tranif1 tri tri0 tri1 triand trior trireg type typedef union
unique unique0 unsigned until until_with untyped use uwire var vectored virtual void wait wait_order
wand weak weak0 weak1 while wildcard wire with within wor xnor xor""".split())


def check_design_name(name: str) -> None:
    """A design name names files, a folder and SystemVerilog modules: a plain identifier."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name) or name in SV_KEYWORDS:
        why = "is a SystemVerilog keyword" if name in SV_KEYWORDS else "is not a SystemVerilog identifier"
        raise ConfigError(f"design.name {name!r} {why}; use letters, digits and underscores, starting "
                          f"with a letter (e.g. digits_mlp); the folder is chosen by design.output_dir")


# (section, key, smallest allowed value, what it means)
MINIMUMS = [("training", "epochs", 1, "training epochs"), ("training", "qat_epochs", 0, "QAT epochs"),
            ("training", "batch_size", 1, "samples per batch"), ("training", "weight_decay", 0.0, "decay"),
            ("estimate", "timeout", 1, "seconds")]
POSITIVE = [("training", "lr"), ("training", "qat_lr")]


def hardware_config(quant: dict[str, Any] | None = None, parallelism: dict[str, Any] | None = None,
                    name: str = "flow_design") -> dict[str, Any]:
    """A full config from quantization and parallelism tables alone (``flow.compile``'s arguments),
    checked against the same schema as a TOML file: unknown keys name the nearest valid one."""
    update: dict[str, Any] = {"design": {"name": name}}
    for section, table in (("quantization", quant), ("parallelism", parallelism)):
        if table is None:
            continue
        if not isinstance(table, dict):
            raise ConfigError(f"{section} must be a dict of tables (default and per layer), got {type(table).__name__}")
        update[section] = table
    config = copy.deepcopy(DEFAULTS)
    _merge("", config, update, DEFAULTS)
    _validate(config)
    return config


def _validate(config: dict[str, Any]) -> None:
    check_design_name(config["design"]["name"])
    for section, key, minimum, meaning in MINIMUMS:
        if config[section][key] < minimum:
            raise ConfigError(f"{section}.{key} must be at least {minimum} ({meaning}), got {config[section][key]}")
    for section, key in POSITIVE:
        if not config[section][key] > 0:
            raise ConfigError(f"{section}.{key} must be a positive number, got {config[section][key]}")
    if config["quantization"]["by"] not in ("name", "type"):
        raise ConfigError("quantization.by must be 'name' or 'type' (MASE's two ways to match layers)")
    if config["model"]["activation"] not in ("relu", "leaky_relu"):
        raise ConfigError(f"model.activation must be 'relu' or 'leaky_relu', got {config['model']['activation']!r}")
    if config["model"]["leaky_shift"] < 1:
        raise ConfigError("model.leaky_shift must be >= 1 (the slope is 2**-leaky_shift)")
    if config["model"]["kind"] != "mlp":
        raise ConfigError(f"model.kind {config['model']['kind']!r} is not known; use 'mlp' (flow's MLP) or set "
                          f"model.entry_point = 'package.module:function' for your own model")
    if not 0 < config["dataset"]["test_fraction"] < 1:
        raise ConfigError("dataset.test_fraction must lie strictly between 0 and 1")
    for name, table in config["quantization"].items():
        if isinstance(table, dict):
            layer_quant_config({**LAYER_QUANT_DEFAULTS, **table}, f"quantization.{name}")


def layer_quant_config(table: dict[str, Any], where: str) -> LinearQuantConfig:
    """The LinearQuantConfig a quantization table describes; bad values name their key."""
    name = table.get("name", "fixed")
    if name not in format_names():
        raise ConfigError(f"{where}.name {name!r} is not a format flow knows; use one of {', '.join(format_names())}")
    try:
        return LinearQuantConfig(
            data_in=format_from_table(name, table, "data_in"),
            weight=format_from_table(name, table, "weight"),
            bias=format_from_table(name, table, "bias"),
            data_out=format_from_table(name, table, "data_out"),
            rounding=parse_rounding(table["rounding"]),
            overflow=parse_overflow(table["overflow"]),
        )
    except ValueError as error:
        raise ConfigError(f"{where}: {error}") from None


def layer_table(config: dict[str, Any], section: str, layer: str, kind: str = "linear") -> dict[str, Any]:
    """Default merged with the layer's own table (by name, or by type under MASE's ``by='type'``)."""
    tables = config[section]
    key = kind if section == "quantization" and tables.get("by") == "type" else layer
    return {**LAYER_TABLES[section], **tables["default"], **tables.get(key, {})}


def check_layer_names(config: dict[str, Any], layers: list[str]) -> None:
    """Per-layer tables must name layers the model has."""
    for section in LAYER_TABLES:
        allowed = layers + (table_kinds() if config[section].get("by") == "type" else [])
        for key, value in config[section].items():
            if isinstance(value, dict) and key != "default" and key not in allowed:
                raise ConfigError(f"{section}.{key} names no layer of the model (layers: "
                                  f"{', '.join(layers)}){_nearest(key, layers)}")


def config_hash(config: dict[str, Any], sections: tuple[str, ...]) -> str:
    """A short stable hash of some sections (e.g. what a trained checkpoint depends on)."""
    blob = json.dumps({s: config[s] for s in sections}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:12]


def flag_overrides(argv: list[str]) -> dict[str, Any]:
    """Parse ``--a.b.c value`` / ``--a.b.c=value`` flags into dotted overrides."""
    overrides: dict[str, Any] = {}
    index = 0
    while index < len(argv):
        arg = argv[index]
        if not arg.startswith("--") or "." not in arg.split("=")[0]:
            raise ConfigError(f"unexpected argument {arg!r}; config flags look like --training.epochs 5")
        if "=" in arg:
            key, value = arg[2:].split("=", 1)
        else:
            if index + 1 >= len(argv):
                raise ConfigError(f"flag {arg} needs a value")
            key, value = arg[2:], argv[index + 1]
            index += 1
        overrides[key] = value
        index += 1
    return overrides
