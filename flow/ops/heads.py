"""Multi-head attention as one token stream a head: lowering rules only (no kind, no stage).

A (batch, heads, sequence, d) tensor never exists in the hardware: each head is its own token
stream (a sequence's tokens of d elements), and the reshapes and transposes of multi-head
attention become which stream feeds which stage:

- ``view(x, [b, s, heads, d])`` of a Linear's output (read by nothing else), then
  ``transpose(1, 2)``: the Linear becomes one Linear a head (its weight and bias rows
  h·d..(h+1)·d), each reading the Linear's input. Nothing is sliced at run time.
- ``transpose(2, 3)`` (or ``transpose(-1, -2)``, ``.mT``) of the heads: Kᵀ, read only as a
  matmul's second operand (each head's matmul takes its K stream transposed, ``B_TRANSPOSED``).
- a 4-D ``matmul`` of two head tensors: one matmul a head (Q·Kᵀ, or probabilities · V); its
  scale by 2**-k folds into each head's matmul; ``softmax(-1)`` is one softmax a head;
  eval-mode dropout, ``contiguous`` and a reshape to the same shape pass the heads on.
- ``scaled_dot_product_attention(q, k, v)`` (PyTorch's and Hugging Face's default ``sdpa``
  attention) without mask, causal mask or dropout: the same matmul, softmax and matmul a head, its
  scale (default 1/sqrt(d)) a power of two folded into Q·Kᵀ. On (batch, sequence, d) token
  tensors it is one head.
- ``transpose(1, 2)`` then ``reshape(b, s, heads * d)``: the heads concatenated along the features
  (concat layers, a left fold), a token stream again.

Any other use of a head tensor is a one-line lowering error naming the node and what flow takes.
Layer names: a head's Linear is ``<linear>.head<h>``, its matmul, scale and softmax
``<module>.<node>.head<h>`` (scaled_dot_product_attention: ``<module>.sdpa.scores|softmax|context.head<h>``); each
reads its own quantization and parallelism table if the config has one, else the table of the
name without ``.head<h>`` (``attrs["table"]``, resolved by flow.compiler.build_graph), so one
``[quantization."attention.self.query"]`` sets every head of that Linear.
"""
from __future__ import annotations

import copy
import math
from dataclasses import dataclass
from typing import Any

from torch import fx, nn

from flow.graph.capture import owner
from flow.graph.ops import op_name
from flow.nn import QuantSoftmax
from flow.ops.base import FloatLayer, Lowering, LoweringError, Op, register_op
from flow.ops.matmul import PRODUCTS, _scale_shift
from flow.ops.wiring import DROPOUT_OPS

SPLITS = ("view", "reshape", "_unsafe_view")  # a reshape into heads, or of heads
PASSES = ("contiguous", "clone", "alias")  # keep the heads as they are
SOFTMAX = ("softmax", "_softmax")
SCALES = ("mul", "div")
TRANSPOSES = ("transpose", "mT")
SDPA = "scaled_dot_product_attention"
MERGE_HINT = ("flow lowers per-head tensors inside attention only: view(b, s, heads, d) + transpose(1, 2) of a Linear, "
              "per-head matmul, scale by 2**-k and softmax(-1), then transpose(1, 2) + reshape(b, s, heads * d)")


@dataclass(frozen=True)
class Heads:
    """A 4-D tensor lowered as one token stream a head: ``names[h]`` carries head h. ``layout``
    names the tensor's dimensions: ``bshd`` (a split Linear before transpose(1, 2), or the heads
    after it, before the reshape that merges them), ``bhsd`` (a head's tokens: its rows over the
    sequence) or ``bhds`` (their transpose, Kᵀ: only a matmul's second operand)."""

    names: tuple[str, ...]
    layout: str


def _shape(arg: Any) -> tuple[int, ...] | None:
    value = arg.meta.get("val") if isinstance(arg, fx.Node) else None
    return tuple(value.shape) if value is not None and hasattr(value, "shape") else None


def _tensor_args(node: fx.Node) -> list[fx.Node]:
    found: list[fx.Node] = []
    for arg in (*node.args, *node.kwargs.values()):
        for item in (arg if isinstance(arg, tuple | list) else (arg,)):
            if isinstance(item, fx.Node):
                found.append(item)
    return found


def _base(node: fx.Node) -> str:
    """The name a node's per-head layers share before ``.head<h>``: ``<module path>.<node>`` (sdpa
    for scaled_dot_product_attention)."""
    path, name = owner(node), node.name.replace(SDPA, "sdpa")
    return f"{path}.{name}" if path else name


def _head_name(ctx: Lowering, base: str, head: int, node: fx.Node) -> str:
    return ctx.name_of(f"{base}.head{head}", node)


def _attrs(base: str, heads: int, **attrs: Any) -> dict[str, Any]:
    """A head's attrs: its table is the shared name's unless the config names the head (one head: its own)."""
    return {**attrs, "table": base} if heads > 1 else attrs


@register_op()
class AttentionHeads(Op):
    """Every node that reads a per-head tensor, the reshape that makes one, and
    scaled_dot_product_attention (lowering finds this rule by its role, ``heads``)."""

    torch_ops = (SDPA,)
    lowers = ("multi-head attention (view(b, s, heads, d) + transpose(1, 2) of a Linear: a Linear a head; per-head "
              "matmul, scale by 2**-k, softmax(-1); transpose(1, 2) + reshape(b, s, heads * d): a concat of the "
              "heads; scaled_dot_product_attention without mask or dropout)")
    role = "heads"

    def claims(self, node: fx.Node, ctx: Lowering) -> bool:
        """Whether this rule lowers ``node``: it reads a head tensor, or reshapes a tensor to 4-D."""
        if node.op != "call_function":
            return False
        if any(arg in ctx.heads for arg in _tensor_args(node)):
            return True
        shape = _shape(node)
        return op_name(node) in SPLITS and shape is not None and len(shape) == 4

    def lower(self, node: fx.Node, ctx: Lowering) -> None:
        name = op_name(node)
        source = node.args[0] if node.args and isinstance(node.args[0], fx.Node) else None
        if name == SDPA:
            self._attention(node, ctx)
        elif source not in ctx.heads:
            if name not in SPLITS:
                raise ctx.unsupported(node, f"{name} of a per-head (batch, heads, sequence, d) tensor ({MERGE_HINT}):")
            self._split(node, ctx)
        elif name in DROPOUT_OPS:
            if len(node.args) > 2 and node.args[2]:
                raise ctx.unsupported(node, "train-mode dropout (capture the model in eval mode)")
            ctx.heads[node] = ctx.heads[source]
        elif name in PASSES:
            ctx.heads[node] = ctx.heads[source]
        elif name in SPLITS:
            self._reshape(node, ctx)
        elif name in TRANSPOSES:
            self._transpose(node, ctx)
        elif name in PRODUCTS:
            self._matmul(node, ctx)
        elif name in SCALES:
            self._scale(node, ctx)
        elif name in SOFTMAX:
            self._softmax(node, ctx)
        else:
            raise ctx.unsupported(node, f"{name} of a per-head (batch, heads, sequence, d) tensor ({MERGE_HINT}):")

    # ---- into heads and back ----
    def _split(self, node: fx.Node, ctx: Lowering) -> None:
        """view(x, [b, s, heads, d]) of a Linear's output read by nothing else: a Linear a head."""
        source, shape, out = node.args[0], _shape(node.args[0]), _shape(node)
        hint = ("a reshape to {out} (flow splits a Linear's (batch, sequence, heads * d) output into heads: "
                "view(b, s, heads, d) then transpose(1, 2)), ")
        if (ctx.sequence < 2 or shape is None or len(shape) != 3 or not ctx.token_shape(shape) or out is None
                or out[:2] != shape[:2] or out[2] * out[3] != shape[2]):
            raise ctx.unsupported(node, hint.format(out=out) + "at")
        parent = ctx.by_name.get(ctx.feeding(node, source))
        carriers = {n for n, name in ctx.source.items() if parent is not None and name == parent.name}
        if parent is None or parent.kind != "linear" or any(
                user is not node and user not in carriers for n in carriers for user in n.users):
            raise ctx.unsupported(node, f"a view into heads of {parent.kind if parent else 'the input'} "
                                        f"'{parent.name if parent else 'input'}' (flow splits the weights of a Linear "
                                        f"read by nothing else into one Linear a head), at")
        if any(op_name(user) != "transpose" or sorted(d % 4 for d in user.args[1:3]) != [1, 2] for user in node.users):
            raise ctx.unsupported(node, "a view into heads not followed by transpose(1, 2) (flow streams each head's "
                                        "tokens: view(b, s, heads, d).transpose(1, 2)), at")
        heads, d = out[2], out[3]
        if heads == 1:  # one head: the Linear is its stream
            ctx.heads[node] = Heads((parent.name,), "bshd")
            return
        linear: nn.Linear = parent.module
        index = ctx.layers.index(parent)
        del ctx.layers[index], ctx.by_name[parent.name]
        names = []
        for head in range(heads):
            module = copy.deepcopy(linear)
            rows = slice(head * d, (head + 1) * d)
            module.weight = nn.Parameter(linear.weight.detach()[rows].clone())
            if linear.bias is not None:
                module.bias = nn.Parameter(linear.bias.detach()[rows].clone())
            module.out_features = d
            layer = FloatLayer("linear", _head_name(ctx, parent.name, head, node), parent.inputs, module,
                               attrs=_attrs(parent.name, heads), features=d)
            ctx.layers.insert(index + head, layer)
            ctx.by_name[layer.name] = layer
            names.append(layer.name)
        ctx.heads[node] = Heads(tuple(names), "bshd")

    def _reshape(self, node: fx.Node, ctx: Lowering) -> None:
        """A reshape to the same shape passes the heads on; (b, s, heads, d) to (b, s, heads * d)
        concatenates them along the features."""
        source, shape, out = node.args[0], _shape(node.args[0]), _shape(node)
        heads = ctx.heads[source]
        if shape is not None and out == shape:
            ctx.heads[node] = heads
            return
        if heads.layout != "bshd" or shape is None or out is None or out != (*shape[:2], shape[2] * shape[3]):
            raise ctx.unsupported(node, f"a reshape of per-head tensor {shape} to {out} (flow merges heads with "
                                        f"transpose(1, 2) then reshape(b, s, heads * d)), at")
        base, inputs = _base(node), list(heads.names)
        first = ctx.name_of(base, node)
        while len(inputs) > 1:  # a left fold of pairwise concatenations, the first one named base
            name = first if len(inputs) == len(heads.names) else ctx.name_of(base, node)
            features = shape[3] * (len(heads.names) - len(inputs) + 2)
            ctx.add(FloatLayer("concat", name, (inputs[0], inputs[1]), features=features,
                               attrs={} if name == first else {"table": first}))
            inputs = [name, *inputs[2:]]
        ctx.source[node] = inputs[0]

    def _transpose(self, node: fx.Node, ctx: Lowering) -> None:
        heads = ctx.heads[node.args[0]]
        dims = sorted(d % 4 for d in node.args[1:3]) if op_name(node) == "transpose" else [2, 3]
        layout = {("bshd", (1, 2)): "bhsd", ("bhsd", (1, 2)): "bshd", ("bhsd", (2, 3)): "bhds",
                  ("bhds", (2, 3)): "bhsd"}.get((heads.layout, tuple(dims)))
        if layout is None:
            raise ctx.unsupported(node, f"transpose{tuple(dims)} of a per-head tensor laid out ({', '.join(heads.layout)}) "
                                        f"({MERGE_HINT}):")
        ctx.heads[node] = Heads(heads.names, layout)

    # ---- per-head ops ----
    def _operands(self, node: fx.Node, ctx: Lowering, what: str) -> tuple[Heads, Heads]:
        a, b = node.args[:2]
        if a not in ctx.heads or b not in ctx.heads or len(ctx.heads[a].names) != len(ctx.heads[b].names):
            raise ctx.unsupported(node, f"a {what} of a per-head tensor and a tensor with other heads "
                                        f"({MERGE_HINT}):")
        return ctx.heads[a], ctx.heads[b]

    def _matmul(self, node: fx.Node, ctx: Lowering) -> None:
        """One matmul a head: Q·Kᵀ (B transposed: Kᵀ's heads) or probabilities · V."""
        a, b = self._operands(node, ctx, "matmul")
        shapes = [_shape(arg) for arg in node.args[:2]]
        self._products(node, ctx, a, b, shapes[0], shapes[1], _base(node), shift=0)

    def _products(self, node: fx.Node, ctx: Lowering, a: Heads, b: Heads, a_shape: Any, b_shape: Any, base: str,
                  shift: int) -> Heads:
        seq = ctx.sequence
        transposed = b.layout == "bhds"
        tokens = (b_shape[3] if transposed else b_shape[2]) if b_shape is not None and len(b_shape) == 4 else None
        if (a.layout != "bhsd" or b.layout not in ("bhds", "bhsd") or a_shape is None or b_shape is None
                or len(a_shape) != 4 or a_shape[2] != seq or tokens != seq or a_shape[3] != b_shape[2]):
            raise ctx.unsupported(node, f"a per-head matmul of {a_shape} ({a.layout}) by {b_shape} ({b.layout}) (flow "
                                        f"multiplies each head's token streams: q @ k.transpose(-2, -1) or "
                                        f"probabilities @ v, rows over the sequence), at")
        heads, reserved = len(a.names), ctx.name_of(base, node)
        names = []
        for head in range(heads):
            name = reserved if heads == 1 else _head_name(ctx, reserved, head, node)
            ctx.add(FloatLayer("matmul", name, (a.names[head], b.names[head]),
                               attrs=_attrs(reserved, heads, transposed=transposed, shift=shift, inner=a_shape[3],
                                            node=node.name),
                               features=b_shape[3]))
            names.append(name)
        ctx.heads[node] = Heads(tuple(names), "bhsd")
        return ctx.heads[node]

    def _scale(self, node: fx.Node, ctx: Lowering) -> None:
        """(q @ kᵀ) * 2**-k of every head: folded into each head's matmul."""
        operand, factor = (node.args + (None,))[:2]
        heads = ctx.heads[operand]
        layers = [ctx.by_name.get(name) for name in heads.names]
        if (any(layer is None or layer.kind != "matmul" for layer in layers) or isinstance(factor, fx.Node)
                or len(operand.users) != 1 or node.kwargs.get("rounding_mode") is not None):
            raise ctx.unsupported(node, "a scale of per-head tensors that is not a number times the heads' matmul "
                                        "product read by nothing else (flow folds (q @ k.transpose(-2, -1)) * 2**-k "
                                        "into each head's matmul):")
        scale = 1 / factor if op_name(node) == "div" else factor
        shift = _scale_shift(float(scale))
        if shift is None:
            raise LoweringError(f"the per-head matmuls '{heads.names[0]}'... are scaled by {scale:g} at node "
                                f"'{node.name}', not a power of two: flow folds 2**-k into the accumulator; scale by a "
                                f"power of two (1/sqrt(d) with d a power of 4) or fold the scale into the Linear "
                                f"before it")
        for layer in layers:
            layer.attrs["shift"] += shift
        ctx.heads[node] = heads

    def _softmax(self, node: fx.Node, ctx: Lowering) -> None:
        heads, shape = ctx.heads[node.args[0]], _shape(node.args[0])
        dim = node.args[1] if len(node.args) > 1 else node.kwargs.get("dim", -1)
        if heads.layout != "bhsd" or shape is None or int(dim) % 4 != 3:
            raise ctx.unsupported(node, f"softmax over dimension {dim} of per-head tensor {shape} (flow takes "
                                        f"softmax(-1) of each head's token stream), at")
        self._softmaxes(node, ctx, heads, shape[3], _base(node))

    def _softmaxes(self, node: fx.Node, ctx: Lowering, heads: Heads, features: int, base: str) -> Heads:
        path = owner(node)
        module = ctx.model.get_submodule(path) if path else None
        given = {"module": copy.deepcopy(module)} if isinstance(module, QuantSoftmax) else {}
        count, reserved = len(heads.names), ctx.name_of(base, node)
        names = []
        for head in range(count):
            name = reserved if count == 1 else _head_name(ctx, reserved, head, node)
            ctx.add(FloatLayer("softmax", name, (heads.names[head],), attrs=_attrs(reserved, count, **given),
                               features=features))
            names.append(name)
        ctx.heads[node] = Heads(tuple(names), "bhsd")
        return ctx.heads[node]

    # ---- scaled_dot_product_attention ----
    def _attention(self, node: fx.Node, ctx: Lowering) -> None:
        """sdpa(q, k, v): per head, the matmul Q·Kᵀ scaled by 2**-k, softmax(-1), the matmul by V."""
        names = ("query", "key", "value", "attn_mask", "dropout_p", "is_causal")
        given = dict(zip(names, node.args)) | dict(node.kwargs)
        if (given.get("attn_mask") is not None or given.get("dropout_p", 0.0) or given.get("is_causal", False)
                or given.get("enable_gqa", False)):
            raise ctx.unsupported(node, "scaled_dot_product_attention with a mask, a causal mask or dropout (flow "
                                        "lowers it unmasked, in eval mode; or build a Hugging Face model with "
                                        "attn_implementation=\"eager\"):")
        operands, single = [], True
        for role in names[:3]:
            arg = given.get(role)
            if arg in ctx.heads:
                operands.append(ctx.heads[arg])
                single = False
            elif isinstance(arg, fx.Node) and arg in ctx.source and _shape(arg) is not None and len(_shape(arg)) == 3:
                operands.append(Heads((ctx.source[arg],), "bhsd"))
            else:
                raise ctx.unsupported(node, f"scaled_dot_product_attention of a {role} that is neither per-head "
                                            f"tensors nor a token stream ({MERGE_HINT}):")
        q, k, v = operands
        shapes = [_shape(given[role]) for role in names[:3]]
        if single:  # (b, s, d) token tensors: one head, as (b, 1, s, d)
            shapes = [(s[0], 1, *s[1:]) for s in shapes]
        if (len({len(h.names) for h in operands}) != 1 or any(h.layout != "bhsd" for h in operands)
                or any(len(s) != 4 for s in shapes)):
            raise ctx.unsupported(node, f"scaled_dot_product_attention of {shapes} (flow takes q, k, v of equal heads, "
                                        f"each (batch, heads, sequence, d)):")
        d = shapes[0][3]
        scale = given.get("scale")
        scale = 1 / math.sqrt(d) if scale is None else scale
        shift = _scale_shift(float(scale))
        if shift is None:
            raise LoweringError(f"scaled_dot_product_attention at node '{node.name}' scales by {scale:g}, not a power "
                                f"of two: flow folds 2**-k into the accumulator; use a head size d that is a power of "
                                f"4, or pass scale=2**-k")
        base = ctx.name_of(_base(node), node)
        k_t = Heads(k.names, "bhds")
        scores = self._products(node, ctx, q, k_t, shapes[0], (*shapes[1][:2], shapes[1][3], shapes[1][2]),
                                f"{base}.scores", shift)
        probabilities = self._softmaxes(node, ctx, scores, shapes[1][2], f"{base}.softmax")
        context = self._products(node, ctx, probabilities, v, (*shapes[0][:3], shapes[1][2]), shapes[2],
                                 f"{base}.context", 0)
        if single:
            del ctx.heads[node]
            ctx.source[node] = context.names[0]
        else:
            ctx.heads[node] = context

