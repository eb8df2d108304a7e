"""Hypothesis strategies drawing whole designs; Hypothesis shrinks a failing one towards the
smallest (fewer layers, smaller sizes, narrower formats, simpler modes)."""
from __future__ import annotations

from dataclasses import replace

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


def slowest_stage(in_features: int, in_par: int, chain: list[LayerSpec]) -> int:
    """The design's initiation interval in cycles (its slowest linear, or the beats of a join's output)."""
    spec = DesignSpec(in_features, in_par, tuple(chain))
    intervals = []
    for layer, (n_in, par, n_out) in zip(chain, spec.streams()):
        constant = layer.multiplier == "auto" and par == n_in and layer.out_par == layer.out_features
        intervals.append(1 if constant else (n_in // par) * (layer.out_features // layer.out_par))
        intervals.append(1 if lockstep_concat(layer, n_in, par) else n_out // layer.out_par)
        if set(layer.activation.split("+")) & {"layer_norm", "softmax"}:  # a row op: about 3 passes and 64 steps
            intervals.append(3 * layer.out_features // layer.out_par + 64)
    return max(intervals)
