"""Constant matrix-vector multiplication without multipliers: y = W x + b as a graph of adders.

Each weight is written in canonical signed digits (CSD: digits -1, 0, +1, no two adjacent
nonzero), so a product is a sum of shifted copies of its input; zero weights cost nothing and
weights of +-2**k cost no adder. Pairs of shifted terms that several outputs share are built
once (greedy common-subexpression elimination over the whole matrix, the constant
matrix-vector multiplication problem). Each output then sums its terms in a balanced tree.
Every node carries the exact integer interval of its value (from the actual weights and the
input range), so its width is the fewest bits that hold it, not the formats' worst case.
"""
from __future__ import annotations

import heapq
import math
import time
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
    def width(self) -> int:
        return bits_for(self.lo, self.hi)


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


def _eliminate(graph: AdderGraph, rows: list[list[Term]], seconds: float) -> None:
    """Greedy CSE: build the term pair the most rows share (two uses at least) once and reuse it,
    round after round, until no pair is shared or ``seconds`` run out (any stop is exact; later
    rounds only save adders). Pair counts change only around the terms a round rewrote."""
    deadline = time.perf_counter() + seconds
    counts: list[Counter[tuple[Term, Term]]] = []
    users: dict[tuple[Term, Term], set[int]] = {}
    for index, row in enumerate(rows):
        counts.append(Counter(_pair_key(row[i], row[j]) for i in range(len(row)) for j in range(i + 1, len(row))))
        for key in counts[-1]:
            users.setdefault(key, set()).add(index)

    def bump(index: int, key: tuple[Term, Term], by: int) -> None:
        counts[index][key] += by
        if counts[index][key] > 0:
            users.setdefault(key, set()).add(index)
        else:
            del counts[index][key]
            users[key].discard(index)

    heap = [(-len(rows_of), key) for key, rows_of in users.items() if len(rows_of) > 1]
    heapq.heapify(heap)
    while heap and time.perf_counter() < deadline:
        count, key = heapq.heappop(heap)
        current = len(users.get(key, ()))
        if current != -count:  # a stale entry: requeue with the current count
            if current > 1:
                heapq.heappush(heap, (-current, key))
            continue
        made = _combine(graph, *key)[0]
        for index in list(users[key]):
            row = rows[index]
            while counts[index].get(key):
                i, j = next((i, j) for i in range(len(row)) for j in range(i + 1, len(row))
                            if _pair_key(row[i], row[j]) == key)
                x, y = row[i], row[j]
                low = min(x, y, key=lambda t: (t[1], t[0], t[2]))
                z = (made, low[1], low[2])
                rest = [t for k, t in enumerate(row) if k not in (i, j)]
                bump(index, key, -1)
                for t in rest:
                    bump(index, _pair_key(x, t), -1)
                    bump(index, _pair_key(y, t), -1)
                    new = _pair_key(z, t)
                    bump(index, new, 1)
                    if len(users[new]) > 1:
                        heapq.heappush(heap, (-len(users[new]), new))
                row = rest + [z]
            rows[index] = row


def _sum_tree(graph: AdderGraph, terms: list[Term]) -> Term | None:
    """Add a row's terms two at a time, the shallowest first (a balanced tree by depth)."""
    pending = list(terms)
    while len(pending) > 1:
        pending.sort(key=lambda t: graph.nodes[t[0]].level)
        pending = [_combine(graph, pending[0], pending[1]), *pending[2:]]
    return pending[0] if pending else None


def build(weights: list[list[int]], input_lo: int, input_hi: int, cse_seconds: float = 10.0) -> AdderGraph:
    """The adder graph of ``W x`` for integer weights (rows = outputs) and inputs in
    [input_lo, input_hi]."""
    n_in = len(weights[0]) if weights else 0
    graph = AdderGraph([Node(i, input_lo, input_hi) for i in range(n_in)])
    rows = [[(i, shift, sign) for i, w in enumerate(row) for sign, shift in csd(int(w))] for row in weights]
    _eliminate(graph, rows, cse_seconds)
    graph.outputs = [_sum_tree(graph, row) for row in rows]
    return graph


def adders_without_sharing(weights: list[list[int]]) -> int:
    """Adders a per-product CSD implementation needs (no sharing): the baseline CSE improves on."""
    return sum(max(sum(len(csd(int(w))) for w in row) - 1, 0) for row in weights)


def pipeline_stages(graph: AdderGraph, every: int) -> int:
    """Register stages when a register follows every ``every`` adder levels (0: none)."""
    return 0 if every <= 0 else math.ceil(graph.depth / every)
