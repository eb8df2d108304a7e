"""Emit a constant linear layer as a shift-add netlist: one generated SystemVerilog module per
layer, from the adder graph of flow.hardware.cmvm.

Every node is a signal exactly as wide as its value interval, unsigned when it is never
negative (sums are exact modulo 2**width, and the interval says the result fits, so operands are
cast to that width). Each node is marked ``keep``: otherwise Yosys merges a chain of adders into
one multi-operand sum and builds it from full-adder LUTs, about 10 % more LUTs than one carry
chain per node. A register boundary follows every ``pipeline_every`` adder levels; a node used beyond
its own segment is carried by a chain of registers. All registers move together when the
pipeline may advance (the last stage is empty or the output takes its beat), so the module keeps
the stream protocol with II 1 and latency ``stages + 1`` (the output skid buffer).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

from flow.formats.base import Overflow, Rounding
from flow.hardware.cmvm import AdderGraph, bits_for, build
from flow.hardware.held import SIGNED_INVERT, HeldGraph, Read, hold, wrap
from flow.nn import QuantLinear


@dataclass
class ConstantLinear:
    """A QuantLinear's weights as an adder graph, with its pipelining and exact output widths."""

    layer: QuantLinear
    graph: AdderGraph
    pipeline_every: int

    @classmethod
    def of(cls, layer: QuantLinear, pipeline_every: int) -> ConstantLinear:
        fmt = layer.config.data_in
        lo, hi = (-(1 << (fmt.width - 1)), (1 << (fmt.width - 1)) - 1) if fmt.signed else (0, (1 << fmt.width) - 1)
        return cls(layer, build(layer.weight_codes().tolist(), lo, hi, pipeline_every=pipeline_every), pipeline_every)

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


def _signal(node_id: int, segment: int, home: int) -> str:
    return f"n{node_id}" if segment == home else f"n{node_id}_r{segment}"


def _operand(width: int, name: str, shift: int, read: Read, held_width: int, source_width: int) -> str:
    """A term as SystemVerilog, cast to the width of the sum it enters: the cast extends by the
    operand's own signedness, and since the sum is exact modulo 2**width, the signedness of the
    context does not change a bit; of a source wider than the sum above the shift only the low
    bits are read (``x[k:0]``). A mask reads ``x ^ w'hmask`` (unsigned, so it zero-extends);
    SIGNED_INVERT reads ``x ^ w'sh<all ones>``, signed; a source kept to fewer bits than it is
    held in takes the mask's low bits (see flow.hardware.held). A subtracted term is ``-(...)``
    (Yosys reads ``-9'(x)`` as a cast to size -9)."""
    mask, sign = read.mask, -1 if read.subtract else 1
    keep = min(width - shift, source_width)
    if keep < held_width:  # its low bits only: nothing is extended, the mask's low bits invert them
        mask = (1 << keep) - 1 if mask == SIGNED_INVERT else mask & ((1 << keep) - 1)
    if keep < source_width:
        name = f"{name}[{keep - 1}:0]"
    if mask == SIGNED_INVERT:  # a signed literal keeps the read signed: it sign-extends
        name = f"{name} ^ {keep}'sh{(1 << keep) - 1:x}"
    elif mask:
        name = f"{name} ^ {keep}'h{mask:x}"
    text = f"({width}'({name}) << {shift})" if shift else f"{width}'({name})"
    pad = ((1 << width) - 1) ^ ((1 << (shift + keep)) - 1) if read.pad else 0
    if pad:  # ones above the pattern (see flow.hardware.held.Read)
        text = f"({text} | {width}'h{pad:x})"
    return text if sign > 0 else f"-({text})"


def cmvm_module(name: str, const: ConstantLinear) -> str:
    """The SystemVerilog text of one constant linear layer."""
    layer, graph, held = const.layer, const.graph, const.held
    c = layer.config
    n_in, n_out = layer.in_features, layer.out_features
    x_w, y_w = c.data_in.width, c.data_out.width
    last = const.segments - 1
    lines = [
        f"// {name}: generated by flow; do not edit. y = W x + b of a {n_out}x{n_in} layer as shift-add:",
        f"// {graph.adders} adders (CSD digits, shared subexpressions), depth {graph.depth}, "
        f"{const.segments} segment(s) (a register every {const.pipeline_every or 'no'} level(s)).",
        "// II 1; latency = segments (registers between segments, then the output skid buffer).",
        "`default_nettype none",
        f"module {name} (",
        "    input  wire logic clk,",
        "    input  wire logic rst,",
        f"    input  wire logic [{n_in * x_w - 1}:0] s_axis_tdata,",
        "    input  wire logic s_axis_tvalid,",
        "    output logic s_axis_tready,",
        f"    output logic [{n_out * y_w - 1}:0] m_axis_tdata,",
        "    output logic m_axis_tvalid,",
        "    input  wire logic m_axis_tready",
        ");",
    ]
    uses, widths = const.last_uses, const.widths
    body: list[str] = ["    logic advance, last_valid, result_ready;"]
    registers: list[str] = []
    for node in graph.nodes:
        width, home = widths[node.id], const.segment(node.id)
        kind = "logic signed" if held.nodes[node.id].signed and width == held.nodes[node.id].width else "logic"
        body.append(f"    (* keep *) {kind} [{width - 1}:0] n{node.id};")
        if node.a is None:
            body.append(f"    assign n{node.id} = s_axis_tdata[{node.id * x_w + x_w - 1}:{node.id * x_w}];")
        else:
            a, b = (_operand(width, _signal(src, home, const.segment(src)), shift, held.read(node.id, index),
                             held.nodes[src].width, widths[src])
                    for index, (src, shift, _) in enumerate(node.operands))
            if a.startswith("-"):
                a, b = b, a  # the minuend first
            body.append(f"    assign n{node.id} = {a} {'+' if not b.startswith('-') else '-'} "
                        f"{b.removeprefix('-')};")
        for segment in range(home + 1, uses.get(node.id, home) + 1):
            body.append(f"    {kind} [{width - 1}:0] n{node.id}_r{segment};")
            registers.append(f"            n{node.id}_r{segment} <= {_signal(node.id, segment - 1, home)};")
    acc_frac = layer.acc_format.frac
    acc_w = const.acc_width
    body.append(f"    logic signed [{acc_w - 1}:0] acc [{n_out}];")
    body.append(f"    logic [{n_out * y_w - 1}:0] result;")
    for o, term in enumerate(graph.outputs):
        bias = wrap(held.output_constant(graph, o, const.offset(o)), acc_w)
        bias_text = f"{acc_w}'sd{bias}" if bias >= 0 else f"-({acc_w}'sd{-bias})"
        if term is None:
            body.append(f"    assign acc[{o}] = {bias_text};")
        else:
            node = term[0]
            operand = _operand(acc_w, _signal(node, last, const.segment(node)), term[1],
                               held.output_reads.get(o, Read()), held.nodes[node].width, widths[node])
            body.append(f"    assign acc[{o}] = {bias_text} {'+' if not operand.startswith('-') else '-'} "
                        f"{operand.removeprefix('-')};")
    lines += body
    if last > 0:
        lines += [
            f"    logic [{last}:1] valid;",
            f"    assign last_valid = valid[{last}];",
            "    assign advance = !last_valid || result_ready;",
            "    assign s_axis_tready = advance;",
            "    always_ff @(posedge clk) begin",
            "        if (rst) begin",
            "            valid <= '0;",
            "        end else if (advance) begin",
            (f"            valid <= {{valid[{last - 1}:1], s_axis_tvalid}};" if last > 1
             else "            valid <= s_axis_tvalid;"),
            "        end",
            "    end",
            "    always_ff @(posedge clk) begin",
            "        if (advance) begin",
            *registers,
            "        end",
            "    end",
        ]
    else:
        lines += [
            "    assign last_valid = s_axis_tvalid;",
            "    assign advance = result_ready;",
            "    assign s_axis_tready = advance;",
        ]
    rounding, overflow = const.cast_rounding.rtl_code, Overflow(c.overflow).rtl_code
    lines += [
        "    for (genvar o = 0; o < " + str(n_out) + "; o++) begin : g_cast",
        "        fixed_cast_lane #(",
        f"            .IN_WIDTH({acc_w}), .IN_FRAC({acc_frac}), .IN_SIGNED(1),",
        f"            .OUT_WIDTH({y_w}), .OUT_FRAC({c.data_out.frac}), .OUT_SIGNED({int(c.data_out.signed)}),",
        f"            .ROUNDING({rounding}), .OVERFLOW({overflow})",
        f"        ) u_cast (.data_in(acc[o]), .data_out(result[o*{y_w} +: {y_w}]));",
        "    end",
        f"    skid_buffer #(.DATA_WIDTH({n_out * y_w})) u_out (",
        "        .clk, .rst,",
        "        .s_axis_tdata(result), .s_axis_tvalid(last_valid), .s_axis_tready(result_ready),",
        "        .m_axis_tdata, .m_axis_tvalid, .m_axis_tready",
        "    );",
        "endmodule",
        "`default_nettype wire",
    ]
    return "\n".join(lines) + "\n"
