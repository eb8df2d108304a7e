"""A fuzzed design as plain data: layer shapes, formats, modes, activations, parallelism.

A spec is JSON (the corpus stores it) and turns into everything emission needs: a float
``nn.Sequential`` with seeded weights that exercise each format's range, rounding ties and
overflow, seeded inputs, labels, and the design config's quantization and parallelism tables.
"""
from __future__ import annotations

import hashlib
import json
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

Fmt = tuple[int, int, bool]  # width, frac, signed


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
    activation: str = "none"  # none, relu, leaky_relu, or two joined by "+" (e.g. relu+leaky_relu)
    leaky_shift: int = 3
    out_par: int = 1
    has_bias: bool = True


@dataclass(frozen=True)
class DesignSpec:
    """A whole design: input size, the first layer's input parallelism, layers, vectors, seed."""

    in_features: int
    in_par: int
    layers: tuple[LayerSpec, ...]
    vectors: int = 24
    seed: int = 0
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("extra")
        return data

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> DesignSpec:
        layers = tuple(LayerSpec(**{k: tuple(v) if isinstance(v, list) else v for k, v in layer.items()})
                       for layer in data["layers"])
        return cls(data["in_features"], data["in_par"], layers, data.get("vectors", 24), data.get("seed", 0))

    @property
    def key(self) -> str:
        """A short stable name for the design (corpus file names, build folders)."""
        return hashlib.sha256(json.dumps(self.to_json(), sort_keys=True).encode()).hexdigest()[:10]

    def describe(self) -> str:
        sizes = " -> ".join(str(n) for n in [self.in_features, *(layer.out_features for layer in self.layers)])
        return f"{sizes} ({len(self.layers)} layers, {self.vectors} vectors)"


def _fmt_text(fmt: Fmt) -> str:
    return f"{'s' if fmt[2] else 'u'}{fmt[0]}.{fmt[1]}"


def layer_name(index: int) -> str:
    return f"fc{index + 1}"


def build_model(spec: DesignSpec) -> nn.Sequential:
    """The float model: fc1, act1, fc2, ... with weights spread over each weight format's range."""
    generator = torch.Generator().manual_seed(spec.seed)
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    n_in = spec.in_features
    for index, layer in enumerate(spec.layers):
        linear = nn.Linear(n_in, layer.out_features, bias=layer.has_bias)
        with torch.no_grad():
            linear.weight.copy_(values_in_range(layer.weight, (layer.out_features, n_in), generator))
            if layer.has_bias:
                linear.bias.copy_(values_in_range(layer.bias, (layer.out_features,), generator))
        modules[layer_name(index)] = linear
        for position, activation in enumerate(layer.activation.split("+")):
            suffix = f"{index + 1}" + ("" if position == 0 else f"_{position + 1}")
            if activation == "relu":
                modules[f"act{suffix}"] = nn.ReLU()
            elif activation == "leaky_relu":
                modules[f"act{suffix}"] = nn.LeakyReLU(2.0 ** -layer.leaky_shift)
            elif activation == "dropout":
                modules[f"drop{suffix}"] = nn.Dropout(0.5)  # eval mode: wiring
        n_in = layer.out_features
    return nn.Sequential(modules).eval()


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
    x = values_in_range(spec.layers[0].data_in, (spec.vectors, spec.in_features), generator)
    width, frac, signed = spec.layers[0].data_in
    x[0] = (2 ** (width - 1) - 1 if signed else 2**width - 1) * 2.0 ** -frac  # the largest code
    x[1] = (-(2 ** (width - 1)) if signed else 0) * 2.0 ** -frac  # the smallest
    return x


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
        if index == 0:
            overrides[f"{p}.in_par"] = spec.in_par
    return overrides


def summary_line(spec: DesignSpec) -> str:
    """One line per layer: formats, modes, activation, parallelism (for logs and failure reports)."""
    parts = []
    for index, layer in enumerate(spec.layers):
        act = layer.activation.replace("leaky_relu", f"leaky2^-{layer.leaky_shift}")
        parts.append(f"{layer_name(index)}[{_fmt_text(layer.data_in)} x {_fmt_text(layer.weight)} + "
                     f"{_fmt_text(layer.bias) if layer.has_bias else 'nobias'} -> {_fmt_text(layer.data_out)} "
                     f"{layer.rounding}/{layer.overflow} {act} par {layer.out_par}]")
    return f"{spec.describe()} in_par {spec.in_par}: " + "; ".join(parts)
