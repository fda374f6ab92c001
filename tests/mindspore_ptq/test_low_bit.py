"""Low-bit weights (int4 packed two per byte, per group or per row; GPTQ): each preset's DEPLOY rebuild holds
exactly the saved parameters and reproduces the calibrated network, on the portable path and the CPU kernels."""
import numpy as np
import pytest
import mindspore as ms
from mindspore import Tensor

from mindspore_ptq import PTQ, BackendTarget, PrecisionRecovery, PTQConfig, PTQMode
from mindspore_ptq.app.presets import LOW_BIT_APPROACHES, approach_config
from mindspore_ptq.cells.linear import GroupedWeightLinear
from mindspore_ptq.config import Granularity
from mindspore_ptq.io import load_quantized, save_quantized
from mindspore_ptq.io.paths import config_path_for
from tests.conftest import TINY_ARGS, build_tiny
from tests.mindspore_ptq.kernels.test_cpu_kernels import needs_kernels

RNG = np.random.default_rng(21)
CALIBRATION = [RNG.integers(1, 90, (1, 40)).astype(np.int32) for _ in range(4)]
PROBE = Tensor(RNG.integers(1, 90, (1, 24)).astype(np.int32))
TINY_GROUP = 32  # below the presets' 64, so that each of the tiny model's rows holds two groups


def tiny_config(name, **overrides):
    grouped = LOW_BIT_APPROACHES[name].get("group_size")
    return approach_config(name, **({"group_size": TINY_GROUP} if grouped else {}), **overrides)


@pytest.fixture(scope="module", params=sorted(LOW_BIT_APPROACHES))
def quantized(request, tmp_path_factory):
    ms.set_context(mode=ms.PYNATIVE_MODE)
    network = build_tiny()
    ptq = PTQ(tiny_config(request.param))
    ptq.apply(network, None, CALIBRATION)
    ptq.convert(network)
    path = save_quantized(network, tmp_path_factory.mktemp(request.param) / "q.ckpt", ptq.quantized_config,
                          float_dtype=ms.float32)  # float weights as calibrated, so the rebuild must match exactly
    return request.param, path, network(PROBE).asnumpy()


def deploy(path, backend):
    config = PTQConfig.load(config_path_for(path), mode=PTQMode.DEPLOY, backend=backend)
    network = build_tiny(seed=3)  # other float weights: everything must come from the checkpoint
    ptq = PTQ(config)
    ptq.apply(network)
    ptq.convert(network)
    load_quantized(network, path, config)
    return network


def test_checkpoint_holds_packed_int4_and_the_rebuild_holds_exactly_its_parameters(quantized):
    name, path, _ = quantized
    stored = ms.load_checkpoint(str(path))
    network = deploy(path, BackendTarget.PORTABLE)
    params = {p.name: p for p in network.get_parameters() if not p.name.endswith(("key_cache", "value_cache"))}
    assert set(params) == set(stored)
    for key, value in stored.items():
        assert (value.shape, value.dtype) == (params[key].shape, params[key].dtype), key
    wq, bits = "model.layers.0.attention.wq", 4 if "w4" in name else 8
    expected = (TINY_ARGS.hidden_size, TINY_ARGS.hidden_size // (2 if bits == 4 else 1))
    assert stored[f"{wq}.weight"].shape == expected
    assert stored[f"{wq}.weight"].dtype == (ms.uint8 if bits == 4 else ms.int8)
    groups = TINY_ARGS.hidden_size // TINY_GROUP if LOW_BIT_APPROACHES[name].get("group_size") else 1
    expected_scales = (TINY_ARGS.hidden_size, groups) if bits == 4 else (TINY_ARGS.hidden_size,)
    assert stored[f"{wq}.weight_scale"].shape == expected_scales
    smallest = name == "a16w4e8_gptq_g64"  # lm_head int4 and the token table int8; else lm_head int8, table float
    assert stored["lm_head.weight"].dtype == (ms.uint8 if smallest else ms.int8)
    assert stored["model.tok_embeddings.embedding_weight"].dtype == (ms.int8 if smallest else ms.float32)
    assert ("model.tok_embeddings.embedding_scale" in stored) == smallest


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE], ids=["pynative", "graph"])
def test_the_rebuild_reproduces_the_calibrated_network(quantized, mode):
    _, path, calibrated = quantized
    ms.set_context(mode=mode)
    portable = deploy(path, BackendTarget.PORTABLE)(PROBE).asnumpy()
    np.testing.assert_allclose(portable, calibrated, rtol=0, atol=1e-5 * np.abs(calibrated).max())


@needs_kernels
def test_the_cpu_kernels_reproduce_the_portable_path(quantized):
    name, path, calibrated = quantized
    ms.set_context(mode=ms.GRAPH_MODE)
    portable, fast = deploy(path, BackendTarget.PORTABLE), deploy(path, BackendTarget.NONE)
    np.testing.assert_allclose(fast(PROBE).asnumpy(), calibrated, atol=1e-4 * np.abs(calibrated).max())
    # the decode-layer kernel reads every weight-only format; no kernel reads A8W4 yet (portable ops, logged)
    assert all(layer.fused_decode for layer in fast.model.layers) == name.startswith("a16")
    prompt = list(PROBE.asnumpy()[0])
    np.testing.assert_array_equal(fast.generate([prompt], max_new_tokens=5, eos_token_id=-1)[0],
                                  portable.generate([prompt], max_new_tokens=5, eos_token_id=-1)[0])


def test_gptq_lowers_each_linears_calibrated_output_error():
    errors = {}
    for recovery in ("a16w4_rtn_g64", "a16w4_gptq_g64"):  # C8 as well, so that both calibrate on data
        ptq = PTQ(tiny_config(recovery, kvcache_quant_dtype=ms.int8))
        ptq.apply(build_tiny(), None, CALIBRATION)
        errors[recovery] = {r["name"]: r["relative_output_mse"] for r in ptq.report
                            if r.get("relative_output_mse") is not None}
    gptq, rtn = errors["a16w4_gptq_g64"], errors["a16w4_rtn_g64"]
    assert len(gptq) == 2 * 7 and set(gptq) == set(rtn)  # every decoder linear of both layers, measured
    worse = {cell: (gptq[cell], rtn[cell]) for cell in gptq if gptq[cell] >= rtn[cell]}
    assert not worse


def test_int4_widths_that_cannot_be_packed_or_grouped_are_named():
    with pytest.raises(ValueError, match="4-bit weight of 63 inputs"):
        GroupedWeightLinear(63, 8, bits=4)
    with pytest.raises(ValueError, match="groups of 32"):
        GroupedWeightLinear(48, 8, bits=4, group_size=32)


@pytest.mark.parametrize("kwargs, message", [
    (dict(weight_quant_dtype=ms.qint4x2, act_quant_dtype=ms.int8), "A8W4\\) need per-token activations"),
    (dict(weight_quant_dtype=ms.int8, weight_quant_granularity=Granularity.PER_GROUP), "group_size must be one of"),
    (dict(weight_quant_dtype=ms.int8, group_size=128), "needs weight_quant_granularity=per_group"),
    (dict(weight_quant_dtype=ms.qint4x2, weight_quant_granularity=Granularity.PER_GROUP, group_size=48),
     "group_size must be one of"),
    (dict(kvcache_quant_dtype=ms.int8, precision_recovery=PrecisionRecovery.GPTQ), "GPTQ rounds weights"),
], ids=["a8w4-static", "group-size-missing", "group-size-without-per-group", "odd-group", "gptq-without-weights"])
def test_invalid_low_bit_configs_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PTQConfig(**kwargs)
