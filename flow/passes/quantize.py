"""Quantize any nn.Module (BERT included): swap its nn.Linear layers for fake-quant FormatLinear.

The config is MASE-style::

    {"by": "type", "default": {...}, "linear": {...}}          # by type: every nn.Linear
    {"by": "name", "default": {...}, "bert.encoder": {...}}    # by name: module paths

A flat dict of layer keys is the ``default`` table. A layer's table is ``default`` merged with
every table that covers it (later ones override key by key):

- by type: ``linear`` covers every nn.Linear;
- by name: a key with ``*``, ``?`` or ``[`` is an fnmatch pattern over full module paths,
  applied in config order; any other key is a module path that covers that module and every
  Linear under it (``"bert.encoder.layer.0"`` covers its six Linears), applied after the
  patterns, shallow paths before deep ones, so the layer's own path wins.

Keys of a layer table: ``name`` (a format registry name, default ``"fixed"``; ``None`` leaves
the layer float), the format's operand keys for ``data_in``, ``weight``, ``bias`` (e.g.
``weight_width``, ``weight_frac_width``, ``weight_signed`` for fixed point), optional
``data_out_*`` keys, the ``data_out`` flag, ``rounding`` (default half_up) and ``overflow``
(default saturate). The output is quantized when ``data_out_*`` keys are present or
``data_out`` is true, and never when ``data_out`` is false. ``data_in`` and ``weight`` keys are
required; ``bias`` keys are required for layers with a bias. A key no format builder reads is
refused (with the nearest valid key), as is a name key that matches no nn.Linear.

Weights and biases are copied into the new layers; parametrizations such as prune masks move
with them, so pruning before or after quantizing both keep pruned weights at zero.
``flow.nn.QuantLinear`` layers (hardware-exact) are left alone; FormatLinear layers are
re-quantized with the new config.
"""
from __future__ import annotations

import difflib
import fnmatch
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn
from torch.nn.utils import parametrize

import flow.formats.fixed  # noqa: F401  registers the built-in formats
from flow.formats.base import Format, format_from_table, format_names, parse_overflow, parse_rounding
from flow.nn.format_linear import OPERANDS, FormatLinear, LinearFormats
from flow.nn.linear import QuantLinear

DEFAULT_FORMAT = "fixed"
COMMON_KEYS = ("name", "rounding", "overflow", "data_out")
TYPE_KEYS = ("default", "linear")


class QuantizeConfigError(ValueError):
    """A quantization config that cannot be applied; the message names the culprit and the fix."""


# ---- selecting Linear layers by path (shared with flow.passes.prune) ----
def is_pattern(key: str) -> bool:
    return any(c in key for c in "*?[")


def covers(key: str, path: str) -> bool:
    """Whether a name key selects the module at ``path``: an fnmatch pattern over the full path,
    or a module path that is ``path`` itself or one of its parents."""
    if is_pattern(key):
        return fnmatch.fnmatchcase(path, key)
    return path == key or path.startswith(key + ".")


def check_name_key(key: str, linear_paths: list[str], all_paths: list[str], what: str) -> None:
    """Refuse a name key that selects no Linear, naming the nearest Linear path."""
    if any(covers(key, p) for p in linear_paths):
        return
    shown = ", ".join(linear_paths[:6]) + (", ..." if len(linear_paths) > 6 else "")
    if is_pattern(key):
        raise QuantizeConfigError(f"{what} pattern {key!r} matches no nn.Linear (Linear layers: {shown})")
    if key in all_paths:
        raise QuantizeConfigError(f"{what} key {key!r} names a module that holds no nn.Linear; "
                                  f"name a Linear or a module above one (Linear layers: {shown})")
    near = difflib.get_close_matches(key, linear_paths, n=1, cutoff=0.0)
    hint = f"; did you mean {near[0]!r}?" if near else ""
    raise QuantizeConfigError(f"{what} key {key!r} names no module of the model{hint}")


def linear_layers(model: nn.Module) -> list[tuple[str, nn.Linear]]:
    """Every (path, module) whose module is an nn.Linear other than flow's exact QuantLinear;
    a module reachable by several paths appears once per path."""
    return [(path, m) for path, m in model.named_modules(remove_duplicate=False)
            if isinstance(m, nn.Linear) and not isinstance(m, QuantLinear)]


def replace_modules(model: nn.Module, swap: dict[int, nn.Module]) -> None:
    """Point every parent attribute holding a module in ``swap`` (by id) at its replacement."""
    if id(model) in swap:
        raise QuantizeConfigError(f"the model itself is a {type(model).__name__}; wrap it (nn.Sequential(model)) "
                                  "so the pass can replace it inside a parent")
    for parent in list(model.modules()):
        for child_name, child in list(parent._modules.items()):  # named_children() hides repeats
            if child is not None and id(child) in swap:
                setattr(parent, child_name, swap[id(child)])


def base_type_name(module: nn.Module) -> str:
    """The class name, seen through the subclass torch.nn.utils.parametrize creates."""
    cls = type(module)
    return cls.__bases__[0].__name__ if parametrize.is_parametrized(module) else cls.__name__


def move_parametrizations(source: nn.Module, target: nn.Module) -> None:
    """Register ``source``'s parametrizations (e.g. prune masks) on ``target`` with the same
    unconstrained originals, so the replacement computes the same tensors and keeps training
    the same way."""
    if not parametrize.is_parametrized(source):
        return
    for tensor_name, plist in source.parametrizations.items():
        for p in plist:
            parametrize.register_parametrization(target, tensor_name, p)
        new = target.parametrizations[tensor_name]
        names = ["original"] if plist.is_tensor else [f"original{i}" for i in range(plist.ntensors)]
        with torch.no_grad():
            for name in names:
                getattr(new, name).copy_(getattr(plist, name))
                getattr(new, name).requires_grad_(getattr(plist, name).requires_grad)


# ---- the report ----
@dataclass(frozen=True)
class QuantizedLayer:
    """One swapped layer: where, from which type to which, and each operand's format."""

    path: str
    old_type: str
    new_type: str
    formats: dict[str, str]
    aliases: tuple[str, ...] = ()  # other paths to the same (shared) module


@dataclass
class QuantizeReport:
    """What ``quantize_module`` changed, and which Linear layers it left in float."""

    by: str
    changed: list[QuantizedLayer] = field(default_factory=list)
    float_layers: list[str] = field(default_factory=list)

    @property
    def quantized(self) -> int:
        return len(self.changed)

    @property
    def left_float(self) -> int:
        """The number of Linear layers left in float (``name: None``)."""
        return len(self.float_layers)

    def table(self) -> str:
        """A plain-text table: one row per swapped layer, then the float ones."""
        head = ("layer", "old -> new", *OPERANDS)
        rows = [(r.path, f"{r.old_type} -> {r.new_type}", *(r.formats[op] for op in OPERANDS)) for r in self.changed]
        rows += [(path, "float (unchanged)", *("float",) * len(OPERANDS)) for path in self.float_layers]
        widths = [max(len(str(row[i])) for row in [head, *rows]) for i in range(len(head))]
        lines = ["  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)).rstrip() for row in [head, *rows]]
        lines.insert(1, "  ".join("-" * w for w in widths))
        lines.append(f"{self.quantized} Linear layers quantized (by {self.by}), {self.left_float} left in float")
        return "\n".join(lines)


# ---- building one layer's formats ----
class _Recorder(dict):
    """A table that records which keys a format builder reads (the keys it knows)."""

    def __init__(self, data: dict[str, Any]) -> None:
        super().__init__(data)
        self.read: set[str] = set()

    def __getitem__(self, key: str) -> Any:
        self.read.add(key)
        return super().__getitem__(key)

    def get(self, key: str, default: Any = None) -> Any:
        self.read.add(key)
        return super().get(key, default)

    def __contains__(self, key: object) -> bool:
        if isinstance(key, str):
            self.read.add(key)
        return super().__contains__(key)


def _operand(name: str, table: _Recorder, operand: str, where: str) -> Format:
    try:
        return format_from_table(name, table, operand)
    except KeyError as error:
        raise QuantizeConfigError(f"{where}: format {name!r} needs {error.args[0]!r} for the {operand} operand; "
                                  "add it to the 'default' table or to this layer's table") from None
    except (ValueError, TypeError) as error:
        raise QuantizeConfigError(f"{where}: {operand}: {error}") from None


def layer_formats(table: dict[str, Any], where: str, has_bias: bool = True) -> LinearFormats | None:
    """The formats a merged layer table describes (None: the layer stays float); bad keys and
    values raise a one-line QuantizeConfigError naming the key."""
    name = table.get("name", DEFAULT_FORMAT)
    if name is None:
        return None
    if name not in format_names():
        raise QuantizeConfigError(f"{where}: format {name!r} is not known; use one of {', '.join(format_names())} "
                                  "(or name=None to leave the layer float)")
    flag = table.get("data_out")
    if flag is not None and not isinstance(flag, bool):
        raise QuantizeConfigError(f"{where}: data_out must be true or false (quantize the output or not), got {flag!r}")
    recorder = _Recorder(table)
    formats: dict[str, Format | None] = {op: None for op in OPERANDS}
    for op in OPERANDS:
        given = any(key.startswith(op + "_") for key in table)
        if op in ("data_in", "weight") or (op == "bias" and (has_bias or given)) or (op == "data_out" and (given or flag)):
            formats[op] = _operand(name, recorder, op, where)
    if flag is False:
        formats["data_out"] = None
    known = recorder.read | set(COMMON_KEYS)
    for key in table:
        if key not in known:
            near = difflib.get_close_matches(key, sorted(known), n=1, cutoff=0.6)
            hint = f"; did you mean {near[0]!r}?" if near else f"; {name!r} reads {', '.join(sorted(known))}"
            raise QuantizeConfigError(f"{where}: unknown key {key!r}{hint}")
    try:
        rounding = parse_rounding(table.get("rounding", "half_up"))
        overflow = parse_overflow(table.get("overflow", "saturate"))
    except ValueError as error:
        raise QuantizeConfigError(f"{where}: {error}") from None
    return LinearFormats(**formats, rounding=rounding, overflow=overflow)


# ---- the config: which tables cover which layer ----
def _split(config: dict[str, Any], by: str | None) -> tuple[str, dict[str, dict[str, Any]]]:
    if not isinstance(config, dict):
        raise QuantizeConfigError(f"the quantization config must be a dict of tables, got {type(config).__name__}")
    chosen = config.get("by")
    if by is not None and chosen is not None and by != chosen:
        raise QuantizeConfigError(f"by={by!r} contradicts the config's 'by': {chosen!r}; give one of them")
    by = by or chosen or "type"
    if by not in ("type", "name"):
        raise QuantizeConfigError(f"by={by!r} is not known; use 'type' or 'name' (MASE's two ways to match layers)")
    tables = {k: v for k, v in config.items() if k != "by"}
    if tables and not any(isinstance(v, dict) for v in tables.values()):
        tables = {"default": tables}  # a flat table of layer keys is the default
    for key, value in tables.items():
        if not isinstance(value, dict):
            raise QuantizeConfigError(f"config key {key!r} must be a table of layer keys, got {value!r}; "
                                      "put layer keys under 'default' or a layer's table")
    return by, tables


def _covering(by: str, tables: dict[str, dict[str, Any]], path: str) -> list[str]:
    """The table keys covering ``path``, in merge order (default first)."""
    keys = ["default"] if "default" in tables else []
    if by == "type":
        return keys + (["linear"] if "linear" in tables else [])
    names = [k for k in tables if k != "default"]
    keys += [k for k in names if is_pattern(k) and covers(k, path)]
    return keys + sorted((k for k in names if not is_pattern(k) and covers(k, path)), key=lambda k: k.count("."))


def _check_keys(by: str, tables: dict[str, dict[str, Any]], model: nn.Module, paths: list[str]) -> None:
    all_paths = [p for p, _ in model.named_modules(remove_duplicate=False)]
    for key in tables:
        if key == "default":
            continue
        if by == "type":
            if key != "linear":
                hint = "; did you mean by='name'?" if key in all_paths or is_pattern(key) else ""
                raise QuantizeConfigError(f"by='type' tables are {', '.join(TYPE_KEYS)} (this pass swaps nn.Linear "
                                          f"only), got {key!r}{hint}")
        elif key == "linear" and key not in all_paths:
            raise QuantizeConfigError("key 'linear' is a type table; pass by='type' (or 'by': 'type' in the config) "
                                      "or name module paths")
        else:
            check_name_key(key, paths, all_paths, "quantization")


def _check_blocks(formats: LinearFormats, in_features: int, where: str) -> None:
    """Block formats cut the input dimension into blocks; a block size must divide it here (the
    format itself would make the last block of each row partial)."""
    for operand in ("data_in", "weight"):
        block = getattr(getattr(formats, operand), "block_size", None)
        if block is not None and in_features % block:
            divisors = [d for d in range(1, in_features + 1) if in_features % d == 0]
            raise QuantizeConfigError(f"{where}: {operand} block size {block} does not divide the layer's "
                                      f"{in_features} input features; use one of {', '.join(map(str, divisors))}")


def quantize_module(model: nn.Module, config: dict[str, Any], *, by: str | None = None) -> QuantizeReport:
    """Swap every nn.Linear that the config covers for a FormatLinear, in place (see the module
    docstring for the config). ``by`` defaults to the config's ``by``, else ``"type"``.
    Linear layers that no table covers, or whose table has ``name: None``, stay float."""
    by, tables = _split(config, by)
    linears = linear_layers(model)
    if not linears:
        raise QuantizeConfigError(f"{type(model).__name__} has no nn.Linear to quantize")
    paths = [p for p, _ in linears]
    _check_keys(by, tables, model, paths)

    chosen: dict[int, tuple[str, list[str], dict[str, Any]]] = {}  # module id -> first path, aliases, table
    modules: dict[int, nn.Linear] = {}
    for path, module in linears:
        keys = _covering(by, tables, path)
        table = {k: v for key in keys for k, v in tables[key].items()}
        if id(module) in chosen:
            first, aliases, first_table = chosen[id(module)]
            if table != first_table:
                raise QuantizeConfigError(f"{path!r} and {first!r} are one shared module but get different tables; "
                                          "give both paths the same config")
            aliases.append(path)
            continue
        modules[id(module)] = module
        chosen[id(module)] = (path, [], table if keys else {"name": None})

    report = QuantizeReport(by)
    swap: dict[int, nn.Module] = {}
    for key, (path, aliases, table) in chosen.items():
        module = modules[key]
        where = f"layer {path!r} (tables: {', '.join(_covering(by, tables, path)) or 'none'})"
        formats = layer_formats(table, where, module.bias is not None)
        if formats is None:
            report.float_layers.append(path)
            continue
        _check_blocks(formats, module.in_features, where)
        new = FormatLinear.from_linear(module, formats)
        move_parametrizations(module, new)
        swap[key] = new
        report.changed.append(QuantizedLayer(path, base_type_name(module), base_type_name(new), formats.describe(),
                                            tuple(aliases)))
    replace_modules(model, swap)
    return report


def dequantize_module(model: nn.Module) -> int:
    """Replace every FormatLinear by a plain nn.Linear with the same weight, bias and
    parametrizations, in place; returns how many were replaced."""
    swap: dict[int, nn.Module] = {}
    for module in model.modules():
        if isinstance(module, FormatLinear) and id(module) not in swap:
            w = module.weight
            plain = nn.Linear(module.in_features, module.out_features, module.bias is not None,
                              device=w.device, dtype=w.dtype)
            with torch.no_grad():
                plain.weight.copy_(w)
                if module.bias is not None:
                    plain.bias.copy_(module.bias)
            plain.weight.requires_grad_(w.requires_grad)
            if module.bias is not None:
                plain.bias.requires_grad_(module.bias.requires_grad)
            move_parametrizations(module, plain)
            swap[id(module)] = plain.train(module.training)
    replace_modules(model, swap)
    return len(swap)
