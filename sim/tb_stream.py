"""Generic cocotb testbench for any flow stream component or generated design.

The DUT has one input stream ``s_axis`` and one output stream ``m_axis`` carrying packed
elements. A JSON spec (path in ``FLOW_TB_SPEC``) gives the element widths, the input element
stream and the expected output element stream computed by the Python reference. Two phases
run: a clean one (no gaps, no backpressure) that measures latency and initiation interval,
then the whole stream with random valid gaps and random backpressure. Every output beat is
compared exactly; results go to the JSON file named by ``results`` in the spec.
"""
from __future__ import annotations

import json
import logging
import os
import random
from dataclasses import dataclass, field

import cocotb
from cocotb.clock import Clock
from cocotb.triggers import ClockCycles, RisingEdge, with_timeout
from cocotbext.axi import AxiStreamBus, AxiStreamFrame, AxiStreamSink, AxiStreamSource


@dataclass
class Handshakes:
    """Cycle numbers of every input and output beat, counted on the DUT's own ports."""

    cycle: int = 0
    in_cycles: list[int] = field(default_factory=list)
    out_cycles: list[int] = field(default_factory=list)


async def count_handshakes(dut, record: Handshakes) -> None:
    """Watch both ports each rising edge; beats are counted independently of the drivers."""
    while True:
        await RisingEdge(dut.clk)
        record.cycle += 1
        if int(dut.rst.value):
            continue
        if int(dut.s_axis_tvalid.value) and int(dut.s_axis_tready.value):
            record.in_cycles.append(record.cycle)
        if int(dut.m_axis_tvalid.value) and int(dut.m_axis_tready.value):
            record.out_cycles.append(record.cycle)


def random_pauses(probability: float, rng: random.Random):
    """An endless pause pattern: True (pause this cycle) with the given probability."""
    while True:
        yield probability > 0 and rng.random() < probability


async def run_phase(dut, spec: dict, inputs: list[int], expected: list[int], gap: float, stall: float, rng):
    """Reset, stream ``inputs`` through the DUT and collect as many outputs as expected."""
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    source = AxiStreamSource(AxiStreamBus.from_prefix(dut, "s_axis"), dut.clk, dut.rst,
                             byte_size=spec["in_width"])
    sink = AxiStreamSink(AxiStreamBus.from_prefix(dut, "m_axis"), dut.clk, dut.rst,
                         byte_size=spec["out_width"])
    for bus in (source, sink):
        bus.log.setLevel(logging.WARNING)
    source.set_pause_generator(random_pauses(gap, rng))
    sink.set_pause_generator(random_pauses(stall, rng))
    record = Handshakes()
    monitor = cocotb.start_soon(count_handshakes(dut, record))
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    await source.send(AxiStreamFrame(inputs))
    received: list[int] = []
    budget_ns = 10 * (len(inputs) + len(expected) + spec.get("cycles_per_vector", 1) * spec["vectors"] + 200)
    budget_ns = int(budget_ns / max(0.05, (1 - gap) * (1 - stall)))

    async def collect() -> None:
        while len(received) < len(expected):
            received.extend(await sink.read())

    await with_timeout(collect(), budget_ns * 4, "ns")
    await ClockCycles(dut.clk, 20)  # anything extra the DUT emits would show up here
    received.extend(sink.read_nowait())
    monitor.cancel()
    source.clear()
    return received, record


def compare(received: list[int], expected: list[int], out_width: int) -> tuple[int, list[dict]]:
    """Count element mismatches (missing or extra elements count too) and keep a few examples."""
    mismatches, examples = abs(len(received) - len(expected)), []
    for index, (got, want) in enumerate(zip(received, expected)):
        if got != want:
            mismatches += 1
            if len(examples) < 5:
                examples.append({"element": index, "got": got, "want": want})
    return mismatches, examples


@cocotb.test()
async def stream_matches_reference(dut):
    """Every output element of both phases equals the Python reference, exactly."""
    with open(os.environ["FLOW_TB_SPEC"]) as handle:
        spec = json.load(handle)
    rng = random.Random(spec.get("seed", 0))
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    inputs, expected = spec["inputs"], spec["expected"]
    in_per_vec = len(inputs) // spec["vectors"]
    out_per_vec = len(expected) // spec["vectors"]
    out_par = spec["out_par"]

    clean_vectors = min(spec["vectors"], spec.get("clean_vectors", 8))
    clean_out, clean = await run_phase(
        dut, spec, inputs[: clean_vectors * in_per_vec], expected[: clean_vectors * out_per_vec],
        0.0, 0.0, rng)
    mismatches_clean, examples_clean = compare(clean_out, expected[: clean_vectors * out_per_vec],
                                               spec["out_width"])
    random_out, rand = await run_phase(
        dut, spec, inputs, expected, spec.get("gap", 0.3), spec.get("stall", 0.3), rng)
    mismatches, examples = compare(random_out, expected, spec["out_width"])

    beats_per_vec = out_per_vec // out_par
    vector_starts = clean.out_cycles[::beats_per_vec] if beats_per_vec else []
    intervals = [b - a for a, b in zip(vector_starts, vector_starts[1:])]
    results = {
        "vectors": spec["vectors"],
        "in_beats": len(rand.in_cycles),
        "out_beats": len(rand.out_cycles),
        "expected_out_beats": len(expected) // out_par,
        "elements_compared": min(len(random_out), len(expected)) + len(clean_out),
        "mismatches": mismatches + mismatches_clean,
        "examples": examples_clean + examples,
        "received": random_out if spec.get("return_outputs") else None,
        "latency_cycles": (clean.out_cycles[0] - clean.in_cycles[0]) if clean.out_cycles else None,
        "initiation_interval": min(intervals) if intervals else None,
        "initiation_interval_max": max(intervals) if intervals else None,  # equal to the min when steady
        "clean_cycles_per_vector": ((clean.out_cycles[-1] - clean.in_cycles[0]) / clean_vectors
                                    if clean.out_cycles else None),
        "random_cycles": (rand.out_cycles[-1] - rand.in_cycles[0]) if rand.out_cycles else None,
    }
    with open(spec["results"], "w") as handle:
        json.dump(results, handle)
    assert results["mismatches"] == 0, f"{results['mismatches']} mismatches, e.g. {results['examples']}"
    assert results["out_beats"] == results["expected_out_beats"], "beats lost or duplicated"
