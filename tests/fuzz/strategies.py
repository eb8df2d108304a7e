"""Hypothesis strategies drawing whole designs; Hypothesis shrinks a failing one towards the
smallest (fewer layers, smaller sizes, narrower formats, simpler modes)."""
from __future__ import annotations

from dataclasses import replace
from typing import Any

from hypothesis import strategies as st

from tests.fuzz.spec import TRANSFORMER_OPS, DesignSpec, LayerSpec, lockstep_concat

MAX_WIDTH = 16
MAX_FEATURES = 64
MAX_DEPTH = 4
CYCLE_BUDGET = 20_000  # vectors x II: a deep folded design simulates fewer vectors (8 at least)
# after each Linear: nothing, one activation, two in a row, or eval-mode dropout (wiring) among them
ACTIVATIONS = ["none", "relu", "leaky_relu", "relu+leaky_relu", "leaky_relu+relu", "dropout+relu",
               "leaky_relu+dropout", "gelu", "layer_norm", "softmax", "layer_norm+gelu", "relu+softmax",
               "layer_norm+softmax"]
JOINS = ["none", "none", "residual", "concat"]  # a residual add or a concatenation with the layer's input


def divisors(n: int) -> list[int]:
    """Parallelism choices for n features, smallest first (1 multiplier ... fully parallel)."""
    return [d for d in range(1, n + 1) if n % d == 0]


@st.composite
def formats(draw: st.DrawFn, max_width: int = MAX_WIDTH) -> tuple[int, int, bool]:
    """Fixed formats of widths 1..16, signed or not, fracs negative, zero and beyond the width."""
    width = draw(st.integers(1, max_width))
    frac = draw(st.integers(-4, width + 4))
    return width, frac, draw(st.booleans())


@st.composite
def op_formats(draw: st.DrawFn, activation: str) -> dict[str, tuple[int, int, bool] | None]:
    """A transformer op's formats, within what its components take: signed fixed point, frac >= 0
    (softmax's input >= 3, so its step stays under a third of ln 2), products within 62 bits."""
    if not set(activation.split("+")) & set(TRANSFORMER_OPS):
        return {"op_in": None, "op_out": None, "op_affine": None}
    in_width = draw(st.integers(4, 14))
    low = 3 if "softmax" in activation else 0
    in_frac = draw(st.integers(min(low, in_width), max(min(in_width, 10), low)))
    out_width = draw(st.integers(3, 14))
    out_frac = draw(st.integers(0, min(out_width, 10)))
    affine = None
    if "layer_norm" in activation:
        affine_width = draw(st.integers(3, 10))
        affine = (affine_width, draw(st.integers(1, affine_width - 1)), True)
    return {"op_in": (in_width, in_frac, True), "op_out": (out_width, out_frac, True), "op_affine": affine}


@st.composite
def layers(draw: st.DrawFn) -> tuple[LayerSpec, bool]:
    """One layer, and whether it reads the previous layer's output format as is (no cast)."""
    out_features = draw(st.integers(1, MAX_FEATURES))
    activation = draw(st.sampled_from(ACTIVATIONS))
    layer = LayerSpec(
        out_features=out_features, data_in=draw(formats()), weight=draw(formats()), bias=draw(formats()),
        data_out=draw(formats()),
        rounding=draw(st.sampled_from(["half_up", "floor", "half_even"])),
        overflow=draw(st.sampled_from(["saturate", "wrap"])),
        activation=activation,
        leaky_shift=draw(st.integers(1, 6)),
        out_par=draw(st.sampled_from(divisors(out_features))),
        has_bias=draw(st.booleans()),
        join=draw(st.sampled_from(JOINS)),
        join_out=draw(formats()),
        multiplier=draw(st.sampled_from(["dsp", "auto", "auto"])),
        pipeline_every=draw(st.integers(0, 3)),
        **draw(op_formats(activation)),
    )
    return layer, draw(st.booleans())


@st.composite
def designs(draw: st.DrawFn) -> DesignSpec:
    """Depth 1..4, sizes 1..64, every format class, mode and parallelism from full to 1.

    Layers are a list, so the shrinker can delete whole layers of a failing design.
    """
    in_features = draw(st.integers(1, MAX_FEATURES))
    in_par = draw(st.sampled_from(divisors(in_features)))
    drawn = draw(st.lists(layers(), min_size=1, max_size=MAX_DEPTH))
    chain: list[LayerSpec] = []
    n_in, par = in_features, in_par
    for layer, same_format in drawn:
        if chain and same_format:  # half the layers read the previous output format: no cast
            previous = chain[-1]
            layer = replace(layer, data_in=previous.join_out if previous.join != "none" else previous.data_out)
        if layer.join == "residual":  # the branch must match its input: same size, same beat width
            layer = replace(layer, out_features=n_in, out_par=par)
        elif layer.join == "concat" and n_in + layer.out_features <= 2 * MAX_FEATURES:
            if par == n_in and draw(st.booleans()):  # both inputs fully parallel: a lockstep concat, one beat
                layer = replace(layer, out_par=layer.out_features)
            else:  # beat-serial: the branch carries the input's beat width
                layer = replace(layer, out_features=max(par, layer.out_features // par * par), out_par=par)
        else:
            layer = replace(layer, join="none")
        if layer.join == "none":
            layer = replace(layer, join_out=None)
        if layer.multiplier == "dsp":
            layer = replace(layer, pipeline_every=0)
        chain.append(layer)
        n_out = layer.out_features + (n_in if layer.join == "concat" else 0)
        n_in, par = n_out, n_out if lockstep_concat(layer, n_in, par) else layer.out_par
    vectors = min(draw(st.integers(8, 40)), max(8, CYCLE_BUDGET // slowest_stage(in_features, in_par, chain)))
    return DesignSpec(in_features=in_features, in_par=in_par, layers=tuple(chain), vectors=vectors,
                      seed=draw(st.integers(0, 2**16)))


MAX_SEQUENCE = 8


@st.composite
def attention(draw: st.DrawFn, features: int, par: int, sequence: int) -> dict[str, Any]:
    """An attention block after a layer of ``features`` outputs at ``par`` a beat: its scale, the
    matmuls' and the softmax's formats (signed fixed point, frac >= 0, softmax's input frac >= 3) and
    parallelism (Q·Kᵀ's out_par a divisor of the sequence; A·V's a divisor of the features of at
    least ``par``, the beat width of the V stream it buffers)."""
    def fmt(low_width: int, high_width: int, low_frac: int = 0) -> tuple[int, int, bool]:
        width = draw(st.integers(low_width, high_width))
        return width, draw(st.integers(min(low_frac, width), max(min(width, 10), low_frac))), True

    return {"shift": draw(st.integers(0, 3)), "qk_par": draw(st.sampled_from(divisors(sequence))),
            "av_par": draw(st.sampled_from([d for d in divisors(features) if d >= par])),
            "mm_in": fmt(4, 12), "qk_out": fmt(4, 14), "av_out": fmt(3, 14),
            "softmax_in": fmt(4, 14, 3), "softmax_out": (11, draw(st.integers(1, 10)), False)}  # its frac counts


@st.composite
def attention_designs(draw: st.DrawFn) -> DesignSpec:
    """A sequence design ((vectors, 2..8 tokens, features) inputs): designs() over tokens, with at
    least one layer followed by a single-head self-attention block (q = k = v = its output); half of
    them take an attention key mask as a second input (every block's scores masked before its softmax)."""
    spec = draw(designs())
    sequence = draw(st.integers(2, MAX_SEQUENCE))
    chain: list[LayerSpec] = []
    attended = draw(st.integers(0, len(spec.layers) - 1))
    for index, layer in enumerate(spec.layers):
        if index == attended or (index > attended and draw(st.integers(0, 3)) == 0):
            # the block replaces the layer's join; a residual's next layer reads the same width
            layer = replace(layer, join="attention", join_out=None,
                            attention=draw(attention(layer.out_features, layer.out_par, sequence)))
        chain.append(layer)
    chain = _rebuild(spec.in_features, spec.in_par, chain)
    vectors = min(spec.vectors, max(8, CYCLE_BUDGET // slowest_stage(spec.in_features, spec.in_par, chain,
                                                                      sequence)))
    return replace(spec, layers=tuple(chain), vectors=vectors, sequence=sequence, mask=draw(st.booleans()))


def fuzz_designs() -> st.SearchStrategy[DesignSpec]:
    """What the fuzzer draws: designs(), and sequence designs with attention blocks."""
    return st.one_of(designs(), attention_designs())


def _rebuild(in_features: int, in_par: int, chain: list[LayerSpec]) -> list[LayerSpec]:
    """The chain after a layer's join changed: each later layer reads what the one before gives
    (a residual's width and beat width, a lockstep concat's condition)."""
    out: list[LayerSpec] = []
    n_in, par = in_features, in_par
    for layer in chain:
        if layer.join == "residual":
            layer = replace(layer, out_features=n_in, out_par=par)
        elif layer.join == "concat" and not (par == n_in and layer.out_par == layer.out_features):
            layer = replace(layer, out_features=max(par, layer.out_features // par * par), out_par=par)
        if layer.join == "attention" and layer.attention["av_par"] < layer.out_par:
            layer = replace(layer, attention={**layer.attention, "av_par": layer.out_features})
        out.append(layer)
        spec = DesignSpec(in_features, in_par, tuple(out))
        n_in_last, _, n_out = spec.streams()[-1]
        n_in, par = n_out, (n_out if lockstep_concat(layer, n_in_last, par) else
                            layer.attention["av_par"] if layer.join == "attention" else layer.out_par)
    return out


def slowest_stage(in_features: int, in_par: int, chain: list[LayerSpec], sequence: int = 1) -> int:
    """The design's initiation interval in cycles (its slowest linear, or the beats of a join's output;
    a sequence design's times its tokens, and an attention block's softmax rows)."""
    spec = DesignSpec(in_features, in_par, tuple(chain))
    intervals = []
    for layer, (n_in, par, n_out) in zip(chain, spec.streams()):
        constant = layer.multiplier == "auto" and par == n_in and layer.out_par == layer.out_features
        intervals.append(1 if constant else (n_in // par) * (layer.out_features // layer.out_par))
        intervals.append(1 if lockstep_concat(layer, n_in, par) else n_out // layer.out_par)
        if set(layer.activation.split("+")) & {"layer_norm", "softmax"}:  # a row op: about 3 passes and 64 steps
            intervals.append(3 * layer.out_features // layer.out_par + 64)
        if layer.attention is not None:  # softmax rows of the sequence, and the matmuls' B loads and groups
            intervals.append(3 * sequence // layer.attention["qk_par"] + 64
                             + 2 * layer.out_features * (sequence + 2) // max(layer.attention["qk_par"], 1))
    return sequence * max(intervals)
