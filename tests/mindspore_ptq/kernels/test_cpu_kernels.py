"""The CPU kernels (ops.Custom AOT) against int64/float64 numpy oracles, in PyNative and GRAPH_MODE."""
import numpy as np
import pytest
import mindspore as ms
from mindspore import Tensor, nn

from mindspore_ptq.kernels import cpu, reference
from mindspore_ptq.kernels.build import kernels_available, unavailable_reason

needs_kernels = pytest.mark.skipif(not kernels_available(), reason=f"CPU kernels unavailable: {unavailable_reason()}")

# (tokens, in, out): decode (< 16 tokens) and GEMM paths; in-features off multiples of 4/8/16/64, partial panels
SHAPES = [(1, 72, 7), (7, 100, 96), (128, 576, 96), (16, 64, 5), (3, 576, 33), (20, 99, 17)]


# ---------------------------------------------------------------- numpy oracles
def np_w8(x, w, scale):
    return (x.astype(np.float64) @ w.astype(np.float64).T) * scale


def np_unpack_int4(packed):
    byte = packed.astype(np.uint8)
    low, high = (byte & 0xF).astype(np.int8), (byte >> 4).astype(np.int8)
    codes = np.stack([np.where(low > 7, low - 16, low), np.where(high > 7, high - 16, high)], axis=-1)
    return codes.reshape(packed.shape[0], -1)


def np_w4(x, packed, scales):
    codes = np_unpack_int4(packed).astype(np.float64)
    out_features, groups = scales.shape
    weight = (codes.reshape(out_features, groups, -1) * scales[:, :, None]).reshape(out_features, -1)
    return x.astype(np.float64) @ weight.T


def np_acc(x_q, w, zp=0):
    """(x_q - zp) @ w.T in int64."""
    return (x_q.astype(np.int64) - int(zp)) @ w.astype(np.int64).T


def np_a8w8(x_q, x_scale, zp, w, w_scale):
    """float32((x_q - zp) @ w.T) * x_scale (per token or one) * w_scale."""
    return np_acc(x_q, w, zp).astype(np.float32) * x_scale.reshape(-1, 1) * w_scale


def np_quant_per_token(x):
    amax = np.abs(x).max(axis=-1)
    scale = np.where(amax > 0, amax / np.float32(127), np.float32(1)).astype(np.float32)
    return np.clip(np.round(x / scale[..., None]), -127, 127).astype(np.int8), scale


def np_quant_static(x, scale, zp):
    return np.clip(np.round(x / scale) + zp, -128, 127).astype(np.int8)


def assert_close(actual, expected, rtol=1e-5):
    """Within rtol of the output's scale (max |expected|)."""
    scale = max(float(np.abs(expected).max()), 1e-30)
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * scale)


# ---------------------------------------------------------------- fixtures and helpers
class Wrap(nn.Cell):
    """A deployed-style cell calling a kernel cell (or reference function) inside construct."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def construct(self, *inputs):
        return self.fn(*inputs)


@pytest.fixture(params=["pynative", "graph"])
def mode(request):
    if request.param == "graph":
        ms.set_context(mode=ms.GRAPH_MODE)
    yield request.param
    ms.set_context(mode=ms.PYNATIVE_MODE)


@pytest.fixture(params=cpu.ISAS)
def isa(request):
    if request.param == "avx512vnni" and not cpu.cpu_has_vnni():
        pytest.skip("the CPU has no AVX-512 VNNI")
    before = cpu.isa()
    assert cpu.set_isa(request.param) == request.param
    yield request.param
    cpu.set_isa(before)


def run(fn, *arrays, graph=False):
    """fn (a kernel cell or a reference function) on the arrays, called from a cell's construct under GRAPH_MODE."""
    outputs = (Wrap(fn) if graph else fn)(*[Tensor(a) for a in arrays])
    return tuple(o.asnumpy() for o in outputs) if isinstance(outputs, (tuple, list)) else outputs.asnumpy()


def int8(rng, shape, saturate=False):
    return (rng.choice(np.array([-128, 127], np.int8), shape) if saturate
            else rng.integers(-128, 128, shape).astype(np.int8))


# ---------------------------------------------------------------- the library instance and its threads
@needs_kernels
def test_mindspore_runs_the_library_ctypes_configures():
    calls = cpu.kernel_calls()
    run(cpu.W8MatMul(), np.ones((1, 8), np.float32), np.ones((2, 8), np.int8), np.ones(2, np.float32))
    assert cpu.kernel_calls() == calls + 1


@needs_kernels
def test_results_do_not_depend_on_the_thread_count():
    rng = np.random.default_rng(0)
    x, w, s = rng.standard_normal((20, 256)).astype(np.float32), int8(rng, (96, 256)), np.ones(96, np.float32)

    def outputs(count):
        cpu.set_threads(count)
        return run(cpu.W8MatMul(), x, w, s), run(cpu.A8W8DynamicMatMul(), x, w, s)

    before = cpu.threads()
    try:
        np.testing.assert_array_equal(outputs(1), outputs(3))
    finally:
        cpu.set_threads(before)


# ---------------------------------------------------------------- weight-only kernels
@needs_kernels
@pytest.mark.parametrize("tokens, in_features, out_features", SHAPES)
def test_w8_matmul(tokens, in_features, out_features, isa, mode):
    rng = np.random.default_rng(tokens * in_features + out_features)
    x = (rng.standard_normal((tokens, in_features)) * 1e3).astype(np.float32)
    w, scale = int8(rng, (out_features, in_features)), rng.random(out_features).astype(np.float32)
    assert_close(run(cpu.W8MatMul(), x, w, scale, graph=mode == "graph"), np_w8(x, w, scale))


@needs_kernels
@pytest.mark.parametrize("tokens", [1, 7, 128, 300])
def test_w8_matmul_saturated_and_zero(tokens, isa):
    rng = np.random.default_rng(1)
    x = rng.choice(np.array([-3e4, 3e4], np.float32), (tokens, 100))
    w, scale = int8(rng, (9, 100), saturate=True), np.full(9, 0.5, np.float32)
    assert_close(run(cpu.W8MatMul(), x, w, scale), np_w8(x, w, scale))
    np.testing.assert_array_equal(run(cpu.W8MatMul(), np.zeros_like(x), w, scale), 0)


@needs_kernels
@pytest.mark.parametrize("tokens, in_features, out_features, group", [
    (1, 576, 96, 32), (7, 576, 7, 64), (128, 256, 96, 128), (16, 100, 5, 100), (3, 72, 33, 72), (20, 576, 9, 576),
    (17, 98, 20, 98)])
def test_w4_matmul(tokens, in_features, out_features, group, isa, mode):
    rng = np.random.default_rng(group + tokens)
    x = (rng.standard_normal((tokens, in_features)) * 10).astype(np.float32)
    codes = rng.integers(-8, 8, (out_features, in_features))
    packed = reference.pack_int4(codes)
    scales = rng.random((out_features, in_features // group)).astype(np.float32)
    assert_close(run(cpu.W4MatMul(), x, packed, scales, graph=mode == "graph"), np_w4(x, packed, scales))
    assert_close(run(cpu.W4MatMul(), x, packed.view(np.int8), scales), np_w4(x, packed, scales))


@needs_kernels
@pytest.mark.parametrize("tokens", [1, 128])
def test_w4_matmul_saturated_and_zero(tokens, isa):
    rng = np.random.default_rng(2)
    x = rng.choice(np.array([-1e5, 1e5], np.float32), (tokens, 128))
    packed = reference.pack_int4(rng.choice(np.array([-8, 7]), (12, 128)))
    np.testing.assert_array_equal(np_unpack_int4(packed), reference.unpack_int4(Tensor(packed)).asnumpy())
    scales = np.full((12, 4), 0.25, np.float32)
    assert_close(run(cpu.W4MatMul(), x, packed, scales), np_w4(x, packed, scales))
    np.testing.assert_array_equal(run(cpu.W4MatMul(), np.zeros_like(x), packed, scales), 0)


@needs_kernels
def test_w4_rejects_odd_width_and_bad_groups():
    with pytest.raises(ValueError, match="must be even"):
        run(cpu.W4MatMul(), np.ones((2, 101), np.float32), np.zeros((3, 51), np.uint8), np.ones((3, 1), np.float32))
    with pytest.raises(ValueError, match="groups"):
        run(cpu.W4MatMul(), np.ones((2, 100), np.float32), np.zeros((3, 50), np.uint8), np.ones((3, 5), np.float32))
    with pytest.raises(ValueError, match="even"):
        reference.pack_int4(np.zeros((3, 5), np.int8))


@needs_kernels
def test_wrong_shapes_and_zero_points_are_rejected():
    with pytest.raises(ValueError, match="in-features"):
        run(cpu.W8MatMul(), np.ones((2, 10), np.float32), np.ones((3, 12), np.int8), np.ones(3, np.float32))
    x, w, ones = np.ones((2, 8), np.float32), np.ones((3, 8), np.int8), np.ones(3, np.float32)
    with pytest.raises(ValueError, match="x_scale"):
        run(cpu.A8W8MatMul(), x.astype(np.int8), ones, np.zeros(1, np.int32), w, ones)
    with pytest.raises(RuntimeError, match="PtqA8W8MatMul"):  # zero points outside [-128, 127]
        run(cpu.A8W8MatMul(), x.astype(np.int8), ones[:1], np.array([128], np.int32), w, ones)
    with pytest.raises(RuntimeError, match="PtqA8W8Static"):
        run(cpu.A8W8StaticMatMul(), x, ones[:1], np.array([-129.0], np.float32), w, ones)


@needs_kernels
def test_leading_dims_are_tokens():
    rng = np.random.default_rng(3)
    x, w, s = rng.standard_normal((2, 9, 40)).astype(np.float32), int8(rng, (6, 40)), np.ones(6, np.float32)
    y = run(cpu.W8MatMul(), x, w, s)
    assert y.shape == (2, 9, 6)
    assert_close(y.reshape(18, 6), np_w8(x.reshape(18, 40), w, s))


# ---------------------------------------------------------------- activation quantization
@needs_kernels
@pytest.mark.parametrize("tokens, in_features", [(1, 72), (7, 100), (128, 576)])
def test_quant_per_token(tokens, in_features, mode):
    rng = np.random.default_rng(tokens)
    x = (rng.standard_normal((tokens, in_features)) * rng.choice([1e-3, 1.0, 1e4], (tokens, 1))).astype(np.float32)
    x[0] = 0.0  # a zero token: scale 1, codes 0
    if tokens > 1:  # max 127 -> scale 1: the exact halves must round to even
        x[1] = 0.0
        x[1, :8] = [127.0, 0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 126.5]
    q, scale = run(cpu.QuantPerToken(), x, graph=mode == "graph")
    expected_q, expected_scale = np_quant_per_token(x)
    np.testing.assert_array_equal(scale, expected_scale)
    np.testing.assert_array_equal(q, expected_q)
    ref_q, ref_scale = reference.quant_per_token(Tensor(x))
    np.testing.assert_array_equal(ref_q.asnumpy(), expected_q)
    np.testing.assert_array_equal(ref_scale.asnumpy(), expected_scale)


@needs_kernels
@pytest.mark.parametrize("tokens, in_features", [(1, 72), (7, 100), (128, 576)])
def test_quant_static(tokens, in_features, mode):
    rng = np.random.default_rng(tokens + 1)
    x = (rng.standard_normal((tokens, in_features)) * 4).astype(np.float32)
    x[0, :6] = [1e30, -1e30, 0.25, 0.75, -0.25, 0.0]  # saturation; halves at scale 0.5
    scale, zp = np.array([0.5], np.float32), np.array([-3.0], np.float32)
    q = run(cpu.QuantStatic(), x, scale, zp, graph=mode == "graph")
    np.testing.assert_array_equal(q, np_quant_static(x, scale, zp))
    ref = reference.quant_static(Tensor(x), Tensor(scale), Tensor(zp)).asnumpy()
    np.testing.assert_array_equal(ref, q)


# ---------------------------------------------------------------- A8W8
def fused_a8w8(kind, x, w, w_scale):
    """(kernel cell class, reference function, inputs, numpy result) of the fused A8W8 linear `kind`."""
    if kind == "dynamic":
        return (cpu.A8W8DynamicMatMul, reference.a8w8_dynamic_matmul, (x, w, w_scale),
                np_a8w8(*np_quant_per_token(x), 0, w, w_scale))
    scale, zp = np.array([0.02], np.float32), np.array([5.0], np.float32)  # as the deployed static cell computes
    expected = np_acc(np_quant_static(x, scale, zp), w, zp[0]).astype(np.float32) * (scale * w_scale)
    return cpu.A8W8StaticMatMul, reference.a8w8_static_matmul, (x, scale, zp, w, w_scale), expected


@needs_kernels
@pytest.mark.parametrize("tokens, in_features, out_features", SHAPES)
def test_a8w8_accumulator_is_exact(tokens, in_features, out_features, isa):
    """Saturated codes, zero points at both ends: the kernel's own weight row sums must be exact too."""
    rng = np.random.default_rng(in_features + out_features)
    ones_t, ones_o = np.ones(tokens, np.float32), np.ones(out_features, np.float32)
    for saturate, zp in ((False, 0), (True, 0), (True, -128), (True, 127)):
        x_q, w = int8(rng, (tokens, in_features), saturate), int8(rng, (out_features, in_features), saturate)
        y = run(cpu.A8W8MatMul(), x_q, ones_t, np.array([zp], np.int32), w, ones_o)
        np.testing.assert_array_equal(y.astype(np.int64), np_acc(x_q, w, zp))


@needs_kernels
@pytest.mark.parametrize("tokens, in_features, out_features", SHAPES)
def test_a8w8_matmul(tokens, in_features, out_features, isa, mode):
    rng = np.random.default_rng(tokens + in_features)
    x_q, w = int8(rng, (tokens, in_features)), int8(rng, (out_features, in_features))
    w_scale = rng.random(out_features).astype(np.float32)
    for x_scale, zp in ((rng.random(tokens).astype(np.float32), 0), (np.array([0.03], np.float32), -7)):
        inputs = (x_q, x_scale, np.array([zp], np.int32), w, w_scale)
        y = run(cpu.A8W8MatMul(), *inputs, graph=mode == "graph")
        np.testing.assert_array_equal(y, np_a8w8(x_q, x_scale, zp, w, w_scale))
        np.testing.assert_array_equal(run(reference.a8w8_matmul, *inputs), y)


@needs_kernels
@pytest.mark.parametrize("kind", ["dynamic", "static"])
@pytest.mark.parametrize("tokens, in_features, out_features", SHAPES)
def test_a8w8_fused(kind, tokens, in_features, out_features, isa, mode):
    """Quantization and matmul in one call, bit-exact against numpy and the portable reference."""
    rng = np.random.default_rng(tokens * 3 + out_features)
    x = (rng.standard_normal((tokens, in_features)) * 20).astype(np.float32)
    x[0] = 0.0  # a zero token gives zeros in both
    x[-1, :2] = [1e6, -1e6]  # clipped by the static quantizer
    w = int8(rng, (out_features, in_features), saturate=tokens == 1)
    kernel, ref, inputs, expected = fused_a8w8(kind, x, w, rng.random(out_features).astype(np.float32))
    y = run(kernel(), *inputs, graph=mode == "graph")
    np.testing.assert_array_equal(y, expected)
    if tokens > 1:
        np.testing.assert_array_equal(y[0], 0)
    np.testing.assert_array_equal(run(ref, *inputs), y)


# ---------------------------------------------------------------- portable references (the fallback path)
@pytest.mark.parametrize("tokens, in_features, out_features", [(7, 96, 96), (1, 64, 5)])
def test_references(tokens, in_features, out_features, mode):
    """reference.py inside a cell, in both modes, against the numpy oracles (the A8W8 ones bit-exactly)."""
    rng = np.random.default_rng(4)
    graph = mode == "graph"
    x = (rng.standard_normal((tokens, in_features)) * 5).astype(np.float32)
    w, scale = int8(rng, (out_features, in_features)), rng.random(out_features).astype(np.float32)
    assert_close(run(reference.w8_matmul, x, w, scale, graph=graph), np_w8(x, w, scale))
    packed = reference.pack_int4(rng.integers(-8, 8, (out_features, in_features)))
    scales = rng.random((out_features, in_features // 32)).astype(np.float32)
    assert_close(run(reference.w4_matmul, x, packed, scales, graph=graph), np_w4(x, packed, scales))
    for kind in ("dynamic", "static"):
        _, ref, inputs, expected = fused_a8w8(kind, x, w, scale)
        np.testing.assert_array_equal(run(ref, *inputs, graph=graph), expected)
