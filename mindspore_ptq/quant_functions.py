"""Quantization maths on numpy arrays: one equation per function.

Integer grids: symmetric int8 uses [-127, 127] (so -w and w quantize alike); asymmetric int8 uses [-128, 127].
"""
import numpy as np

QMIN, QMAX = -128, 127
SYM_MAX = 127


def symmetric_scale(abs_max, bits=8):
    """scale = abs_max / symmetric_max(bits) (127 for int8); an all-zero channel gets scale 1 (its values quantize
    to 0 exactly)."""
    abs_max = np.asarray(abs_max, np.float64)
    return np.where(abs_max > 0, abs_max / symmetric_max(bits), 1.0).astype(np.float32)


def asymmetric_scale_zero_point(minimum, maximum):
    """scale = (max - min) / 255, zero_point = round(QMIN - min / scale), with 0 kept inside [min, max]."""
    minimum = np.minimum(np.asarray(minimum, np.float64), 0.0)
    maximum = np.maximum(np.asarray(maximum, np.float64), 0.0)
    span = maximum - minimum
    scale = np.where(span > 0, span / (QMAX - QMIN), 1.0)
    zero_point = np.clip(np.round(QMIN - minimum / scale), QMIN, QMAX)
    return scale.astype(np.float32), zero_point.astype(np.float32)


def _round_to_bits(x, bits, direction):
    """x rounded by `direction` (np.floor or np.ceil) to a value with `bits` significant bits."""
    x = np.asarray(x, np.float64)
    step = np.ldexp(1.0, np.frexp(x)[1] - bits)
    return (direction(x / step) * step).astype(np.float32)


def round_range_outward(minimum, maximum, bits):
    """Widen [minimum, maximum] to the nearest values with `bits` significant bits: minimum down, maximum up."""
    return _round_to_bits(minimum, bits, np.floor), _round_to_bits(maximum, bits, np.ceil)


def quantize(x, scale, zero_point=0.0, qmin=QMIN, qmax=QMAX):
    """q = clip(round(x / scale) + zero_point, qmin, qmax) as int8."""
    q = np.round(np.asarray(x, np.float64) / scale) + zero_point
    return np.clip(q, qmin, qmax).astype(np.int8)


def dequantize(q, scale, zero_point=0.0):
    """x = (q - zero_point) * scale."""
    return ((np.asarray(q, np.float64) - zero_point) * scale).astype(np.float32)


def quantize_weight_per_channel(weight, abs_max=None):
    """Symmetric per-output-channel int8: weight (out, in) -> (int8 (out, in), scale (out,)).

    abs_max: the per-row range to use (e.g. reduced over tensor-parallel shards); default max |weight| per row.
    """
    weight = np.asarray(weight, np.float32)
    assert weight.ndim == 2, f"weight must be (out, in), got shape {weight.shape}"
    abs_max = np.abs(weight).max(axis=1) if abs_max is None else np.asarray(abs_max)
    assert abs_max.shape == (weight.shape[0],), f"abs_max must be ({weight.shape[0]},), got {abs_max.shape}"
    scale = symmetric_scale(abs_max)
    return quantize(weight, scale[:, None], 0.0, -SYM_MAX, SYM_MAX), scale


def symmetric_max(bits):
    """The largest code of a symmetric grid of `bits` bits: 127 for int8, 7 for int4 ([-7, 7])."""
    return 2 ** (bits - 1) - 1


def group_scales(weight, bits, group_size):
    """Symmetric scales (out, in / group_size) of a weight (out, in): max |w| of each group / symmetric_max(bits)
    (1 for a group of zeros)."""
    out_features, in_features = weight.shape
    if group_size <= 0 or in_features % group_size:
        raise ValueError(f"group_size {group_size} does not divide the {in_features} inputs of the weight")
    return symmetric_scale(np.abs(np.asarray(weight, np.float64)).reshape(out_features, -1, group_size).max(axis=2),
                           bits)


def quantize_weight_grouped(weight, bits, group_size, scales=None):
    """Symmetric `bits`-bit codes (int8 (out, in), within [-max, max]) and scales (out, groups) for groups of
    `group_size` inputs of each row (group_size = in: one scale per row); `scales` default to group_scales."""
    weight = np.asarray(weight, np.float32)
    scales = group_scales(weight, bits, group_size) if scales is None else np.asarray(scales, np.float32)
    limit = symmetric_max(bits)
    per_input = np.repeat(scales, group_size, axis=1)
    return quantize(weight, per_input, 0.0, -limit, limit), scales


def dequantize_grouped(codes, scales):
    """weight (out, in) = codes * the scale of each input's group; scales (out, groups)."""
    group_size = codes.shape[1] // scales.shape[1]
    return (np.asarray(codes, np.float64) * np.repeat(scales, group_size, axis=1)).astype(np.float32)


def quantize_per_token(x):
    """Symmetric int8 per row (token) of x (..., channels): (int8 q, float32 scale (..., 1)), x ~ q * scale."""
    x = np.asarray(x, np.float32)
    scale = symmetric_scale(np.abs(x).max(axis=-1, keepdims=True))
    return quantize(x, scale, 0.0, -SYM_MAX, SYM_MAX), scale


def fake_quantize(x, scale, zero_point=0.0, qmin=QMIN, qmax=QMAX):
    """dequantize(quantize(x)): the value an integer kernel sees."""
    return dequantize(quantize(x, scale, zero_point, qmin, qmax), scale, zero_point)


def smooth_scales(act_abs_max, weight_abs_max, alpha):
    """SmoothQuant factor per input channel: s = act_max^alpha / weight_max^(1 - alpha), clipped to >= 1e-5.

    act_abs_max: (in,) max |X| per input channel; weight_abs_max: (in,) max |W| per input channel over all
    linears that share the input. X / s and W * s then give the same product.
    """
    act_abs_max = np.asarray(act_abs_max, np.float64)
    weight_abs_max = np.asarray(weight_abs_max, np.float64)
    assert act_abs_max.shape == weight_abs_max.shape, \
        f"activation ({act_abs_max.shape}) and weight ({weight_abs_max.shape}) channel counts differ"
    scale = np.power(np.maximum(act_abs_max, 1e-5), alpha) / np.power(np.maximum(weight_abs_max, 1e-5), 1 - alpha)
    return np.maximum(scale, 1e-5).astype(np.float32)
