"""Hadamard matrices (exact), the online Kronecker rotation cell, and the rotated float network's equivalence."""
from dataclasses import replace

import numpy as np
import pytest
import mindspore as ms
from mindspore import Tensor

from mindspore_ptq.algorithms.rotation import rotate_network
from mindspore_ptq.hadamard import hadamard, hadamard_factors, randomized_hadamard
from network_helpers.layouts import layout_for
from mindspore_ptq.cells.kronecker_rotation import KroneckerRotation
from network_helpers.llama.model import ParallelMLP
from tests.conftest import TINY_ARGS, build_tiny

PROBE = Tensor(np.random.default_rng(4).integers(1, 90, (1, 24)).astype(np.int32))


@pytest.mark.parametrize("order", [1, 2, 12, 64, 96, 576, 1536])
def test_hadamard_is_orthonormal_with_equal_magnitude_entries(order):
    matrix = hadamard(order)
    np.testing.assert_allclose(matrix @ matrix.T, np.eye(order), atol=1e-12)
    np.testing.assert_allclose(np.abs(matrix), 1 / np.sqrt(order))
    left, right = hadamard_factors(order)
    assert left.shape[0] * right.shape[0] == order and right.shape[0] & (right.shape[0] - 1) == 0


def test_randomized_hadamard_spreads_one_channel_over_all():
    matrix = randomized_hadamard(64, seed=3)
    np.testing.assert_allclose(matrix @ matrix.T, np.eye(64), atol=1e-12)
    spike = np.zeros(64)
    spike[5] = 8.0
    np.testing.assert_allclose(np.abs(spike @ matrix), 1.0)  # 8 / sqrt(64) in every channel


def test_unsupported_order_is_named():
    with pytest.raises(ValueError, match="order 9"):
        hadamard(9)


def test_kronecker_rotation_cell_equals_the_dense_product():
    left, right = hadamard_factors(96)
    x = np.random.default_rng(5).standard_normal((2, 3, 96)).astype(np.float32)
    got = KroneckerRotation(left, right)(Tensor(x)).asnumpy()
    np.testing.assert_allclose(got, x @ np.kron(left, right), atol=1e-5)


def test_rotated_network_keeps_the_float_logits_and_unit_norms():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    network = build_tiny()
    expected = network(PROBE).asnumpy()
    before = network.model.layers[0].feed_forward.w2.weight.asnumpy()
    rotate_network(network, layout_for(network))
    np.testing.assert_allclose(network(PROBE).asnumpy(), expected, atol=1e-4 * np.abs(expected).max())
    assert not np.allclose(network.model.layers[0].feed_forward.w2.weight.asnumpy(), before)
    for name, param in network.parameters_and_names():
        if "norm" in name:
            np.testing.assert_array_equal(param.asnumpy(), 1.0, err_msg=name)


def test_online_rotation_refuses_a_split_input():
    mlp = ParallelMLP(replace(TINY_ARGS, model_parallel=2))
    with pytest.raises(ValueError, match="model_parallel=1"):
        mlp.set_down_input_rotation(KroneckerRotation(np.eye(12), np.eye(8)))
