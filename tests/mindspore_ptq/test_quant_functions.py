"""Quantization maths against exact expectations."""
import numpy as np
import pytest

from mindspore_ptq import quant_functions as qf


@pytest.mark.parametrize("dtype", [np.float32, np.float16], ids=["fp32", "fp16"])
def test_weight_round_trip_error_is_at_most_half_a_step(dtype):
    weight = np.random.default_rng(0).standard_normal((64, 48)).astype(dtype)
    q, scale = qf.quantize_weight_per_channel(weight)
    assert q.dtype == np.int8 and scale.shape == (64,)
    error = np.abs(qf.dequantize(q, scale[:, None]) - weight.astype(np.float32))
    assert (error <= scale[:, None] / 2 + 1e-6).all()
    assert (np.abs(q).max(axis=1) == 127).all()  # the largest value of each row hits the grid's end


def test_symmetric_grid_saturates_at_plus_minus_127():
    q = qf.quantize(np.array([-1e9, -1.0, 1.0, 1e9]), scale=1.0 / 127, qmin=-qf.SYM_MAX, qmax=qf.SYM_MAX)
    np.testing.assert_array_equal(q, [-127, -127, 127, 127])


def test_all_zero_channel_quantizes_to_zero_with_a_finite_scale():
    weight = np.zeros((3, 8), np.float32)
    weight[1] = np.linspace(-1, 1, 8)
    q, scale = qf.quantize_weight_per_channel(weight)
    assert np.isfinite(scale).all() and (scale > 0).all()
    np.testing.assert_array_equal(q[[0, 2]], 0)
    np.testing.assert_array_equal(qf.dequantize(q[0], scale[0]), 0.0)


def test_asymmetric_range_maps_min_and_max_to_grid_ends():
    scale, zero_point = qf.asymmetric_scale_zero_point(-1.0, 3.0)
    assert scale == pytest.approx(4.0 / 255)
    np.testing.assert_array_equal(qf.quantize([-1.0, 3.0], scale, zero_point), [-128, 127])
    np.testing.assert_allclose(qf.fake_quantize(0.0, scale, zero_point), 0.0, atol=1e-7)  # zero is exact


def test_asymmetric_round_trip_error_is_at_most_half_a_step():
    x = np.random.default_rng(1).uniform(-0.3, 2.0, 1000)
    scale, zero_point = qf.asymmetric_scale_zero_point(x.min(), x.max())
    assert np.abs(qf.fake_quantize(x, scale, zero_point) - x).max() <= scale / 2 + 1e-6


def test_asymmetric_range_always_contains_zero_and_handles_constant_input():
    scale, zero_point = qf.asymmetric_scale_zero_point(2.0, 5.0)  # range widened to [0, 5]
    assert qf.quantize(0.0, scale, zero_point) == zero_point
    scale, zero_point = qf.asymmetric_scale_zero_point(0.0, 0.0)
    assert scale == 1.0 and np.isfinite(zero_point)


def test_smooth_scales_follow_the_formula_and_balance_ranges():
    act, weight = np.array([16.0, 1.0, 4.0]), np.array([1.0, 4.0, 4.0])
    s = qf.smooth_scales(act, weight, alpha=0.5)
    np.testing.assert_allclose(s, np.sqrt(act) / np.sqrt(weight), rtol=1e-6)
    np.testing.assert_allclose(act / s, weight * s, rtol=1e-6)  # alpha 0.5 equalises the two ranges


def test_smooth_scales_reject_mismatched_channels():
    with pytest.raises(AssertionError, match="channel counts differ"):
        qf.smooth_scales(np.ones(3), np.ones(4), 0.5)
