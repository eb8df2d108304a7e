"""The design config, typed: frozen dataclasses, one per TOML section.

``flow.config.load`` parses a TOML file, command-line flags or ``flow.compile``'s keyword
arguments into a ``DesignConfig`` once, at the edge; everything below reads its attributes. The
dataclasses' defaults are the schema's defaults (``flow.config.load.DEFAULTS`` is
``DesignConfig().to_dict()``), and ``to_dict()`` gives back the dict the untyped config was, key
for key and in the same order: report.json shows it, and the float checkpoint's cache key hashes
its training sections, so both stay what they were before the config was typed.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Generic, TypeVar

import flow.formats.fixed  # noqa: F401  registers fixed point
from flow.errors import ConfigError
from flow.formats.base import format_from_table, format_names, parse_overflow, parse_rounding
from flow.nn import LinearQuantConfig
from flow.ops import LayerParallelism, table_kinds

TRAINING_SECTIONS = ("model", "dataset", "training")  # what the float checkpoint depends on


def nearest(key: str, choices: list[str], prefix: str = "") -> str:
    """``; did you mean 'x'?`` for the closest of ``choices``, or nothing when there are none."""
    match = difflib.get_close_matches(key, choices, n=1, cutoff=0.0)
    return f"; did you mean {prefix + match[0]!r}?" if match else ""


def _plain(value: Any) -> Any:
    """A field's value as the untyped config held it (a tuple was a list)."""
    return list(value) if isinstance(value, tuple) else value


def _as_dict(section: Any) -> dict[str, Any]:
    """A flat section's fields, in declaration order (the schema's key order)."""
    return {f.name: _plain(getattr(section, f.name)) for f in dataclasses.fields(section)}


@dataclass(frozen=True)
class DesignSection:
    """``[design]``: the name of the modules and files, and the folder the design goes under."""

    name: str = "digits_mlp"
    output_dir: str = "hw/gen"
    seed: int = 0

    @property
    def folder(self) -> Path:
        """Where ``flow emit-rtl`` writes the design: ``<output_dir>/<name>``."""
        return Path(self.output_dir) / self.name


@dataclass(frozen=True)
class ModelConfig:
    """``[model]``: flow's MLP (hidden sizes, activation, BatchNorm), or a user's entry point or checkpoint."""

    kind: str = "mlp"
    hidden: tuple[int, ...] = (32, 16)
    activation: str = "relu"
    leaky_shift: int = 3
    batchnorm: bool = False
    entry_point: str = ""
    checkpoint: str = ""


@dataclass(frozen=True)
class DatasetConfig:
    """``[dataset]``: a tabular data set and its seeded, stratified test split."""

    name: str = "digits"
    path: str = ""
    test_fraction: float = 0.2
    seed: int = 0


@dataclass(frozen=True)
class TrainingConfig:
    """``[training]``: float training (Adam) and the optional quantization-aware fine-tuning."""

    epochs: int = 100
    lr: float = 0.002
    batch_size: int = 16
    weight_decay: float = 0.0
    seed: int = 0
    qat_epochs: int = 0
    qat_lr: float = 0.0005


@dataclass(frozen=True)
class LayerQuant:
    """One quantization table with every key set (MASE's names): the formats of a layer's input,
    weight, bias and output, and how its casts round and overflow."""

    name: str = "fixed"
    data_in_width: int = 8
    data_in_frac_width: int = 4
    data_in_signed: bool = True
    weight_width: int = 8
    weight_frac_width: int = 6
    weight_signed: bool = True
    bias_width: int = 8
    bias_frac_width: int = 6
    bias_signed: bool = True
    data_out_width: int = 8
    data_out_frac_width: int = 4
    data_out_signed: bool = True
    rounding: str = "half_up"
    overflow: str = "saturate"

    def linear_config(self, where: str) -> LinearQuantConfig:
        """The formats and modes as flow's number types; a bad value names ``where`` (its table)."""
        return layer_quant_config(_as_dict(self), where)


def layer_quant_config(table: dict[str, Any], where: str) -> LinearQuantConfig:
    """The LinearQuantConfig a quantization table (MASE keys, as a number format reads them)
    describes; bad values name their key."""
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


Table = TypeVar("Table", LayerQuant, LayerParallelism)


@dataclass(frozen=True)
class LayerTables(Generic[Table]):
    """A ``default`` table and per-layer tables over it (``[quantization.fc1]``, ...).

    ``layers`` holds each layer's complete table (the default with the layer's keys over it);
    ``written`` the keys each layer's table set, in the order written, so ``to_dict`` gives back
    the tables as they were written."""

    default: Table
    layers: Mapping[str, Table] = field(default_factory=dict)
    written: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if list(self.layers) != list(self.written):
            raise ValueError(f"layers {list(self.layers)} and written {list(self.written)} name different tables")

    def table(self, key: str) -> Table:
        """The table of a layer name (or kind): its own, else the default."""
        return self.layers.get(key, self.default)

    def with_layer(self, key: str, **values: Any) -> LayerTables[Table]:
        """A copy with ``values`` set in ``key``'s table (added after its keys, as a dict merge does)."""
        table = dataclasses.replace(self.table(key), **values)
        written = tuple(dict.fromkeys((*self.written.get(key, ()), *values)))
        return dataclasses.replace(self, layers={**self.layers, key: table}, written={**self.written, key: written})

    def to_dict(self) -> dict[str, Any]:
        tables = {"default": _as_dict(self.default)}
        for key, table in self.layers.items():
            tables[key] = {name: _plain(getattr(table, name)) for name in self.written[key]}
        return tables


@dataclass(frozen=True)
class QuantizationConfig(LayerTables[LayerQuant]):
    """``[quantization]``: tables by layer name, or by layer kind under MASE's ``by = "type"``."""

    default: LayerQuant = field(default_factory=LayerQuant)
    by: str = "name"

    def for_layer(self, name: str, kind: str) -> LayerQuant:
        """The table a layer reads: its name's, or its kind's under ``by = "type"``; else the default."""
        return self.table(kind if self.by == "type" else name)

    def to_dict(self) -> dict[str, Any]:
        return {"by": self.by, **super().to_dict()}


@dataclass(frozen=True)
class ParallelismConfig(LayerTables[LayerParallelism]):
    """``[parallelism]``: elements per beat in and out, and the multiplier style, per layer name."""

    default: LayerParallelism = field(default_factory=LayerParallelism)


@dataclass(frozen=True)
class EstimateConfig:
    """``[estimate]``: whether emit-rtl runs Yosys on the design, and its time limit in seconds."""

    resources: bool = False
    timeout: int = 900


@dataclass(frozen=True)
class BertSection:
    """``[bert]``: a ``model.kind = "bert_tiny"`` design (flow.labs.bert_rtl): the sequence length,
    the IMDb test reviews written as vectors and where the weights come from (the design always takes
    the attention key mask as its second input stream)."""

    seq: int = 128  # tokens a review (truncated; the hardware's sequence)
    reviews: int = 256  # the first N test reviews (seeded shuffle), whatever their length, become the vectors
    seed: int = 0  # lab 1's base model of this seed
    weights: str = "lab1"  # "lab1": lab 1's base checkpoint (trained when absent); "random": seeded init (smoke)
    hidden_size: int = 128  # with weights = "random" only: the shape (bert-tiny's by default)
    intermediate_size: int = 512


@dataclass(frozen=True)
class DesignConfig:
    """A whole design config, parsed and checked (``flow.config.load.load_config``)."""

    design: DesignSection = field(default_factory=DesignSection)
    model: ModelConfig = field(default_factory=ModelConfig)
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    training: TrainingConfig = field(default_factory=TrainingConfig)
    quantization: QuantizationConfig = field(default_factory=QuantizationConfig)
    parallelism: ParallelismConfig = field(default_factory=ParallelismConfig)
    estimate: EstimateConfig = field(default_factory=EstimateConfig)
    bert: BertSection = field(default_factory=BertSection)

    def to_dict(self) -> dict[str, Any]:
        """The config as nested dicts keyed as the TOML file (what report.json records)."""
        return {f.name: (section.to_dict() if isinstance(section := getattr(self, f.name), LayerTables)
                         else _as_dict(section)) for f in dataclasses.fields(self)}

    def training_hash(self) -> str:
        """A short stable hash of what the float checkpoint depends on (its cache key)."""
        plain = self.to_dict()
        blob = json.dumps({s: plain[s] for s in TRAINING_SECTIONS}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()[:12]

    def with_name(self, name: str) -> DesignConfig:
        """The same design under another name (its modules, files and folder)."""
        return dataclasses.replace(self, design=dataclasses.replace(self.design, name=name))

    def check_layer_names(self, layers: list[str]) -> None:
        """Per-layer tables must name layers the model has (or, under ``by = "type"``, kinds)."""
        for section, tables in (("quantization", self.quantization), ("parallelism", self.parallelism)):
            by_type = isinstance(tables, QuantizationConfig) and tables.by == "type"
            allowed = layers + (table_kinds() if by_type else [])
            for key in tables.layers:
                if key not in allowed:
                    raise ConfigError(f"{section}.{key} names no layer of the model (layers: "
                                      f"{', '.join(layers)}){nearest(key, layers)}")
