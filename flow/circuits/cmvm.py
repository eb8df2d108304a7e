"""Constant matrix-vector multiplication without multipliers: y = W x + b as a graph of adders.

Each weight is written in canonical signed digits (CSD: digits -1, 0, +1, no two adjacent
nonzero), so a product is a sum of shifted copies of its input; zero weights cost nothing and
weights of +-2**k cost no adder. Pairs of shifted terms that several outputs share are built
once (greedy common-subexpression elimination across all rows, the constant matrix-vector
multiplication problem; pairs are sought within blocks of inputs so the work stays linear in the
weight count). Each output then sums its terms in a tree balanced by depth.
Every node carries the exact integer interval of its value (from the actual weights and the
input range), so its width is the fewest bits that hold it, not the formats' worst case.
"""
from __future__ import annotations

import heapq
import math
from collections import Counter
from dataclasses import dataclass, field

Term = tuple[int, int, int]  # (node id, left shift, sign +1/-1)


def csd(value: int) -> list[tuple[int, int]]:
    """The canonical signed-digit form of an integer: [(sign, shift)], least significant first."""
    digits, shift = [], 0
    while value:
        if value & 1:
            digit = 2 - (value & 3)  # +1 when value = 1 (mod 4), -1 when value = 3 (mod 4)
            digits.append((digit, shift))
            value -= digit
        value >>= 1
        shift += 1
    return digits


def bits_for(lo: int, hi: int) -> int:
    """Two's complement bits that hold every integer in [lo, hi]."""
    bits = 1
    while not (-(1 << (bits - 1)) <= lo and hi <= (1 << (bits - 1)) - 1):
        bits += 1
    return bits


def interval_width(lo: int, hi: int) -> int:
    """Bits of a signal holding [lo, hi]: two's complement when lo < 0, else unsigned."""
    return bits_for(lo, hi) if lo < 0 else max(hi.bit_length(), 1)


@dataclass
class Node:
    """An input (``a`` is None) or ``a_sign * (a << a_shift) + b_sign * (b << b_shift)``, with the
    exact interval of its value and its depth in adders."""

    id: int
    lo: int
    hi: int
    a: int | None = None
    b: int | None = None
    a_shift: int = 0
    b_shift: int = 0
    a_sign: int = 1
    b_sign: int = 1
    level: int = 0

    @property
    def signed(self) -> bool:
        """Whether the node needs a sign bit: a node that is never negative is kept unsigned, so
        the zero bits that extend it into a wider sum are constants synthesis removes."""
        return self.lo < 0

    @property
    def width(self) -> int:
        return interval_width(self.lo, self.hi)

    @property
    def operands(self) -> tuple[Term, Term]:
        """The adder's two terms, ``a`` then ``b``, as (node id, shift, sign)."""
        assert self.a is not None and self.b is not None, "an input node has no operands"
        return (self.a, self.a_shift, self.a_sign), (self.b, self.b_shift, self.b_sign)


@dataclass
class AdderGraph:
    """Nodes in topological order (inputs first) and, per output, the term holding row o of W x
    (``sign * (node << shift)``) or None for an all-zero row."""

    nodes: list[Node] = field(default_factory=list)
    outputs: list[Term | None] = field(default_factory=list)

    @property
    def adders(self) -> int:
        return sum(node.a is not None for node in self.nodes)

    @property
    def depth(self) -> int:
        return max((node.level for node in self.nodes), default=0)

    def evaluate(self, x: list[int]) -> list[int]:
        """Every output for one input vector (exact Python integers): the graph's own semantics."""
        values: dict[int, int] = {}
        inputs = iter(x)
        for node in self.nodes:
            values[node.id] = (next(inputs) if node.a is None
                               else node.a_sign * (values[node.a] << node.a_shift)
                               + node.b_sign * (values[node.b] << node.b_shift))
        return [0 if out is None else out[2] * (values[out[0]] << out[1]) for out in self.outputs]


def _scaled(node: Node, shift: int, sign: int) -> tuple[int, int]:
    a, b = sign * (node.lo << shift), sign * (node.hi << shift)
    return min(a, b), max(a, b)


def _combine(graph: AdderGraph, x: Term, y: Term) -> Term:
    """A node adding two terms, aligned to the smaller shift: the term it stands for."""
    base = min(x[1], y[1])
    nx, ny = graph.nodes[x[0]], graph.nodes[y[0]]
    lo_x, hi_x = _scaled(nx, x[1] - base, x[2])
    lo_y, hi_y = _scaled(ny, y[1] - base, y[2])
    node = Node(len(graph.nodes), lo_x + lo_y, hi_x + hi_y, x[0], y[0], x[1] - base, y[1] - base, x[2], y[2],
                max(nx.level, ny.level) + 1)
    graph.nodes.append(node)
    return node.id, base, 1


def _pair_key(x: Term, y: Term) -> tuple[Term, Term]:
    """A term pair up to a common shift and sign: the shared subexpression it stands for."""
    if (x[1], x[0], x[2]) > (y[1], y[0], y[2]):
        x, y = y, x
    return (x[0], 0, 1), (y[0], y[1] - x[1], x[2] * y[2])


class _Unit:
    """The terms of one row within one block of inputs, indexed for the CSE: term -> sign by
    (node, shift) (a pair is unique within a unit) and the shifts each node appears at."""

    def __init__(self, terms: list[Term]) -> None:
        self.sign = {(node, shift): sign for node, shift, sign in terms}
        self.shifts: dict[int, set[int]] = {}
        for node, shift, _ in terms:
            self.shifts.setdefault(node, set()).add(shift)

    def terms(self) -> list[Term]:
        return [(node, shift, sign) for (node, shift), sign in self.sign.items()]

    def remove(self, term: Term) -> None:
        del self.sign[term[0], term[1]]
        self.shifts[term[0]].discard(term[1])

    def add(self, term: Term) -> None:
        self.sign[term[0], term[1]] = term[2]
        self.shifts.setdefault(term[0], set()).add(term[1])

    def find(self, key: tuple[Term, Term]) -> tuple[Term, Term] | None:
        """Two terms of this unit that ``key`` stands for, the lower-shift one first."""
        (a, _, _), (b, d, s) = key
        for shift in sorted(self.shifts.get(a, ())):
            other = self.sign.get((b, shift + d))
            if other is not None and (b, shift + d) != (a, shift):
                x_sign = self.sign[a, shift]
                if x_sign * other == s:
                    return (a, shift, x_sign), (b, shift + d, other)
        return None


def _overlap(graph: AdderGraph, x: Term, y: Term) -> int:
    """Bits where both shifted terms may be nonzero: the part of their sum that needs a LUT per bit
    on a carry chain (below it one term passes through, above it only the carry runs)."""
    top = min(x[1] + graph.nodes[x[0]].width, y[1] + graph.nodes[y[0]].width)
    return max(top - max(x[1], y[1]), 0)


ADDER_OVERHEAD = 2  # LUT bits an adder costs besides its overlap (carry in, sign), in a pair's value


def _eliminate(graph: AdderGraph, units: list[_Unit]) -> None:
    """Greedy CSE: build the term pair that saves the most once and reuse it, round after round,
    until no pair is shared. A pair shared by n units saves n - 1 adders of its LUT bits each
    (overlap plus ADDER_OVERHEAD): on the digits MLP 2 % fewer LUT bits than taking the most
    shared pair, on random matrices 4 %. Deterministic: ties go to the smallest key. Pair counts
    change only around the terms a round rewrote, so a round costs one unit's length."""
    def priority(shared: int, key: tuple[Term, Term]) -> int:
        (a, _, _), (b, shift, _) = key
        return -(shared - 1) * (_overlap(graph, (a, 0, 1), (b, shift, 1)) + ADDER_OVERHEAD)

    counts: list[dict[tuple[Term, Term], int]] = []
    users: dict[tuple[Term, Term], set[int]] = {}
    for index, unit in enumerate(units):
        terms = sorted(unit.terms())
        counts.append(dict(Counter(_pair_key(terms[i], terms[j]) for i in range(len(terms))
                                   for j in range(i + 1, len(terms)))))
        for key in counts[-1]:
            users.setdefault(key, set()).add(index)

    def bump(index: int, key: tuple[Term, Term], by: int) -> None:
        count = counts[index]
        value = count.get(key, 0) + by
        if value > 0:
            if value == by:  # newly present in this unit
                users.setdefault(key, set()).add(index)
            count[key] = value
        else:
            del count[key]
            users[key].discard(index)

    heap = [(priority(len(rows_of), key), key) for key, rows_of in users.items() if len(rows_of) > 1]
    heapq.heapify(heap)
    while heap:
        value, key = heapq.heappop(heap)
        current = len(users.get(key, ()))
        if current < 2:
            continue
        if priority(current, key) != value:  # a stale entry: requeue with the current value
            heapq.heappush(heap, (priority(current, key), key))
            continue
        made = _combine(graph, *key)[0]
        for index in sorted(users[key]):
            unit = units[index]
            while counts[index].get(key):
                x, y = unit.find(key)
                z = (made, x[1], x[2])
                unit.remove(x)
                unit.remove(y)
                bump(index, key, -1)
                for t in unit.terms():
                    bump(index, _pair_key(x, t), -1)
                    bump(index, _pair_key(y, t), -1)
                    new = _pair_key(z, t)
                    bump(index, new, 1)
                    if len(users[new]) > 1:
                        heapq.heappush(heap, (priority(len(users[new]), new), new))
                unit.add(z)


GROWTH_WEIGHT = 3  # LUT bits a pair is charged per bit its sum grows above the wider term (later adders overlap it)
NEGATION_PENALTY = 3  # LUT bits a pair whose terms enter with opposite signs is charged in the sum tree


def _natural_sign(graph: AdderGraph, node_id: int, memo: dict[int, int]) -> int:
    """The sign a node is best held with so its adder negates nothing: +1 for an input, that of its
    terms where they agree, 0 (either) where they differ or where neither is settled."""
    if node_id not in memo:
        node = graph.nodes[node_id]
        if node.a is None:
            memo[node_id] = 1
        else:
            a = node.a_sign * _natural_sign(graph, node.a, memo)
            b = node.b_sign * _natural_sign(graph, node.b, memo)
            memo[node_id] = a if a == b or not b else b if not a else 0
    return memo[node_id]


def kraft_depth(levels: list[int]) -> int:
    """The least depth a binary tree of adders over terms at ``levels`` can reach: the first d with
    sum(2**level) <= 2**d (Kraft's inequality)."""
    total = sum(1 << level for level in levels)
    return max(levels, default=0) if len(levels) < 2 else max((total - 1).bit_length(), max(levels) + 1)


@dataclass(frozen=True)
class TreeStyle:
    """How a sum tree prices its pairs: ``growth`` per bit a sum grows, ``negation`` per pair of
    opposite signs, and ``order``, how equal costs are broken: ``"level"`` the shallower then
    narrower pair, ``"top"`` the narrower then shallower, ``"low"`` the shallower then the one
    reaching lower bits. Each is a greedy heuristic; ``flow.circuits.constant_linear`` builds
    every row in each of ``TREE_STYLES`` and keeps, row by row, the cheapest on its cost model."""

    growth: float = GROWTH_WEIGHT
    negation: float = NEGATION_PENALTY
    order: str = "level"


def _sum_tree(graph: AdderGraph, terms: list[Term], depth: int, memo: dict[int, int],
              style: TreeStyle = TreeStyle()) -> Term | None:
    """Add a row's terms two at a time, no adder deeper than ``depth``: each step the pair that
    costs the fewest LUT bits, its overlap plus NEGATION_PENALTY where the two enter with opposite
    signs (terms of one sign are summed apart, so the row needs few subtractions) plus
    GROWTH_WEIGHT per bit the exact interval of the sum grows above the wider term (a row's
    adders cost its terms' bits less its sum's, plus every bit a sum grew: pairs whose sum fits
    the headroom of the wider term spare later overlap), of the pairs that leave the rest
    finishable within ``depth`` (Kraft's inequality on the levels); ties to the shallower, then
    narrower pair. On the digits MLP 5 % fewer LUTs than a tree balanced by depth, and the growth
    term 514 fewer xc7 LUTs at latency 5 (29,659 -> 29,145)."""
    def item(t: Term) -> tuple:
        node = graph.nodes[t[0]]
        lo, hi = _scaled(node, 0, t[2])
        return node.level, t[1], t[1] + node.width, t[2] * _natural_sign(graph, t[0], memo), t, lo, hi

    items = [item(t) for t in sorted(terms)]
    budget = 1 << depth
    while len(items) > 1:
        kraft = sum(1 << item[0] for item in items)
        best: tuple | None = None
        for i, (lx, lo_x, top_x, sx, _, vlo_x, vhi_x) in enumerate(items):
            for j in range(i + 1, len(items)):
                ly, lo_y, top_y, sy, _, vlo_y, vhi_y = items[j]
                level = max(lx, ly) + 1
                if kraft - (1 << lx) - (1 << ly) + (1 << level) > budget:
                    continue
                cost = max(min(top_x, top_y) - max(lo_x, lo_y), 0) + (style.negation if sx * sy < 0 else 0)
                if style.growth:
                    base = min(lo_x, lo_y)
                    width = interval_width((vlo_x << (lo_x - base)) + (vlo_y << (lo_y - base)),
                                           (vhi_x << (lo_x - base)) + (vhi_y << (lo_y - base)))
                    cost += style.growth * max(base + width - max(top_x, top_y), 0)
                key = ((cost, level, max(top_x, top_y), i, j) if style.order == "level" else
                       (cost, max(top_x, top_y), level, i, j) if style.order == "top" else
                       (cost, level, -min(lo_x, lo_y), i, j))
                if best is None or key < best:
                    best = key
        assert best is not None, "Kraft's inequality leaves a feasible pair"
        x, y = items[best[3]], items[best[4]]
        term = _combine(graph, x[4], y[4])
        items = [entry for index, entry in enumerate(items) if index not in (best[3], best[4])]
        items.append(item(term))
    return items[0][4] if items else None


WORK = 1 << 19  # rows x inputs x block: the CSE budget (a 128x256 layer: 85 s on a busy core)


def block_for(rows: int, cols: int) -> int:
    """Inputs per CSE block: 64 for small layers, halved (down to 8) as the layer grows, so the
    pair counting (quadratic in a block) keeps the emission time linear in the weight count. On
    random 8-bit 128x256 weights, blocks of 16 cost 8 % more adders than blocks of 64."""
    block = 64
    while block > 8 and rows * cols * block > WORK:
        block //= 2
    return block


def shared_terms(weights: list[list[int]], input_lo: int, input_hi: int, block: int | None = None,
                 pipeline_every: int = 0) -> tuple[AdderGraph, list[list[Term]], int]:
    """The CSE half of ``build``: the graph of inputs and shared pairs, each row's terms, and the
    depth its sum tree may take."""
    n_in = len(weights[0]) if weights else 0
    graph = AdderGraph([Node(i, input_lo, input_hi) for i in range(n_in)])
    block = block or block_for(len(weights), n_in)
    blocks = range(0, n_in, block)
    units = [_Unit([(i, shift, sign) for i in range(start, min(start + block, n_in)) for sign, shift in csd(int(row[i]))])
             for row in weights for start in blocks]
    _eliminate(graph, units)
    per_row = len(blocks)
    rows = [[t for unit in units[r * per_row:(r + 1) * per_row] for t in unit.terms()] for r in range(len(weights))]
    depth = max((kraft_depth([graph.nodes[t[0]].level for t in row]) for row in rows), default=0)
    if pipeline_every > 0:
        depth = max(math.ceil(depth / pipeline_every), 1) * pipeline_every
    return graph, rows, depth


def sum_trees(graph: AdderGraph, rows: list[list[Term]], depth: int, styles: list[TreeStyle]) -> list[range]:
    """Sum each row's terms in a tree of its own style (``styles[r]``) and set the outputs; the
    ids of the nodes each row's tree added."""
    memo: dict[int, int] = {}
    spans, outputs = [], []
    for row, style in zip(rows, styles):
        start = len(graph.nodes)
        outputs.append(_sum_tree(graph, row, depth, memo, style))
        spans.append(range(start, len(graph.nodes)))
    graph.outputs = outputs
    return spans


def build(weights: list[list[int]], input_lo: int, input_hi: int, block: int | None = None,
          pipeline_every: int = 0, style: TreeStyle = TreeStyle()) -> AdderGraph:
    """The adder graph of ``W x`` for integer weights (rows = outputs) and inputs in
    [input_lo, input_hi]. Shared pairs are sought within blocks of inputs (the same blocks in
    every row; ``block_for`` by default). The sum trees are as shallow as the deepest row must be
    or, with a register every ``pipeline_every`` levels, as deep as that many register stages
    allow (the slack buys cheaper pairs, not latency)."""
    graph, rows, depth = shared_terms(weights, input_lo, input_hi, block, pipeline_every)
    sum_trees(graph, rows, depth, [style] * len(rows))
    return graph


def adders_without_sharing(weights: list[list[int]]) -> int:
    """Adders a per-product CSD implementation needs (no sharing): the baseline CSE improves on."""
    return sum(max(sum(len(csd(int(w))) for w in row) - 1, 0) for row in weights)


def pipeline_stages(graph: AdderGraph, every: int) -> int:
    """Register stages when a register follows every ``every`` adder levels (0: none)."""
    return 0 if every <= 0 else math.ceil(graph.depth / every)
