"""AWQ: the chosen factors never raise a smoothing group's output error, as measured independently on the real
deployed cells (the output-error probe, in MindSpore) against the same data rounded without AWQ; the factors are
folded exactly (the float network's output is unchanged); the clipping search never raises a row's error; configs
that cannot use it are refused."""
import numpy as np
import pytest
import mindspore as ms

from mindspore_ptq import PTQ, OutliersSuppressionType, PTQConfig
from mindspore_ptq import quant_functions as qf
from mindspore_ptq.algorithms.awq import CLIP_GRID, clip_ratios
from mindspore_ptq.app.presets import approach_config
from network_helpers.layouts import LlamaLayout
from tests.conftest import build_tiny

RNG = np.random.default_rng(8)
CALIBRATION = [RNG.integers(1, 90, (1, 40)).astype(np.int32) for _ in range(4)]  # 160 tokens: all kept, all probed
PROBE = ms.Tensor(RNG.integers(1, 90, (1, 24)).astype(np.int32))


def layer0_errors(name):
    """{linear inside layer 0: relative output error} (its inputs are the float embeddings in every run)."""
    ptq = PTQ(approach_config(name, group_size=32, kvcache_quant_dtype=ms.int8))  # C8 too: RTN then sees data
    ptq.apply(build_tiny(), None, CALIBRATION)
    prefix = "model.layers.0."
    return {r["name"][len(prefix):]: r for r in ptq.report if r["name"].startswith(prefix) and r["kind"] == "linear"}


def test_awq_never_raises_a_groups_output_error():
    rtn, awq = layer0_errors("a16w4_rtn_g64"), layer0_errors("a16w4_awq_g64")
    for feeder, linears in LlamaLayout().smooth_groups:
        alpha = awq[linears[0]]["awq_alpha"]
        assert alpha is not None and all(awq[p]["awq_alpha"] == alpha for p in linears)
        before = sum(rtn[p]["relative_output_mse"] for p in linears)
        after = sum(awq[p]["relative_output_mse"] for p in linears)
        assert after <= before * (1 + 1e-4), (feeder, alpha, after, before)
    assert awq["attention.wo"]["awq_alpha"] is None  # nothing can absorb wo's factors


def test_awq_folds_exactly():
    """Folding 1/s into the feeder and s into the weights leaves the float network's function unchanged."""
    network = build_tiny()
    expected = network(PROBE).asnumpy()
    ptq = PTQ(approach_config("a16w4_awq_g64", group_size=32))
    ptq.apply(network, None, CALIBRATION)
    for cell in ptq.cells:
        cell.wrapper.active = False  # the float forms, with their folded weights
    np.testing.assert_allclose(network(PROBE).asnumpy(), expected, atol=2e-5 * np.abs(expected).max())


@pytest.mark.parametrize("kwargs", [dict(weight_quant_dtype=ms.int8, act_quant_dtype=ms.int8),
                                    dict(kvcache_quant_dtype=ms.int8)], ids=["with-activations", "no-weights"])
def test_awq_needs_weight_only_quantization(kwargs):
    with pytest.raises(ValueError, match="AWQ scales weight-only"):
        PTQConfig(outliers_suppression=OutliersSuppressionType.AWQ, **kwargs)


def test_clipping_is_chosen_per_group_and_never_raises_its_error():
    """A group whose one large weight sits on an input that never fires: clipping it to the grid's smallest span
    costs nothing and refines the rest, so that ratio is chosen; every chosen ratio does at least as well on the
    search rows as no clipping (1.0, on the grid), measured here independently."""
    rows = RNG.standard_normal((256, 64)).astype(np.float32)
    rows[:, 5] = 0.0
    weight = RNG.standard_normal((6, 64)).astype(np.float32)
    weight[2, 5] = 40.0  # row 2, group 0 (inputs 0-31)
    ratios = clip_ratios(weight, rows, 4, 32)
    assert ratios.shape == (6, 2) and ratios[2, 0] == min(CLIP_GRID)

    def row_errors(scale_factors):
        scales = qf.group_scales(weight, 4, 32) * scale_factors
        codes, _ = qf.quantize_weight_grouped(weight, 4, 32, scales)
        return ((rows @ (qf.dequantize_grouped(codes, scales) - weight).T) ** 2).sum(axis=0)

    assert (row_errors(ratios) <= row_errors(np.ones_like(ratios)) * (1 + 1e-5)).all()


def test_awq_clips_every_weight_only_linear():
    awq = layer0_errors("a16w4_awq_g64")
    assert all(0.5 <= awq[p]["awq_clip_mean"] <= 1.0 for p in awq)
    assert any(awq[p]["awq_clip_mean"] < 1.0 for p in awq)
