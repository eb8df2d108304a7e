"""Design configs: TOML files validated against a schema, with every key also a CLI flag.

This is the edge: a TOML file, ``--section.key value`` flags or ``flow.compile``'s keyword
arguments are merged over the defaults, checked, and parsed once into a typed ``DesignConfig``
(flow.config.schema); nothing below reads the config as a dict.

Quantization keys follow MASE's names (``data_in_width``, ``weight_frac_width``, ...) so
MASE users can bring their configs; a misspelt key is an error naming the nearest valid one.
"""
from __future__ import annotations

import copy
import dataclasses
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from flow.config.schema import (
    BertSection,
    DatasetConfig,
    DesignConfig,
    DesignSection,
    EstimateConfig,
    LayerQuant,
    ModelConfig,
    ParallelismConfig,
    QuantizationConfig,
    TrainingConfig,
    layer_quant_config,
    nearest,
)
from flow.errors import ConfigError
from flow.ops import LayerParallelism

__all__ = ["DEFAULTS", "LAYER_PAR_DEFAULTS", "LAYER_QUANT_DEFAULTS", "ConfigError", "DesignConfig",
           "check_design_name", "flag_overrides", "hardware_config", "load_config", "parse_design_config"]

# The schema: every key with its default, from the typed config's defaults.
DEFAULTS: dict[str, Any] = DesignConfig().to_dict()
LAYER_QUANT_DEFAULTS: dict[str, Any] = DEFAULTS["quantization"]["default"]
LAYER_PAR_DEFAULTS: dict[str, Any] = DEFAULTS["parallelism"]["default"]
# Tables whose other keys are layer names, each holding the same keys as their "default".
LAYER_TABLES = {"quantization": LAYER_QUANT_DEFAULTS, "parallelism": LAYER_PAR_DEFAULTS}


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
            raise ConfigError(f"unknown config key {full!r}{nearest(key, list(schema), full[: -len(key)])}")


def load_config(path: str | Path | None = None, overrides: dict[str, Any] | None = None) -> DesignConfig:
    """Defaults, then the TOML file, then ``{"a.b.c": value}`` overrides (CLI flags), parsed."""
    updates: list[dict[str, Any]] = []
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} not found; pass --config with an existing TOML file")
        try:
            updates.append(tomllib.loads(path.read_text()))
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path} is not valid TOML ({error}); fix the syntax") from None
    for dotted, value in (overrides or {}).items():
        nested: Any = value
        for part in reversed(split_key(dotted)):
            nested = {part: nested}
        updates.append(nested)
    return _parse(updates)


def parse_design_config(data: Mapping[str, Any]) -> DesignConfig:
    """A config given as nested tables, as a TOML file holds them (``{"training": {"epochs": 5}}``;
    any key may be left out for its default), checked and typed. Errors are one line naming the key."""
    return _parse([dict(data)])


def _parse(updates: list[dict[str, Any]]) -> DesignConfig:
    """Merge ``updates`` in order over the defaults, check the result and type it."""
    config = copy.deepcopy(DEFAULTS)
    for update in updates:
        _merge("", config, update, DEFAULTS)
    _validate(config)
    return _typed(config)


def _typed(config: dict[str, Any]) -> DesignConfig:
    """The checked dict as dataclasses; a per-layer table keeps which keys it set, in order."""
    model = dict(config["model"], hidden=tuple(config["model"]["hidden"]))
    quant_default = LayerQuant(**config["quantization"]["default"])
    par_default = LayerParallelism(**config["parallelism"]["default"])
    quant_layers = {k: v for k, v in config["quantization"].items() if isinstance(v, dict) and k != "default"}
    par_layers = {k: v for k, v in config["parallelism"].items() if k != "default"}
    return DesignConfig(
        design=DesignSection(**config["design"]), model=ModelConfig(**model), dataset=DatasetConfig(**config["dataset"]),
        training=TrainingConfig(**config["training"]),
        quantization=QuantizationConfig(
            default=quant_default, by=config["quantization"]["by"],
            layers={k: dataclasses.replace(quant_default, **v) for k, v in quant_layers.items()},
            written={k: tuple(v) for k, v in quant_layers.items()}),
        parallelism=ParallelismConfig(
            default=par_default, layers={k: dataclasses.replace(par_default, **v) for k, v in par_layers.items()},
            written={k: tuple(v) for k, v in par_layers.items()}),
        estimate=EstimateConfig(**config["estimate"]), bert=BertSection(**config["bert"]))


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
                    name: str = "flow_design") -> DesignConfig:
    """A full config from quantization and parallelism tables alone (``flow.compile``'s arguments),
    checked against the same schema as a TOML file: unknown keys name the nearest valid one."""
    update: dict[str, Any] = {"design": {"name": name}}
    for section, table in (("quantization", quant), ("parallelism", parallelism)):
        if table is None:
            continue
        if not isinstance(table, dict):
            raise ConfigError(f"{section} must be a dict of tables (default and per layer), got {type(table).__name__}")
        update[section] = table
    return parse_design_config(update)


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
    if config["model"]["kind"] not in ("mlp", "bert_tiny"):
        raise ConfigError(f"model.kind {config['model']['kind']!r} is not known; use 'mlp' (flow's MLP), 'bert_tiny' "
                          f"(lab 1's bert-tiny, see configs/bert_tiny.toml) or set "
                          f"model.entry_point = 'package.module:function' for your own model")
    bert = config["bert"]
    if bert["weights"] not in ("lab1", "random"):
        raise ConfigError(f"bert.weights must be 'lab1' (lab 1's base checkpoint) or 'random' (seeded init), "
                          f"got {bert['weights']!r}")
    if not 8 <= bert["seq"] <= 512:
        raise ConfigError(f"bert.seq must lie in 8..512 tokens (BERT's positions), got {bert['seq']}")
    if bert["reviews"] < 1:
        raise ConfigError(f"bert.reviews must be at least 1 (test reviews written as vectors), got {bert['reviews']}")
    if not 0 < config["dataset"]["test_fraction"] < 1:
        raise ConfigError("dataset.test_fraction must lie strictly between 0 and 1")
    for name, table in config["quantization"].items():
        if isinstance(table, dict):
            layer_quant_config({**LAYER_QUANT_DEFAULTS, **table}, f"quantization.{name}")


def split_key(dotted: str) -> list[str]:
    """``a."b.c".d`` -> ``["a", "b.c", "d"]``: a dotted key whose parts may be double-quoted, as in TOML,
    so a flag can name a layer such as ``quantization."encoder.layer.0.output.dense"``."""
    parts, current, quoted, closed = [], "", False, False
    for char in dotted:
        if char == '"':
            if not quoted and current:
                raise ConfigError(f"config key {dotted!r}: a quote may only open a whole part; write a.\"b.c\".d")
            quoted, closed = not quoted, quoted
        elif char == "." and not quoted:
            parts.append(current)
            current, closed = "", False
        elif closed:
            raise ConfigError(f"config key {dotted!r}: a quoted part must end at a dot; write a.\"b.c\".d")
        else:
            current += char
    if quoted:
        raise ConfigError(f"config key {dotted!r} has an unclosed quote; write a.\"b.c\".d")
    parts.append(current)
    if not all(parts):
        raise ConfigError(f"config key {dotted!r} has an empty part; write a.b.c or a.\"b.c\".d")
    return parts


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
