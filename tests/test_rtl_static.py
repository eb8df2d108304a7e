"""Every component row lints clean under `verilator --lint-only -Wall` and elaborates in Yosys;
bad parameters stop elaboration with the component's $error in both tools; a folded linear's
weight ROM is read from its file by Yosys and maps to block RAM once deep enough."""
import json
import random
import subprocess

import pytest

from flow.circuits.components import (
    LIBRARY,
    add_parameters,
    broadcast_parameters,
    cast_parameters,
    compile_order,
    concat_lockstep_parameters,
    concat_parameters,
    fifo_parameters,
    gelu_parameters,
    key_mask_parameters,
    layer_norm_parameters,
    leaky_relu_parameters,
    matmul_parameters,
    relu_parameters,
    select_token_parameters,
    softmax_parameters,
    tanh_parameters,
)
from flow.estimate.yosys import YosysError, read_commands, run_yosys
from flow.formats.fixed import FixedFormat
from flow.nn import LinearQuantConfig, QuantMatmul
from flow.ops.linear import weight_words
from flow.simulation.stimulus import linear_parameters, random_layer
from flow.toolchain import rtl_dir, setup_verilator
from tests.sim.test_absolute import ABS_TABLE
from tests.sim.test_activations import FIFO_TABLE, LEAKY_TABLE, RELU_TABLE
from tests.sim.test_fixed_cast import CAST_TABLE
from tests.sim.test_join import ADD_TABLE, BROADCAST_TABLE, CONCAT_LOCKSTEP_TABLE, CONCAT_TABLE
from tests.sim.test_key_mask import KEY_MASK_TABLE
from tests.sim.test_linear import LARGE_ROW, LINEAR_TABLE
from tests.sim.test_pooler_ops import SELECT_TOKEN_TABLE, TANH_TABLE
from tests.sim.test_transformer_ops import GELU_TABLE, LAYER_NORM_TABLE, MATMUL_TABLE, SOFTMAX_TABLE, _layer_norm

SOURCES = sorted(rtl_dir().glob("*.sv"))


def component_rows():
    """(top, parameters) for every row of every component table."""
    for src, dst, rounding, overflow, par in CAST_TABLE:
        yield "fixed_cast", cast_parameters(FixedFormat(*src), FixedFormat(*dst), rounding, overflow, par)
    for width, par, signed in RELU_TABLE:
        yield "relu", relu_parameters(FixedFormat(width, 0, signed), par)
    for width, shift, rounding, par, signed in LEAKY_TABLE:
        yield "leaky_relu", leaky_relu_parameters(FixedFormat(width, 0, signed), shift, rounding, par)
    for width, par, signed in ABS_TABLE:
        yield "absolute", relu_parameters(FixedFormat(width, 0, signed), par)
    for n_in, n_out, in_par, out_par, formats, rounding, overflow in LINEAR_TABLE:
        layer = random_layer(n_in, n_out, LinearQuantConfig(*formats, rounding, overflow), random.Random(0))
        yield "linear", linear_parameters(layer, in_par, out_par)
    yield "skid_buffer", dict(DATA_WIDTH=3)
    for width, depth in FIFO_TABLE:
        yield "fifo", fifo_parameters(width, depth)
    for width in BROADCAST_TABLE:
        yield "broadcast", broadcast_parameters(width)
    for a, b, out, rounding, overflow, par in ADD_TABLE:
        yield "add", add_parameters(FixedFormat(*a), FixedFormat(*b), FixedFormat(*out), rounding, overflow, par)
    for width, par, a_beats, b_beats in CONCAT_TABLE:
        yield "concat", concat_parameters(width * par, a_beats, b_beats)
    for width, _, a_elements, b_elements in CONCAT_LOCKSTEP_TABLE:
        yield "concat_lockstep", concat_lockstep_parameters(width, a_elements, b_elements)
    for src, dst, par, _ in GELU_TABLE:
        yield "gelu", gelu_parameters(FixedFormat(*src), FixedFormat(*dst), par)
    yield "reciprocal", dict(BITS=24, DIV_WIDTH=13)
    yield "int_exp", dict(N_W=21, EXP_FRAC=12)
    for src, out_frac, length, par, _ in SOFTMAX_TABLE:
        yield "softmax", softmax_parameters(FixedFormat(*src), out_frac, length, par)
    for src, dst, affine, features, par, *_ in LAYER_NORM_TABLE:
        yield "layer_norm", layer_norm_parameters(_layer_norm(src, dst, affine, features, 1e-12, 0), par)
    for a, b, out, shift, shape, lanes, transposed, _, *modes in MATMUL_TABLE:
        matmul = QuantMatmul(FixedFormat(*a), FixedFormat(*b), FixedFormat(*out), shift, *modes)
        yield "matmul", matmul_parameters(matmul, *shape, *lanes, transposed)
    for src, out_frac, par, _ in TANH_TABLE:
        yield "tanh", tanh_parameters(FixedFormat(*src), out_frac, par)
    for src, par, features, tokens, index, _ in SELECT_TOKEN_TABLE:
        yield "select_token", select_token_parameters(par * src[0], features // par, tokens, index)
    for spec, seq, rows, par, _ in KEY_MASK_TABLE:
        yield "key_mask", key_mask_parameters(FixedFormat(*spec), seq, rows, par)


def lint(top, parameters):
    setup_verilator()
    flags = [f"-G{name}={value}" for name, value in parameters.items()]
    return subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", top, *flags,
                           *map(str, SOURCES)], capture_output=True, text=True)


@pytest.mark.parametrize("top,parameters", list(component_rows()),
                         ids=lambda v: v if isinstance(v, str) else "")
def test_lint_clean(top, parameters):
    result = lint(top, parameters)
    assert result.returncode == 0, result.stderr
    assert "%Warning" not in result.stderr, result.stderr


@pytest.mark.parametrize("top", list(LIBRARY))
def test_yosys_reads_every_component(top):
    log = run_yosys(read_commands(SOURCES, top), timeout=120)
    assert f"Top module:  \\{top}" in log


@pytest.mark.parametrize("parameters,message", [
    (dict(IN_FEATURES=4, IN_PAR=3), "IN_PAR must divide IN_FEATURES"),
    (dict(OUT_FEATURES=6, OUT_PAR=4), "OUT_PAR must divide OUT_FEATURES"),
])
def test_parallelism_not_dividing_is_an_elaboration_error(parameters, message):
    result = lint("linear", parameters)
    assert result.returncode != 0 and message in result.stderr
    with pytest.raises(YosysError, match=message):
        run_yosys(read_commands(SOURCES, "linear", parameters), timeout=120)


@pytest.mark.parametrize("top,message", [("softmax", "softmax: PAR must divide LENGTH"),
                                         ("layer_norm", "layer_norm: PAR must divide LENGTH"),
                                         ("matmul", "matmul: A_PAR must divide INNER")])
def test_a_row_op_parallelism_not_dividing_the_row_is_an_elaboration_error(top, message):
    parameters = dict(INNER=8, A_PAR=3) if top == "matmul" else dict(LENGTH=8, PAR=3)
    result = lint(top, parameters)
    assert result.returncode != 0 and message in result.stderr
    with pytest.raises(YosysError, match=message):
        run_yosys(read_commands(SOURCES, top, parameters), timeout=120)


@pytest.mark.parametrize("top,parameters", [("tanh", tanh_parameters(FixedFormat(12, 8), 8, 2)),
                                            ("tanh", tanh_parameters(FixedFormat(16, 12), 12, 1)),
                                            ("select_token", select_token_parameters(48, 4, 8, 3))])
def test_yosys_elaborates_the_pooler_components(top, parameters):
    log = run_yosys(read_commands(SOURCES, top, parameters), timeout=120)
    assert f"Top module:  \\{top}" in log


def test_a_select_token_index_outside_the_sequence_is_an_elaboration_error():
    parameters, message = dict(TOKENS=4, INDEX=4), "select_token: INDEX must name one of the TOKENS tokens"
    result = lint("select_token", parameters)
    assert result.returncode != 0 and message in result.stderr
    with pytest.raises(YosysError, match=message):
        run_yosys(read_commands(SOURCES, "select_token", parameters), timeout=120)


def test_a_folded_linear_without_a_weights_file_is_an_elaboration_error():
    message = "a folded layer reads its weights from WEIGHTS_FILE"
    result = lint("linear", dict(IN_FEATURES=8, IN_PAR=2))
    assert result.returncode != 0 and message in result.stderr
    with pytest.raises(YosysError, match=message):
        run_yosys(read_commands(SOURCES, "linear", dict(IN_FEATURES=8, IN_PAR=2)), timeout=120)


def folded_layer(row):
    n_in, n_out, in_par, out_par, formats, rounding, overflow = row
    layer = random_layer(n_in, n_out, LinearQuantConfig(*formats, rounding, overflow), random.Random(0))
    return layer, linear_parameters(layer, in_par, out_par)


def test_yosys_loads_a_folded_linears_rom_word_for_word(tmp_path):
    """The ROM Yosys builds from WEIGHTS_FILE holds weight_words: word s = beat*OUT_GROUPS + group."""
    row = (12, 6, 3, 2, tuple(FixedFormat(*f) for f in [(6, 3), (5, 3), (7, 4), (8, 4)]), "half_up", "saturate")  # 4 beats x 3 groups
    layer, parameters = folded_layer(row)
    netlist = tmp_path / "linear.json"
    run_yosys(read_commands(SOURCES, "linear", parameters) + ["proc", "memory_collect", f"write_json {netlist}"],
              timeout=120)
    memories = [cell for module in json.loads(netlist.read_text())["modules"].values()
                for cell in module["cells"].values() if cell["type"].startswith("$mem")]
    assert len(memories) == 1
    p = memories[0]["parameters"]
    width, size, init = int(p["WIDTH"], 2), int(p["SIZE"], 2), int(p["INIT"], 2)
    assert (width, size) == (3 * 2 * 5, 12)
    assert [(init >> (s * width)) & ((1 << width) - 1) for s in range(size)] == weight_words(layer, 3, 2)


def test_yosys_refuses_a_missing_weights_file(tmp_path):
    _, parameters = folded_layer(LINEAR_TABLE[1])
    parameters["WEIGHTS_FILE"] = f'"{tmp_path / "absent.hex"}"'
    with pytest.raises(YosysError, match="absent.hex"):
        run_yosys(read_commands(SOURCES, "linear", parameters), timeout=120)


def test_a_deep_folded_rom_maps_to_block_ram():
    """96 -> 96 at 4 x 4 lanes: 576 words of 128 bits, read on the clock edge, become RAMB36/RAMB18
    (the digits design's ROMs, 16 words of 1,024 bits and shallower, stay in LUTs and FFs: a block
    RAM is 36 bits wide, so a shallow wide ROM would take dozens)."""
    from flow.estimate.yosys import synthesize_xilinx

    _, parameters = folded_layer(LARGE_ROW)
    counts = synthesize_xilinx(SOURCES, "linear", parameters, timeout=600)
    assert counts["BRAM"] > 0, counts
    assert counts["DSP48E1"] == 16  # one multiplier per lane


def test_bad_rounding_code_is_an_elaboration_error():
    result = lint("fixed_cast", dict(ROUNDING=3))
    assert result.returncode != 0 and "ROUNDING must be" in result.stderr


@pytest.mark.parametrize("top,parameters,message", [
    ("add", dict(ROUNDING=3), "add: ROUNDING must be"),
    ("add", dict(OVERFLOW=2), "add: OVERFLOW must be"),
    ("concat", dict(B_BEATS=0), "concat: A_BEATS and B_BEATS must be at least 1"),
    ("concat_lockstep", dict(A_ELEMENTS=0), "concat_lockstep: A_ELEMENTS and B_ELEMENTS must be at least 1"),
    ("concat_lockstep", dict(WIDTH=0), "concat_lockstep: WIDTH must be at least 1"),
])
def test_join_components_reject_bad_parameters(top, parameters, message):
    result = lint(top, parameters)
    assert result.returncode != 0 and message in result.stderr


def test_synthesis_counts_the_skid_buffer_registers_exactly():
    """fixed_cast registers 2 x PAR x OUT_WIDTH data bits plus two valid flags, nothing else."""
    from flow.estimate.yosys import synthesize_xilinx

    counts = synthesize_xilinx(SOURCES, "fixed_cast", {"PAR": 4, "OUT_WIDTH": 6}, timeout=120)
    assert counts["FF"] == 2 * 4 * 6 + 2
    assert counts["LUT"] > 0 and counts["DSP48E1"] == 0 and counts["BRAM"] == 0


def test_cell_groups():
    from flow.estimate.yosys import summarize_cells

    cells = {"LUT2": 3, "LUT6": 1, "FDRE": 4, "FDSE": 1, "CARRY4": 2, "RAMB18E1": 1, "DSP48E1": 5, "BUFG": 1}
    assert summarize_cells(cells) == {"LUT": 4, "INV": 0, "FF": 5, "DSP48E1": 5, "BRAM": 1, "CARRY4": 2, "MUXF": 0}
    # inverters, shift registers and LUT RAM take slice LUTs too: a figure without them is a wrong figure
    cells = {"LUT2": 3, "INV": 7, "SRLC32E": 2, "RAM64M": 1, "$scopeinfo": 9, "IBUF": 4}
    assert summarize_cells(cells) == {"LUT": 3 + 7 + 2 + 4, "INV": 7, "FF": 0, "DSP48E1": 0, "BRAM": 0, "CARRY4": 0,
                                      "MUXF": 0}


def test_an_inverter_heavy_netlist_counts_its_inverters(tmp_path):
    """Operands read inverted into a carry chain's DI leave INV cells after synth_xilinx; LUT counts them."""
    from flow.estimate.yosys import run_yosys, summarize_cells

    source = tmp_path / "inverted.sv"
    source.write_text("module inverted (input logic [7:0] a, input logic [7:0] b, output logic [8:0] y);\n"
                      "  assign y = 9'(a) + 9'(b ^ 8'hff);\nendmodule\n")
    stat = tmp_path / "stat.json"
    run_yosys([f"read_verilog -sv {source}", "synth_xilinx -family xc7 -flatten -top inverted",
               f"tee -q -o {stat} stat -json"], timeout=120)
    cells = json.loads(stat.read_text())["design"]["num_cells_by_type"]
    counts = summarize_cells(cells)
    assert cells["INV"] == 8 and counts["INV"] == 8  # each inverted bit feeds the carry chain's DI as it is
    assert counts["LUT"] == sum(n for name, n in cells.items() if name.startswith("LUT")) + 8


def test_every_library_file_is_described_and_compile_order_puts_uses_first():
    assert {p.stem for p in SOURCES} == set(LIBRARY)
    order = compile_order(["linear", "relu", "fixed_cast"])
    assert order == ["skid_buffer", "fixed_cast_lane", "linear", "relu", "fixed_cast"]
    with pytest.raises(KeyError, match="'conv' is not a component"):
        compile_order(["conv"])


def _transformer_block(folder):
    """Linear -> LayerNorm -> GELU + residual -> Linear -> softmax (forks, FIFOs and casts included)."""
    from tests.test_transformer_layers import _block, _inputs
    _block(residual=True).emit(folder, _inputs(4))


def _attention(folder):
    """Single-head self-attention: two matmuls, softmax, forks, FIFOs, casts."""
    from tests.test_attention import _compile, _inputs
    _compile().emit(folder, _inputs(2))


def _bert_layer(folder):
    """A Hugging Face BertLayer: a Linear a head, per-head matmuls and softmax, the heads' concat,
    LayerNorm, GELU, residual adds."""
    from tests.test_bert_layer import _compile, _inputs
    _compile().emit(folder, _inputs(2))


def _pooler(folder):
    """A token-wise Linear, BERT's pooler (select_token, dense, tanh) and a classifier."""
    from tests.test_pooler import FOLDED, _compile, _inputs
    _compile(FOLDED).emit(folder, _inputs(2))


#: emitted design -> (its emitter, library files it must use)
EMITTED_DESIGNS = {
    "transformer_block": (_transformer_block, {"gelu.sv", "layer_norm.sv", "softmax.sv"}),
    "attention": (_attention, {"matmul.sv", "softmax.sv", "linear.sv"}),
    "bert_layer": (_bert_layer, {"matmul.sv", "softmax.sv", "concat.sv", "layer_norm.sv", "gelu.sv"}),
    "pooler": (_pooler, {"select_token.sv", "tanh.sv", "linear.sv"}),
}


@pytest.mark.parametrize("name", list(EMITTED_DESIGNS))
def test_an_emitted_design_lints_clean_and_reads_into_yosys(tmp_path, name):
    """A design as flow emits it (every stage, fork, FIFO and cast): lint-clean under -Wall and
    elaborated by Yosys."""
    from flow.estimate.design import design_sources

    emit, used = EMITTED_DESIGNS[name]
    folder = tmp_path / name
    emit(folder)
    files, top = design_sources(folder)
    assert used <= {f.name for f in files}
    setup_verilator()
    result = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", top, *map(str, files)],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "%Warning" not in result.stderr, result.stderr
    log = run_yosys(read_commands(files, top), timeout=300)
    assert f"Top module:  \\{top}" in log


def test_an_emitted_masked_attention_design_lints_clean_and_reads_into_yosys(tmp_path):
    """Single-head attention with a key mask as flow emits it (the second input port s_axis_mask
    into key_mask before the softmax): lint-clean under -Wall and elaborated by Yosys."""
    from flow.estimate.design import design_sources
    from tests.test_attention import _inputs
    from tests.test_key_mask import _masked, _masks

    design, _ = _masked()
    folder = tmp_path / "masked_attention"
    design.emit(folder, (_inputs(3), _masks(3)))
    files, top = design_sources(folder)
    assert {"key_mask.sv", "matmul.sv", "softmax.sv"} <= {f.name for f in files}
    setup_verilator()
    result = subprocess.run(["verilator", "--lint-only", "-Wall", "--top-module", top, *map(str, files)],
                            capture_output=True, text=True)
    assert result.returncode == 0 and "%Warning" not in result.stderr, result.stderr
    log = run_yosys(read_commands(files, top), timeout=300)
    assert f"Top module:  \\{top}" in log
    assert "s_axis_mask_tdata" in (folder / "rtl" / f"{top}.sv").read_text()


@pytest.mark.parametrize("in_width, in_frac, out_signed, ccu2c, lut4, mux", [
    (20, 13, 0, 0, 8, 0),  # 3 input bits above the output: "in range" and an output bit fit one LUT4, no carry chain
    (19, 10, 0, 7, 12, 3),  # 5: two comparisons on a carry chain, as before
])
def test_a_floor_saturate_cast_builds_no_comparison_where_in_range_fits_a_lut4(tmp_path, in_width, in_frac, out_signed,
                                                                               ccu2c, lut4, mux):
    """synth_ecp5 maps a comparison to a carry chain; fixed_cast_lane reads "in range" off the bits
    above the output's top instead where at most 3 input bits lie there (the digits MLP's 20-bit fc1 sums)."""
    from flow.estimate.design import group_ecp5

    parameters = {"IN_WIDTH": in_width, "IN_FRAC": in_frac, "IN_SIGNED": 1, "OUT_WIDTH": 8, "OUT_FRAC": 4,
                  "OUT_SIGNED": out_signed, "ROUNDING": 0, "OVERFLOW": 0}
    stat = tmp_path / "stat.json"
    run_yosys(read_commands([rtl_dir() / "fixed_cast_lane.sv"], "fixed_cast_lane", parameters)
              + ["synth_ecp5 -top fixed_cast_lane", f"tee -q -o {stat} stat -json"], timeout=120)
    cells = json.loads(stat.read_text())["design"]["num_cells_by_type"]
    assert group_ecp5(cells) == {**group_ecp5({}), "CCU2C": ccu2c, "LUT4": lut4, "MUX": mux}
