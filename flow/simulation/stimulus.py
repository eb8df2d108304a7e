"""Stimulus for simulating one library component: random codes with the extremes, the library's
sources, a random QuantLinear and its SystemVerilog parameters (shared by tests/sim and benches)."""
from __future__ import annotations

import hashlib
import os
import random
from pathlib import Path

import torch

from flow.circuits.components import linear_parameters as component_parameters
from flow.circuits.components import linear_steps
from flow.formats.fixed import FixedFormat, dequantize
from flow.nn import QuantLinear
from flow.ops.linear import bias_literal, weight_literals, weights_hex
from flow.simulation.verilator import default_build_root
from flow.toolchain import rtl_dir


def library_sources() -> list[Path]:
    """Every hand-written component: small, so each build reads them all."""
    return sorted(rtl_dir().glob("*.sv"))


def random_codes(fmt: FixedFormat, count: int, rng: random.Random) -> list[int]:
    """Random codes of ``fmt`` that always include its extremes, zero and +-1."""
    specials = [fmt.min_code, fmt.max_code, 0, min(1, fmt.max_code), max(-1, fmt.min_code)]
    codes = [rng.randint(fmt.min_code, fmt.max_code) for _ in range(count)]
    for index, special in enumerate(specials[: count]):
        codes[rng.randrange(count) if index else 0] = special
    return codes


def to_unsigned(codes: list[int], width: int) -> list[int]:
    """Two's complement bit patterns, as the stream carries them."""
    mask = (1 << width) - 1
    return [c & mask for c in codes]


def linear_parameters(layer: QuantLinear, in_par: int, out_par: int) -> dict:
    """The SystemVerilog parameters of one quantized layer: bias as a literal; weights as a literal
    when fully parallel, else a ROM file named by its absolute path (``weights_file``)."""
    if linear_steps(layer.in_features, layer.out_features, in_par, out_par) == 1:
        return component_parameters(layer, in_par, out_par, weight_literals(layer)[0], bias_literal(layer))
    return component_parameters(layer, in_par, out_par, None, bias_literal(layer),
                                weights_file=str(weights_file(layer, in_par, out_par)))


def weights_file(layer: QuantLinear, in_par: int, out_par: int):
    """A folded layer's ROM file, written once under the build cache and named by its contents, so
    equal layers give equal parameters (one cached build) in any test folder or working directory."""
    text = weights_hex(layer, in_par, out_par)
    folder = default_build_root() / "memories"
    path = folder / f"linear-{hashlib.sha256(text.encode()).hexdigest()[:16]}.hex"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / f"{path.name}.{os.getpid()}"
        tmp.write_text(text)
        tmp.replace(path)
    return path.resolve()


def random_layer(n_in, n_out, config, rng) -> QuantLinear:
    """A layer whose weight and bias codes are random, extremes included."""
    layer = QuantLinear(n_in, n_out, config=config)
    w = torch.tensor(random_codes(config.weight, n_in * n_out, rng)).view(n_out, n_in)
    b = torch.tensor(random_codes(config.bias, n_out, rng))
    with torch.no_grad():
        layer.weight.copy_(dequantize(w, config.weight, torch.float64))
        layer.bias.copy_(dequantize(b, config.bias, torch.float64))
    return layer
