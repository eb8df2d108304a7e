"""How the shift-add netlist holds each adder-graph node: its value plus a constant offset, chosen
so that no adder sign-extends its narrower operand.

On a carry chain (Xilinx CARRY4, ECP5 CCU2C) the bits of a sum above its narrower operand cost
no LUT when that operand is zero-extended, and one LUT each when it is sign-extended. A signed
w-bit operand with its top bit flipped is the same number plus 2**(w-1), unsigned; the flip is
an inverter that folds into the adder's LUT. The offsets it adds ride along each node as a
constant and fold into the output's bias, which is one constant adder per output already.
"""
from __future__ import annotations

from dataclasses import dataclass

from flow.hardware.cmvm import AdderGraph, Term, bits_for


@dataclass(frozen=True)
class Held:
    """A node as hardware holds it: ``true value + offset``, in [lo, hi]."""

    lo: int
    hi: int
    offset: int

    @property
    def signed(self) -> bool:
        return self.lo < 0

    @property
    def width(self) -> int:
        return bits_for(self.lo, self.hi) if self.signed else max(self.hi.bit_length(), 1)

    @property
    def flip(self) -> int:
        """What flipping the top bit adds: 2**(width-1) for a signed value, else nothing."""
        return 1 << (self.width - 1) if self.signed else 0


@dataclass(frozen=True)
class HeldGraph:
    """Every node's held form, the operands read with their top bit flipped ((node id, 0 for
    ``a`` / 1 for ``b``)), and the outputs read that way."""

    nodes: list[Held]
    flipped: frozenset[tuple[int, int]]
    flipped_outputs: frozenset[int]

    def output_constant(self, graph: AdderGraph, output: int, offset: int) -> int:
        """The constant an output adds to its held term so the sum is ``offset`` (bias and
        rounding) plus the output's true value."""
        term = graph.outputs[output]
        if term is None:
            return offset
        node, shift, sign = term
        flip = self.nodes[node].flip if output in self.flipped_outputs else 0
        return offset - sign * ((self.nodes[node].offset + flip) << shift)

    def lut_bits(self, graph: AdderGraph) -> int:
        """Adder bits that need a LUT on a carry chain: from the larger operand shift (the bits
        below pass through) to the narrower operand's top (above it only the carry runs), or to
        the sum's top when the narrower operand is read sign-extended."""
        total = 0
        for node in graph.nodes:
            if node.a is None:
                continue
            terms = ((node.a, node.a_shift, node.a_sign), (node.b, node.b_shift, node.b_sign))
            index = _narrower(self.nodes, terms)
            source, shift, _ = terms[index]
            extended = self.nodes[source].signed and (node.id, index) not in self.flipped
            end = self.nodes[node.id].width if extended else shift + self.nodes[source].width
            total += max(end - max(node.a_shift, node.b_shift), 0)
        return total

    @classmethod
    def plain(cls, graph: AdderGraph) -> HeldGraph:
        """Every node held as its true value, nothing flipped: the netlist before this module."""
        return cls([Held(node.lo, node.hi, 0) for node in graph.nodes], frozenset(), frozenset())


def wrap(value: int, width: int) -> int:
    """``value`` modulo 2**width, as the signed number of that width: a netlist's sums are exact
    modulo 2**width, so a constant outside the range wraps without changing a bit."""
    half = 1 << (width - 1)
    return (value + half) % (1 << width) - half


def _narrower(held: list[Held], terms: tuple[Term, Term]) -> int:
    """Index of the operand whose top bit is lower (``b`` on a tie)."""
    return 0 if terms[0][1] + held[terms[0][0]].width < terms[1][1] + held[terms[1][0]].width else 1


def hold(graph: AdderGraph) -> HeldGraph:
    """Each node's held form: an adder flips the top bit of its narrower operand when signed."""
    held: list[Held] = []
    flipped: set[tuple[int, int]] = set()
    for node in graph.nodes:
        if node.a is None:
            held.append(Held(node.lo, node.hi, 0))
            continue
        terms = ((node.a, node.a_shift, node.a_sign), (node.b, node.b_shift, node.b_sign))
        narrow = _narrower(held, terms)
        lo = hi = offset = 0
        for index, (source, shift, sign) in enumerate(terms):
            h = held[source]
            flip = h.flip if index == narrow else 0
            if flip:
                flipped.add((node.id, index))
            ends = (sign * ((h.lo + flip) << shift), sign * ((h.hi + flip) << shift))
            lo, hi = lo + min(ends), hi + max(ends)
            offset += sign * ((h.offset + flip) << shift)
        held.append(Held(lo, hi, offset))
    outputs = frozenset(o for o, term in enumerate(graph.outputs) if term is not None and held[term[0]].signed)
    return HeldGraph(held, frozenset(flipped), outputs)
