"""The portable maths of each CPU kernel in plain MindSpore ops (GRAPH_MODE and PyNative), and the weight formats.

These are what the kernels must match and what callers run where `kernels_available()` is False. Integer
accumulation is exact (int32 MatMul); float results differ from the kernels only in summation order (the A8W8
ones not at all; the int8 KV-cache attention also in its exponential, about 2e-7 relative). `pack_int4` is the
deploy-time numpy helper that packs the W4 kernel's weight.
"""
import numpy as np
import mindspore as ms
from mindspore import ops


def pack_int4(q):
    """Pack int4 codes in [-8, 7] (out, in) two per byte along `in` (low nibble = even index) -> uint8 (out, in/2)."""
    q = np.asarray(q)
    if q.ndim != 2 or q.shape[1] % 2:
        raise ValueError(f"pack_int4 needs (out, in) codes with an even `in`, got shape {q.shape}")
    if q.size and (q.min() < -8 or q.max() > 7):
        raise ValueError("int4 codes must lie in [-8, 7]")
    nibbles = q.astype(np.uint8) & 0xF
    return (nibbles[:, 0::2] | (nibbles[:, 1::2] << 4)).astype(np.uint8)


def _matmul_t(x, weight):
    """x (..., in) @ weight.T for a 2-D weight (out, in)."""
    return ops.matmul(x, ops.transpose(weight, (1, 0)))


def w8_matmul(x, weight, scale):
    """scale * (x @ weight.T): float32 x (..., in), int8 weight (out, in), float32 scale (out,)."""
    return _matmul_t(x, weight.astype(ms.float32)) * scale


def _nibble_codes():
    """(256, 2) int8: the (low, high) signed 4-bit codes each byte value holds."""
    byte = np.arange(256)
    low, high = byte & 0xF, byte >> 4
    return np.stack([low - 16 * (low >= 8), high - 16 * (high >= 8)], axis=1).astype(np.int8)


NIBBLE_CODES = ms.Tensor(_nibble_codes())


def unpack_int4(packed):
    """uint8 (out, in/2) -> int8 codes (out, in): byte b holds codes 2b (low nibble) and 2b+1 (high). One table
    lookup per byte (about 6x faster than unpacking with integer arithmetic on CPU)."""
    out_features, half = packed.shape
    return ops.gather(NIBBLE_CODES, packed.astype(ms.int32), 0).reshape(out_features, 2 * half)


def dequantize_grouped(codes, scales):
    """float32 weight (out, in) = codes (out, in) * the scale of each input's group, scales (out, in/g)."""
    codes = codes.astype(ms.float32)
    out_features, in_features = codes.shape
    groups = scales.shape[1]
    weight = codes.reshape(out_features, groups, in_features // groups) * scales.reshape(out_features, groups, 1)
    return weight.reshape(out_features, in_features)


def w4_matmul(x, packed, scales):
    """x @ (q * scales per group).T: packed int4 (out, in/2), float32 scales (out, in/g)."""
    return _matmul_t(x, dequantize_grouped(unpack_int4(packed), scales))


def quant_per_token(x):
    """Dynamic symmetric per token: scale = max|x| / 127 (...), 1 for a token of zeros;
    q = clip(round(x / scale), -127, 127) int8, rounding half to even (ops.round, like np.round)."""
    amax = ops.amax(ops.abs(x), -1)
    scale = ops.where(amax > 0, amax / 127.0, ops.ones_like(amax))
    return ops.clamp(ops.round(x / scale.expand_dims(-1)), -127.0, 127.0).astype(ms.int8), scale


def quant_static(x, scale, zp):
    """Static per tensor: q = clip(round(x / scale) + zp, -128, 127) int8; scale, zp (1,) float32."""
    return ops.clamp(ops.round(x / scale) + zp, -128.0, 127.0).astype(ms.int8)


def _centred_matmul(x_q, x_zp, weight):
    """float32 of (x_q - x_zp) @ weight.T, accumulated exactly in int32; x_zp int32 (1,)."""
    return _matmul_t(x_q.astype(ms.int32) - x_zp, weight.astype(ms.int32)).astype(ms.float32)


def a8w8_matmul(x_q, x_scale, x_zp, weight, w_scale):
    """float((x_q - x_zp) @ weight.T) * x_scale * w_scale: x_q int8 (..., in), x_scale float32 with one value
    per token (...) or one in all (1,), x_zp int32 (1,)."""
    if x_scale.size != 1:
        x_scale = x_scale.reshape(x_q.shape[:-1] + (1,))
    return _centred_matmul(x_q, x_zp, weight) * x_scale * w_scale


def a8w8_dynamic_matmul(x, weight, w_scale):
    """quant_per_token then a8w8_matmul with zero point 0."""
    q, scale = quant_per_token(x)
    return a8w8_matmul(q, scale, ops.zeros((1,), ms.int32), weight, w_scale)


def a8w8_static_matmul(x, scale, zp, weight, w_scale):
    """float((quant_static(x) - zp) @ weight.T) * (scale * w_scale); scale, zp (1,) float32."""
    return _centred_matmul(quant_static(x, scale, zp), zp.astype(ms.int32), weight) * (scale * w_scale)


def kv8_decode_attention(query, key_cache, value_cache, key_scale, key_zero_point, value_scale, value_zero_point,
                         lengths, softmax_scale):
    """One decode step's attention over an int8 KV cache, the whole cache dequantized and positions >= length
    masked out: query f32 (B, H, 1, D); caches int8 (B, Hkv, L, D), query head h reading kv head h // (H / Hkv);
    scales and zero points f32 (1, Hkv, 1, D) (k = (k_q - zp) * scale); lengths int32 (B,) in [1, L];
    softmax_scale f32 (1,) -> context f32 (B, H, 1, D) = softmax(q . k_j * softmax_scale, j < length) @ v."""
    batch, heads, _, dim = query.shape
    kv_heads, seq = key_cache.shape[1], key_cache.shape[2]
    key = (key_cache.astype(ms.float32) - key_zero_point) * key_scale
    value = (value_cache.astype(ms.float32) - value_zero_point) * value_scale
    q = query.reshape(batch, kv_heads, heads // kv_heads, dim)  # the query heads of each kv head
    scores = ops.BatchMatMul(transpose_b=True)(q, key) * softmax_scale  # (B, Hkv, n_rep, L)
    valid = (ops.arange(seq, dtype=ms.int32).reshape(1, seq) < lengths.reshape(batch, 1)).reshape(batch, 1, 1, seq)
    scores = ops.where(valid, scores, ops.full_like(scores, -np.inf))
    weights = ops.exp(scores - ops.amax(scores, -1, keepdims=True))
    weights = weights / ops.sum(weights, -1, keepdim=True)
    return ops.BatchMatMul()(weights, value).reshape(batch, heads, 1, dim)
