"""matmul (component hw/rtl/matmul.sv): C = A·B of two activations of a sequence design,
flow.nn.QuantMatmul exactly (attention's Q·Kᵀ/√d and A·V). Lowered from ``a @ b`` (torch.export's
``matmul``) or ``torch.bmm(a, b)`` of two (batch, sequence, features) tensors: ``a @ k.transpose(-2, -1)`` (B transposed:
K's tokens are the rows of Bᵀ, ``B_TRANSPOSED``) or ``a @ v`` (V's tokens are the rows of B). A
division or multiplication of the product by a power of two (1/√d with d a power of 4) folds into
its ``scale_shift``; any other scale is a one-line error.

In the stream each operand is a token stream: a sequence's tokens one after another. The
component buffers all of B's beats of a sequence (the ``sequence`` tokens of K or V), then takes
A's rows (``sequence`` tokens) one at a time, each leaving as a token of C. Its formats come from
its quantization table (``[quantization.matmul]`` or per layer: data_in for both operands, cast in
where a stream differs, data_out for C; fixed point only); its beat widths from its parallelism
table: in_par is A's (the stream's, 'auto'), out_par C's, and B's is the B stream's (at most A's
beat width when B is transposed, else out_par). Unless it drives the design's output, a FIFO of
one product (a sequence's tokens of C, plus two) follows it, so a slower reader never holds it."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from flow.circuits.components import matmul_cycles, matmul_parameters
from flow.errors import ConfigError
from flow.graph.capture import owner
from flow.graph.ops import op_name
from flow.nn import QuantMatmul
from flow.ops.base import (
    INPUT,
    Build,
    FloatLayer,
    Lowering,
    LoweringError,
    Op,
    Stage,
    StreamInfo,
    Times,
    op_with_role,
    parallelism,
    register_op,
)
from flow.ops.cast import cast_to
from flow.ops.resources import constant_mul2dsp, mul2dsp
from flow.ops.rows import ROW_FIFO_SLACK, clog2, component_check, fixed_format, stream_par


class SequenceMatmul(nn.Module):
    """flow.nn.QuantMatmul (``matmul``) on token streams: ``a`` and ``b`` hold a token a row
    ((samples * sequence, features), as the hardware graph carries them); the product is taken per
    sequence (``b``'s tokens are the rows of Bᵀ when ``transposed``) and given back a token a row."""

    def __init__(self, matmul: QuantMatmul, sequence: int, transposed: bool):
        super().__init__()
        self.matmul, self.sequence, self.transposed = matmul, sequence, transposed

    def extra_repr(self) -> str:
        return f"sequence={self.sequence}, b{'ᵀ' if self.transposed else ''}"

    def _operands(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        a = a.reshape(-1, self.sequence, a.shape[-1])
        b = b.reshape(-1, self.sequence, b.shape[-1])
        return a, (b.transpose(-2, -1) if self.transposed else b)

    def forward_codes(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        product = self.matmul.forward_codes(*self._operands(a, b))
        return product.reshape(-1, product.shape[-1])

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        product = self.matmul(*self._operands(a, b))
        return product.reshape(-1, product.shape[-1])


@dataclass
class MatmulStage(Stage):
    """C = A·B of a sequence: ``rows`` (the sequence) tokens of A of ``inner`` elements by B
    (``inner`` x ``cols``, buffered whole), A_PAR/B_PAR/OUT_PAR elements a beat."""

    name: str
    module: SequenceMatmul
    rows: int
    inner: int
    cols: int
    a_par: int
    b_par: int
    out_par: int
    inputs: tuple[str, ...] = (INPUT, INPUT)

    in_par = property(lambda self: self.a_par)
    in_features = property(lambda self: self.inner)
    out_features = property(lambda self: self.cols)
    outputs = property(lambda self: (self.name,))
    in_format = property(lambda self: self.module.matmul.a_fmt)
    out_format = property(lambda self: self.module.matmul.out_fmt)
    transposed = property(lambda self: self.module.transposed)
    cycles = property(lambda self: matmul_cycles(self.rtl_parameters("")))
    initiation_interval = property(lambda self: self.cycles[0])  # cycles a product (a sequence), inputs ready
    latency = property(lambda self: self.cycles[1])  # first B beat to first output beat

    def forward_codes(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.module.forward_codes(a, b)

    # ---- the cycle model ----
    def cycles_per_sample(self, sequence: int) -> int:
        return self.cycles[0]

    def schedule(self, offered: dict[str, Times], taken: dict[str, Times],
                 handover: Callable[[str, Any], Times], vectors: int) -> None:
        """matmul.sv's states: all of B's beats of a sequence one a cycle, then for each row of A
        its beats one a cycle, then each output group STEPS cycles after the previous one left (or
        the row's last beat) plus one; the next row (or the next sequence's B) the cycle after the
        last group left. Its FIFO (or the output) takes every group as it is offered."""
        p = self.rtl_parameters("")
        b_beats, a_beats = p["INNER"] * p["COLS"] // p["B_PAR"], p["INNER"] // p["A_PAR"]
        steps, groups = p["INNER"] // p["A_PAR"], p["COLS"] // p["OUT_PAR"]
        a_in, b_in = (offered[name] for name in self.inputs)
        took_a: Times = []
        took_b: Times = []
        out: Times = []
        free = 0
        for sequence in range(vectors // self.rows):
            for j in range(b_beats):
                free = max(b_in[sequence * b_beats + j], free)
                took_b.append(free)
                free += 1
            for row in range(self.rows):
                for j in range(a_beats):
                    free = max(a_in[(sequence * self.rows + row) * a_beats + j], free)
                    took_a.append(free)
                    free += 1
                for _ in range(groups):
                    out.append(free + steps)
                    free += steps + 1
        taken[self.inputs[0]], taken[self.inputs[1]] = took_a, took_b
        offered[self.outputs[0]] = out

    # ---- emission ----
    def component(self, design: str = "") -> str:
        return "matmul"

    def rtl_parameters(self, package: str, design: str = "") -> dict[str, object]:
        return matmul_parameters(self.module.matmul, self.rows, self.inner, self.cols, self.a_par, self.b_par, self.out_par,
                                 self.transposed)

    def describe(self) -> str:
        m = self.module.matmul
        b = f"B{'ᵀ' if self.transposed else ''} ({m.b_fmt}, {self.b_par} per beat, buffered)"
        return (f"matmul of {self.rows} tokens of {self.inner} elements ({m.a_fmt}, {self.a_par} per beat) "
                f"by {b} to {self.cols} elements {self.out_format} ({self.out_par} per beat), "
                f"scale 2**-{m.scale_shift}")

    def report_row(self) -> dict[str, Any]:
        m = self.module.matmul
        return {"kind": "matmul", "in_format": f"{m.a_fmt} x {m.b_fmt}", "b_transposed": self.transposed,
                "b_par": self.b_par, "sequence": self.rows, "scale_shift": m.scale_shift,
                "accumulator_bits": m.accumulator_width(self.inner), "rounding": m.rounding.value,
                "overflow": m.overflow.value}

    def estimate_kind(self) -> str:
        return "matmul"

    def estimate_features(self) -> dict[str, float]:
        """B's banks (block or LUT RAM), the buffered row of A, the A_PAR x OUT_PAR product lanes
        (their accumulators) and the OUT_PAR output casts."""
        m = self.module.matmul
        acc = m.accumulator_width(self.inner)
        return {"ram_bits": float(self.inner * self.cols * m.b_fmt.width),
                "register_row_bits": float(self.inner * m.a_fmt.width),
                "lane_bits": float(self.a_par * self.out_par * (m.a_fmt.width + m.b_fmt.width)),
                "acc_bits": float(self.out_par * acc)}

    def dsp_count(self) -> int:
        """matmul.sv's products as Yosys maps them (flow.ops.resources.mul2dsp): A_PAR x OUT_PAR
        lanes, each an A_WIDTH by B_WIDTH product (sign-extended operands, narrowed by wreduce) read
        to ACC_WIDTH bits, plus the bank read address ``step * GROUPS`` and the row index
        ``step * A_PAR`` (constant products of the step counter: LUTs below 9 bits, shifts where the
        constant is a power of two). Equal to synth_xilinx on the 8 matmul designs of
        flow/estimate/calibration_transformer.json."""
        p = {key: int(value) for key, value in self.rtl_parameters("").items()}
        steps, groups = p["INNER"] // p["A_PAR"], p["COLS"] // p["OUT_PAR"]
        step_bits = clog2(steps) if steps > 1 else 1
        depth_bits = clog2(steps * groups) if steps * groups > 1 else 1
        lane = mul2dsp(p["A_WIDTH"], bool(p["A_SIGNED"]), p["B_WIDTH"], bool(p["B_SIGNED"]),
                       min(p["ACC_WIDTH"], p["A_WIDTH"] + p["B_WIDTH"]))
        return (p["A_PAR"] * p["OUT_PAR"] * lane + constant_mul2dsp(step_bits, False, groups, depth_bits)
                + constant_mul2dsp(step_bits, False, p["A_PAR"], clog2(p["INNER"]) if p["INNER"] > 1 else 1))


def _scale_shift(scale: float) -> int | None:
    """k where scale == 2**-k (k >= 0), else None."""
    if not isinstance(scale, int | float) or scale <= 0 or scale > 1:
        return None
    k = round(-math.log2(scale))
    return k if 2.0 ** -k == scale else None


TRANSPOSES = ("transpose", "mT")  # k.transpose(-2, -1) (or (1, 2)) and k.mT
PRODUCTS = ("matmul", "bmm")  # a @ b (torch.export's matmul) and torch.bmm, on 3-D tensors


def _is_transpose(node: Any) -> bool:
    return isinstance(node, fx.Node) and node.op == "call_function" and op_name(node) in TRANSPOSES


@register_op("matmul")
class Matmul(Op):
    torch_ops = PRODUCTS
    lowers = ("matmul of two (batch, sequence, features) activations (q @ k.transpose(-2, -1), a @ v), scaled by a "
              "power of two")
    has_table = True

    def lower(self, node: fx.Node, ctx: Lowering) -> None:
        a, b = node.args[:2]
        shapes = [tuple(arg.meta["val"].shape) if isinstance(arg, fx.Node) and arg.meta.get("val") is not None
                  else None for arg in (a, b)]
        transposed = _is_transpose(b)
        b_tokens = tuple(b.args[0].meta["val"].shape) if transposed and b.args[0].meta.get("val") is not None else (
            shapes[1])
        seq = ctx.sequence
        if (seq < 2 or shapes[0] is None or b_tokens is None or len(shapes[0]) != 3 or len(b_tokens) != 3
                or shapes[0][1] != seq or b_tokens[1] != seq or (not transposed and shapes[0][2] != seq)):
            raise ctx.unsupported(node, f"a matmul of {shapes[0]} by {shapes[1]} (flow multiplies two token streams "
                                        f"of a (batch, sequence, features) input: q @ k.transpose(-2, -1) or a @ v "
                                        f"with a's rows over the sequence) in")
        inner = shapes[0][2]
        cols = seq if transposed else b_tokens[2]
        path = owner(node)
        ctx.add(FloatLayer("matmul", ctx.name_of(path, node), (ctx.feeding(node, a), ctx.feeding(node, b)),
                           attrs={"transposed": transposed, "shift": 0, "inner": inner, "node": node.name},
                           features=cols), node)

    def build(self, layer: FloatLayer, ctx: Build) -> None:
        inputs, qconfig = ctx.inputs(layer), ctx.quant[layer.name]
        a_fmt = fixed_format(qconfig.data_in, layer, "data_in", signed=False)
        out_fmt = fixed_format(qconfig.data_out, layer, "data_out", signed=False)
        a_src, b_src = (ctx.streams[name] for name in inputs)
        seq, inner, cols, transposed = ctx.sequence, layer.attrs["inner"], layer.features, layer.attrs["transposed"]
        a_par = stream_par(layer, ctx, a_src)
        out_par = parallelism(ctx.tables[layer.name].out_par, cols, f"parallelism.{layer.name}.out_par")
        matmul = QuantMatmul(a_fmt, a_fmt, out_fmt, layer.attrs["shift"], qconfig.rounding, qconfig.overflow)
        module = SequenceMatmul(matmul, seq, transposed)
        lanes = f"parallelism.{layer.name}.in_par" if transposed else f"parallelism.{layer.name}.out_par"
        component_check(layer, lambda: matmul_parameters(matmul, seq, inner, cols, a_par, b_src.par, out_par,
                                                         transposed),
                        f" (B's beat width is the out_par of the layer feeding B; raise {lanes} or lower that)")
        if matmul.accumulator_width(inner) > 62:
            raise ConfigError(f"matmul '{layer.name}': {inner} products of {a_fmt} need a "
                              f"{matmul.accumulator_width(inner)}-bit accumulator, over 62; narrow "
                              f"quantization.{layer.name}.data_in_width")
        feeds = tuple(cast_to(ctx, name, a_fmt, qconfig.rounding, qconfig.overflow, f"{layer.name}_cast_{side}")
                      for name, side in zip(inputs, "ab"))
        stage = MatmulStage(layer.name, module, seq, inner, cols, a_par, b_src.par, out_par, inputs=feeds)
        out = StreamInfo(out_fmt, out_par, cols, qconfig.rounding)
        ctx.add(stage, out)
        if not ctx.is_last(layer):  # a FIFO of one product: a slower reader never holds the component
            fifo = op_with_role("buffer").buffer(f"{layer.name}_out_fifo", stage.name, out,
                                                 seq * cols // out_par + ROW_FIFO_SLACK)
            ctx.add(fifo, out)
            ctx.alias[layer.name] = fifo.name


@register_op()
class MatmulTranspose(Op):
    """``k.transpose(-2, -1)`` (or ``k.mT``) read as a matmul's second operand: the matmul takes K's tokens as
    the rows of Bᵀ (B_TRANSPOSED); any other transpose is an error."""

    torch_ops = TRANSPOSES
    lowers = "transpose(-2, -1) (or .mT) as a matmul's second operand"

    def lower(self, node: fx.Node, ctx: Lowering) -> None:
        value = node.args[0].meta.get("val") if isinstance(node.args[0], fx.Node) else None
        rank = value.dim() if value is not None else 0
        dims = sorted(d % rank for d in (node.args[1:3] if op_name(node) == "transpose" else (-2, -1))) if rank else []
        readers = list(node.users)
        if (rank != 3 or dims != [1, 2] or not readers
                or any(op_name(user) not in PRODUCTS or user.args[1] is not node or user.args[0] is node
                       for user in readers)):
            raise ctx.unsupported(node, "a transpose that is not the second operand of a matmul, "
                                        "k.transpose(-2, -1),")
        ctx.source[node] = ctx.previous(node)


@register_op()
class MatmulScale(Op):
    """``(a @ b) / c`` or ``(a @ b) * c`` with c a power of two at most 1 (attention's 1/√d, d a
    power of 4): folded into the matmul's scale_shift (a shift of its accumulator's frac)."""

    torch_ops = ("div", "mul")
    lowers = "a matmul divided or multiplied by a power of two"

    def lower(self, node: fx.Node, ctx: Lowering) -> None:
        operand, factor = (node.args + (None,))[:2]
        source = ctx.source.get(operand) if isinstance(operand, fx.Node) else None
        layer = ctx.by_name.get(source) if source is not None else None
        if layer is None or layer.kind != "matmul":
            raise ctx.unsupported(node)
        if isinstance(factor, fx.Node) or len(operand.users) != 1:
            raise ctx.unsupported(node, "a scale that is not a number, or of a matmul's product read elsewhere too "
                                        "(flow folds (q @ k.transpose(-2, -1)) / c into the matmul),")
        if node.kwargs.get("rounding_mode") is not None:
            raise ctx.unsupported(node, "a rounding division")
        scale = 1 / factor if op_name(node) == "div" else factor
        shift = _scale_shift(float(scale))
        if shift is None:
            raise LoweringError(f"matmul '{layer.name}' is scaled by {scale:g} at node '{node.name}', not a power of "
                                f"two: flow folds 2**-k into the accumulator; scale by a power of two (1/sqrt(d) with "
                                f"d a power of 4) or fold the scale into the Linear before it")
        layer.attrs["shift"] += shift
        ctx.source[node] = source
