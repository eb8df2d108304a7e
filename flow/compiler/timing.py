"""The beat-level cycle model of a hardware graph, and the FIFO depths its joins need.

For the first vectors streamed back to back (the clean phase the testbench measures), it gives
the cycle in which every beat of every stream is handed over. Each stage follows its
component's cycle rules (components.py), placed by its op file's ``Stage.schedule``: an element-wise stage passes a beat one cycle after
taking it; a linear takes one beat every OUT_GROUPS cycles and offers a vector's first output
beat two cycles after it finished its last input beat; a fork hands a beat to both branches
when the slower one takes it; an add, and a lockstep concat (both inputs one beat a vector),
take both operands in the same cycle; a beat-serial concat passes a vector's A beats, then its B
beats. The design's latency is the output's first beat minus the input's first beat. Branches
that meet again at an add or a concat get a FIFO on the side that arrives early, deep enough
that the early side never waits for room.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any, Protocol

from flow.ops.base import INPUT, Stage, Times, take


class HardwareGraph(Protocol):
    """What the cycle model reads of flow.compiler.hardware_graph.HardwareGraph (which calls it)."""

    stages: list[Stage]
    input: Any  # InputStream: features, par
    initiation_interval: int
    output: str
    sequence: int  # tokens a sample
    last: Stage

    def producer(self, stream: str) -> Stage | None: ...
    def consumers(self, stream: str) -> list[Stage]: ...

MAX_VECTORS = 48
STEADY_SAMPLES = 16  # samples a sequence design's schedule runs to find its steady interval (the clean phase: 8)


def stream_tokens(graph: HardwareGraph) -> dict[str, int]:
    """Tokens a sample on every stream: the design's sequence, unless a stage keeps fewer
    (``Stage.sequence_out``: select_token keeps one, so the design after it is per sample)."""
    tokens = {INPUT: graph.sequence}
    for stage in graph.stages:
        kept = stage.sequence_out(tokens[stage.inputs[0]])
        tokens.update((name, kept) for name in stage.outputs)
    return tokens


def schedule(graph: HardwareGraph, vectors: int, ii: int | None = None) -> tuple[dict[str, Times], dict[str, Times]]:
    """(offered, taken): per stream, the cycle its producer offers each beat of ``vectors``
    vectors (samples) and the cycle its consumer takes it. Vector v enters from cycle v * II on: in
    steady state the slowest stage paces the input, through backpressure the model leaves out. Each
    stage places itself (``Stage.schedule``, in its op file); a sequence design's sample is
    ``sequence`` tokens, one after another, and a stage is handed the token count."""
    beats = graph.sequence * (graph.input.features // graph.input.par)
    ii = graph.initiation_interval if ii is None else ii
    tokens = stream_tokens(graph)
    offered: dict[str, Times] = {INPUT: [v * ii + j for v in range(vectors) for j in range(beats)]}
    taken: dict[str, Times] = {}

    def handover(stream: str, consumer: Stage) -> Times:
        if stream not in taken:
            taken[stream] = take(offered[stream], consumer.accept_interval(graph))
        return taken[stream]

    for stage in graph.stages:
        stage.schedule(offered, taken, handover, vectors * tokens[stage.inputs[0]])
    taken[graph.output] = take(offered[graph.output], 1)
    return offered, taken


def _vectors(graph: HardwareGraph, ii: int | None = None) -> int:
    ii = graph.initiation_interval if ii is None else ii
    bound = sum(stage.latency for stage in graph.stages) + ii
    return min(MAX_VECTORS, 2 + math.ceil(bound / ii))


def sample_intervals(graph: HardwareGraph, ii: int) -> list[int]:
    """Cycles between the output's consecutive samples (their first beats) in the beat schedule,
    the input offered a sample every ``ii`` cycles (at least ``STEADY_SAMPLES`` samples)."""
    beats = stream_tokens(graph)[graph.output] * (graph.last.out_features // graph.last.out_par)
    firsts = schedule(graph, max(_vectors(graph, ii), STEADY_SAMPLES), ii)[1][graph.output][::beats]
    return [b - a for a, b in zip(firsts, firsts[1:])]


def sequence_interval(graph: HardwareGraph) -> tuple[int, int]:
    """A sequence design's (II, widest interval). A stage that holds a whole sequence (a matmul)
    waits for its operands' tokens, so the slowest stage's cycles a sample
    (``Stage.cycles_per_sample``) is only where the search starts: the input is offered a sample
    every II cycles and II is raised to the steady interval (the schedule's last) until the two
    agree. The first samples may leave further apart (a matmul's first row, then waiting for a
    slower producer, delays its next sample's first row but not the others): the widest interval."""
    tokens = stream_tokens(graph)
    ii = max(stage.cycles_per_sample(tokens[stage.inputs[0]]) for stage in graph.stages)
    for _ in range(32):
        intervals = sample_intervals(graph, ii)
        steady = intervals[-1] if intervals else ii
        if steady <= ii:
            return ii, max([ii, *intervals])
        ii = steady
    raise RuntimeError(f"the beat schedule of a sequence design found no steady interval (last tried {ii})")


def latency(graph: HardwareGraph) -> int:
    """Cycles from the first input beat to the first output beat."""
    return schedule(graph, 1)[1][graph.output][0]


def waiting_beats(offered: Times, taken: Times) -> int:
    """Most beats of a stream that its producer has offered and its consumer not yet taken."""
    most, arrived = 0, 0
    for k, leave in enumerate(taken):
        while arrived < len(offered) and offered[arrived] < leave:
            arrived += 1
        most = max(most, arrived - k)
    return most


def balance(graph: HardwareGraph, make_fifo: Callable[[str, str, int], Stage]) -> HardwareGraph:
    """Put a FIFO before each join input whose beats would wait for the other input's. Its depth
    covers whichever is larger: the most beats that wait in the cycle model, or every beat that
    can arrive while the join still waits (one vector, or a sequence's tokens, per II of the wait,
    plus the one in hand), plus two (full throughput and its own cycle). The second term covers what the model
    leaves out: a slow stage after the join paces it, so beats queue longer than the schedule says.
    ``make_fifo(name, stream, depth)`` builds the stage."""
    offered, taken = schedule(graph, _vectors(graph))
    ii, tokens = graph.initiation_interval, stream_tokens(graph)
    stages: list[Stage] = []
    for stage in graph.stages:
        if len(stage.inputs) > 1:  # a join
            inputs = list(stage.inputs)
            for side, stream in enumerate(stage.inputs):
                waiting = waiting_beats(offered[stream], taken[stream])
                if waiting > 0:
                    producer = graph.producer(stream)
                    beats = (graph.input.features // graph.input.par if producer is None
                             else producer.out_features // producer.out_par)
                    wait = taken[stream][0] - offered[stream][0]
                    depth = max(waiting, beats * tokens[stream] * (math.ceil(wait / ii) + 1)) + 2
                    fifo = make_fifo(f"{stage.name}_fifo_{'ab'[side]}", stream, depth)
                    stages.append(fifo)
                    inputs[side] = fifo.outputs[0]
            stage.inputs = tuple(inputs)
        stages.append(stage)
    return replace(graph, stages=stages)
