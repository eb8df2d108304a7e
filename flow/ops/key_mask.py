"""key_mask: BERT's attention key mask on the scores stream (hw/rtl/key_mask.sv).

A model ``forward(x, mask)`` whose second input is a (batch, sequence) 0/1 attention mask (int,
bool or float; 1 = a real token) makes a design with a second input stream, ``s_axis_mask``: a
sample's mask as ``sequence`` one-bit beats (stream ``MASK``). Hugging Face BERT adds ``(1 - mask)
* finfo.min`` (or ``where(mask, 0, finfo.min)``) to the attention scores before the softmax;
QuantSoftmax's input quantization then saturates every masked key to the softmax input format's
lowest code, so its exp is 0. The hardware does that directly: the scores of a sample arrive as
rows (one a query token) of ``sequence`` elements (one a key token), cast to the softmax's input
format, and every element of a masked column becomes that format's lowest code.

Lowering (role "mask"): every node computed from the mask and constants alone (``unsqueeze``,
``to``, ``rsub``, ``mul``, ``eq``, ``where``, ``expand``, ``index``, ``arange``, ``__and__`` ...,
the ops listed in ``MASK_OPS``) is kept aside; the node that meets the scores, ``add(scores,
bias)``, ``masked_fill(scores, cond, value)`` or ``where(cond, scores, value)``, read only by
``softmax(-1)``, becomes one ``key_mask`` layer (one a head of multi-head attention, the mask stream
forked to each). The mask's subgraph is evaluated on probe masks, and it must be a key mask: the
same very negative value on every masked key of every row and head, nothing added elsewhere;
anything else is a one-line error. The value must lie at or below what the softmax input format
saturates (checked when the design is built).

The exact reference is :func:`key_mask_codes`.
"""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from flow.circuits.components import key_mask_cycles, key_mask_parameters
from flow.errors import ConfigError
from flow.formats.base import Rounding
from flow.formats.fixed import FixedFormat
from flow.graph.capture import owner
from flow.graph.ops import op_name
from flow.ops.base import (
    INPUT,
    MASK,
    Build,
    FloatLayer,
    Lowering,
    LoweringError,
    Op,
    Stage,
    StreamInfo,
    Times,
    op_with_role,
    register_op,
)
from flow.ops.cast import cast_to

# ops a mask may pass through before it meets the scores (what HF's additive, masked_fill and
# create_bidirectional_mask forms export as), each evaluated on probe masks
MASK_OPS = frozenset({
    "unsqueeze", "view", "reshape", "_unsafe_view", "expand", "slice", "select", "squeeze", "contiguous", "clone",
    "alias", "to", "_to_copy", "type_as", "_assert_tensor_metadata", "rsub", "sub", "mul", "add", "neg", "eq", "ne",
    "ge", "gt", "le", "lt", "logical_not", "bitwise_not", "__and__", "__or__", "logical_and", "logical_or",
    "bitwise_and", "bitwise_or", "where", "index", "arange", "zeros", "ones", "full", "new_ones", "new_zeros",
    "new_full", "zeros_like", "ones_like", "full_like", "scalar_tensor", "lift_fresh_copy", "_guards_fn", "sym_size",
})
CONSUMERS = ("add", "masked_fill", "where")
SOFTMAX = ("softmax", "_softmax")
SDPA = "scaled_dot_product_attention"
FORMS = ("flow lowers a (batch, sequence) key mask as HF BERT applies it: scores + (1 - mask[:, None, None, :]) * "
         "finfo.min (or where(mask, 0, finfo.min)), scores.masked_fill(mask[:, None, None, :] == 0, -inf) or "
         "where(mask, scores, -inf), read only by softmax(-1), or scaled_dot_product_attention's attn_mask")
VERY_NEGATIVE = -1e4  # a fill above this is not a mask (the softmax's input format decides the exact bound)


def key_mask_codes(scores: torch.Tensor, mask: torch.Tensor, fmt: FixedFormat) -> torch.Tensor:
    """``scores``: codes of ``fmt``, shape (..., rows, seq); ``mask``: 0/1, shape (..., seq), one per
    sample (broadcast over the rows). Masked columns (mask 0) become ``fmt.min_code``."""
    if scores.dtype != torch.int64:
        raise TypeError(f"scores must be int64 codes, got {scores.dtype}")
    keep = mask.to(torch.bool).unsqueeze(-2)
    return torch.where(keep, scores, torch.full_like(scores, fmt.min_code))


class KeyMask(nn.Module):
    """The float view: a sample's ``rows`` rows of ``seq`` scores (a token a row of the stream), every
    column whose mask bit is 0 set to ``fmt``'s lowest value."""

    def __init__(self, fmt: FixedFormat, rows: int, seq: int) -> None:
        super().__init__()
        self.fmt, self.rows, self.seq = fmt, rows, seq

    def extra_repr(self) -> str:
        return f"{self.fmt}, rows={self.rows}, seq={self.seq}"

    def forward(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        keep = mask.reshape(-1, 1, self.seq) != 0
        lowest = self.fmt.dequantize(torch.tensor(self.fmt.min_code), torch.float64).to(scores.dtype)
        return torch.where(keep, scores.reshape(-1, self.rows, self.seq), lowest).reshape(-1, self.seq)


@dataclass
class KeyMaskStage(Stage):
    """A sample's ``rows`` rows of ``seq`` scores (PAR a beat) and its ``seq`` mask bits (one a beat,
    the second input): masked columns set to the format's lowest code."""

    name: str
    fmt: FixedFormat
    par: int
    seq: int
    rows: int
    inputs: tuple[str, ...] = (INPUT, MASK)

    in_par = property(lambda self: self.par)
    out_par = property(lambda self: self.par)
    in_features = property(lambda self: self.seq)
    out_features = property(lambda self: self.seq)
    in_format = property(lambda self: self.fmt)
    out_format = property(lambda self: self.fmt)
    outputs = property(lambda self: (self.name,))
    module = property(lambda self: KeyMask(self.fmt, self.rows, self.seq))
    beats = property(lambda self: self.seq // self.par)
    initiation_interval = property(lambda self: self.beats)  # cycles a row (a token of the scores stream)
    latency = property(lambda self: key_mask_cycles(self.seq, self.rows, self.par)[1])

    def forward_codes(self, scores: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        masked = key_mask_codes(scores.reshape(-1, self.rows, self.seq), mask.reshape(-1, self.seq), self.fmt)
        return masked.reshape(-1, self.seq)

    def cycles_per_sample(self, sequence: int) -> int:
        return key_mask_cycles(self.seq, self.rows, self.par)[0]

    def schedule(self, offered: dict[str, Times], taken: dict[str, Times],
                 handover: Callable[[str, Any], Times], vectors: int) -> None:
        """key_mask.sv: a sample's mask bits one a cycle into the fill buffer while it is free; the
        buffer moves to the active mask in the cycle of the previous sample's last scores beat (or the
        cycle after the fill completes, if later), when the buffer takes the next mask again; the
        sample's scores beats one a cycle from the cycle after, each offered one cycle after."""
        scores, bits = (offered[name] for name in self.inputs)
        beats = self.rows * self.beats
        took: Times = []
        took_mask: Times = []
        fill_free, last = 0, -1
        for sample in range(vectors // self.rows):
            for j in range(self.seq):
                took_mask.append(max(bits[sample * self.seq + j], fill_free if j == 0 else took_mask[-1] + 1))
            load = max(took_mask[-1] + 1, last)
            fill_free = load
            for j in range(beats):
                took.append(max(scores[sample * beats + j], load + 1 if j == 0 else took[-1] + 1))
            last = took[-1]
        taken[self.inputs[0]], taken[self.inputs[1]] = took, took_mask
        offered[self.name] = [t + self.latency for t in took]

    def input_ports(self) -> list[str]:
        return ["s_axis", "s_axis_mask"]

    def component(self, design: str = "") -> str:
        return "key_mask"

    def rtl_parameters(self, package: str, design: str = "") -> dict[str, object]:
        return key_mask_parameters(self.fmt, self.seq, self.rows, self.par)

    def describe(self) -> str:
        return (f"key mask of {self.rows} rows of {self.seq} scores {self.fmt} ({self.par} per beat): masked keys "
                f"to the lowest code")

    def report_row(self) -> dict[str, Any]:
        return {"kind": "key_mask", "sequence": self.seq, "lowest_code": self.fmt.min_code}

    def estimate_kind(self) -> str:
        return "key_mask"  # fitted by benches/calibrate_transformer_ops.py --kinds key_mask

    def estimate_features(self) -> dict[str, float]:
        return {"mask_bits": float(2 * self.seq)}


# ---- lowering ----
def _tensor_args(node: fx.Node) -> list[fx.Node]:
    found: list[fx.Node] = []
    fx.node.map_arg((node.args, node.kwargs), lambda arg: found.append(arg) or arg)
    return [arg for arg in found if arg.op != "get_attr"]


def _shape(arg: Any) -> tuple[int, ...] | None:
    value = arg.meta.get("val") if isinstance(arg, fx.Node) else None
    return tuple(value.shape) if value is not None and hasattr(value, "shape") else None


def _evaluate(node: fx.Node, mask: fx.Node, probe: torch.Tensor, memo: dict[fx.Node, Any]) -> Any:
    """The value of a node of the mask's subgraph when the mask input holds ``probe``."""
    def value(arg: fx.Node) -> Any:
        if arg is mask:
            return probe
        if arg not in memo:
            if arg.op != "call_function":
                raise LoweringError(f"the attention mask's path reads '{arg.name}' ({arg.op}), which is neither the "
                                    f"mask nor computed from it; {FORMS}")
            args, kwargs = fx.node.map_arg((arg.args, arg.kwargs), value)
            memo[arg] = arg.target(*args, **kwargs)
        return memo[arg]

    return value(node)


def _probes(shape: tuple[int, ...], dtype: torch.dtype) -> list[torch.Tensor]:
    """Masks (1 = keep) that give every key both values: alternating, its complement, all real, one real."""
    batch, seq = shape
    index = torch.arange(seq)[None, :] + torch.arange(batch)[:, None]
    alternating = index % 2 == 0
    one = torch.zeros(batch, seq, dtype=torch.bool)
    one[:, 0] = True
    return [keep.to(dtype) for keep in (alternating, ~alternating, torch.ones(batch, seq, dtype=torch.bool), one)]


@register_op("key_mask")
class KeyMaskOp(Op):
    """The attention key mask: a model's second input and the nodes that apply it to the scores
    (lowering finds this rule by its role, ``mask``)."""

    lowers = ("an attention key mask as the second input (batch, sequence): scores + (1 - mask) * finfo.min, "
              "masked_fill(mask == 0, -inf) or where before softmax(-1)")
    role = "mask"

    def second_input(self, node: fx.Node, ctx: Lowering) -> None:
        """A model input after the first: the key mask when it is (batch, sequence) of a sequence design."""
        value = node.meta.get("val")
        shape = tuple(value.shape) if value is not None else None
        if ctx.mask is not None or ctx.sequence < 2 or shape is None or len(shape) != 2 or shape[1] != ctx.sequence:
            raise LoweringError(f"input '{node.name}' is a {'third' if ctx.mask is not None else 'second'} model input "
                                f"of shape {shape}; flow lowers one data input (batch, sequence, features) and, as a "
                                f"second, an attention key mask (batch, sequence)")
        if value.dtype.is_complex:
            raise LoweringError(f"input '{node.name}' (the attention mask) is {value.dtype}; pass 0/1 as int, bool "
                                f"or float")
        ctx.mask = node
        ctx.masks.add(node)

    def claims(self, node: fx.Node, ctx: Lowering) -> bool:
        """Whether this rule lowers ``node``: the model has a mask, and the node reads it (or what was
        computed from it), or reads no tensor of the data path at all (a constant of the mask's path)."""
        if ctx.mask is None or node.op != "call_function":
            return False
        tensors = _tensor_args(node)
        return any(arg in ctx.masks for arg in tensors) or not any(
            arg in ctx.source or arg in ctx.heads for arg in tensors)

    def lower(self, node: fx.Node, ctx: Lowering) -> None:
        tensors = _tensor_args(node)
        name = op_name(node)
        if not any(arg in ctx.source or arg in ctx.heads for arg in tensors):  # the mask's path
            if name not in MASK_OPS:
                raise ctx.unsupported(node, f"{name} on the attention mask's path ({FORMS}):")
            ctx.masks.add(node)
            return
        if name == SDPA:  # scaled_dot_product_attention(q, k, v, attn_mask): the heads rule, masked
            op_with_role("heads").lower(node, ctx)
            return
        if name not in CONSUMERS:
            raise ctx.unsupported(node, f"{name} of the attention mask and a tensor of the data path ({FORMS}):")
        self._apply(node, ctx)

    def _apply(self, node: fx.Node, ctx: Lowering) -> None:
        """add / masked_fill / where of the scores and the mask: one key_mask layer (a head)."""
        name = op_name(node)
        args = list(node.args)
        fill_arg, kept = None, True
        if name == "add":
            if len(args) != 2 or node.kwargs.get("alpha", 1) != 1:
                raise ctx.unsupported(node, f"an add with alpha of the attention mask ({FORMS}):")
            scores, other = (args[0], args[1]) if args[1] in ctx.masks else (args[1], args[0])
        elif name == "masked_fill":
            scores, other, fill_arg = args[0], args[1], args[2] if len(args) > 2 else None
        else:  # where(cond, a, b): the scores kept where cond holds (a) or where it does not (b)
            kept = not (isinstance(args[1], fx.Node) and args[1] in ctx.masks)
            scores, other, fill_arg = (args[1], args[0], args[2]) if kept else (args[2], args[0], args[1])
        if not isinstance(scores, fx.Node) or scores in ctx.masks or other not in ctx.masks:
            raise ctx.unsupported(node, f"{name} that is not the scores and the mask ({FORMS}):")
        shape = _shape(scores)
        seq = ctx.sequence
        heads = ctx.heads.get(scores)
        if shape is None or shape[-2:] != (seq, seq) or (heads is not None and (heads.layout != "bhsd"
                                                                                or len(shape) != 4)) or (
                heads is None and len(shape) != 3):
            raise ctx.unsupported(node, f"a mask applied to a {shape} tensor (flow masks the attention scores, "
                                        f"(batch, heads, sequence, sequence) or (batch, sequence, sequence); {FORMS}):")
        users = list(node.users)
        if not users or any(op_name(user) not in SOFTMAX or user.args[0] is not node for user in users):
            raise ctx.unsupported(node, f"a masked score read by {', '.join(op_name(u) for u in users) or 'nothing'} "
                                        f"({FORMS}):")
        fill = self._fill(node, ctx, name, shape, other, fill_arg, kept)
        path = owner(node)
        base = f"{path}.key_mask" if path else "key_mask"
        if heads is None:
            ctx.add(FloatLayer("key_mask", ctx.name_of(base, node), (ctx.feeding(node, scores), MASK),
                               attrs={"fill": fill, "form": name}, features=seq), node)
            return
        ctx.heads[node] = self.mask_heads(node, ctx, heads, base, fill, name)

    def mask_heads(self, node: fx.Node, ctx: Lowering, heads: Any, base: str, fill: float, form: str) -> Any:
        """One key_mask layer a head of ``heads`` (flow.ops.heads.Heads of the scores), all reading
        the mask stream (the graph builder forks it); the masked scores' heads."""
        from flow.ops.heads import Heads  # the heads rule keeps each head's stream

        reserved, names = ctx.name_of(base, node), []
        for head, source in enumerate(heads.names):
            name = reserved if len(heads.names) == 1 else ctx.name_of(f"{reserved}.head{head}", node)
            ctx.add(FloatLayer("key_mask", name, (source, MASK), attrs={"fill": fill, "form": form}, features=ctx.sequence))
            names.append(name)
        return Heads(tuple(names), "bhsd")

    def sdpa_fill(self, node: fx.Node, ctx: Lowering, attn_mask: fx.Node, shape: tuple[int, ...]) -> tuple[float, str]:
        """scaled_dot_product_attention's ``attn_mask`` computed from the mask: a bool mask (True = attend)
        or a float one added to the scores. Returns the fill and the form ("where" or "add")."""
        if attn_mask not in ctx.masks:
            raise ctx.unsupported(node, f"scaled_dot_product_attention with an attn_mask that is not computed from "
                                        f"the attention mask input ({FORMS}):")
        value = attn_mask.meta.get("val")
        if value is not None and value.dtype == torch.bool:
            return self._fill(node, ctx, "sdpa", shape, attn_mask, None, True), "where"
        return self._fill(node, ctx, "add", shape, attn_mask, None, True), "add"

    def _fill(self, node: fx.Node, ctx: Lowering, form: str, shape: tuple[int, ...], operand: fx.Node,
              fill_arg: Any, kept: bool) -> float:
        """Evaluate the mask's subgraph on probe masks: what ``node`` does to the scores must be a key
        mask (masked keys of every row and head get one very negative value, nothing else changes).
        ``form``: add (``operand`` a bias), masked_fill (``operand`` true where masked), where
        (``operand`` true where the scores are ``kept``) or sdpa (a bool attn_mask, true = attend).
        Returns that value (for add: the bias on a masked key)."""
        mask = ctx.mask
        example = mask.meta["val"]
        fills: set[float] = set()
        for keep in _probes(tuple(example.shape), example.dtype):
            memo: dict[fx.Node, Any] = {}
            wanted = (keep != 0)[:, None, :] if len(shape) == 3 else (keep != 0)[:, None, None, :]
            wanted = wanted.expand(shape)

            def value(arg: Any, keep: torch.Tensor = keep, memo: dict[fx.Node, Any] = memo) -> Any:
                return _evaluate(arg, mask, keep, memo) if isinstance(arg, fx.Node) else arg

            try:
                if form == "add":
                    bias = torch.broadcast_to(torch.as_tensor(value(operand), dtype=torch.float64), shape)
                    ok = bool(torch.all(bias[wanted] == 0))
                    fills.update(bias[~wanted].unique().tolist())
                else:
                    cond = torch.broadcast_to(torch.as_tensor(value(operand)), shape)
                    target = ~wanted if form == "masked_fill" else (wanted if kept else ~wanted)
                    ok = cond.dtype == torch.bool and torch.equal(cond, target)
                    fills.add(float("-inf") if form == "sdpa" else float(value(fill_arg)))
            except LoweringError:
                raise
            except (RuntimeError, TypeError, ValueError, IndexError) as error:
                raise ctx.unsupported(node, f"a mask that does not evaluate to the scores' shape {shape} "
                                            f"({str(error).splitlines()[0] if str(error) else type(error).__name__}; "
                                            f"{FORMS}):") from None
            if not ok:
                raise ctx.unsupported(node, f"a mask that is not a key mask (it must change exactly the scores of "
                                            f"the keys whose mask is 0, in every row and head; {FORMS}):")
        if len(fills) != 1 or not next(iter(fills)) <= VERY_NEGATIVE:
            raise ctx.unsupported(node, f"a mask filling {sorted(fills)[:3]} (one value <= {VERY_NEGATIVE:g}, e.g. "
                                        f"finfo.min or -inf; {FORMS}):")
        return next(iter(fills))

    def build(self, layer: FloatLayer, ctx: Build) -> None:
        """The scores cast to the softmax's input format (the softmax reading it then needs no cast),
        masked keys to its lowest code: what QuantSoftmax's input quantization of score + fill gives."""
        from flow.ops.softmax import softmax_input

        reader = next(other for other in ctx.layers if layer.name in other.inputs)
        fmt, rounding, overflow = softmax_input(reader, ctx)
        src = ctx.streams[ctx.inputs(layer)[0]]
        fill = layer.attrs["fill"]
        bound = float(fmt.dequantize(torch.tensor(fmt.min_code), torch.float64))
        if layer.attrs["form"] == "add":
            bound -= float(src.fmt.dequantize(torch.tensor(src.fmt.max_code), torch.float64))
        if fill > bound:
            raise ConfigError(f"key_mask '{layer.name}': the mask adds {fill:g} to masked keys, which does not "
                              f"saturate softmax '{reader.name}''s input format {fmt} (at most {bound:g}); use "
                              f"finfo.min or -inf as the fill")
        feed = cast_to(ctx, ctx.inputs(layer)[0], fmt, rounding, overflow, f"{layer.name}_cast_in")
        seq = layer.features
        ctx.add(KeyMaskStage(layer.name, fmt, src.par, seq, ctx.sequence, inputs=(feed, ctx.inputs(layer)[1])),
                StreamInfo(fmt, src.par, seq, rounding))


def mask_stream() -> StreamInfo:
    """What the mask stream carries: one unsigned bit a beat (1 = a real token), a token's worth a beat."""
    return StreamInfo(FixedFormat(1, 0, signed=False), 1, 1, Rounding.HALF_UP)
