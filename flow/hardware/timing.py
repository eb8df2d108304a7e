"""The beat-level cycle model of a hardware graph, and the FIFO depths its joins need.

For the first vectors streamed back to back (the clean phase the testbench measures), it gives
the cycle in which every beat of every stream is handed over. Each stage follows its
component's cycle rules (components.py): an element-wise stage passes a beat one cycle after
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

from flow.hardware.lower import INPUT
from flow.hardware.stages import (
    FifoStage,
    HardwareGraph,
    LinearStage,
    Stage,
)
from flow.ops.base import Stage as OpStage

MAX_VECTORS = 48
Times = list[int]


def _accept_interval(stage: Stage, graph: HardwareGraph) -> int:
    """Fewest cycles between two beats a stage takes on one input."""
    return stage.accept_interval(graph)


def _take(offered: Times, interval: int) -> Times:
    """Handover cycles of beats offered at ``offered`` to a consumer taking one per ``interval``."""
    taken: Times = []
    for time in offered:
        taken.append(time if not taken else max(time, taken[-1] + interval))
    return taken


def schedule(graph: HardwareGraph, vectors: int) -> tuple[dict[str, Times], dict[str, Times]]:
    """(offered, taken): per stream, the cycle its producer offers each beat of ``vectors``
    vectors and the cycle its consumer takes it. Vector v enters from cycle v * II on: in steady
    state the slowest stage paces the input, through backpressure the model leaves out."""
    beats, ii = graph.input.features // graph.input.par, graph.initiation_interval
    offered: dict[str, Times] = {INPUT: [v * ii + j for v in range(vectors) for j in range(beats)]}
    taken: dict[str, Times] = {}

    def handover(stream: str, consumer: Stage) -> Times:
        if stream not in taken:
            taken[stream] = _take(offered[stream], _accept_interval(consumer, graph))
        return taken[stream]

    for stage in graph.stages:
        if isinstance(stage, OpStage):
            stage.schedule(offered, taken, handover, vectors)
        elif isinstance(stage, LinearStage) and stage.constant is None:
            inputs = handover(stage.inputs[0], stage)
            in_beats, groups = stage.in_features // stage.in_par, stage.out_features // stage.out_par
            out: Times = []
            for vector in range(vectors):
                first = inputs[vector * in_beats + in_beats - 1] + groups + 2
                for j in range(groups):
                    out.append(max(first + j, out[-1] + 1) if out else first + j)
            offered[stage.outputs[0]] = out
        else:
            inputs = handover(stage.inputs[0], stage)
            for name in stage.outputs:
                offered[name] = [t + stage.latency for t in inputs]
    taken[graph.output] = _take(offered[graph.output], 1)
    return offered, taken


def _vectors(graph: HardwareGraph) -> int:
    bound = sum(stage.latency for stage in graph.stages) + graph.initiation_interval
    return min(MAX_VECTORS, 2 + math.ceil(bound / graph.initiation_interval))


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


def balance(graph: HardwareGraph, make_fifo: Callable[[str, str, int], FifoStage]) -> HardwareGraph:
    """Put a FIFO before each join input whose beats would wait for the other input's. Its depth
    covers whichever is larger: the most beats that wait in the cycle model, or every beat that
    can arrive while the join still waits (one vector per II of the wait, plus the vector in
    hand), plus two (full throughput and its own cycle). The second term covers what the model
    leaves out: a slow stage after the join paces it, so beats queue longer than the schedule says.
    ``make_fifo(name, stream, depth)`` builds the stage."""
    offered, taken = schedule(graph, _vectors(graph))
    ii = graph.initiation_interval
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
                    depth = max(waiting, beats * (math.ceil(wait / ii) + 1)) + 2
                    fifo = make_fifo(f"{stage.name}_fifo_{'ab'[side]}", stream, depth)
                    stages.append(fifo)
                    inputs[side] = fifo.outputs[0]
            stage.inputs = tuple(inputs)
        stages.append(stage)
    return HardwareGraph(stages, graph.input, graph.elided)
