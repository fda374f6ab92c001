"""GPTQ against round to nearest on the same grid, as properties: a lower output error on correlated inputs, the
same grid (codes within it, scales per group), a singular Hessian handled by more damping."""
import logging

import numpy as np
import pytest

from mindspore_ptq import quant_functions as qf
from mindspore_ptq.algorithms.gptq import gptq, inverse_hessian_factor
from mindspore_ptq.observers import InputHessian


def correlated_inputs(rng, tokens, features):
    """Inputs with strongly correlated channels and a few large ones, as activations have."""
    mixing = np.random.default_rng(features).standard_normal((features, features)) / np.sqrt(features) + \
        np.eye(features)
    x = rng.standard_normal((tokens, features)) @ mixing
    x[:, :3] *= 8.0
    return x.astype(np.float32)


def output_error(x, weight, codes, scales):
    group_size = weight.shape[1] // scales.shape[1]
    approx = codes.astype(np.float64) * np.repeat(scales, group_size, axis=1)
    return float(np.mean((x @ (weight - approx).T) ** 2))


@pytest.mark.parametrize("bits, group_size", [(4, 32), (4, 0), (8, 0)], ids=["int4-g32", "int4-row", "int8-row"])
@pytest.mark.parametrize("act_order", [False, True], ids=["in-order", "act-order"])
def test_gptq_has_a_lower_output_error_than_rtn_on_the_same_grid(bits, group_size, act_order):
    rng = np.random.default_rng(bits * 10 + group_size + act_order)
    features, outputs = 96, 48
    weight = rng.standard_normal((outputs, features)).astype(np.float32)
    x = correlated_inputs(rng, 512, features)
    hessian = InputHessian("layer")
    hessian.update(x[:256])
    hessian.update(x[256:])
    np.testing.assert_allclose(hessian.matrix, 2 * x.astype(np.float64).T @ x / 512, rtol=1e-5, atol=1e-5)
    group = group_size or features
    row_scales = None if group_size else qf.symmetric_scale(np.abs(weight).max(axis=1), bits)
    codes, scales, damping = gptq(weight, hessian.matrix, bits, group, row_scales, block_size=32,
                                  act_order=act_order)
    rtn_codes, rtn_scales = qf.quantize_weight_grouped(weight, bits, group,
                                                       None if group_size else row_scales[:, None])
    limit = qf.symmetric_max(bits)
    assert codes.dtype == np.int8 and np.abs(codes).max() <= limit
    assert scales.shape == (outputs, features // group) and damping == 0.01
    held_out = correlated_inputs(np.random.default_rng(99), 256, features)  # new tokens of the same inputs
    assert output_error(x, weight, codes, scales) < 0.8 * output_error(x, weight, rtn_codes, rtn_scales)
    assert output_error(held_out, weight, codes, scales) < output_error(held_out, weight, rtn_codes, rtn_scales)


def test_per_row_grid_is_the_one_given():
    rng = np.random.default_rng(3)
    weight = rng.standard_normal((8, 16)).astype(np.float32)
    row_scales = qf.symmetric_scale(np.abs(weight).max(axis=1))
    _, scales, _ = gptq(weight, np.eye(16), 8, 16, row_scales)
    np.testing.assert_array_equal(scales[:, 0], row_scales)


def test_identity_hessian_rounds_to_nearest():
    """With uncorrelated unit inputs no column can compensate another: GPTQ is round to nearest."""
    rng = np.random.default_rng(4)
    weight = rng.standard_normal((8, 64)).astype(np.float32)
    codes, scales, _ = gptq(weight, np.eye(64), 4, 32, damp_percent=1e-9)
    rtn_codes, rtn_scales = qf.quantize_weight_grouped(weight, 4, 32)
    np.testing.assert_array_equal(codes, rtn_codes)
    np.testing.assert_allclose(scales, rtn_scales, rtol=1e-6)


def test_a_singular_hessian_gets_more_damping_and_a_log_line(caplog):
    rng = np.random.default_rng(5)
    x = rng.standard_normal((4, 32))
    hessian = x.T @ x                            # rank 4 of 32, shifted below zero: 1% damping is not enough
    hessian -= 0.05 * np.mean(np.diag(hessian)) * np.eye(32)
    with caplog.at_level(logging.INFO, logger="mindspore_ptq"):
        upper, damping = inverse_hessian_factor(hessian, 0.01, "w")
    assert damping == pytest.approx(0.1) and "not positive definite" in caplog.text
    damped = hessian + damping * np.mean(np.diag(hessian)) * np.eye(32)
    np.testing.assert_allclose(upper.T @ upper, np.linalg.inv(damped), rtol=1e-6, atol=1e-9)
    weight = rng.standard_normal((4, 32)).astype(np.float32)
    dead = np.zeros((32, 32))                    # inputs never active: their weights do not matter, no crash
    codes, _, _ = gptq(weight, dead, 4, 32)
    np.testing.assert_array_equal(codes, 0)
