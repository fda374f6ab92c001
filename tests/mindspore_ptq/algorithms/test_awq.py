"""AWQ: the chosen factors never raise a smoothing group's output error, as measured independently on the real
deployed cells (the output-error probe, in MindSpore) against the same data rounded without AWQ; the factors are
folded exactly (the float network's output is unchanged); configs that cannot use it are refused."""
import numpy as np
import pytest
import mindspore as ms

from mindspore_ptq import PTQ, OutliersSuppressionType, PTQConfig
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
