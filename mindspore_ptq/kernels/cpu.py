"""MindSpore `ops.Custom(func_type="aot")` cells over the quantized-linear CPU kernels (*.cpp beside this file).

Each cell works in GRAPH_MODE and PyNative. Activations are float32 (..., in) and the leading dims count as
tokens (deployed linears pass 2-D (tokens, in)); outputs are float32 (..., out). Shapes are checked when the
op infers its output, so a mismatch raises ValueError in either mode.

A deployed linear calls its kernel for every token count: below `prefill_min_tokens()` (16) tokens the kernels
run as GEMVs over the quantized weights (decode), from there on as blocked GEMMs (prefill). Measured on a busy
2-core AVX-512 VM (mindspore_ptq.kernels.bench, 60 linears of 1536 x 576): decode 0.3-0.4x the time of fp32
MatMul; prefill (256 tokens) A8W8 about 0.55x, W8/W4 about 1.2x (panels dequantized to fp32; casting the int8
weight and calling MatMul takes 1.26x). Without AVX-512 VNNI the A8W8 prefill takes about 1.9x.

`KV8DecodeAttention` is one decode step's attention over an int8 KV cache (C8) that reads only each row's valid
prefix. Measured the same way (bench --attention, 30 attentions of H=9, Hkv=3, D=64 over caches of 1024): 2.0 ms
at length 200 and 4.2-4.6 ms at length 1000, against 68-75 ms for the portable path (whole cache dequantized,
masked softmax, BatchMatMul); about 35 us of each call is MindSpore's launch.

The library is loaded into this process by MindSpore and by ctypes (one instance, shared): its thread count
(`set_threads`, env MINDSPORE_PTQ_KERNEL_THREADS) and instruction set (`set_isa`, env MINDSPORE_PTQ_KERNEL_ISA
= auto | avx2 | avx512vnni) are set through ctypes and read at every call.
"""
import ctypes
import functools
import hashlib
import math
import os

import mindspore as ms
from mindspore import nn, ops
from mindspore.ops import CustomRegOp, DataType

from .build import library_path, unavailable_reason

ISAS = ("avx2", "avx512vnni")
F32, I8, U8, I32 = DataType.F32_Default, DataType.I8_Default, DataType.U8_Default, DataType.I32_Default


def _cpu_count():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def default_threads():
    """MINDSPORE_PTQ_KERNEL_THREADS, else MindSpore's runtime_num_threads, else OMP_NUM_THREADS, else the CPUs."""
    env = os.environ.get("MINDSPORE_PTQ_KERNEL_THREADS")
    if env:
        return max(1, int(env))
    for source in (lambda: ms.get_context("runtime_num_threads"), lambda: os.environ.get("OMP_NUM_THREADS")):
        try:
            count = int(source())
        except (TypeError, ValueError):
            continue
        if count > 0:
            return min(count, _cpu_count())
    return _cpu_count()


@functools.lru_cache(maxsize=None)
def _lib():
    path = library_path()
    if path is None:
        raise RuntimeError(f"mindspore_ptq CPU kernels are unavailable: {unavailable_reason()}")
    lib = ctypes.CDLL(path)
    for name in ("ptq_calls", "ptq_prefill_min_tokens"):
        getattr(lib, name).restype = ctypes.c_longlong
    lib.ptq_set_threads(default_threads())
    requested = os.environ.get("MINDSPORE_PTQ_KERNEL_ISA", "auto").lower()
    if requested not in ("auto",) + ISAS:
        raise ValueError(f"MINDSPORE_PTQ_KERNEL_ISA must be auto, avx2 or avx512vnni, got {requested!r}")
    lib.ptq_set_isa(ISAS.index("avx512vnni" if requested == "auto" else requested))
    return lib


def set_threads(count):
    """Threads every kernel call uses from now on."""
    _lib().ptq_set_threads(int(count))


def threads():
    return _lib().ptq_get_threads()


def set_isa(name):
    """'avx2' or 'avx512vnni' (AVX-512 GEMM tiles, VNNI dot products); returns the one in use (AVX-512 only where
    the CPU has AVX-512 F/BW/VNNI)."""
    if name not in ISAS:
        raise ValueError(f"isa must be one of {ISAS}, got {name!r}")
    return ISAS[_lib().ptq_set_isa(ISAS.index(name))]


def isa():
    return ISAS[_lib().ptq_get_isa()]


def cpu_has_vnni():
    return bool(_lib().ptq_cpu_has_vnni())


def kernel_calls():
    """How many kernel calls this process made (proves MindSpore runs the library ctypes loaded)."""
    return _lib().ptq_calls()


def prefill_min_tokens():
    """From this many tokens on, the kernels switch from GEMV (decode) to a blocked GEMM (prefill)."""
    return _lib().ptq_prefill_min_tokens()


# ---------------------------------------------------------------- shape inference (and validation)
def _require(condition, message):
    if not condition:
        raise ValueError(message)


def _known(*dims):
    return all(d >= 0 for d in dims)


def _tokens(x):
    return math.prod(x[:-1])


def _check_weight(kind, x, w, in_features, per_out):
    _require(len(x) >= 1 and len(w) == 2, f"{kind}: x must be (..., in) and the weight 2-D, got {x} and {w}")
    if _known(x[-1], in_features):
        _require(x[-1] == in_features, f"{kind}: x has {x[-1]} in-features but the weight has {in_features}")
    for name, shape in per_out.items():
        if _known(w[0], *shape):
            _require(tuple(shape) == (w[0],), f"{kind}: {name} must have shape ({w[0]},), got {tuple(shape)}")
    return list(x[:-1]) + [w[0]]


def _single(kind, **shapes):
    for name, shape in shapes.items():
        if _known(*shape):
            _require(math.prod(shape) == 1, f"{kind}: {name} must hold one value, got shape {tuple(shape)}")


def _w8_shape(x, w, scale):
    return _check_weight("W8MatMul", x, w, w[1], {"scale": scale})


def _w4_shape(x, w, scales):
    kind = "W4MatMul"
    if _known(x[-1]):
        _require(x[-1] % 2 == 0, f"{kind}: in-features must be even (two int4 per byte), got {x[-1]}")
    out = _check_weight(kind, x, w, 2 * w[1], {})
    _require(len(scales) == 2, f"{kind}: scales must be (out, in / group), got {tuple(scales)}")
    if _known(w[0], w[1], *scales):
        _require(scales[0] == w[0], f"{kind}: scales have {scales[0]} rows, the weight {w[0]}")
        in_features, groups = 2 * w[1], scales[1]
        group = in_features // groups if groups and in_features % groups == 0 else 0
        _require(group % 2 == 0 and group > 0 and (groups == 1 or group % 8 == 0),
                 f"{kind}: {groups} groups do not split {in_features} in-features into groups that are a "
                 f"multiple of 8 (or one whole row)")
    return out


def _a8w8_shape(x, x_scale, x_zp, w, w_scale):
    kind = "A8W8MatMul"
    out = _check_weight(kind, x, w, w[1], {"w_scale": w_scale})
    if _known(*x, *x_scale):
        _require(math.prod(x_scale) in (1, _tokens(x)),
                 f"{kind}: x_scale must hold one value or one per token ({_tokens(x)}), got {tuple(x_scale)}")
    _single(kind, x_zp=x_zp)
    return out


def _a8w8_dynamic_shape(x, w, w_scale):
    return _check_weight("A8W8DynamicMatMul", x, w, w[1], {"w_scale": w_scale})


def _a8w8_static_shape(x, scale, zp, w, w_scale):
    _single("A8W8StaticMatMul", scale=scale, zp=zp)
    return _check_weight("A8W8StaticMatMul", x, w, w[1], {"w_scale": w_scale})


def _quant_static_shape(x, scale, zp):
    _single("QuantStatic", scale=scale, zp=zp)
    return list(x)


def _kv8_attention_shape(query, key_cache, value_cache, key_scale, key_zp, value_scale, value_zp, lengths,
                         softmax_scale):
    kind = "KV8DecodeAttention"
    _require(len(query) == 4 and len(key_cache) == 4,
             f"{kind}: query must be (B, H, 1, D) and the caches (B, Hkv, L, D), got {tuple(query)} and "
             f"{tuple(key_cache)}")
    batch, heads, steps, dim = query
    kv_heads = key_cache[1]
    if _known(*key_cache, *value_cache):
        _require(tuple(value_cache) == tuple(key_cache),
                 f"{kind}: value_cache {tuple(value_cache)} differs from key_cache {tuple(key_cache)}")
    if _known(steps):
        _require(steps == 1, f"{kind}: query must hold one decode step (B, H, 1, D), got {tuple(query)}")
    for axis, name in ((0, "batch rows"), (3, "head dims")):
        if _known(query[axis], key_cache[axis]):
            _require(query[axis] == key_cache[axis],
                     f"{kind}: query has {query[axis]} {name} but the caches {key_cache[axis]}")
    if _known(heads, kv_heads):
        _require(kv_heads > 0 and heads % kv_heads == 0,
                 f"{kind}: {heads} query heads are not a multiple of {kv_heads} kv heads")
    for name, shape in (("key_scale", key_scale), ("key_zero_point", key_zp), ("value_scale", value_scale),
                        ("value_zero_point", value_zp)):
        if _known(kv_heads, dim, *shape):
            _require(tuple(shape) == (1, kv_heads, 1, dim),
                     f"{kind}: {name} must have shape (1, {kv_heads}, 1, {dim}), got {tuple(shape)}")
    if _known(batch, *lengths):
        _require(tuple(lengths) == (batch,), f"{kind}: lengths must have shape ({batch},), got {tuple(lengths)}")
    _single(kind, softmax_scale=softmax_scale)
    return list(query)


# name: (inputs, outputs, dtype rows, out_shape, out_dtype)
_SPECS = {
    "PtqW8MatMul": (("x", "weight", "scale"), ("y",), [(F32, I8, F32, F32)], _w8_shape, ms.float32),
    "PtqW4MatMul": (("x", "weight", "scales"), ("y",), [(F32, U8, F32, F32), (F32, I8, F32, F32)], _w4_shape,
                    ms.float32),
    "PtqA8W8MatMul": (("x", "x_scale", "x_zp", "weight", "w_scale"), ("y",), [(I8, F32, I32, I8, F32, F32)],
                      _a8w8_shape, ms.float32),
    "PtqQuantPerToken": (("x",), ("q", "scale"), [(F32, I8, F32)], lambda x: [list(x), list(x[:-1])],
                         [ms.int8, ms.float32]),
    "PtqQuantStatic": (("x", "scale", "zp"), ("q",), [(F32, F32, F32, I8)], _quant_static_shape, ms.int8),
    "PtqA8W8Dynamic": (("x", "weight", "w_scale"), ("y",), [(F32, I8, F32, F32)], _a8w8_dynamic_shape, ms.float32),
    "PtqA8W8Static": (("x", "scale", "zp", "weight", "w_scale"), ("y",), [(F32, F32, F32, I8, F32, F32)],
                      _a8w8_static_shape, ms.float32),
    "PtqKV8DecodeAttention": (("query", "key_cache", "value_cache", "key_scale", "key_zero_point", "value_scale",
                               "value_zero_point", "lengths", "softmax_scale"), ("context",),
                              [(F32, I8, I8, F32, F32, F32, F32, I32, F32, F32)], _kv8_attention_shape, ms.float32),
}


@functools.lru_cache(maxsize=None)
def custom_op(name):
    """The process-wide ops.Custom primitive of kernel `name` (a key of the table above)."""
    inputs, outputs, dtype_rows, out_shape, out_dtype = _SPECS[name]
    _lib()  # load (and configure) the library before MindSpore does, or fail with the reason
    reg = CustomRegOp(name)
    for i, input_name in enumerate(inputs):
        reg = reg.input(i, input_name)
    for i, output_name in enumerate(outputs):
        reg = reg.output(i, output_name)
    for row in dtype_rows:
        reg = reg.dtype_format(*row)
    return ops.Custom(f"{library_path()}:{name}", out_shape=out_shape, out_dtype=out_dtype, func_type="aot",
                      reg_info=reg.target("CPU").get_op_info())


class _KernelCell(nn.Cell):
    kernel = ""

    def __init__(self):
        super().__init__()
        self.op = custom_op(self.kernel)


class W8MatMul(_KernelCell):
    """y (..., out) f32 = scale * (x @ weight.T); x (..., in) f32, weight (out, in) int8, scale (out,) f32."""
    kernel = "PtqW8MatMul"

    def construct(self, x, weight, scale):
        return self.op(x, weight, scale)


class W4MatMul(_KernelCell):
    """y (..., out) f32 = sum over groups of scales[o, g] * (x_g @ q_g.T); packed (out, in/2) uint8|int8.

    Two signed int4 per byte along `in` (low nibble = even index), `in` even; scales (out, in/g) f32 with the
    group g a multiple of 8 (32, 64, 128, ...) or the whole row.
    """
    kernel = "PtqW4MatMul"

    def construct(self, x, packed, scales):
        return self.op(x, packed, scales)


class A8W8MatMul(_KernelCell):
    """y (..., out) f32 = float((x_q - x_zp) @ weight.T) * x_scale * w_scale, exact int32 accumulation.

    x_q (..., in) int8, x_scale (tokens,) or (1,) f32, x_zp (1,) int32 in [-128, 127] (0 for symmetric; another
    value raises RuntimeError when the kernel runs), weight (out, in) int8, w_scale (out,) f32.
    """
    kernel = "PtqA8W8MatMul"

    def construct(self, x_q, x_scale, x_zp, weight, w_scale):
        return self.op(x_q, x_scale, x_zp, weight, w_scale)


class QuantPerToken(_KernelCell):
    """x (..., in) f32 -> (q (..., in) int8, scale (...) f32): scale = max|x| / 127 (1 for a token of zeros),
    q = clip(round(x / scale), -127, 127)."""
    kernel = "PtqQuantPerToken"

    def construct(self, x):
        return self.op(x)


class QuantStatic(_KernelCell):
    """(x f32, scale (1,) f32, zp (1,) f32 integer-valued) -> q = clip(round(x / scale) + zp, -128, 127) int8."""
    kernel = "PtqQuantStatic"

    def construct(self, x, scale, zp):
        return self.op(x, scale, zp)


class A8W8DynamicMatMul(_KernelCell):
    """Per token: (x (..., in) f32, weight (out, in) int8, w_scale (out,) f32) -> y (..., out) f32 =
    float(q @ weight.T) * s * w_scale, with (q, s) = QuantPerToken(x)."""
    kernel = "PtqA8W8Dynamic"

    def construct(self, x, weight, w_scale):
        return self.op(x, weight, w_scale)


class A8W8StaticMatMul(_KernelCell):
    """Per tensor: (x (..., in) f32, scale (1,) f32, zp (1,) f32 integer-valued, weight (out, in) int8,
    w_scale (out,) f32) -> y (..., out) f32 = float((q - zp) @ weight.T) * (scale * w_scale),
    with q = QuantStatic(x, scale, zp); zp outside [-128, 127] raises RuntimeError when the kernel runs."""
    kernel = "PtqA8W8Static"

    def construct(self, x, scale, zp, weight, w_scale):
        return self.op(x, scale, zp, weight, w_scale)


class KV8DecodeAttention(_KernelCell):
    """One decode step's attention over an int8 KV cache (C8), reading only the positions [0, length) of each row:
    (query (B, H, 1, D) f32, key_cache, value_cache (B, Hkv, L, D) int8, key_scale, key_zero_point, value_scale,
    value_zero_point (1, Hkv, 1, D) f32, lengths (B,) int32, softmax_scale (1,) f32) -> context (B, H, 1, D) f32
    = softmax_j<length(q . k_j * softmax_scale) @ v, with k = (k_q - key_zero_point) * key_scale (v likewise) and
    query head h reading kv head h // (H / Hkv). A length outside [1, L] raises RuntimeError when the kernel runs.
    """
    kernel = "PtqKV8DecodeAttention"

    def construct(self, query, key_cache, value_cache, key_scale, key_zero_point, value_scale, value_zero_point,
                  lengths, softmax_scale):
        return self.op(query, key_cache, value_cache, key_scale, key_zero_point, value_scale, value_zero_point,
                       lengths, softmax_scale)


_DTYPES = {ms.float32: F32, ms.int8: I8, ms.uint8: U8, ms.int32: I32}


@functools.lru_cache(maxsize=None)
def decode_layer_op(input_dtypes):
    """The ops.Custom primitive of one decode step of a whole decoder layer (decode_layer.cpp) for inputs of
    `input_dtypes` (x, cos, sin, lengths, meta, scalars, then the layer's operands): the layer's output (like x).
    It writes the step's key/value into the cache operands, so it is marked as writing memory (side_effect_mem,
    as Assign is): GRAPH_MODE keeps it in order with the other reads and writes of those Parameters."""
    _lib()
    # MindSpore keeps one registration per op name: each signature registers under its own
    signature = "".join(str(_DTYPES[d]) for d in input_dtypes)
    reg = CustomRegOp(f"PtqDecodeLayer_{hashlib.sha1(signature.encode()).hexdigest()[:12]}")
    for i in range(len(input_dtypes)):
        reg = reg.input(i, f"input{i}")
    reg = reg.output(0, "out").dtype_format(*(_DTYPES[d] for d in input_dtypes), F32)
    op = ops.Custom(f"{library_path()}:PtqDecodeLayer", out_shape=lambda x, *_: list(x), out_dtype=ms.float32,
                    func_type="aot", reg_info=reg.target("CPU").get_op_info())
    op.add_prim_attr("side_effect_mem", True)
    return op
