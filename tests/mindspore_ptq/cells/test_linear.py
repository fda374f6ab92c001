"""Deployed int8 and A8W4 linears against their float cells and integer references on random data, within stated
bounds."""
import numpy as np
import mindspore as ms
from mindspore import Tensor

from mindspore_ptq import quant_functions as qf
from mindspore_ptq.cells.linear import (ActWeightQuantLinear, DynamicActGroupedWeightLinear, DynamicActWeightQuantLinear,
                                       WeightQuantLinear)

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 5, 32)).astype(np.float32) * 2
W = RNG.standard_normal((24, 32)).astype(np.float32) / 5


def test_weight_only_linear_error_is_bounded_by_half_a_step_per_weight():
    q, scale = qf.quantize_weight_per_channel(W)
    cell = WeightQuantLinear(32, 24)
    cell.set_quant_params(q, scale)
    got = cell(Tensor(X)).asnumpy()
    expected = X @ W.T
    bound = np.abs(X).sum(-1, keepdims=True) * scale / 2  # |sum_j x_j dw_ij| <= sum_j |x_j| * scale_i / 2
    assert (np.abs(got - expected) <= bound + 1e-5).all()
    np.testing.assert_allclose(got, X @ qf.dequantize(q, scale[:, None]).T, rtol=1e-5, atol=1e-5)


def test_act_weight_linear_equals_integer_reference_and_is_bounded():
    smooth = RNG.uniform(0.5, 2.0, 32).astype(np.float32)  # the cell multiplies x by this first
    q, w_scale = qf.quantize_weight_per_channel(W / smooth[None, :])
    xs = X * smooth
    x_scale, x_zp = qf.asymmetric_scale_zero_point(xs.min(), xs.max())
    cell = ActWeightQuantLinear(32, 24, smooth=True)
    cell.set_quant_params(q, w_scale, x_scale, x_zp, smooth)
    got = cell(Tensor(X)).asnumpy()
    xq = qf.quantize(xs, x_scale, x_zp).astype(np.int64)
    integer = (xq - int(x_zp)) @ q.astype(np.int64).T  # exact int32-style accumulation
    np.testing.assert_allclose(got, integer * x_scale * w_scale, rtol=1e-5, atol=1e-5)
    expected = X @ W.T
    w_abs = np.abs(qf.dequantize(q, w_scale[:, None]))
    bound = (np.abs(xs).sum(-1, keepdims=True) * w_scale / 2) + (x_scale / 2) * w_abs.sum(-1)
    assert (np.abs(got - expected) <= bound + 1e-4).all()


def test_act_weight_linear_clips_inputs_beyond_its_static_range_like_the_integer_reference():
    q, w_scale = qf.quantize_weight_per_channel(W)
    x_scale, x_zp = qf.asymmetric_scale_zero_point(np.float32(-1.0), np.float32(3.0))  # X reaches about +-8
    cell = ActWeightQuantLinear(32, 24)
    cell.set_quant_params(q, w_scale, x_scale, x_zp)
    xq = qf.quantize(X, x_scale, x_zp).astype(np.int64)
    assert (xq == qf.QMIN).any() and (xq == qf.QMAX).any()
    integer = (xq - int(x_zp)) @ q.astype(np.int64).T
    np.testing.assert_allclose(cell(Tensor(X)).asnumpy(), integer * x_scale * w_scale, rtol=1e-5, atol=1e-5)


def test_parameters_are_int8_weights_with_float32_scales():
    cell = ActWeightQuantLinear(32, 24, smooth=True)
    dtypes = {name: param.dtype for name, param in cell.parameters_and_names()}
    assert dtypes == {"weight": ms.int8, "weight_scale": ms.float32, "input_scale": ms.float32,
                      "input_zero_point": ms.float32, "smooth_scale": ms.float32}


def test_per_token_linear_equals_the_numpy_reference_and_is_bounded():
    smooth = RNG.uniform(0.5, 2.0, 32).astype(np.float32)
    q, w_scale = qf.quantize_weight_per_channel(W / smooth[None, :])
    cell = DynamicActWeightQuantLinear(32, 24, smooth=True)
    cell.set_quant_params(q, w_scale, smooth_scale=smooth)
    got = cell(Tensor(X)).asnumpy()
    xq, x_scale = qf.quantize_per_token(X * smooth)  # x_scale: (2, 5, 1), one per token
    np.testing.assert_allclose(got, (xq.astype(np.int64) @ q.astype(np.int64).T) * x_scale * w_scale,
                               rtol=1e-5, atol=1e-5)
    w_abs = np.abs(qf.dequantize(q, w_scale[:, None]))
    bound = np.abs(X * smooth).sum(-1, keepdims=True) * w_scale / 2 + (x_scale / 2) * w_abs.sum(-1)
    assert (np.abs(got - X @ W.T) <= bound + 1e-4).all()
    assert np.abs(xq).max() == 127  # each token's largest value hits the grid's end


def test_a8w4_linear_equals_per_group_integer_sums_and_is_bounded():
    """A8W4 (per-token int8 x, int4 weights in groups of 16): each group's integer dot product times its scales,
    summed; within the bound of both roundings."""
    smooth = RNG.uniform(0.5, 2.0, 32).astype(np.float32)
    q, w_scale = qf.quantize_weight_grouped(W / smooth[None, :], 4, 16)  # w_scale (24, 2)
    assert np.abs(q).max() == 7
    cell = DynamicActGroupedWeightLinear(32, 24, smooth=True, bits=4, group_size=16)
    cell.set_quant_params(q, w_scale, smooth_scale=smooth)
    assert cell.weight.dtype == ms.uint8 and cell.weight.shape == (24, 16)
    got = cell(Tensor(X)).asnumpy()
    xq, x_scale = qf.quantize_per_token(X * smooth)
    xq, q = xq.astype(np.int64).reshape(2, 5, 2, 16), q.astype(np.int64).reshape(24, 2, 16)
    per_group = np.einsum("btgi,ogi->btog", xq, q)  # exact integer sums, one per (token, output, group)
    np.testing.assert_allclose(got, (per_group * w_scale).sum(-1) * x_scale, rtol=1e-5, atol=1e-5)
    w_abs = np.abs(qf.dequantize_grouped(q.reshape(24, 32), w_scale))
    group_step = np.repeat(w_scale, 16, axis=1)  # each weight's own step
    bound = (np.abs(X * smooth)[..., None, :] * group_step / 2).sum(-1) + (x_scale / 2) * w_abs.sum(-1)
    assert (np.abs(got - X @ W.T) <= bound + 1e-4).all()
