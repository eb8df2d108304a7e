"""The float fast paths of ``fake_quantize`` (flow.formats.fast_paths) against the exact path
``dequantize(quantize(x))``, bit for bit: every format, OCP MX configurations, every rounding
mode, float32/float16/bfloat16, large random tensors and edge cases (zeros, negative zero,
denormals, ties, saturation, infinities, all-zero and partial blocks, tiny and huge values)."""
import pytest
import torch

from flow.formats import (
    OCP_MINIFLOATS,
    BinaryFormat,
    BlockFixedFormat,
    BlockLogFormat,
    BlockMinifloatFormat,
    LogFormat,
    MinifloatFormat,
    TernaryFormat,
    mxfp,
    mxint8,
)

ROUNDINGS = ["floor", "half_up", "half_even"]
DTYPES = [torch.float32, torch.float16, torch.bfloat16]
INT_VIEW = {torch.float32: torch.int32, torch.float16: torch.int16, torch.bfloat16: torch.int16}
F32 = torch.finfo(torch.float32)

MINIFLOATS = {**OCP_MINIFLOATS,
              "e3m4": MinifloatFormat(3, 4), "e4m3_bias10": MinifloatFormat(4, 3, 10),
              "e5m10_ieee": MinifloatFormat(5, 10, ieee_like=True), "e8m7": MinifloatFormat(8, 7),
              "e8m23": MinifloatFormat(8, 23), "e1m0": MinifloatFormat(1, 0), "e2m0_ieee": MinifloatFormat(2, 0, None, True),
              "e3m2_neg_bias": MinifloatFormat(3, 2, -5), "e6m1_big_bias": MinifloatFormat(6, 1, 40),
              "e8m30": MinifloatFormat(8, 30), "e9m5": MinifloatFormat(9, 5),  # float64 arithmetic
              "e11m10_slow": MinifloatFormat(11, 10, 1030)}  # the last falls back to the exact path
LOGS = {"log8": LogFormat(8), "log4": LogFormat(4), "log2": LogFormat(2), "log5_bias-3": LogFormat(5, -3),
        "log6_bias20": LogFormat(6, 20), "log10": LogFormat(10), "log12_slow": LogFormat(12, 1030)}
BLOCKS = {**{f"mx_{name}": mxfp(name) for name in OCP_MINIFLOATS},
          "mx_e4m3_block5": mxfp("float8_e4m3fn", 5), "bmf_e3m2_w4": BlockMinifloatFormat(MinifloatFormat(3, 2), 16, 4),
          "bmf_e2m1_w3_bias0": BlockMinifloatFormat(MinifloatFormat(2, 1), 3, 3, 0),
          "mxint8": mxint8(), "mxint8_block1": mxint8(1), "bfp4_block7": BlockFixedFormat(4, 7),
          "bfp16_w5": BlockFixedFormat(16, 32, 5), "bfp2": BlockFixedFormat(2, 4), "bfp32": BlockFixedFormat(32, 8),
          "bfp8_w6_bias3": BlockFixedFormat(8, 16, 6, 3),
          "blog8": BlockLogFormat(LogFormat(8)), "blog4_block9": BlockLogFormat(LogFormat(4), 9),
          "blog5_w4": BlockLogFormat(LogFormat(5), 32, 4), "blog3_w6_bias10": BlockLogFormat(LogFormat(3), 6, 6, 10),
          "mx_e4m3_w11_wide": BlockMinifloatFormat(OCP_MINIFLOATS["float8_e4m3fn"], 32, 11, 1040)}
ROWS = {"binary": BinaryFormat(False), "binary_scaled": BinaryFormat(True), "ternary": TernaryFormat(),
        "ternary_unscaled": TernaryFormat(0.7, False), "ternary_0": TernaryFormat(0.0), "ternary_0.5": TernaryFormat(0.5)}
SLOW = {"e11m10_slow", "log12_slow", "mx_e4m3_w11_wide"}  # the exact path (the last for some data)


def assert_same(fmt, x, rounding="half_even"):
    exact = fmt.dequantize(fmt.quantize(x, rounding), x.dtype)
    fast = fmt.fake_quantize(x, rounding)
    assert fast.dtype == exact.dtype and fast.shape == exact.shape
    assert torch.equal(fast, exact), f"{fmt} {rounding} {x.dtype}"
    assert torch.equal(fast.view(INT_VIEW[x.dtype]), exact.view(INT_VIEW[x.dtype])), "bits (signed zeros) differ"


def random_values(n, dtype, seed, spread=40):
    """Normal values over 2**-spread .. 2**spread, with zeros, signed zeros and infinities mixed in."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(n, generator=g, dtype=torch.float64) * torch.exp2(torch.randint(-spread, spread, (n,), generator=g))
    x = x.to(dtype)
    pick = torch.randint(0, 64, (n,), generator=g)
    x = torch.where(pick == 0, 0.0, x)
    x = torch.where(pick == 1, -0.0, x)
    x = torch.where(pick == 2, torch.inf, x)
    return torch.where(pick == 3, -torch.inf, x).to(dtype)


def special_values(dtype):
    info = torch.finfo(dtype)
    base = [0.0, -0.0, torch.inf, -torch.inf, info.max, -info.max, info.tiny, -info.tiny, info.smallest_normal / 4,
            2.0**-149, -(2.0**-149), 1.0, -1.0, 0.5, 1.5, 2.5, -2.5, 3.0, 0.75, 1e30, -1e-30]
    return torch.tensor(base, dtype=torch.float64).to(dtype)


def grid_and_ties(fmt_values, dtype, scales=(-3, 0, 5)):
    """A format's values, the midpoints between neighbours (ties) and their float neighbours, scaled."""
    v = fmt_values.to(torch.float64)
    mid = (v[1:] + v[:-1]) / 2
    pieces = [v, mid, torch.nextafter(mid, torch.tensor(torch.inf, dtype=torch.float64)),
              torch.nextafter(mid, torch.tensor(-torch.inf, dtype=torch.float64)), v * 1.0000001, v * 3]
    base = torch.cat(pieces)
    return torch.cat([base * 2.0**s for s in scales]).to(dtype)


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("name", MINIFLOATS)
def test_minifloat_fast_equals_exact(name, rounding):
    fmt = MINIFLOATS[name]
    for dtype in DTYPES:
        assert_same(fmt, random_values(50_000, dtype, 1), rounding)
        assert_same(fmt, special_values(dtype), rounding)
        if fmt.width <= 16:
            assert_same(fmt, grid_and_ties(fmt.values(), dtype, (0,)), rounding)
    assert_same(fmt, torch.tensor(-0.3), rounding)  # 0-d
    assert_same(fmt, random_values(4000, torch.float32, 2, spread=130).reshape(10, 20, 20), rounding)


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("name", LOGS)
def test_log_fast_equals_exact(name, rounding):
    fmt = LOGS[name]
    for dtype in DTYPES:
        assert_same(fmt, random_values(50_000, dtype, 3), rounding)
        assert_same(fmt, special_values(dtype), rounding)
        assert_same(fmt, grid_and_ties(fmt.values(), dtype, (0,)), rounding)
    assert_same(fmt, torch.tensor(0.75), rounding)
    assert_same(fmt, random_values(4000, torch.float32, 4, spread=130).reshape(10, 400), rounding)


def block_edge_cases(fmt, dtype):
    """Rows of block_size * 3 + (partial) elements: grid values and ties under a fixed block max,
    all-zero blocks, blocks of tiny or huge values, infinities, signed zeros."""
    k = fmt.block_size
    n = 3 * k + max(1, k // 2)
    element = fmt.element
    if isinstance(fmt, BlockFixedFormat) and fmt.width > 16:  # a sample of the 2**32 values
        c = torch.cat([torch.arange(-300, 301), torch.arange(element.max_code - 300, element.max_code + 1)])
        element_values = (c.to(torch.float64) * 2.0**-element.frac).unique()
    else:
        element_values = element.values()
    top = float(element_values.abs().max())
    rows = []
    vals = grid_and_ties(element_values, torch.float64, (0,))
    for s in (-20, -1, 0, 3, 40):
        chunk = vals[vals.abs() <= top] * 2.0**s
        for start in range(0, len(chunk), max(k - 1, 1)):
            row = torch.zeros(n, dtype=torch.float64)
            piece = chunk[start:start + max(k - 1, 1)]
            row[0] = top * 2.0**s  # fixes the block's max, so the shared exponent is s
            row[1:1 + len(piece)] = piece
            rows.append(row)
    specials = special_values(torch.float64)
    rows.append(torch.zeros(n, dtype=torch.float64))  # all zero
    rows.append(torch.cat([specials, torch.zeros(max(0, n - len(specials)), dtype=torch.float64)])[:n])
    rows.append(torch.full((n,), -0.0, dtype=torch.float64))
    rows.append(torch.full((n,), 2.0**-140, dtype=torch.float64) * torch.arange(n))  # tiny: the smallest scale
    rows.append(torch.full((n,), 3e38, dtype=torch.float64) / (1 + torch.arange(n)))  # huge: the largest scale
    return torch.stack(rows).to(dtype)


@pytest.mark.parametrize("rounding", ROUNDINGS)
@pytest.mark.parametrize("name", BLOCKS)
def test_block_fast_equals_exact(name, rounding):
    fmt = BLOCKS[name]
    for dtype in DTYPES:
        assert_same(fmt, random_values(40_000, dtype, 5).reshape(200, 200), rounding)  # 200: a partial last block
        assert_same(fmt, block_edge_cases(fmt, dtype), rounding)
    for dtype in DTYPES:  # finite and without subnormals: the float32 arithmetic where it applies
        x = random_values(40_000, dtype, 8).reshape(200, 200)
        assert_same(fmt, torch.where(x.isinf(), 3.0, x).to(dtype), rounding)
        edges = block_edge_cases(fmt, dtype)
        edges = edges[edges.isfinite().all(dim=-1) & ~((edges.abs() < 2.0**-126) & (edges != 0)).any(dim=-1)]
        assert_same(fmt, edges, rounding)
        x = random_values(40_000, dtype, 9, spread=100).reshape(100, 400)
        assert_same(fmt, torch.where(x.isinf(), -3e38, x).to(dtype), rounding)  # subnormals, huge values
    g = torch.Generator().manual_seed(10)
    for dtype in (torch.float32, torch.bfloat16):  # finite subnormal inputs, alone and beside normal blocks
        tiny = torch.randn(64, 96, generator=g, dtype=torch.float64) * torch.exp2(torch.randint(-150, -120, (64, 96),
                                                                                              generator=g))
        assert_same(fmt, tiny.to(dtype), rounding)
        tiny[::2] *= 2.0**100
        assert_same(fmt, tiny.to(dtype), rounding)
    x = random_values(2 * 3 * 64, torch.float32, 6, spread=130).reshape(2, 3, 64)
    assert_same(fmt, x, rounding)
    x[:, 1] = 0.0
    assert_same(fmt, x, rounding)
    assert_same(fmt, x * 1e-30, rounding)
    assert_same(fmt, torch.tensor(-5.5), rounding)  # 0-d
    assert_same(fmt, torch.zeros(3, 0), rounding)
    assert_same(fmt, torch.randn(7, 1), rounding)


@pytest.mark.parametrize("name", ROWS)
def test_row_scaled_fast_equals_exact(name):
    fmt = ROWS[name]
    for dtype in DTYPES:
        x = random_values(40_000, dtype, 7, spread=20).reshape(200, 200)
        x = torch.where(x.isinf(), 1.0, x).to(dtype)  # row sums must be finite
        x[3] = 0.0
        x[4] = -0.0
        x[5, :100] = 0.0
        for rounding in ROUNDINGS:
            assert_same(fmt, x, rounding)
        assert_same(fmt, x.reshape(4, 50, 200))
    assert_same(fmt, torch.tensor(-2.0))
    assert_same(fmt, torch.tensor(0.0))
    assert_same(fmt, torch.full((2, 8), 2.0**-149))  # a mean that underflows float32
    assert_same(fmt, torch.tensor([[1.0, -1.0, 0.7, -0.7, 0.0]]))  # threshold ties
    assert_same(fmt, torch.randn(3, 0))


@pytest.mark.parametrize("fmt", [*MINIFLOATS.values(), *LOGS.values(), *BLOCKS.values(), *ROWS.values()], ids=str)
def test_errors_and_gradient_unchanged(fmt):
    with pytest.raises(ValueError, match="NaN"):
        fmt.fake_quantize(torch.tensor([1.0, float("nan")]))
    with pytest.raises(ValueError, match="rounding"):
        fmt.fake_quantize(torch.ones(2), "nearest")
    x = torch.randn(4, 40, requires_grad=True)
    fmt.fake_quantize(x).sum().backward()
    assert torch.equal(x.grad, torch.ones_like(x))


@pytest.mark.parametrize("name", [n for n in [*MINIFLOATS, *LOGS, *BLOCKS, *ROWS] if n not in SLOW])
def test_fast_path_taken(name, monkeypatch):
    """The configurations above take the fast path (no codes are built) for float32 inputs."""
    fmt = {**MINIFLOATS, **LOGS, **BLOCKS, **ROWS}[name]

    def refuse(*args, **kwargs):
        raise AssertionError("the exact path ran")

    monkeypatch.setattr(type(fmt), "quantize", refuse)
    fmt.fake_quantize(torch.randn(3, 70))


# log and block_log always take the float64 bit arithmetic (LogFormat.fake), which handles subnormals
FLOAT32_ARITHMETIC = {"minifloat e4m3": OCP_MINIFLOATS["float8_e4m3fn"], "minifloat e5m2": OCP_MINIFLOATS["float8_e5m2"],
                      "MXFP8 E4M3": mxfp("float8_e4m3fn"), "MXFP4": mxfp("float4_e2m1fn"), "MXINT8": mxint8()}


@pytest.mark.parametrize("name", FLOAT32_ARITHMETIC)
def test_float32_arithmetic_taken(name, monkeypatch):
    """Training's formats take the float32 arithmetic (not the float64 one) on finite normal inputs."""
    fmt = FLOAT32_ARITHMETIC[name]
    element = getattr(fmt, "element", fmt)

    def refuse(*args, **kwargs):
        raise AssertionError("the float64 arithmetic ran")

    monkeypatch.setattr(type(element), "fake", refuse)
    monkeypatch.setattr(type(fmt), "quantize", refuse)
    fmt.fake_quantize(torch.randn(3, 70))
