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


def test_range_rounding_widens_to_the_nearest_values_with_that_many_bits():
    low, high = qf.round_range_outward(np.array([-3.0, -5.0, 0.0, 0.3]), np.array([5.0, 3.0, 0.0, 0.3]), bits=2)
    np.testing.assert_array_equal(low, [-3.0, -6.0, 0.0, 0.25])   # 3 = 0b11 has 2 bits; 5 = 0b101 goes to 0b110
    np.testing.assert_array_equal(high, [6.0, 3.0, 0.0, 0.375])   # 0.3 lies between 0.25 and 0.375 = 0b0.011


def test_range_rounding_is_idempotent_bounded_and_absorbs_float_noise():
    x = np.random.default_rng(2).standard_normal(1000).astype(np.float32) * 10.0 ** np.arange(-3, 2).repeat(200)
    low, high = qf.round_range_outward(x, x, bits=8)
    assert (low <= x).all() and (high >= x).all()
    assert (np.abs(high - low) <= 2.0 ** -7 * np.abs(x)).all()  # within one step of 2^-8 relative on each side
    for rounded, direction in ((low, 0), (high, 1)):
        np.testing.assert_array_equal(qf.round_range_outward(rounded, rounded, bits=8)[direction], rounded)
    noisy_low, noisy_high = qf.round_range_outward(x * np.float32(1 + 3e-7), x * np.float32(1 - 3e-7), bits=8)
    assert (noisy_low != low).sum() + (noisy_high != high).sum() <= 2  # only values within the noise of a step


def test_smooth_scales_follow_the_formula_and_balance_ranges():
    act, weight = np.array([16.0, 1.0, 4.0]), np.array([1.0, 4.0, 4.0])
    s = qf.smooth_scales(act, weight, alpha=0.5)
    np.testing.assert_allclose(s, np.sqrt(act) / np.sqrt(weight), rtol=1e-6)
    np.testing.assert_allclose(act / s, weight * s, rtol=1e-6)  # alpha 0.5 equalises the two ranges


def test_smooth_scales_reject_mismatched_channels():
    with pytest.raises(AssertionError, match="channel counts differ"):
        qf.smooth_scales(np.ones(3), np.ones(4), 0.5)
