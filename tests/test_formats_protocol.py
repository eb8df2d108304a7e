"""Every non-fixed format on the Format protocol: built by registry name from MASE-style keys,
one-line errors naming the bad argument or key, ascending value sets, and the RTL and cast
refusals."""
import pytest
import torch

from flow.formats import (
    BinaryFormat,
    BlockFixedFormat,
    BlockLogFormat,
    BlockMinifloatFormat,
    Format,
    LogFormat,
    MinifloatFormat,
    TernaryFormat,
    format_from_table,
    format_names,
    mxfp,
    mxint8,
)

BUILT = [  # registry name, the operand's keys, the format they describe
    ("minifloat", {"width": 8, "exponent_width": 4, "nan_pattern": True}, MinifloatFormat(4, 3, nan_pattern=True)),
    ("minifloat", {"width": 7, "exponent_width": 3, "exponent_bias": 2, "ieee_like": True},
     MinifloatFormat(3, 3, 2, ieee_like=True)),
    ("minifloat_ieee", {"width": 8, "exponent_width": 5}, MinifloatFormat(5, 2, ieee_like=True)),
    ("minifloat_denorm", {"width": 6, "exponent_width": 2, "exponent_bias": None}, MinifloatFormat(2, 3)),
    ("log", {"width": 5, "exponent_bias": 8}, LogFormat(5, 8)),
    ("log", {"width": 4}, LogFormat(4, 3)),
    ("block_fp", {"width": 8, "block_size": [1, 16], "exponent_width": 6}, BlockFixedFormat(8, 16, 6)),
    ("block_fp", {"width": 8, "block_size": 32}, mxint8()),
    ("mxint", {"width": 8}, mxint8()),
    ("block_minifloat", {"width": 4, "exponent_width": 2, "block_size": [32], "exponent_bias_width": 8},
     mxfp("float4_e2m1fn")),
    ("mxfp", {"width": 8, "exponent_width": 4}, mxfp("float8_e4m3fn")),
    ("mxfp", {"width": 6, "exponent_width": 3, "block_size": 16}, mxfp("float6_e3m2fn", 16)),
    ("block_log", {"width": 4, "block_size": 8}, BlockLogFormat(LogFormat(4), 8)),
    ("binary", {"width": 1, "scaled": True}, BinaryFormat(True)),
    ("binary", {}, BinaryFormat(False)),
    ("ternary", {"threshold_factor": 0.5}, TernaryFormat(0.5, True)),
]


@pytest.mark.parametrize(("name", "keys", "want"), BUILT, ids=lambda v: str(v) if isinstance(v, str) else "")
def test_built_from_a_table_by_name(name, keys, want):
    table = {f"weight_{k}": v for k, v in keys.items()} | {"data_in_width": 3, "name": name, "rounding": "half_up"}
    fmt = format_from_table(name, table, "weight")
    assert fmt == want and isinstance(fmt, Format) and name in format_names()
    values = fmt.values()
    assert torch.all(values[1:] > values[:-1])  # ascending, each once
    with pytest.raises(NotImplementedError, match=f"^{fmt.kind} has no RTL components yet; emit fixed point$"):
        fmt.rtl_parameters("IN")
    with pytest.raises(NotImplementedError, match="cast"):
        fmt.cast(torch.zeros(1, dtype=torch.int64), fmt)


@pytest.mark.parametrize(("name", "keys", "key"), [
    ("minifloat", {"width": 8}, "data_in_exponent_width"),
    ("log", {}, "data_in_width"),
    ("block_fp", {"width": 8}, "data_in_block_size"),
    ("block_minifloat", {"width": 8, "exponent_width": 4}, "data_in_block_size"),
    ("mxfp", {"width": 8}, "data_in_exponent_width"),
])
def test_missing_key_is_named(name, keys, key):
    table = {f"data_in_{k}": v for k, v in keys.items()}
    with pytest.raises(KeyError) as caught:
        format_from_table(name, table, "data_in")
    assert caught.value.args[0] == key  # callers that add their own hint read the key here
    with pytest.raises(ValueError, match=f"^{key} is missing; the {name} format needs it"):
        format_from_table(name, table, "data_in")


@pytest.mark.parametrize(("name", "keys", "message"), [
    ("minifloat", {"width": 8, "exponent_width": 4, "exponent_widht": 4},
     "unknown key 'data_in_exponent_widht'; did you mean 'data_in_exponent_width'?"),
    ("block_fp", {"width": 8, "blocksize": 4}, "unknown key 'data_in_blocksize'; did you mean 'data_in_block_size'?"),
    ("block_fp", {"width": 8, "block_size": [4, 8]}, "data_in_block_size=[4, 8]: flow blocks along the last"),
    ("minifloat", {"width": 3, "exponent_width": 4}, "data_in_width=3 must be an int of at least 1 + "),
    ("mxfp", {"width": 8, "exponent_width": 3}, "data_in_width=8 with data_in_exponent_width=3 is not an OCP MX"),
    ("binary", {"width": 8}, "data_in_width=8, but a binary code is 1 bit"),
    ("ternary", {"width": 1}, "data_in_width=1, but a ternary code is 2 bits"),
    ("log", {"width": 1}, "width must be an int from 2 to 12"),
])
def test_bad_keys_are_one_line_errors_naming_them(name, keys, message):
    with pytest.raises(ValueError) as caught:
        format_from_table(name, {f"data_in_{k}": v for k, v in keys.items()}, "data_in")
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)


@pytest.mark.parametrize(("build", "argument"), [
    (lambda: MinifloatFormat(0, 3), "exponent_width"),
    (lambda: MinifloatFormat(12, 3), "exponent_width"),
    (lambda: MinifloatFormat(4, -1), "mantissa_width"),
    (lambda: MinifloatFormat(4, 3.0), "mantissa_width"),
    (lambda: MinifloatFormat(1, 2, ieee_like=True), "exponent_width"),
    (lambda: MinifloatFormat(4, 3, ieee_like=True, nan_pattern=True), "nan_pattern"),
    (lambda: MinifloatFormat(4, 0, nan_pattern=True), "nan_pattern"),
    (lambda: MinifloatFormat(4, 3, exponent_bias=5000), "exponent_bias"),
    (lambda: MinifloatFormat(4, 3, ieee_like=1), "ieee_like"),
    (lambda: LogFormat(1), "width"),
    (lambda: LogFormat(8, 1.5), "exponent_bias"),
    (lambda: LogFormat(8, -2000), "exponent_bias"),
    (lambda: BlockFixedFormat(1), "width"),
    (lambda: BlockFixedFormat(8, 0), "block_size"),
    (lambda: BlockFixedFormat(8, 32, 0), "exponent_width"),
    (lambda: BlockFixedFormat(32, 32, 16, exponent_bias=0), "exponent_width"),
    (lambda: BlockFixedFormat(8, 32, 8, exponent_bias="127"), "exponent_bias"),
    (lambda: BlockMinifloatFormat("float8_e4m3fn"), "element"),
    (lambda: BlockLogFormat(MinifloatFormat(2, 1)), "element"),
    (lambda: BlockLogFormat(LogFormat(8), 32, 16, exponent_bias=-2000), "exponent_bias"),
    (lambda: mxfp("e4m3"), "element"),
    (lambda: TernaryFormat(1.0), "threshold_factor"),
    (lambda: TernaryFormat(0.7, scaled=None), "scaled"),
    (lambda: BinaryFormat("yes"), "scaled"),
])
def test_bad_arguments_are_one_line_value_errors_naming_them(build, argument):
    with pytest.raises(ValueError) as caught:
        build()
    message = str(caught.value)
    assert message.startswith(argument) or f" {argument}" in message
    assert "\n" not in message


def test_every_format_name_of_flow_formats_is_built_here():
    names = {"minifloat", "minifloat_ieee", "minifloat_denorm", "log", "block_fp", "mxint", "block_minifloat", "mxfp",
             "block_log", "binary", "ternary"}
    assert names == {name for name, _, _ in BUILT} and names <= set(format_names())
