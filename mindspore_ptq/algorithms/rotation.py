"""Rotation of the residual stream and of w2's input (the idea of QuaRot), so static int8 activations meet no
outlier channels.

An orthogonal R on the residual stream leaves the float network's outputs unchanged once each norm's weight is
folded into the linears that read it: the embedding becomes E R, readers W R, writers R^T W, and RMSNorm commutes
with R. A randomized Hadamard R spreads every outlier channel over all channels. w2's input, which carries the
largest outliers, is rotated online by a Hadamard H (a Kronecker product of two small factors, applied as two
MatMuls) with W H folded into w2. DEPLOY rebuilds only the online rotations: the rotated weights are in the
checkpoint.
"""
import numpy as np
from mindspore import Tensor

from ..cells.kronecker_rotation import KroneckerRotation
from ..cells.tree import get_cell
from ..hadamard import hadamard_factors, randomized_hadamard
from ..lifecycle import Step

RESIDUAL_SEED = 0  # signs of the randomized Hadamard on the residual stream


def _value(param):
    return param.asnumpy().astype(np.float64)


def _set(param, value):
    param.set_data(Tensor(value, param.dtype))


def _parameter(root, path):
    cell_path, _, name = path.rpartition(".")
    return getattr(get_cell(root, cell_path), name)


def install_online_rotations(network, layout):
    """Put the online Hadamard in front of each rotated linear; returns [(linear, its rotation matrix)]."""
    installed = []
    for _, layer in layout.decoder_layers(network):
        for site_path, linear_path in layout.online_rotations:
            linear = get_cell(layer, linear_path)
            left, right = hadamard_factors(linear.weight.shape[1])
            get_cell(layer, site_path).set_down_input_rotation(KroneckerRotation(left, right))
            installed.append((linear, np.kron(left, right)))
    return installed


def _fold_norm_and_rotate(norm, readers, rotation):
    """Readers W -> (W diag(g)) R, the norm's weight g -> 1."""
    gain = _value(norm.weight)
    for linear in readers:
        _set(linear.weight, (_value(linear.weight) * gain[None, :]) @ rotation)
    _set(norm.weight, np.ones_like(gain))


def rotate_network(network, layout):
    """Turn the float `network` in place into the equivalent rotated one (the residual stream and the online
    rotations). The online rotations go in first: under TP they refuse before any weight has changed."""
    online_rotations = install_online_rotations(network, layout)
    weight = _parameter(network, layout.embedding_weight)
    rotation = randomized_hadamard(weight.shape[1], RESIDUAL_SEED)
    _set(weight, _value(weight) @ rotation)
    for _, layer in layout.decoder_layers(network):
        for norm_path, reader_paths in layout.norm_readers:
            _fold_norm_and_rotate(get_cell(layer, norm_path), [get_cell(layer, p) for p in reader_paths], rotation)
        for path in layout.residual_writers:
            linear = get_cell(layer, path)
            _set(linear.weight, rotation.T @ _value(linear.weight))
    _fold_norm_and_rotate(get_cell(network, layout.final_norm), [get_cell(network, p) for p in layout.head_paths],
                          rotation)
    for linear, online in online_rotations:
        _set(linear.weight, _value(linear.weight) @ online)


class Rotation(Step):
    """Rotates the float network before calibration; DEPLOY rebuilds the online rotations only."""

    def on_deploy(self, network, layout):
        install_online_rotations(network, layout)

    def before_calibration(self, network, layout, batches):
        rotate_network(network, layout)
        return batches
