"""SmoothQuant's alpha search, checked against errors measured here: each q/k/v group's searched alpha gives the
least output error of the candidates, as the deployed int8 cells compute it, not only as the search recorded it."""
import numpy as np
import pytest
from mindspore import Tensor

from mindspore_ptq import PTQ
from mindspore_ptq.app.presets import approach_config
from mindspore_ptq.cells.tree import get_cell
from mindspore_ptq.config import CalibrationInputs, OutliersSuppressionType
from network_helpers.layouts import layout_for
from tests.conftest import build_tiny
from tests.mindspore_ptq.test_ptq import CALIBRATION

CANDIDATES = (0.5, None, 0.3, 0.8)  # 0.5: the default alpha, always a candidate
GROUP = ("attention.wq", "attention.wk", "attention.wv")  # smoothed through attention_norm
LAYERS = ("model.layers.0", "model.layers.1")


def quantize(**fields):
    """The tiny network quantized as A8W8 (every decoder linear) on float calibration inputs, so that each layer
    sees the same inputs whatever the alphas chosen before it."""
    network = build_tiny()
    ptq = PTQ(approach_config("a8w8", opname_blacklist=("lm_head",), calibration_inputs=CalibrationInputs.FLOAT,
                              **fields))
    ptq.apply(network, None, CALIBRATION)
    ptq.convert(network)
    return network, ptq


def fixed(alpha):
    if alpha is None:
        return quantize(outliers_suppression=OutliersSuppressionType.NONE)[0]
    return quantize(smooth_alpha=alpha)[0]


def group_errors(network):
    """{layer: sum over q, k, v of ||y_int8 - y_float||^2 / ||y_float||^2} on the calibration tokens: the deployed
    cells (after the norm with the folded smoothing) against the float linears (after the float norm), both on the
    float network's input to the layer."""
    reference = build_tiny()
    layout = layout_for(reference)
    errors = dict.fromkeys(LAYERS, 0.0)
    for ids in CALIBRATION:
        args = layout.first_layer_inputs(reference, Tensor(ids))
        for name in LAYERS:
            float_layer, quant_layer = get_cell(reference, name), get_cell(network, name)
            x_float, x_smoothed = float_layer.attention_norm(args[0]), quant_layer.attention_norm(args[0])
            for path in GROUP:
                y = get_cell(float_layer, path)(x_float).asnumpy().astype(np.float64)
                y_q = get_cell(quant_layer, path)(x_smoothed).asnumpy().astype(np.float64)
                errors[name] += ((y_q - y) ** 2).sum() / (y ** 2).sum() / len(CALIBRATION)
            args = (float_layer(*args),) + tuple(args[1:])
    return errors


@pytest.fixture(scope="module")
def measured():
    """(chosen alpha per layer, errors measured for the searched network, for each fixed candidate, as recorded)."""
    searched, ptq = quantize(smooth_alpha_search=CANDIDATES[1:])
    records = {r["name"]: r for r in ptq.report}
    chosen = {name: records[f"{name}.attention.wq"]["smooth_alpha"] for name in LAYERS}
    recorded = {name: records[f"{name}.attention.wq"]["alpha_errors"] for name in LAYERS}
    by_alpha = {alpha: group_errors(fixed(alpha)) for alpha in CANDIDATES}
    return chosen, group_errors(searched), by_alpha, recorded


@pytest.mark.parametrize("layer", LAYERS)
def test_the_searched_alpha_has_the_least_measured_error_and_never_more_than_the_default(measured, layer):
    chosen, searched, by_alpha, _ = measured
    assert chosen[layer] in CANDIDATES
    # the searched network's group is the one quantized with its alpha alone
    np.testing.assert_allclose(searched[layer], by_alpha[chosen[layer]][layer], rtol=1e-6)
    best = min(by_alpha[alpha][layer] for alpha in CANDIDATES)
    assert searched[layer] <= best * (1 + 1e-3)  # the search simulates int8 in numpy; the cells agree to 0.1%
    assert searched[layer] <= by_alpha[0.5][layer] * (1 + 1e-3)


@pytest.mark.parametrize("layer", LAYERS)
def test_the_recorded_errors_are_the_measured_ones(measured, layer):
    _, _, by_alpha, recorded = measured
    assert set(recorded[layer]) == {str(alpha) for alpha in CANDIDATES}
    for alpha in CANDIDATES:
        np.testing.assert_allclose(recorded[layer][str(alpha)], by_alpha[alpha][layer], rtol=0.01, err_msg=str(alpha))
