"""The shift-add constant layer: CSD digits, the adder graph's exactness, what sharing saves,
exact widths, and the generated netlist read back by the RTL model."""
import random
import re

import pytest
import torch
from torch import nn

import flow
from flow.circuits.adder_polarity import (
    SIGNED_INVERT,
    Held,
    HeldGraph,
    Read,
    adder_cost,
    constant_add_cost,
    hold,
    read_value,
    wrap,
)
from flow.circuits.cmvm import adders_without_sharing, bits_for, build, csd, kraft_depth
from flow.simulation.rtl_model import RtlModel


def test_csd_digits_sum_to_the_value_with_no_two_adjacent():
    for value in range(-2000, 2001):
        digits = csd(value)
        assert sum(sign << shift for sign, shift in digits) == value
        shifts = [shift for _, shift in digits]
        assert all(b - a >= 2 for a, b in zip(shifts, shifts[1:]))  # canonical: no adjacent nonzero digits
        assert len(digits) <= len(bin(abs(value))) // 2 + 1


def random_matrix(rows, cols, bits, zeros, rng):
    return [[0 if rng.random() < zeros else rng.randint(-(1 << (bits - 1)), (1 << (bits - 1)) - 1)
             for _ in range(cols)] for _ in range(rows)]


@pytest.mark.parametrize("rows,cols,bits,zeros,signed", [
    (10, 16, 8, 0.3, True), (7, 5, 4, 0.0, False), (12, 24, 12, 0.6, True), (3, 1, 2, 0.0, True), (5, 9, 6, 1.0, True)])
def test_the_adder_graph_computes_w_x_exactly_within_its_intervals(rows, cols, bits, zeros, signed):
    rng = random.Random(rows * cols)
    weights = random_matrix(rows, cols, bits, zeros, rng)
    lo, hi = (-128, 127) if signed else (0, 255)
    graph = build(weights, lo, hi)
    for vector in [[lo] * cols, [hi] * cols] + [[rng.randint(lo, hi) for _ in range(cols)] for _ in range(50)]:
        assert graph.evaluate(vector) == [sum(w * x for w, x in zip(row, vector)) for row in weights]
    for node in graph.nodes[cols:]:  # the fewest bits that hold the interval; a sign bit only if it is needed
        fewest = bits_for(node.lo, node.hi) if node.lo < 0 else max(node.hi.bit_length(), 1)
        assert node.signed == (node.lo < 0) and node.width == fewest <= bits + 8 + cols.bit_length() + 1
    if not signed:  # unsigned inputs and no subtraction on the way: the node carries no sign bit
        assert any(not node.signed and node.width == bits_for(node.lo, node.hi) - 1 for node in graph.nodes)


def test_zero_weights_cost_nothing_and_powers_of_two_no_adder():
    assert build([[0, 0, 0], [0, 0, 0]], -8, 7).adders == 0
    graph = build([[4, 0, 0], [0, -2, 0], [0, 0, 1]], -8, 7)  # each row one shifted input: no adder
    assert graph.adders == 0 and graph.evaluate([3, 5, -7]) == [12, -10, -7]
    sparse = build([[3, 0, 0, 5], [0, 0, 7, 0]], -8, 7)
    dense_part = build([[3, 5], [0, 7]], -8, 7)
    assert sparse.adders == dense_part.adders  # the zero columns add nothing


def test_sharing_saves_adders_on_a_dense_matrix():
    weights = random_matrix(16, 32, 8, 0.0, random.Random(3))
    graph = build(weights, -128, 127)
    alone = adders_without_sharing(weights)
    assert graph.adders < 0.8 * alone, (graph.adders, alone)


@pytest.mark.sim
@pytest.mark.parametrize("pipeline_every,signed_in", [(0, False), (1, True), (3, False)])
def test_a_constant_design_simulates_bit_exact_at_the_modelled_cycles(pipeline_every, signed_in, tmp_path):
    torch.manual_seed(pipeline_every)
    model = nn.Sequential(nn.Linear(12, 9), nn.ReLU(), nn.Linear(9, 4)).eval()
    with torch.no_grad():
        model[0].weight[2].zero_()  # an all-zero row: the output is its bias alone
    design = flow.compile(model, torch.zeros(2, 12),
                          quant={"data_in_signed": signed_in, "data_in_width": 6, "data_in_frac_width": 3},
                          parallelism={"default": {"multiplier": "lut", "pipeline_every": pipeline_every}},
                          name=f"cmvm{pipeline_every}")
    assert [s.constant is not None for s in design.graph.linear_stages] == [True, True]
    x = torch.rand(60, 12) * 8 - 4 * signed_in
    folder = tmp_path / "d"
    design.emit(folder, x)
    netlist = (folder / "rtl" / f"cmvm{pipeline_every}_0_cmvm.sv").read_text()
    assert re.search(r"\^ \d+'h[0-9a-f]+\)", netlist)  # operands read with their top bit flipped (held.py)
    sim = design.simulate(folder)
    assert sim["mismatches"] == 0 and sim["elements_compared"] >= 60 * 4
    assert (sim["initiation_interval"], sim["initiation_interval_max"], sim["latency_cycles"]) == (
        1, 1, design.latency)
    codes = design.quantize_inputs(x)
    model_of_rtl = RtlModel(folder / "rtl", f"cmvm{pipeline_every}_top")
    assert [model_of_rtl(row) for row in codes.tolist()] == design.reference(codes).tolist()


def test_the_rtl_model_reads_the_netlist_not_the_weights(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5)).eval()
    design = flow.compile(model, torch.zeros(2, 6), parallelism={"default": {"multiplier": "lut"}}, name="nl")
    design.emit(tmp_path / "nl", torch.randn(20, 6))
    netlist = tmp_path / "nl" / "rtl" / "nl_0_cmvm.sv"
    text = netlist.read_text()
    assert "<< 1)" in text
    netlist.write_text(text.replace("<< 1)", "<< 2)", 1))  # one wrong shift in the emitted RTL
    codes = design.quantize_inputs(torch.randn(20, 6))
    model_of_rtl = RtlModel(tmp_path / "nl" / "rtl", "nl_top")
    assert [model_of_rtl(row) for row in codes.tolist()] != design.reference(codes).tolist()


def test_lut_multipliers_on_a_folded_layer_name_the_fix():
    from flow.config.load import ConfigError

    model = nn.Sequential(nn.Linear(8, 4)).eval()
    with pytest.raises(ConfigError, match=r"multiplier='lut' needs a fully parallel layer .* use 'dsp' or 'auto'"):
        flow.compile(model, torch.zeros(2, 8), parallelism={"default": {"multiplier": "lut", "out_par": 2}})
    auto = flow.compile(model, torch.zeros(2, 8), parallelism={"default": {"multiplier": "auto", "out_par": 2}})
    assert auto.graph.linear_stages[0].constant is None  # folded: auto keeps the multipliers


def test_the_generated_netlist_lints_clean_and_yosys_reads_it(tmp_path):
    import subprocess

    from flow.estimate.yosys import read_commands, run_yosys
    from flow.toolchain import setup_verilator

    torch.manual_seed(1)
    model = nn.Sequential(nn.Linear(10, 6), nn.ReLU(), nn.Linear(6, 3)).eval()
    design = flow.compile(model, torch.zeros(2, 10), parallelism={"default": {"multiplier": "lut", "pipeline_every": 2}},
                          name="lintme")
    design.emit(tmp_path / "d", torch.randn(4, 10))
    rtl = tmp_path / "d" / "rtl"
    files = [rtl / name for name in (rtl / "filelist.f").read_text().split()]
    text = "".join(path.read_text() for path in files if path.name.endswith("_cmvm.sv"))
    assert "-(" in text  # negative terms are parenthesized: Yosys reads -9'(x) as a cast to size -9
    setup_verilator()
    lint = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", "lintme_top", *map(str, files)],
                          capture_output=True, text=True)
    assert lint.returncode == 0 and "%Warning" not in lint.stderr, lint.stderr[:2000]
    assert "Top module:  \\lintme_top" in run_yosys(read_commands(files, "lintme_top"), timeout=300)


def test_the_tree_adds_narrow_terms_first_and_the_cse_is_deterministic():
    rng = random.Random(7)
    weights = random_matrix(24, 40, 8, 0.1, rng)
    first, again = build(weights, 0, 255), build(weights, 0, 255)
    assert [(n.a, n.b, n.a_shift, n.b_shift) for n in first.nodes] == [(n.a, n.b, n.a_shift, n.b_shift)
                                                                       for n in again.nodes]
    assert first.adders < adders_without_sharing(weights)
    small_blocks = build(weights, 0, 255, block=8)  # fewer pairs seen: more adders, the same sums
    assert small_blocks.adders > first.adders
    x = [rng.randint(0, 255) for _ in range(40)]
    assert small_blocks.evaluate(x) == first.evaluate(x) == [sum(w * v for w, v in zip(row, x)) for row in weights]


def test_the_netlist_keeps_each_adder_unsigned_where_it_can_and_folds_half_up_into_the_bias(tmp_path):
    torch.manual_seed(3)
    model = nn.Sequential(nn.Linear(8, 5)).eval()
    design = flow.compile(model, torch.zeros(2, 8), quant={"data_in_signed": False, "data_in_frac_width": 4},
                          parallelism={"default": {"multiplier": "lut"}}, name="fold")
    const = design.graph.linear_stages[0].constant
    assert const.round_offset == 1 << (const.layer.acc_format.frac - const.layer.config.data_out.frac - 1)
    design.emit(tmp_path / "fold", torch.rand(20, 8) * 4)
    text = (tmp_path / "fold" / "rtl" / "fold_0_cmvm.sv").read_text()
    assert ".ROUNDING(0)" in text  # the cast floors: half an LSB rode in with the bias
    unsigned_nodes = [i for i, held in enumerate(const.held.nodes) if i >= 8 and not held.signed]
    assert unsigned_nodes and f"(* keep *) logic [{const.held.nodes[unsigned_nodes[0]].width - 1}:0] " \
                              f"n{unsigned_nodes[0]};" in text
    acc_lines = [line for line in text.splitlines() if line.strip().startswith("assign acc[")]
    acc_w = int(re.search(r"logic signed \[(\d+):0\] acc", text).group(1)) + 1
    for o in range(5):
        assert const.offset(o) == int(const.layer.bias_codes()[o]) + const.round_offset
        constant = wrap(const.held.output_constant(const.graph, o, const.offset(o)), acc_w)
        subtracted = const.held.output_reads.get(o, Read()).subtract
        assert f"'sd{abs(constant)}" in acc_lines[o] and len(re.findall(r"-\s*\(", acc_lines[o])) == (constant < 0) + subtracted


@pytest.mark.parametrize("seed,signed_inputs", [(0, True), (1, False), (2, True)])
def test_held_nodes_read_no_operand_sign_extended_stay_exact_and_cost_fewer_luts(seed, signed_inputs):
    rng = random.Random(seed)
    weights = random_matrix(9, 14, 8, 0.2, rng)
    lo, hi = (-128, 127) if signed_inputs else (0, 255)
    graph = build(weights, lo, hi)
    held = hold(graph)

    def contribution(values, source, read):  # the bit pattern through the mask, then added or subtracted
        width, value = held.nodes[source].width, values[source]
        if read.mask == SIGNED_INVERT:  # every bit inverted, read signed
            pattern = (value % (1 << width)) ^ ((1 << width) - 1)
            pattern = pattern - (1 << width) if pattern >> (width - 1) else pattern
        else:
            pattern = (value % (1 << width)) ^ read.mask if read.mask else value
        if read.pad:  # ones above the pattern: -2**width modulo the sum's width
            pattern -= 1 << width
        return -pattern if read.subtract else pattern

    for x in [[lo] * 14, [hi] * 14] + [[rng.randint(lo, hi) for _ in range(14)] for _ in range(40)]:
        true, kept = {}, {}
        for node in graph.nodes:
            if node.a is None:
                true[node.id] = kept[node.id] = x[node.id]
                continue
            true[node.id] = node.a_sign * (true[node.a] << node.a_shift) + node.b_sign * (true[node.b] << node.b_shift)
            h = held.nodes[node.id]
            kept[node.id] = sum((contribution(kept, source, held.read(node.id, i)) << shift)
                                + (1 << (h.width - 1) if held.read(node.id, i).top else 0)  # a 1 at the sum's top bit
                                for i, (source, shift, _) in enumerate(node.operands))
            assert kept[node.id] == h.polarity * true[node.id] + h.offset and h.lo <= kept[node.id] <= h.hi
        for o, term in enumerate(graph.outputs):
            total = held.output_constant(graph, o, 5)
            if term is not None:
                total += contribution(kept, term[0], held.output_reads.get(o, Read())) << term[1]
            assert total == 5 + sum(w * v for w, v in zip(weights[o], x))
    assert any(node.a_sign < 0 or node.b_sign < 0 for node in graph.nodes)
    assert any(h.polarity < 0 for h in held.nodes)  # some nodes are held negated
    tops = [node.id for node in graph.nodes[14:] if any(held.read(node.id, i).top for i in range(2))]
    assert all(not held.nodes[t].signed for t in tops)  # signed sums held unsigned by a 1 at the top
    assert tops or not signed_inputs  # (on these unsigned inputs no top bit came free)
    for node in graph.nodes[14:]:
        terms = [(shift + held.nodes[src].width, i, src) for i, (src, shift, _) in enumerate(node.operands)]
        _, narrow, source = min(terms, key=lambda t: (t[0], -t[1]))
        assert not held.nodes[source].signed or held.read(node.id, narrow).mask != 0  # never sign-extended
        assert not all(held.read(node.id, i).subtract for i in range(2))
    inverted = sum(held.read(node.id, i) != Read() for node in graph.nodes[14:] for i in range(2)
                   if held.read(node.id, i).mask != 1 << (held.nodes[node.operands[i][0]].width - 1))
    negative_terms = sum((node.a_sign < 0) + (node.b_sign < 0) for node in graph.nodes[14:])
    assert inverted < negative_terms  # polarity spares inversions
    assert held.lut_bits(graph) < 0.97 * HeldGraph.plain(graph).lut_bits(graph)


def test_the_cost_model_prices_inverters_as_yosys_leaves_them():
    """adder_cost on single adders whose xc7 cells were measured (LUT + INV): an inverted
    narrower operand feeds DI as it is; an inverted wider one costs only outside the overlap."""
    unsigned8, unsigned4 = Held(0, 255, 0), Held(0, 15, 0)
    every8, every4 = Read(0xFF), Read(0xF)
    assert adder_cost([(unsigned8, Read(), 0), (unsigned8, every8, 0)], 9) == 8 + 8
    assert adder_cost([(unsigned8, Read(), 0), (unsigned4, every4, 2)], 12) == 4 + 4
    assert adder_cost([(unsigned8, every8, 0), (unsigned4, Read(), 2)], 12) == 4 + 4
    assert adder_cost([(unsigned8, Read(), 0), (unsigned4, every4, 6)], 12) == 2 + 2
    assert adder_cost([(unsigned8, Read(), 0), (unsigned8, Read(), 0)], 9) == 8
    assert adder_cost([(unsigned8, Read(), 0), (unsigned8, Read(subtract=True), 0)], 9) == 8
    # (9'(a) | 9'h100) - 9'(b): the sum held unsigned by a 1 at its top; that bit takes a LUT of its own
    assert adder_cost([(unsigned8, Read(top=True), 0), (unsigned8, Read(subtract=True), 0)], 9) == 9


def test_the_sum_trees_stay_within_the_depth_the_register_stages_allow_and_stay_exact():
    """Kraft's bound: the least depth of a binary adder tree over terms at given levels. Without
    registers the trees reach it; with a register every 3 levels they may use the whole last
    stage (9 levels for 7). Either way W x is exact."""
    assert [kraft_depth(levels) for levels in ([], [3], [0, 0], [0, 0, 0], [2, 0], [1, 1, 0, 0])] == [0, 3, 1, 2, 3, 3]
    rng = random.Random(3)
    weights = [[rng.randint(-128, 127) for _ in range(24)] for _ in range(12)]
    flat, staged = build(weights, 0, 255), build(weights, 0, 255, pipeline_every=3)
    assert (flat.depth, staged.depth) == (7, 9)
    assert flat.adders == staged.adders == 439  # the same CSE; only the trees differ
    for x in ([rng.randint(0, 255) for _ in range(24)] for _ in range(20)):
        want = [sum(w * v for w, v in zip(row, x)) for row in weights]
        assert flat.evaluate(x) == staged.evaluate(x) == want


def test_a_free_polarity_chosen_by_its_readers_costs_fewer_luts():
    """The two lookahead passes of ``hold`` (a node whose terms differ in sign held the way its
    readers prefer) price 2.4 % fewer LUT bits than choosing each node by its own adder alone."""
    rng = random.Random(3)
    weights = [[rng.randint(-128, 127) for _ in range(24)] for _ in range(12)]
    graph = build(weights, 0, 255)
    assert (hold(graph, passes=0).lut_bits(graph), hold(graph).lut_bits(graph)) == (4372, 4283)


def test_the_output_constant_adder_costs_an_inverter_per_bit_the_constant_or_a_subtraction_inverts():
    """S = read bit XOR constant bit: a 1 under an added term inverts it, a 0 under a subtracted
    one; above an unsigned term the constant rides the carry chain alone, and the bits of a sign
    extension share one inverter."""
    unsigned8, signed8 = Held(0, 255, 0), Held(-128, 127, 0)
    assert constant_add_cost(0b10101010, unsigned8, Read(), 0, 12) == 4
    assert constant_add_cost(0xF00, unsigned8, Read(), 0, 12) == 0
    assert constant_add_cost(0, unsigned8, Read(subtract=True), 0, 12) == 8
    assert constant_add_cost(0xFF, unsigned8, Read(subtract=True), 0, 12) == 0
    assert constant_add_cost(0xFF0, signed8, Read(), 0, 12) == 4 + 1


def test_a_subtrahend_padded_with_ones_leaves_no_inverter_where_the_minuend_runs_on_alone():
    """u8 - (u4 << 2), 9 bits: subtracted as it is, the minuend's bits above the subtrahend see
    S = ~a (an INV each); read through a mask, the inverted narrower operand feeds DI (an INV
    each); padded with ones above it (``| 9'h1c0``: -2**6 modulo 2**9, folded into the offset), S
    is the minuend as it is. Yosys measured 7 LUT (2 INV), 8 (4 INV) and 5 (0 INV) for the three;
    the model counts two more for the low bits in each, so it orders them alike."""
    unsigned8, unsigned4 = Held(0, 255, 0), Held(0, 15, 0)
    plain = adder_cost([(unsigned8, Read(), 0), (unsigned4, Read(subtract=True), 2)], 9)
    masked = adder_cost([(unsigned8, Read(), 0), (unsigned4, Read(0xF), 2)], 9)
    padded = adder_cost([(unsigned8, Read(), 0), (unsigned4, Read(subtract=True, pad=True), 2)], 9)
    assert (plain, masked, padded) == (8, 8, 6)
    assert read_value(unsigned4, Read(subtract=True, pad=True)) == (-1, 16)  # -(h - 2**4)
