"""How the shift-add netlist holds each adder-graph node: ``polarity * value + offset``, and how
each adder reads its operands, chosen to spend the fewest LUTs, inverters included.

A read takes a held value ``h`` through an XOR mask and adds or subtracts the pattern:

- no mask: ``h`` as it is (a signed one is sign-extended, which costs a LUT a bit above it);
- a signed narrower term, top bit flipped: ``h + 2**(w-1)``, read unsigned (no extension);
- all bits inverted, unsigned: ``2**w - 1 - h``;
- all bits but the top inverted, signed narrower: ``2**(w-1) - 1 - h``;
- all bits inverted, signed wider (``SIGNED_INVERT``): ``-1 - h``;
- an unsigned pattern padded with ones above it up to the sum's width (``Read.pad``): ``p - 2**w``
  modulo that width, so where the other operand runs on alone a subtraction sees it as it is;
- a 1 at the sum's own top bit in an added operand whose pattern is 0 there (``Read.top``): a
  signed sum is then held ``2**(w-1)`` higher, unsigned, so no reader flips its top bit (an INV
  on DI where the reader is the narrower operand); free where that bit is the sum's carry alone.

Each read is ``±h`` plus a constant; the constants ride along each node as its offset and fold
into the output's bias, which is one constant adder per output already. A node may be held
negated (polarity -1), so an adder whose terms enter with one sign adds them as held.

Which form is cheapest is decided on a model of Yosys' xc7 mapping (``adder_cost``): ``a + b``
becomes a CARRY4 chain with S = A ^ B in a LUT and DI = A read as it is, ``A`` being the operand
with the lower top bit (either on a tie); ``a - b`` keeps the minuend as ``A`` and inverts ``B``
inside the LUT. An inverted bit is free where the S LUT absorbs it, and costs an INV cell (a LUT1)
where it feeds DI or passes through alone. Subtracting a narrower operand padded with ones (or
padding a narrower minuend) leaves no bit inverted alone: on the digits MLP the INV cells of the
fully parallel point fall by about 40 %.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from flow.circuits.cmvm import AdderGraph, Term, interval_width


@dataclass(frozen=True)
class Held:
    """A node as hardware holds it: ``polarity * true value + offset``, in [lo, hi]."""

    lo: int
    hi: int
    offset: int
    polarity: int = 1

    @property
    def signed(self) -> bool:
        return self.lo < 0

    @property
    def width(self) -> int:
        return interval_width(self.lo, self.hi)


SIGNED_INVERT = -1  # the mask of a read through ``x ^ w'sh<all ones>``: every bit inverted, signed


@dataclass(frozen=True)
class Read:
    """How an adder reads a held value: through ``mask``, then added or (``subtract``) subtracted;
    ``pad`` fills the bits of the sum above an unsigned pattern with ones (``| w'h<ones>``), so
    where the other operand runs on alone its S bit is that operand as it is (no inverter); modulo
    the sum's width the ones are ``-2**w`` for a w-bit pattern."""

    mask: int = 0
    subtract: bool = False
    pad: bool = False
    top: bool = False  # a 1 at the sum's top bit, where this pattern is 0: the node is held 2**(w-1) higher, unsigned


def negating_mask(held: Held, narrower: bool) -> int:
    """The mask that reads ``held`` negated (plus a constant); 0 when none does (1-bit signed narrower)."""
    top, every = 1 << (held.width - 1), (1 << held.width) - 1
    if not held.signed:
        return every
    return every ^ top if narrower else SIGNED_INVERT


def plain_mask(held: Held, narrower: bool) -> int:
    """The mask that reads ``held`` as it is, unsigned where it would be sign-extended."""
    return 1 << (held.width - 1) if held.signed and narrower else 0


def read_value(held: Held, read: Read) -> tuple[int, int]:
    """The read as ``(k, c)``: its value is ``k * h + c``, k = ±1."""
    top = 1 << (held.width - 1)
    if read.mask == 0:
        k, c = 1, 0
    elif read.mask == SIGNED_INVERT:
        k, c = -1, -1
    elif held.signed and read.mask == top:
        k, c = 1, top
    elif held.signed:  # every ^ top
        k, c = -1, top - 1
    else:  # every bit of an unsigned value
        k, c = -1, read.mask
    if read.pad:
        c -= 1 << held.width
    return (-k, -c) if read.subtract else (k, c)


def padded_from(held: Held, read: Read, shift: int) -> int | None:
    """The first bit of the sum a padded read fills with ones (None: no pad)."""
    return shift + held.width if read.pad else None


def read_interval(held: Held, read: Read) -> tuple[int, int]:
    """The interval of a read's value."""
    k, c = read_value(held, read)
    ends = (k * held.lo + c, k * held.hi + c)
    return min(ends), max(ends)


def _bits(held: Held, read: Read, shift: int, width: int) -> dict[int, tuple[bool, bool]]:
    """Bit position in the sum -> (a signal rather than a constant, inverted) of the pattern the
    adder port sees, subtraction's inversion included; positions missing are constant 0 (1 when
    subtracted)."""
    w = held.width
    extended = held.signed and (read.mask == 0 or read.mask == SIGNED_INVERT)
    bits = {}
    for p in range(shift, width):
        bit = min(p - shift, w - 1)
        if p - shift >= w and not extended:
            break
        inverted = read.mask == SIGNED_INVERT or (read.mask != SIGNED_INVERT and bool(read.mask >> bit & 1))
        bits[p] = (True, inverted != read.subtract)
    return bits


def adder_cost(operands: list[tuple[Held, Read, int]], width: int) -> int:
    """LUTs (INV cells included) that one adder of the netlist takes after Yosys' xc7 mapping."""
    subtracted = [read.subtract for _, read, _ in operands]
    if all(subtracted):  # -a - b: a sum, then a negation across the width
        return width + adder_cost([(held, Read(read.mask), shift) for held, read, shift in operands], width)
    ports = [_bits(held, read, shift, width) for held, read, shift in operands]
    pads = [padded_from(held, read, shift) for held, read, shift in operands]
    tops = [width - 1 if (pad is not None and pad < width) or read.top else max(port, default=-1)
            for port, pad, (_, read, _) in zip(ports, pads, operands)]

    def absent(index: int, p: int) -> bool:
        """The constant an operand's port holds at a bit it has no signal at, subtraction included."""
        pad = pads[index]
        return ((pad is not None and p >= pad) != subtracted[index]) != (operands[index][1].top and p == width - 1)

    if any(subtracted):
        orders = [(subtracted.index(False), subtracted.index(True))]
    elif tops[0] != tops[1]:
        orders = [(0, 1) if tops[0] < tops[1] else (1, 0)]
    else:
        orders = [(0, 1), (1, 0)]  # a tie: Yosys picks by a hash; count the worse
    costs = []
    for a, b in orders:
        luts, inverters = 0, set()
        for p in range(min(min(port, default=width) for port in ports), width):
            pa, pb = ports[a].get(p), ports[b].get(p)
            if pa and pb:
                luts += 1
            elif pa or pb:
                signal, constant = (pa, absent(b, p)) if pa else (pb, absent(a, p))
                if signal[1] != constant:  # S is the signal inverted: an inverter alone
                    inverters.add((a if pa else b, p))
            if pa and pa[1]:  # DI reads A as it is
                inverters.add((a, p))
        costs.append(luts + len(inverters))
    # a 1 at the top of a subtraction's minuend: Yosys computes that bit from the borrow in a LUT of
    # its own (u8 - u8 with it: 9 LUT measured, 8 without)
    return max(costs) + (any(subtracted) and any(read.top for _, read, _ in operands))


def constant_add_cost(constant: int, held: Held, read: Read, shift: int, width: int) -> int:
    """Inverters the output's constant adder takes (``constant`` plus or minus the read, ``width``
    bits): on xc7 its S input is the read's bit XOR the constant's, so a bit whose read is inverted
    an odd number of times (mask, subtraction, a 1 in the constant) is an INV cell; the bits of
    one sign extension share theirs."""
    return len({(min(p - shift, held.width - 1), p >= shift + held.width)
                for p, (_, inverted) in _bits(held, read, shift, width).items() if inverted != bool(constant >> p & 1)})


def _output_read(held: Held, term: Term, offset: int, width: int) -> tuple[int, Read]:
    """The cheapest read of an output's term ``(node, shift, sign)`` held as ``held`` and the
    inverters its constant adder takes: plain, or a signed term with its top bit flipped."""
    subtract = term[2] * held.polarity < 0
    options = dict.fromkeys([Read(plain_mask(held, True), subtract), Read(0, subtract)])
    costs = []
    for read in options:
        k, c = read_value(held, read)
        constant = wrap(offset - ((k * held.offset + c) << term[1]), width)
        costs.append((constant_add_cost(constant, held, read, term[1], width), read != Read(plain_mask(held, True), subtract), read))
    cost, _, read = min(costs, key=lambda item: item[:2])
    return cost, read


@dataclass(frozen=True)
class HeldGraph:
    """Every node's held form and how each adder reads its operands (by (node id, 0 for ``a`` /
    1 for ``b``)) and each output its term (by output index)."""

    nodes: list[Held]
    reads: dict[tuple[int, int], Read]
    output_reads: dict[int, Read]

    def read(self, node: int, index: int) -> Read:
        return self.reads.get((node, index), Read())

    def output_constant(self, graph: AdderGraph, output: int, offset: int) -> int:
        """The constant an output adds to its read term so the sum is ``offset`` (bias and
        rounding) plus the output's true value."""
        term = graph.outputs[output]
        if term is None:
            return offset
        node, shift, _ = term
        held = self.nodes[node]
        k, c = read_value(held, self.output_reads.get(output, Read()))
        return offset - ((k * held.offset + c) << shift)

    def adder_luts(self, node) -> int:
        """LUTs one adder takes, inverters included (``adder_cost``)."""
        return adder_cost([(self.nodes[src], self.read(node.id, i), shift)
                           for i, (src, shift, _) in enumerate(node.operands)], self.nodes[node.id].width)

    def lut_bits(self, graph: AdderGraph) -> int:
        """LUTs the adders take, inverters included (``adder_cost`` of every adder)."""
        return sum(self.adder_luts(node) for node in graph.nodes if node.a is not None)

    def output_luts(self, graph: AdderGraph, output: int, offset: int, width: int) -> int:
        """Inverters output ``output``'s constant adder takes (``constant_add_cost``)."""
        term = graph.outputs[output]
        if term is None:
            return 0
        constant = wrap(self.output_constant(graph, output, offset), width)
        return constant_add_cost(constant, self.nodes[term[0]], self.output_reads.get(output, Read()), term[1], width)

    @classmethod
    def plain(cls, graph: AdderGraph) -> HeldGraph:
        """Every node held as its true value, negative terms subtracted: the netlist without this module."""
        reads = {(node.id, i): Read(0, sign < 0) for node in graph.nodes if node.a is not None
                 for i, (_, _, sign) in enumerate(node.operands) if sign < 0}
        return cls([Held(node.lo, node.hi, 0) for node in graph.nodes], reads,
                   {o: Read(0, True) for o, term in enumerate(graph.outputs) if term is not None and term[2] < 0})


def wrap(value: int, width: int) -> int:
    """``value`` modulo 2**width, as the signed number of that width: a netlist's sums are exact
    modulo 2**width, so a constant outside the range wraps without changing a bit."""
    half = 1 << (width - 1)
    return (value + half) % (1 << width) - half


def _narrower(held: list[Held], terms: tuple[Term, Term]) -> int:
    """Index of the operand whose top bit is lower (``b`` on a tie)."""
    return 0 if terms[0][1] + held[terms[0][0]].width < terms[1][1] + held[terms[1][0]].width else 1


def _candidates(held: list[Held], terms: tuple[Term, Term], signs: tuple[int, int]) -> list[tuple[Read, Read]]:
    """The ways to read two operands with the signs ``signs`` (on their held values): as they are
    or through a mask, and an unsigned pattern also padded with ones above it."""
    narrow = _narrower(held, terms)
    options: list[list[Read]] = []
    for index, ((source, _, _), sign) in enumerate(zip(terms, signs)):
        h, narrower = held[source], index == narrow
        unsigned = 1 << (h.width - 1) if h.signed else 0
        if sign > 0:
            ways = [Read(plain_mask(h, narrower)), Read(unsigned, pad=True)]
        else:
            ways = [Read(plain_mask(h, narrower), subtract=True), Read(unsigned, subtract=True, pad=True)]
            if negating_mask(h, narrower):
                ways.append(Read(negating_mask(h, narrower)))
        options.append(list(dict.fromkeys(ways)))
    return [(a, b) for a in options[0] for b in options[1] if not (a.subtract and b.subtract)]


def _top_flipped(held: list[Held], terms: tuple[Term, Term], pair: tuple[Read, Read], lo: int, hi: int, offset: int,
                 polarity: int) -> list[tuple[Held, tuple[Read, Read]]]:
    """A signed sum held unsigned instead: a 1 at its top bit (w - 1) in an added operand whose
    pattern is 0 there adds 2**(w-1), so the node lies in [0, 2**w) and no reader flips its top
    bit (an INV on the carry chain's DI where the reader is the narrower operand); free where
    the top bit is the sum's carry alone. Empty when the sum is unsigned or never negative."""
    if lo >= 0 or hi < 0:
        return []
    width, top = interval_width(lo, hi), 1 << (interval_width(lo, hi) - 1)
    for index, ((source, shift, _), read) in enumerate(zip(terms, pair)):
        if not read.subtract and not read.pad and width - 1 not in _bits(held[source], read, shift, width):
            reads = tuple(Read(r.mask, r.subtract, r.pad, True) if i == index else r for i, r in enumerate(pair))
            return [(Held(lo + top, hi + top, offset + top, polarity), reads)]  # type: ignore[list-item]
    return []


def _options(node, held: list[Held]) -> list[tuple[tuple[int, int], Held, tuple[Read, Read]]]:
    """Per polarity the node may take (one per distinct sign its operands enter with): the cheapest
    read of its operands as ``((cost, width), held form, reads)``."""
    terms = node.operands
    coefficients = [sign * held[source].polarity for source, _, sign in terms]
    options = []
    for polarity in dict.fromkeys(coefficients):
        signs = (polarity * coefficients[0], polarity * coefficients[1])
        best = None
        for pair in _candidates(held, terms, signs):
            lo = hi = offset = 0
            for (source, shift, _), read in zip(terms, pair):
                r_lo, r_hi = read_interval(held[source], read)
                k, c = read_value(held[source], read)
                lo, hi, offset = lo + (r_lo << shift), hi + (r_hi << shift), offset + ((k * held[source].offset + c) << shift)
            for candidate, reads in [(Held(lo, hi, offset, polarity), pair), *_top_flipped(held, terms, pair, lo, hi, offset, polarity)]:
                cost = adder_cost([(held[s], read, shift) for (s, shift, _), read in zip(terms, reads)], candidate.width)
                if best is None or (cost, candidate.width, candidate.signed) < (*best[0], best[1].signed):
                    best = ((cost, candidate.width), candidate, reads)
        options.append(best)
    return options


class _Overlay:
    """A list of held forms with one entry replaced (a node's candidate form among the others)."""

    def __init__(self, held: list[Held], index: int, value: Held) -> None:
        self.held, self.index, self.value = held, index, value

    def __getitem__(self, index: int) -> Held:
        return self.value if index == self.index else self.held[index]


def _with_readers(option: tuple, node_id: int, previous: list[Held], readers: dict[int, list]) -> tuple[int, int]:
    """An option's own cost plus the least cost of each reader with the node held that way (the
    readers' other operands as ``previous`` holds them), then its width."""
    view = _Overlay(previous, node_id, option[1])
    return (option[0][0] + sum(min(o[0][0] for o in _options(r, view)) for r in readers.get(node_id, ())),  # type: ignore[arg-type]
            option[0][1])


LOOKAHEAD_PASSES = 2  # passes that choose a free polarity by its readers' cost too (0: greedy alone)


def hold(graph: AdderGraph, offsets: list[int] | None = None, width: int = 0,
         passes: int = LOOKAHEAD_PASSES) -> HeldGraph:
    """Each node's held form and how its adder reads its operands: of every polarity and read
    form that keeps the sum exact, the one ``adder_cost`` prices lowest (then the narrower).

    A node whose operands enter with opposite signs may be held either way round; the first pass
    picks by its own adder's cost alone, each later pass by that cost plus its readers' (their
    other operands and polarities as the pass before left them), since a reader whose operands
    then enter with one sign adds them without a negation. Given each output's constant
    (``offsets``, bias and rounding) and the accumulators' ``width``, an output's node counts the
    inverters of its constant adder too (``constant_add_cost``) and its read is the cheapest."""
    outputs_of: dict[int, list[tuple[int, Term]]] = {}
    if offsets is not None:
        for o, term in enumerate(graph.outputs):
            if term is not None:
                outputs_of.setdefault(term[0], []).append((o, term))

    def with_outputs(option: tuple, node_id: int) -> tuple:
        """The option's cost with its outputs' constant adders."""
        assert offsets is not None
        extra = sum(_output_read(option[1], term, offsets[o], width)[0] for o, term in outputs_of[node_id])
        return ((option[0][0] + extra, option[0][1]), *option[1:])

    readers: dict[int, list] = {}
    for node in graph.nodes:
        if node.a is not None:
            for source in dict.fromkeys((node.a, node.b)):
                readers.setdefault(source, []).append(node)
    previous: list[Held] | None = None
    for _ in range(passes + 1):
        held: list[Held] = []
        reads: dict[tuple[int, int], Read] = {}
        for node in graph.nodes:
            if node.a is None:
                held.append(Held(node.lo, node.hi, 0))
                continue
            options = _options(node, held)
            if node.id in outputs_of:
                options = [with_outputs(option, node.id) for option in options]
            if previous is not None and len(options) > 1:
                chosen = min(options, key=partial(_with_readers, node_id=node.id, previous=previous, readers=readers))
            else:
                chosen = min(options, key=lambda option: option[0])
            _, node_held, pair = chosen
            held.append(node_held)
            reads.update({(node.id, i): read for i, read in enumerate(pair) if read != Read()})
        previous = held
    outputs = {}
    for o, term in enumerate(graph.outputs):
        if term is not None:
            h = held[term[0]]
            read = (_output_read(h, term, offsets[o], width)[1] if offsets is not None
                    else Read(plain_mask(h, True), subtract=term[2] * h.polarity < 0))
            if read != Read():
                outputs[o] = read
    return HeldGraph(held, reads, outputs)
