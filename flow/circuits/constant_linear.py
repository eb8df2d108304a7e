"""A constant linear layer as a circuit: a QuantLinear's weight codes as an adder graph
(flow.circuits.cmvm), held as flow.circuits.adder_polarity says, with its pipelining and exact
widths. flow.ops.linear builds it; flow.circuits.shift_add emits it."""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

from flow.circuits.adder_polarity import HeldGraph, hold
from flow.circuits.cmvm import AdderGraph, TreeStyle, bits_for, shared_terms, sum_trees
from flow.formats.base import Rounding
from flow.nn import QuantLinear

# The sum-tree heuristics each row is tried in; a row keeps the one its cost prices lowest: LUTs
# on the cost model plus FF_WEIGHT per register bit its tree carries across a register boundary.
# On the digits MLP at latency 5 (quick hierarchical xc7): 28,935 -> 28,884 LUT, FF 5,873 -> 5,463;
# LUTs alone (FF_WEIGHT 0) 28,816 with FF 6,365, FF_WEIGHT 0.25 28,872 with FF 5,653.
FF_WEIGHT = 0.5
TREE_STYLES = (TreeStyle(), TreeStyle(growth=2, order="low"), TreeStyle(growth=6, order="low"),
               TreeStyle(negation=6, order="top"))


@dataclass
class ConstantLinear:
    """A QuantLinear's weights as an adder graph, with its pipelining and exact output widths."""

    layer: QuantLinear
    graph: AdderGraph
    pipeline_every: int

    @classmethod
    def of(cls, layer: QuantLinear, pipeline_every: int, styles: tuple[TreeStyle, ...] = TREE_STYLES) -> ConstantLinear:
        """The layer's adder graph: the shared terms, then each row's sum tree in whichever of
        ``styles`` leaves that row's adders and output constant adder cheapest on the cost model
        plus its register bits (``row_luts``, each style tried on every row with the others built alike)."""
        fmt = layer.config.data_in
        lo, hi = (-(1 << (fmt.width - 1)), (1 << (fmt.width - 1)) - 1) if fmt.signed else (0, (1 << fmt.width) - 1)
        graph, rows, depth = shared_terms(layer.weight_codes().tolist(), lo, hi, pipeline_every=pipeline_every)
        chosen = [styles[0]] * len(rows)
        if len(styles) > 1:
            best: list[float | None] = [None] * len(rows)
            for style in styles:
                trial = AdderGraph(list(graph.nodes))
                spans = sum_trees(trial, rows, depth, [style] * len(rows))
                for r, cost in enumerate(cls(layer, trial, pipeline_every).row_luts(spans)):
                    if best[r] is None or cost < best[r]:  # ties keep the earlier style
                        best[r], chosen[r] = cost, style
        sum_trees(graph, rows, depth, chosen)
        return cls(layer, graph, pipeline_every)

    def row_luts(self, spans: list[range]) -> list[float]:
        """Per output, the LUTs (inverters included) its sum tree's adders (node ids ``spans[o]``)
        and its constant adder take on the cost model, plus FF_WEIGHT per bit of its tree's nodes
        carried by registers."""
        held, graph, uses = self.held, self.graph, self.last_uses
        return [sum(held.adder_luts(graph.nodes[i]) for i in span)
                + FF_WEIGHT * sum(self.widths[i] * (uses.get(i, 0) - self.segment(i)) for i in span)
                + held.output_luts(graph, o, self.offset(o), self.acc_width) for o, span in enumerate(spans)]

    @property
    def segments(self) -> int:
        """Combinational segments between registers (at least one)."""
        depth = max(self.graph.depth, 1)
        return 1 if self.pipeline_every <= 0 else math.ceil(depth / self.pipeline_every)

    @property
    def latency(self) -> int:
        return self.segments  # segments - 1 register boundaries, plus the output skid buffer

    def segment(self, node_id: int) -> int:
        level = self.graph.nodes[node_id].level
        return 0 if self.pipeline_every <= 0 or level == 0 else (level - 1) // self.pipeline_every

    @property
    def round_offset(self) -> int:
        """Half an output LSB, in accumulator units, when the cast rounds half up: added with the
        bias, so the cast only floors and one constant adder per output goes."""
        c = self.layer.config
        drop = self.layer.acc_format.frac - c.data_out.frac
        return 1 << (drop - 1) if drop > 0 and Rounding(c.rounding) is Rounding.HALF_UP else 0

    @property
    def cast_rounding(self) -> Rounding:
        """The rounding the output cast still does (floor once the offset took half up's place)."""
        return Rounding.FLOOR if self.round_offset else Rounding(self.layer.config.rounding)

    @cached_property
    def last_uses(self) -> dict[int, int]:
        """Node -> the last segment that reads it (the outputs are read in the last): a node is
        carried by registers from its own segment to that one."""
        last = self.segments - 1
        uses: dict[int, int] = {}
        for node in self.graph.nodes:
            if node.a is not None:
                for operand in (node.a, node.b):
                    uses[operand] = max(uses.get(operand, 0), self.segment(node.id))
        for term in self.graph.outputs:
            if term is not None:
                uses[term[0]] = max(uses.get(term[0], 0), last)
        return uses

    @cached_property
    def held(self) -> HeldGraph:
        """How the netlist holds each node (offsets that spare every sign extension)."""
        return hold(self.graph, [self.offset(o) for o in range(self.layer.out_features)], self.acc_width)

    @cached_property
    def _bias(self) -> list[int]:
        return [int(b) for b in self.layer.bias_codes()]

    @cached_property
    def acc_width(self) -> int:
        """Bits of the widest output sum (every accumulator is declared this wide)."""
        return max(bits_for(*self.accumulator_bounds(o)) for o in range(self.layer.out_features))

    @cached_property
    def widths(self) -> list[int]:
        """Each node's signal width: its held width, or the low bits its readers take when none
        needs more (sums are exact modulo 2**width, so the bits above are never seen)."""
        held, need = self.held.nodes, [0] * len(self.graph.nodes)
        for term in self.graph.outputs:
            if term is not None:
                need[term[0]] = max(need[term[0]], self.acc_width - term[1])
        widths = [h.width for h in held]
        for node in reversed(self.graph.nodes):
            if node.a is None:
                continue
            if need[node.id]:
                widths[node.id] = min(widths[node.id], need[node.id])
            for source, shift, _ in node.operands:
                need[source] = max(need[source], widths[node.id] - shift)
        return widths

    def offset(self, output: int) -> int:
        """The constant added to output ``output``'s sum: its bias and the rounding offset."""
        return self._bias[output] + self.round_offset

    def accumulator_bounds(self, output: int) -> tuple[int, int]:
        """The exact interval of output ``output``'s sum, bias and rounding offset included."""
        bias = self.offset(output)
        term = self.graph.outputs[output]
        if term is None:
            return bias, bias
        node = self.graph.nodes[term[0]]
        a, b = term[2] * (node.lo << term[1]), term[2] * (node.hi << term[1])
        return bias + min(a, b), bias + max(a, b)
