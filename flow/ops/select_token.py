"""select_token (component hw/rtl/select_token.sv): ``h[:, i]`` of a sequence design (torch.export's
``aten.select(h, 1, i)``, as ``h[:, 0]``, ``h[:, 0, :]`` and ``h.select(1, 0)`` spell it; a constant
token index, negative ones counted from the end): of each sample's tokens it passes token i's vector
and drops the others, so the stream after it carries one vector a sample and the design after it is
an ordinary per-sample design (BERT's pooler reads token 0: ``tanh(dense(h[:, 0]))``). It takes a
beat every cycle (a dropped beat at once) and offers a kept beat one cycle after taking it; unless it
drives the output, a FIFO of one token plus two beats follows it (``<layer>_out_fifo``), so a reader
that takes the kept token's beats more slowly (a folded Linear) never holds the token stream."""
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import fx, nn

from flow.circuits.components import select_token_parameters
from flow.formats.base import Format
from flow.graph.capture import owner
from flow.ops.base import INPUT, Build, ElementwiseStage, FloatLayer, Lowering, Op, Times, register_op
from flow.ops.rows import add_row_stage


class SelectToken(nn.Module):
    """The float view: token ``index`` of each sample, from a token a row ((samples x tokens, features))."""

    def __init__(self, tokens: int, index: int) -> None:
        super().__init__()
        self.tokens, self.index = tokens, index

    def extra_repr(self) -> str:
        return f"tokens={self.tokens}, index={self.index}"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.reshape(-1, self.tokens, x.shape[-1])[:, self.index]


@dataclass
class SelectTokenStage(ElementwiseStage):
    """Passes token ``index`` of each sample's ``tokens`` tokens (PAR elements a beat) and drops the rest."""

    name: str
    fmt: Format
    par: int
    features: int
    tokens: int
    index: int
    inputs: tuple[str, ...] = (INPUT,)

    in_format = property(lambda self: self.fmt)
    out_format = property(lambda self: self.fmt)
    module = property(lambda self: SelectToken(self.tokens, self.index))

    def forward_codes(self, codes: torch.Tensor) -> torch.Tensor:
        return codes.reshape(-1, self.tokens, codes.shape[-1])[:, self.index]

    def sequence_out(self, sequence: int) -> int:
        return 1

    def schedule(self, offered: dict[str, Times], taken: dict[str, Times],
                 handover: Callable[[str, Any], Times], vectors: int) -> None:
        """It takes every beat as it comes (a dropped one too) and offers each beat of the kept
        token one cycle after taking it (its skid buffer)."""
        took = handover(self.inputs[0], self)
        sample = self.tokens * self.beats
        first = self.index * self.beats
        offered[self.name] = [t + self.latency for k, t in enumerate(took)
                              if first <= k % sample < first + self.beats]

    def component(self, design: str = "") -> str:
        return "select_token"

    def rtl_parameters(self, package: str, design: str = "") -> dict[str, object]:
        return select_token_parameters(self.par * self.fmt.width, self.beats, self.tokens, self.index)

    def describe(self) -> str:
        return f"token {self.index} of {self.tokens} a sample ({self.beats} beats of {self.par} {self.fmt} a token)"

    def report_row(self) -> dict[str, Any]:
        return {"kind": "select_token", "index": self.index, "tokens": self.tokens}

    def estimate_kind(self) -> str:
        return "select_token"  # falls back to the calibration's "other" coefficients until fitted

    def estimate_features(self) -> dict[str, float]:
        return {"counter_bits": float((self.tokens * self.beats).bit_length())}


@register_op("select_token")
class Select(Op):
    torch_ops = ("select",)
    lowers = "h[:, i] of a (batch, sequence, features) sequence design (aten.select over the sequence)"

    def lower(self, node: fx.Node, ctx: Lowering) -> None:
        source = node.args[0]
        value = source.meta.get("val") if isinstance(source, fx.Node) else None
        shape = tuple(value.shape) if value is not None else None
        dim, index = (list(node.args[1:3]) + [None, None])[:2]
        if ctx.sequence <= 1 or shape is None or len(shape) != 3 or shape[1] != ctx.sequence:
            raise ctx.unsupported(node, f"a select of a {shape} tensor (flow selects a token, h[:, i], of a "
                                        f"(batch, sequence, features) sequence design) in")
        if not isinstance(dim, int) or dim % 3 != 1:
            raise ctx.unsupported(node, f"a select along dimension {dim} (flow selects a token along the sequence, "
                                        f"dimension 1: h[:, i]) in")
        if not isinstance(index, int) or not -ctx.sequence <= index < ctx.sequence:
            raise ctx.unsupported(node, f"a select of token {index} of {ctx.sequence} (a constant index) in")
        ctx.add(FloatLayer("select_token", ctx.name_of(owner(node), node), (ctx.previous(node),),
                           attrs={"index": index % ctx.sequence, "tokens": ctx.sequence}, features=int(shape[-1])),
                node)

    def build(self, layer: FloatLayer, ctx: Build) -> None:
        inputs = ctx.inputs(layer)
        src = ctx.streams[inputs[0]]
        stage = SelectTokenStage(layer.name, src.fmt, src.par, src.features, layer.attrs["tokens"],
                                 layer.attrs["index"], inputs=inputs)
        add_row_stage(ctx, layer, stage, src)  # a FIFO of one token after it: a slower reader (a folded
        # Linear) takes the kept token while the dropped ones pass, so the stream before it never waits
