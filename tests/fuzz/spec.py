"""A fuzzed design as plain data: layer shapes, formats, modes, activations, parallelism.

A spec is JSON (the corpus stores it) and turns into everything emission needs: a float
``nn.Sequential`` with seeded weights that exercise each format's range, rounding ties and
overflow, seeded inputs, labels, and the design config's quantization and parallelism tables.
"""
from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

Fmt = tuple[int, int, bool]  # width, frac, signed
TRANSFORMER_OPS = ("gelu", "layer_norm", "softmax")  # activations with their own formats (LayerSpec.op_*)


@dataclass(frozen=True)
class LayerSpec:
    """One Linear, its formats and modes, the activation after it, and its output parallelism."""

    out_features: int
    data_in: Fmt
    weight: Fmt
    bias: Fmt
    data_out: Fmt
    rounding: str = "half_up"
    overflow: str = "saturate"
    activation: str = "none"  # none, relu, leaky_relu, gelu, layer_norm, softmax, or two joined by "+"
    leaky_shift: int = 3
    out_par: int = 1
    has_bias: bool = True
    join: str = "none"  # none; residual: x + layer(x); concat: cat([layer(x), x]) (x: the layer's input)
    join_out: Fmt | None = None  # the add's or concat's output format (its rounding/overflow: the layer's)
    multiplier: str = "dsp"  # dsp, or auto: shift-add constants when the layer is fully parallel
    pipeline_every: int = 0  # adder levels per register in a shift-add layer
    op_in: Fmt | None = None  # a transformer op's (gelu, layer_norm, softmax) data_in; its data_out: op_out
    op_out: Fmt | None = None  # (softmax: its frac, one integer bit, unsigned)
    op_affine: Fmt | None = None  # a LayerNorm's affine weight and bias format
    # join "attention" (a sequence design): y -> softmax((y @ yᵀ) / 2**shift) @ y, its keys: shift, qk_par
    # (Q·Kᵀ's out_par), av_par (A·V's), mm_in (both matmuls' operands), qk_out, av_out, softmax_in, softmax_out
    attention: dict[str, Any] | None = None


@dataclass(frozen=True)
class DesignSpec:
    """A whole design: input size, the first layer's input parallelism, layers, vectors, seed."""

    in_features: int
    in_par: int
    layers: tuple[LayerSpec, ...]
    vectors: int = 24
    seed: int = 0
    sequence: int = 1  # tokens a sample (> 1: inputs (vectors, sequence, in_features), a sequence design)
    mask: bool = False  # a sequence design's attention key mask: a second input (vectors, sequence) of 0/1
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        """Plain data; a layer's transformer-op formats only where it has them (older corpus keys hold)."""
        data = asdict(self)
        data.pop("extra")
        if data["sequence"] == 1:
            del data["sequence"]
        if not data["mask"]:
            del data["mask"]
        for layer in data["layers"]:
            for key in ("op_in", "op_out", "op_affine", "attention"):
                if layer[key] is None:
                    del layer[key]
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DesignSpec:
        def value(v: Any) -> Any:
            if isinstance(v, dict):
                return {k: value(x) for k, x in v.items()}
            return tuple(v) if isinstance(v, list) else v

        layers = tuple(LayerSpec(**{k: value(v) for k, v in layer.items()}) for layer in data["layers"])
        return cls(data["in_features"], data["in_par"], layers, data.get("vectors", 24), data.get("seed", 0),
                   data.get("sequence", 1), data.get("mask", False))

    @property
    def key(self) -> str:
        """A short stable name for the design (corpus file names, build folders)."""
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:10]

    def streams(self) -> list[tuple[int, int, int]]:
        """(features in, beat width in, features out after the join) of every layer."""
        shapes, n_in, par = [], self.in_features, self.in_par
        for layer in self.layers:
            n_out = layer.out_features + (n_in if layer.join == "concat" else 0)
            shapes.append((n_in, par, n_out))
            n_in, par = n_out, (n_out if lockstep_concat(layer, shapes[-1][0], par) else
                                layer.attention["av_par"] if layer.join == "attention" else layer.out_par)
        return shapes

    def describe(self) -> str:
        sizes = " -> ".join(str(n) for n in [self.in_features, *(n for _, _, n in self.streams())])
        tokens = f", {self.sequence} tokens a sample" if self.sequence > 1 else ""
        tokens += ", key mask" if self.mask else ""
        return f"{sizes} ({len(self.layers)} layers, {self.vectors} vectors{tokens})"


def lockstep_concat(layer: LayerSpec, n_in: int, par: int) -> bool:
    """Whether the layer's concat joins two fully parallel streams (its output and its input of
    ``n_in`` features at ``par`` per beat): flow makes it one beat of both, II 1."""
    return layer.join == "concat" and par == n_in and layer.out_par == layer.out_features


def _fmt_text(fmt: Fmt) -> str:
    return f"{'s' if fmt[2] else 'u'}{fmt[0]}.{fmt[1]}"


def layer_name(index: int) -> str:
    return f"fc{index + 1}"


class FuzzNet(nn.Module):
    """fc1, act1, fc2, ... run in order; a layer with a join adds its input back or appends it."""

    def __init__(self, spec: DesignSpec, generator: torch.Generator) -> None:
        super().__init__()
        self.joins = [layer.join for layer in spec.layers]
        self.shifts = [layer.attention["shift"] if layer.attention else 0 for layer in spec.layers]
        self.activations: list[list[str]] = []
        for index, (layer, (n_in, _, _)) in enumerate(zip(spec.layers, spec.streams())):
            linear = nn.Linear(n_in, layer.out_features, bias=layer.has_bias)
            with torch.no_grad():
                linear.weight.copy_(values_in_range(layer.weight, (layer.out_features, n_in), generator))
                if layer.has_bias:
                    linear.bias.copy_(values_in_range(layer.bias, (layer.out_features,), generator))
            self.add_module(layer_name(index), linear)
            names = []
            for name, activation in activation_names(index, layer):
                self.add_module(name, _activation(activation, layer, generator))
                names.append(name)
            self.activations.append(names)
            if layer.join == "attention":
                self.add_module(attention_softmax(index), nn.Softmax(dim=-1))

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        for index, (join, names) in enumerate(zip(self.joins, self.activations)):
            y = getattr(self, layer_name(index))(x)
            for name in names:
                y = getattr(self, name)(y)
            if join == "attention":  # single-head self-attention with q = k = v = y
                scores = y @ y.transpose(-2, -1)
                scores = scores / 2 ** self.shifts[index] if self.shifts[index] else scores
                if mask is not None:  # BERT's additive key mask (one key_mask stage before the softmax)
                    scores = scores + (1 - mask[:, None, :]) * torch.finfo(scores.dtype).min
                x = getattr(self, attention_softmax(index))(scores) @ y
            else:
                x = x + y if join == "residual" else torch.cat([y, x], dim=-1) if join == "concat" else y
        return x


def attention_softmax(index: int) -> str:
    return f"attn{index + 1}_softmax"


def _activation(activation: str, layer: LayerSpec, generator: torch.Generator) -> nn.Module:
    """The module of one activation (eval-mode dropout lowers as wiring)."""
    if activation == "layer_norm":
        return _layer_norm(layer, generator)
    return {"relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(2.0 ** -layer.leaky_shift), "dropout": lambda: nn.Dropout(0.5),
            "gelu": nn.GELU, "softmax": lambda: nn.Softmax(dim=-1)}[activation]()


def _layer_norm(layer: LayerSpec, generator: torch.Generator) -> nn.LayerNorm:
    """A LayerNorm over the layer's outputs, its affine weight and bias spread over their format."""
    norm = nn.LayerNorm(layer.out_features)
    if layer.op_affine is not None:
        with torch.no_grad():
            norm.weight.copy_(values_in_range(layer.op_affine, (layer.out_features,), generator))
            norm.bias.copy_(values_in_range(layer.op_affine, (layer.out_features,), generator))
    return norm


def activation_names(index: int, layer: LayerSpec) -> list[tuple[str, str]]:
    """(module name, activation) of the layer's activations; dropout is wiring and keeps no table."""
    names = []
    for position, activation in enumerate(layer.activation.split("+")):
        if activation != "none":
            suffix = f"{index + 1}" + ("" if position == 0 else f"_{position + 1}")
            names.append((f"{'drop' if activation == 'dropout' else 'act'}{suffix}", activation))
    return names


def build_model(spec: DesignSpec) -> nn.Module:
    """The float model, with weights spread over each weight format's range."""
    return FuzzNet(spec, torch.Generator().manual_seed(spec.seed)).eval()


def join_names(spec: DesignSpec) -> list[str | None]:
    """The lowered name of each layer's join: torch.export numbers adds and cats in order."""
    names, counts = [], {"residual": 0, "concat": 0}
    for layer in spec.layers:
        if layer.join in ("none", "attention"):
            names.append(None)
            continue
        base, count = ("add" if layer.join == "residual" else "cat"), counts[layer.join]
        names.append(base if count == 0 else f"{base}_{count}")
        counts[layer.join] += 1
    return names


def matmul_names(spec: DesignSpec) -> list[tuple[str, str] | None]:
    """The lowered names of each attention block's Q·Kᵀ and A·V: torch.export numbers matmuls in order."""
    names, count = [], 0
    for layer in spec.layers:
        if layer.join != "attention":
            names.append(None)
            continue
        names.append(tuple(f"matmul_{n}" if n else "matmul" for n in (count, count + 1)))
        count += 2
    return names


def values_in_range(fmt: Fmt, shape: tuple[int, ...], generator: torch.Generator) -> torch.Tensor:
    """Reals over a format's range and a bit beyond it (saturation and wrap), with exact zeros,
    exact codes and exact rounding ties mixed in, so every cast path is taken."""
    width, frac, signed = fmt
    lsb = 2.0 ** -frac
    lo = -(2 ** (width - 1)) if signed else 0
    hi = 2 ** (width - 1) - 1 if signed else 2**width - 1
    span = max(hi - lo, 1)
    codes = lo - 0.25 * span + torch.rand(shape, generator=generator, dtype=torch.float64) * 1.5 * span
    kind = torch.randint(0, 4, shape, generator=generator)
    values = torch.where(kind == 0, codes.floor() + 0.5, codes)  # ties
    values = torch.where(kind == 1, codes.round(), values)  # exact codes
    values = torch.where((kind == 2) & (torch.rand(shape, generator=generator) < 0.5), 0.0, values)
    return (values * lsb).float()


def inputs(spec: DesignSpec) -> torch.Tensor:
    """Seeded input reals for the first layer's input format (extremes included)."""
    generator = torch.Generator().manual_seed(spec.seed + 1)
    shape = (spec.vectors, spec.sequence, spec.in_features) if spec.sequence > 1 else (spec.vectors, spec.in_features)
    x = values_in_range(spec.layers[0].data_in, shape, generator)
    width, frac, signed = spec.layers[0].data_in
    x[0] = (2 ** (width - 1) - 1 if signed else 2**width - 1) * 2.0 ** -frac  # the largest code
    x[1] = (-(2 ** (width - 1)) if signed else 0) * 2.0 ** -frac  # the smallest
    return x


def masks(spec: DesignSpec) -> torch.Tensor | None:
    """A masked design's seeded key masks (1 = a real token): random real lengths, padding at the end,
    the first sample all real and the second one real token; None for a design without a mask."""
    if not spec.mask:
        return None
    generator = torch.Generator().manual_seed(spec.seed + 2)
    lengths = torch.randint(1, spec.sequence + 1, (spec.vectors,), generator=generator)
    lengths[0], lengths[1:2] = spec.sequence, 1
    return (torch.arange(spec.sequence)[None, :] < lengths[:, None]).long()


def config_overrides(spec: DesignSpec, output_dir: str, name: str) -> dict[str, Any]:
    """The design config (dotted keys, as CLI flags) giving each layer its formats and parallelism."""
    overrides: dict[str, Any] = {"design.output_dir": output_dir, "design.name": name,
                                 "parallelism.default.in_par": "auto"}
    for index, layer in enumerate(spec.layers):
        q, p = f"quantization.{layer_name(index)}", f"parallelism.{layer_name(index)}"
        for key, fmt in (("data_in", layer.data_in), ("weight", layer.weight), ("bias", layer.bias),
                         ("data_out", layer.data_out)):
            overrides[f"{q}.{key}_width"], overrides[f"{q}.{key}_frac_width"] = fmt[0], fmt[1]
            overrides[f"{q}.{key}_signed"] = fmt[2]
        overrides[f"{q}.rounding"], overrides[f"{q}.overflow"] = layer.rounding, layer.overflow
        overrides[f"{p}.out_par"] = layer.out_par
        overrides[f"{p}.multiplier"], overrides[f"{p}.pipeline_every"] = layer.multiplier, layer.pipeline_every
        if index == 0:
            overrides[f"{p}.in_par"] = spec.in_par
        for name, activation in activation_names(index, layer):
            if activation in TRANSFORMER_OPS:
                q = f"quantization.{name}"
                for key, fmt in (("data_in", layer.op_in), ("data_out", layer.op_out), ("weight", layer.op_affine)):
                    if fmt is not None:
                        overrides[f"{q}.{key}_width"], overrides[f"{q}.{key}_frac_width"] = fmt[0], fmt[1]
                        overrides[f"{q}.{key}_signed"] = fmt[2]
    for index, (layer, matmuls) in enumerate(zip(spec.layers, matmul_names(spec))):
        if matmuls is None:
            continue
        a = layer.attention
        tables = ((matmuls[0], a["mm_in"], a["qk_out"], a["qk_par"]), (matmuls[1], a["mm_in"], a["av_out"], a["av_par"]),
                  (attention_softmax(index), a["softmax_in"], a["softmax_out"], None))
        for name, fmt_in, fmt_out, out_par in tables:
            q = f"quantization.{name}"
            for key, fmt in (("data_in", fmt_in), ("data_out", fmt_out)):
                overrides[f"{q}.{key}_width"], overrides[f"{q}.{key}_frac_width"] = fmt[0], fmt[1]
                overrides[f"{q}.{key}_signed"] = fmt[2]
            overrides[f"{q}.rounding"], overrides[f"{q}.overflow"] = layer.rounding, layer.overflow
            if out_par is not None:
                overrides[f"parallelism.{name}.out_par"] = out_par
    for layer, join in zip(spec.layers, join_names(spec)):
        if join is not None and layer.join_out is not None:
            q = f"quantization.{join}"
            width, frac, signed = layer.join_out
            overrides.update({f"{q}.data_out_width": width, f"{q}.data_out_frac_width": frac,
                              f"{q}.data_out_signed": signed, f"{q}.rounding": layer.rounding,
                              f"{q}.overflow": layer.overflow})
    return overrides


def _attention_text(a: dict[str, Any]) -> str:
    return (f" attention 2^-{a['shift']} {_fmt_text(a['mm_in'])} -> {_fmt_text(a['qk_out'])} par {a['qk_par']}, "
            f"softmax {_fmt_text(a['softmax_in'])} -> {_fmt_text(a['softmax_out'])}, A·V -> {_fmt_text(a['av_out'])} "
            f"par {a['av_par']}")


def summary_line(spec: DesignSpec) -> str:
    """One line per layer: formats, modes, activation, parallelism (for logs and failure reports)."""
    parts = []
    for index, layer in enumerate(spec.layers):
        act = layer.activation.replace("leaky_relu", f"leaky2^-{layer.leaky_shift}")
        parts.append(f"{layer_name(index)}[{_fmt_text(layer.data_in)} x {_fmt_text(layer.weight)} + "
                     f"{_fmt_text(layer.bias) if layer.has_bias else 'nobias'} -> {_fmt_text(layer.data_out)} "
                     f"{layer.rounding}/{layer.overflow} {act} par {layer.out_par}"
                     + (f" {layer.join} -> {_fmt_text(layer.join_out)}" if layer.join_out is not None else "")
                     + (f" {layer.multiplier}/{layer.pipeline_every}" if layer.multiplier != "dsp" else "")
                     + (f" op {_fmt_text(layer.op_in)} -> {_fmt_text(layer.op_out)}" if layer.op_in else "")
                     + (f" affine {_fmt_text(layer.op_affine)}" if layer.op_affine else "")
                     + (_attention_text(layer.attention) if layer.attention else "") + "]")
    return f"{spec.describe()} in_par {spec.in_par}: " + "; ".join(parts)
