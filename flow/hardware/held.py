"""How the shift-add netlist holds each adder-graph node: its value plus a constant offset, chosen
so that every adder adds (no subtraction) and none sign-extends its narrower operand.

On a carry chain (Xilinx CARRY4, ECP5 CCU2C) the bits of a sum above its narrower operand cost
no LUT when that operand is zero-extended, and one LUT each when it is sign-extended; a
subtraction costs one LUT more than an addition. So an operand is read through an XOR mask, an
inverter that folds into the adder's LUT, and read unsigned:

- a signed narrower term, top bit flipped: ``h + 2**(w-1)``;
- a negative unsigned term, all bits inverted: ``2**w - 1 - h``;
- a negative signed narrower term, all bits but the top inverted: ``2**(w-1) - 1 - h``;
- a negative signed wider term, all bits inverted and read signed (``SIGNED_INVERT``): ``-1 - h``
  (its sign extension costs nothing: no bit of the sum lies above it but the carry).

Each read is the term plus a constant. The constants ride along each node as its offset and fold
into the output's bias, which is one constant adder per output already.
"""
from __future__ import annotations

from dataclasses import dataclass

from flow.hardware.cmvm import AdderGraph, Term, interval_width


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
        return interval_width(self.lo, self.hi)


SIGNED_INVERT = -1  # the mask of a read through ``x ^ w'sh<all ones>``: every bit inverted, signed


def read_mask(held: Held, sign: int, narrower: bool) -> int:
    """The XOR mask a term is read through. 0 reads it as held: a positive term, or a negative
    1-bit signed narrower one (its mask would be 0), which is then subtracted."""
    top, every = 1 << (held.width - 1), (1 << held.width) - 1
    if sign > 0:
        return top if held.signed and narrower else 0
    if not held.signed:
        return every
    return every ^ top if narrower else SIGNED_INVERT


def read_interval(held: Held, sign: int, mask: int) -> tuple[int, int, int]:
    """A term's contribution to its sum, as (lo, hi, constant): the read value is ``sign * held +
    constant`` and lies in [lo, hi]. A masked read is unsigned and always added, and each of the
    three masks adds itself: ``h ^ top = h + top`` for a signed h, ``h ^ all = all - h`` for an
    unsigned one, ``h ^ (all ^ top) = (top - 1) - h`` for a signed one; SIGNED_INVERT reads
    ``-1 - h``, signed."""
    ends = (sign * held.lo + mask, sign * held.hi + mask)
    return min(ends), max(ends), mask


@dataclass(frozen=True)
class HeldGraph:
    """Every node's held form and the XOR mask of each masked read: adder operands by (node id,
    0 for ``a`` / 1 for ``b``), output terms by output index."""

    nodes: list[Held]
    masks: dict[tuple[int, int], int]
    output_masks: dict[int, int]

    def output_constant(self, graph: AdderGraph, output: int, offset: int) -> int:
        """The constant an output adds to its read term so the sum is ``offset`` (bias and
        rounding) plus the output's true value."""
        term = graph.outputs[output]
        if term is None:
            return offset
        node, shift, sign = term
        held = self.nodes[node]
        _, _, constant = read_interval(held, sign, self.output_masks.get(output, 0))
        return offset - ((sign * held.offset + constant) << shift)

    def lut_bits(self, graph: AdderGraph) -> int:
        """LUTs the adders take on a carry chain: from the larger operand shift (the bits below
        pass through) to the narrower operand's top (above it only the carry runs), or to the
        sum's top when the narrower operand is read sign-extended; one more for a subtraction."""
        total = 0
        for node in graph.nodes:
            if node.a is None:
                continue
            terms = node.operands
            index = _narrower(self.nodes, terms)
            source, shift, _ = terms[index]
            extended = self.nodes[source].signed and not self.masks.get((node.id, index))
            end = self.nodes[node.id].width if extended else shift + self.nodes[source].width
            subtracts = any(sign < 0 and not self.masks.get((node.id, i)) for i, (_, _, sign) in enumerate(terms))
            total += max(end - max(node.a_shift, node.b_shift), 0) + subtracts
        return total

    @classmethod
    def plain(cls, graph: AdderGraph) -> HeldGraph:
        """Every node held as its true value, nothing masked: the netlist without this module."""
        return cls([Held(node.lo, node.hi, 0) for node in graph.nodes], {}, {})


def wrap(value: int, width: int) -> int:
    """``value`` modulo 2**width, as the signed number of that width: a netlist's sums are exact
    modulo 2**width, so a constant outside the range wraps without changing a bit."""
    half = 1 << (width - 1)
    return (value + half) % (1 << width) - half


def _narrower(held: list[Held], terms: tuple[Term, Term]) -> int:
    """Index of the operand whose top bit is lower (``b`` on a tie)."""
    return 0 if terms[0][1] + held[terms[0][0]].width < terms[1][1] + held[terms[1][0]].width else 1


def hold(graph: AdderGraph) -> HeldGraph:
    """Each node's held form and the masks its adder reads its operands through."""
    held: list[Held] = []
    masks: dict[tuple[int, int], int] = {}
    for node in graph.nodes:
        if node.a is None:
            held.append(Held(node.lo, node.hi, 0))
            continue
        terms = node.operands
        narrow = _narrower(held, terms)
        lo = hi = offset = 0
        for index, (source, shift, sign) in enumerate(terms):
            h = held[source]
            mask = read_mask(h, sign, index == narrow)
            if mask:
                masks[node.id, index] = mask
            read_lo, read_hi, constant = read_interval(h, sign, mask)
            lo, hi = lo + (read_lo << shift), hi + (read_hi << shift)
            offset += (sign * h.offset + constant) << shift
        held.append(Held(lo, hi, offset))
    outputs = {}
    for o, term in enumerate(graph.outputs):
        if term is not None:
            mask = read_mask(held[term[0]], term[2], True)
            if mask:
                outputs[o] = mask
    return HeldGraph(held, masks, outputs)
