"""Generic cocotb testbench for any flow stream component or generated design.

By default the DUT has one input stream ``s_axis`` and one output stream ``m_axis`` carrying
packed elements. A JSON spec (path in ``FLOW_TB_SPEC``) gives the element widths, the input
element stream and the expected output element stream computed by the Python reference.
Components with more streams (a fork, a join) describe every port under the optional spec key
``ports``::

    {"in":  {"s_axis_a": {"data": [...], "width": element_bits}, ...},
     "out": {"m_axis":   {"data": [...], "width": element_bits, "par": elements_per_beat}, ...}}

which replaces ``inputs``/``in_width`` and ``expected``/``out_width``/``out_par``. Each port's
data is its whole element stream (``vectors`` equal parts). Two phases run: a clean one (no gaps,
no backpressure) that measures latency (first output port against first input port) and
initiation interval (on the first output port), then the whole stream with random valid gaps on
every input and random backpressure on every output, each port with its own pause pattern.
Every output beat of every port is compared exactly; results go to the JSON file named by
``results`` in the spec.
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
    """Cycle numbers of every beat on every port, counted on the DUT's own ports."""

    cycle: int = 0
    ports: dict[str, list[int]] = field(default_factory=dict)

    def first(self, prefixes) -> int | None:
        cycles = [self.ports[p][0] for p in prefixes if self.ports[p]]
        return min(cycles) if cycles else None

    def last(self, prefixes) -> int | None:
        cycles = [self.ports[p][-1] for p in prefixes if self.ports[p]]
        return max(cycles) if cycles else None


async def count_handshakes(dut, record: Handshakes) -> None:
    """Watch every port each rising edge; beats are counted independently of the drivers."""
    signals = [(getattr(dut, f"{p}_tvalid"), getattr(dut, f"{p}_tready"), cycles)
               for p, cycles in record.ports.items()]
    while True:
        await RisingEdge(dut.clk)
        record.cycle += 1
        if int(dut.rst.value):
            continue
        for valid, ready, cycles in signals:
            if int(valid.value) and int(ready.value):
                cycles.append(record.cycle)


def random_pauses(probability: float, rng: random.Random):
    """An endless pause pattern: True (pause this cycle) with the given probability."""
    while True:
        yield probability > 0 and rng.random() < probability


def spec_ports(spec: dict) -> tuple[dict[str, dict], dict[str, dict]]:
    """(input ports, output ports) by prefix; a spec without ``ports`` is s_axis -> m_axis."""
    if "ports" in spec:
        return spec["ports"]["in"], spec["ports"]["out"]
    return ({"s_axis": {"data": spec["inputs"], "width": spec["in_width"]}},
            {"m_axis": {"data": spec["expected"], "width": spec["out_width"], "par": spec["out_par"]}})


@dataclass
class Streams:
    """The cocotbext-axi drivers, one per port, made once and reused by every phase: a driver
    stays alive after its phase (it restarts itself when reset is released), so drivers made
    anew each phase would share a port with the previous phase's and fight over its ready."""

    sources: dict[str, AxiStreamSource] = field(default_factory=dict)
    sinks: dict[str, AxiStreamSink] = field(default_factory=dict)


async def run_phase(dut, spec: dict, streams: Streams, inputs: dict[str, list[int]],
                    expected: dict[str, list[int]], gap: float, stall: float, rng):
    """Reset, stream every input port's elements through the DUT and collect as many elements
    on every output port as expected. Returns ({prefix: received elements}, handshakes)."""
    in_ports, out_ports = spec_ports(spec)
    dut.rst.value = 1
    await ClockCycles(dut.clk, 3)
    if not streams.sources:
        streams.sources = {p: AxiStreamSource(AxiStreamBus.from_prefix(dut, p), dut.clk, dut.rst,
                                              byte_size=in_ports[p]["width"]) for p in in_ports}
        streams.sinks = {p: AxiStreamSink(AxiStreamBus.from_prefix(dut, p), dut.clk, dut.rst,
                                          byte_size=out_ports[p]["width"]) for p in out_ports}
        for bus in (*streams.sources.values(), *streams.sinks.values()):
            bus.log.setLevel(logging.WARNING)
    sources, sinks = streams.sources, streams.sinks
    for source in sources.values():  # one pause generator per port: independent patterns
        source.set_pause_generator(random_pauses(gap, rng))
    for sink in sinks.values():
        sink.set_pause_generator(random_pauses(stall, rng))
    record = Handshakes(ports={p: [] for p in (*inputs, *expected)})
    monitor = cocotb.start_soon(count_handshakes(dut, record))
    dut.rst.value = 0
    await RisingEdge(dut.clk)
    for prefix, source in sources.items():
        await source.send(AxiStreamFrame(inputs[prefix]))
    received: dict[str, list[int]] = {p: [] for p in expected}
    elements = sum(map(len, inputs.values())) + sum(map(len, expected.values()))
    budget_ns = 10 * (elements + spec.get("cycles_per_vector", 1) * spec["vectors"] + 200)
    budget_ns = int(budget_ns / max(0.05, (1 - gap) * (1 - stall)))

    async def collect() -> None:  # the sinks queue beats meanwhile, so one port after another
        for prefix, sink in sinks.items():
            while len(received[prefix]) < len(expected[prefix]):
                received[prefix].extend(await sink.read())

    await with_timeout(collect(), budget_ns * 4, "ns")
    await ClockCycles(dut.clk, 20)  # anything extra the DUT emits would show up here
    for prefix, sink in sinks.items():
        received[prefix].extend(sink.read_nowait())
    monitor.cancel()
    for source in sources.values():
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


def first_vectors(ports: dict[str, dict], count: int, vectors: int) -> dict[str, list[int]]:
    """The elements of the first ``count`` vectors of every port."""
    return {p: port["data"][: count * (len(port["data"]) // vectors)] for p, port in ports.items()}


@cocotb.test()
async def stream_matches_reference(dut):
    """Every output element of both phases, on every output port, equals the Python reference."""
    with open(os.environ["FLOW_TB_SPEC"]) as handle:
        spec = json.load(handle)
    rng = random.Random(spec.get("seed", 0))
    cocotb.start_soon(Clock(dut.clk, 10, unit="ns").start())
    in_ports, out_ports = spec_ports(spec)
    in_names, out_names = list(in_ports), list(out_ports)
    vectors = spec["vectors"]
    multi = len(in_ports) > 1 or len(out_ports) > 1

    clean_vectors = min(vectors, spec.get("clean_vectors", 8))
    clean_expected = first_vectors(out_ports, clean_vectors, vectors)
    streams = Streams()
    clean_out, clean = await run_phase(dut, spec, streams, first_vectors(in_ports, clean_vectors, vectors),
                                       clean_expected, 0.0, 0.0, rng)
    all_expected = {p: port["data"] for p, port in out_ports.items()}
    random_out, rand = await run_phase(dut, spec, streams, {p: port["data"] for p, port in in_ports.items()},
                                       all_expected, spec.get("gap", 0.3), spec.get("stall", 0.3), rng)

    mismatches, examples, per_port = 0, [], {}
    for prefix, port in out_ports.items():
        bad_clean, ex_clean = compare(clean_out[prefix], clean_expected[prefix], port["width"])
        bad_rand, ex_rand = compare(random_out[prefix], all_expected[prefix], port["width"])
        port_examples = [dict(e, port=prefix) for e in ex_clean + ex_rand] if multi else ex_clean + ex_rand
        mismatches += bad_clean + bad_rand
        examples += port_examples
        per_port[prefix] = {"mismatches": bad_clean + bad_rand, "out_beats": len(rand.ports[prefix]),
                            "expected_out_beats": len(port["data"]) // port["par"]}
    examples = examples[:10]

    first_out, first_in = out_names[0], in_names[0]
    beats_per_vec = len(out_ports[first_out]["data"]) // vectors // out_ports[first_out]["par"]
    vector_starts = clean.ports[first_out][::beats_per_vec] if beats_per_vec else []
    intervals = [b - a for a, b in zip(vector_starts, vector_starts[1:])]
    clean_first_in, clean_last_out = clean.first(in_names), clean.last(out_names)
    rand_first_in, rand_last_out = rand.first(in_names), rand.last(out_names)
    results = {
        "vectors": vectors,
        "in_beats": sum(len(rand.ports[p]) for p in in_names),
        "out_beats": sum(len(rand.ports[p]) for p in out_names),
        "expected_out_beats": sum(len(port["data"]) // port["par"] for port in out_ports.values()),
        "elements_compared": sum(min(len(random_out[p]), len(all_expected[p])) + len(clean_out[p])
                                 for p in out_names),
        "mismatches": mismatches,
        "examples": examples,
        "received": random_out[first_out] if spec.get("return_outputs") else None,
        "latency_cycles": ((clean.ports[first_out][0] - clean.ports[first_in][0])
                           if clean.ports[first_out] and clean.ports[first_in] else None),
        "initiation_interval": min(intervals) if intervals else None,
        "initiation_interval_max": max(intervals) if intervals else None,  # equal to the min when steady
        "clean_cycles_per_vector": ((clean_last_out - clean_first_in) / clean_vectors
                                    if clean_last_out is not None and clean_first_in is not None else None),
        "random_cycles": ((rand_last_out - rand_first_in)
                          if rand_last_out is not None and rand_first_in is not None else None),
    }
    if multi:
        results["ports"] = per_port
        results["received_ports"] = random_out if spec.get("return_outputs") else None
    with open(spec["results"], "w") as handle:
        json.dump(results, handle)
    assert results["mismatches"] == 0, f"{results['mismatches']} mismatches, e.g. {results['examples']}"
    assert results["out_beats"] == results["expected_out_beats"], "beats lost or duplicated"
