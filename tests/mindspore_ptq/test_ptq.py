"""PTQ end to end on a tiny Llama: quantize, convert, save, rebuild in DEPLOY mode, load, run in GRAPH_MODE."""
import numpy as np
import pytest
import mindspore as ms
from mindspore import Tensor

from mindspore_ptq import BackendTarget, PTQ, PTQConfig, PTQMode
from mindspore_ptq.config import CalibrationInputs, Granularity, LayerPrecision, RangeObserver
from mindspore_ptq.io import config_path_for, load_quantized, save_quantized
from mindspore_ptq.io.checkpoint import QUANT_PARAM_SUFFIXES
from mindspore_ptq.app.presets import APPROACHES, KV_CACHE_APPROACHES, RECOVERY_APPROACHES, approach_config
from mindspore_ptq.report import format_report
from ms_infra.checkpoint import is_runtime_state
from tests.conftest import build_tiny

RNG = np.random.default_rng(1)
CALIBRATION = [RNG.integers(1, 90, (1, 40)).astype(np.int32) for _ in range(4)]
PROBE = Tensor(RNG.integers(1, 90, (1, 32)).astype(np.int32))
# Beyond the presets: per-token activations, and a mixed-precision plan with a histogram observer and a searched
# smoothing alpha (what the accuracy-recovery features produce).
EXTRA_CONFIGS = {
    "a8w8_per_token": dict(APPROACHES["a8w8"], act_quant_granularity=Granularity.PER_TOKEN),
    "a8w8_mixed": dict(APPROACHES["a8w8"], opname_blacklist=("lm_head",), act_observer=RangeObserver.HISTOGRAM_MSE,
                       smooth_alpha_search=(None, 0.3, 0.8),
                       layer_overrides=(("layers.0.feed_forward.w2", "float"), ("layers.1.attention", "w8"),
                                        ("w1", "a8w8_per_token"))),
    # Rotated, with C8 and one rotated w2 fallen back to W8: DEPLOY must rebuild the online rotations.
    "a8w8_rotated_c8": dict(RECOVERY_APPROACHES["a8w8_rotated"], kvcache_quant_dtype=ms.int8,
                           layer_overrides=(("layers.1.feed_forward.w2", "w8"),)),
    # The KV cache int8 per token (no calibration) beside int8 weights.
    "a16w8c8_per_token": dict(KV_CACHE_APPROACHES["c8_per_token"], weight_quant_dtype=ms.int8),
}
# Relative max logit error vs float on the tiny random model (measured 0.03-0.25; these are loose ceilings).
MAX_RELATIVE_ERROR = {"a16w8": 0.1, "c8": 0.3, "a16w8c8": 0.3, "a8w8": 0.4, "a8w8c8": 0.5, "a8w8_per_token": 0.4,
                      "a8w8_mixed": 0.4, "a8w8_rotated_c8": 0.5, "a16w8c8_per_token": 0.3}


def config_for(name, **overrides):
    return PTQConfig(**{**EXTRA_CONFIGS[name], **overrides}) if name in EXTRA_CONFIGS else \
        approach_config(name, **overrides)


def quantize_tiny(name, **overrides):
    network = build_tiny()
    ptq = PTQ(config_for(name, **overrides))
    ptq.apply(network, None, CALIBRATION)
    return network, ptq


def stored_signature(network):
    return {p.name: (tuple(p.shape), p.dtype) for p in network.get_parameters() if not is_runtime_state(p.name)}


@pytest.fixture(scope="module", params=sorted(APPROACHES) + sorted(EXTRA_CONFIGS))
def quantized(request, tmp_path_factory):
    ms.set_context(mode=ms.PYNATIVE_MODE)
    network, ptq = quantize_tiny(request.param)
    calibrated_logits = network(PROBE).asnumpy()
    ptq.convert(network)
    path = save_quantized(network, tmp_path_factory.mktemp(request.param) / f"{request.param}.ckpt",
                          config_for(request.param))
    return request.param, network, calibrated_logits, path


def test_converted_network_is_quantized_and_close_to_float(quantized):
    name, network, calibrated_logits, _ = quantized
    assert PTQ.is_converted(network)
    logits = network(PROBE).asnumpy()
    np.testing.assert_array_equal(logits, calibrated_logits)  # convert() changes no number
    reference = build_tiny()(PROBE).asnumpy()
    assert np.abs(logits - reference).max() / np.abs(reference).max() <= MAX_RELATIVE_ERROR[name]
    dtypes = {p.name: p.dtype for p in network.get_parameters()}
    assert (dtypes["model.layers.0.attention.wq.weight"] == ms.int8) == name.startswith("a")
    assert (dtypes["model.layers.0.attention.kv_cache.key_cache"] == ms.int8) == ("c8" in name)


def test_deploy_rebuilds_exactly_the_saved_parameters_and_outputs(quantized):
    name, network, _, path = quantized
    deployed = build_tiny(seed=7)  # other float weights: everything must come from the checkpoint
    # the portable ops, which calibration runs too (the CPU kernels are held to them in tests/.../kernels)
    ptq = PTQ(config_for(name, mode=PTQMode.DEPLOY, backend=BackendTarget.PORTABLE))
    ptq.apply(deployed)
    ptq.convert(deployed)
    saved = {n: (tuple(p.shape), p.dtype) for n, p in ms.load_checkpoint(str(path)).items()}
    assert stored_signature(deployed) == {n: (shape, dtype if n.endswith(("_scale", "_zero_point")) or
                                              dtype != ms.float16 else ms.float32) for n, (shape, dtype) in saved.items()}
    load_quantized(deployed, path, config_for(name, mode=PTQMode.DEPLOY, backend=BackendTarget.PORTABLE))
    # int8 values, scales and zero points are stored exactly, the other float parameters as float16: the deployed
    # network holds the calibrated one's parameters after that rounding, and with them computes the same logits,
    # bit for bit (a tolerance would hide a wrong scale or a cell rebuilt another way)
    calibrated = {p.name: p for p in network.get_parameters() if not is_runtime_state(p.name)}
    rounded = {n: stored_value(n, p.asnumpy()) for n, p in calibrated.items()}
    for n, p in deployed.parameters_and_names():
        if not is_runtime_state(n):
            np.testing.assert_array_equal(p.asnumpy(), rounded[n], err_msg=n)
    originals = {n: p.asnumpy().copy() for n, p in calibrated.items()}
    try:
        for n, p in calibrated.items():
            p.set_data(Tensor(rounded[n]))
        expected = network(PROBE).asnumpy()
    finally:
        for n, p in calibrated.items():
            p.set_data(Tensor(originals[n]))
    np.testing.assert_array_equal(deployed(PROBE).asnumpy(), expected)
    # the default backend (the CPU kernels where they are built) sums in another order: float rounding only
    with_kernels = build_tiny(seed=7)
    ptq = PTQ(config_for(name, mode=PTQMode.DEPLOY))
    ptq.apply(with_kernels)
    ptq.convert(with_kernels)
    load_quantized(with_kernels, path, config_for(name, mode=PTQMode.DEPLOY))
    np.testing.assert_allclose(with_kernels(PROBE).asnumpy(), expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def stored_value(name, value):
    """What save_quantized keeps of a parameter: float32 ones other than scales and zero points as float16."""
    if value.dtype == np.float32 and not name.endswith(QUANT_PARAM_SUFFIXES):
        return value.astype(np.float16).astype(np.float32)
    return value


def test_deployed_graph_mode_generation_equals_pynative(quantized):
    name, network, _, _ = quantized
    prompt = [list(PROBE.asnumpy()[0, :12])]
    pynative = network.generate(prompt, max_new_tokens=8, eos_token_id=-1)[0]
    ms.set_context(mode=ms.GRAPH_MODE)
    graph = network.generate(prompt, max_new_tokens=8, eos_token_id=-1)[0]
    np.testing.assert_array_equal(graph, pynative)


@pytest.mark.parametrize("inputs, independent", [(CalibrationInputs.FLOAT, True), (CalibrationInputs.QUANTIZED, False)])
def test_float_calibration_inputs_make_a_layer_independent_of_earlier_rounding(inputs, independent):
    """Float inputs: layer 1 quantizes the same whether layer 0 is quantized or float; quantized inputs: it does not."""
    def layer_1_parameters(blacklist):
        network, ptq = quantize_tiny("a8w8c8", calibration_inputs=inputs, opname_blacklist=("lm_head",) + blacklist)
        ptq.convert(network)
        return {p.name: p.asnumpy() for p in network.get_parameters()
                if ".layers.1." in p.name and not is_runtime_state(p.name)}
    after_float, after_quantized = layer_1_parameters(("layers.0.",)), layer_1_parameters(())
    assert after_float.keys() == after_quantized.keys()
    assert all(np.array_equal(after_float[k], after_quantized[k]) for k in after_float) == independent


def test_blacklist_keeps_matching_cells_float():
    network, ptq = quantize_tiny("a8w8c8", opname_blacklist=("w2", "lm_head", "layers.1.attention"))
    ptq.convert(network)
    dtypes = {p.name: p.dtype for p in network.get_parameters()}
    assert dtypes["lm_head.weight"] == ms.float32
    assert dtypes["model.layers.0.feed_forward.w2.weight"] == ms.float32
    assert dtypes["model.layers.1.attention.wq.weight"] == ms.float32
    assert dtypes["model.layers.1.attention.kv_cache.key_cache"] == ms.float32
    assert dtypes["model.layers.0.attention.wq.weight"] == ms.int8
    assert "model.layers.0.attention.wo.smooth_scale" in dtypes  # no exact fold for wo: explicit multiply
    assert "model.layers.0.attention.wq.smooth_scale" not in dtypes  # folded into attention_norm


def test_deploy_with_a_checkpoint_of_another_config_fails(quantized, tmp_path):
    name, _, _, path = quantized
    other = "a16w8" if name != "a16w8" else "a8w8"
    with pytest.raises(ValueError, match="quantized with another config"):
        load_quantized(build_tiny(), path, approach_config(other, mode=PTQMode.DEPLOY))
    config_path_for(path).rename(tmp_path / "gone.yaml")
    try:
        with pytest.raises(FileNotFoundError, match="no PTQ config beside it"):
            load_quantized(build_tiny(), path, config_for(name, mode=PTQMode.DEPLOY))
    finally:
        (tmp_path / "gone.yaml").rename(config_path_for(path))


def test_quantize_needs_pynative_and_data():
    ms.set_context(mode=ms.GRAPH_MODE)
    with pytest.raises(RuntimeError, match="PyNative"):
        PTQ(approach_config("a8w8")).apply(build_tiny(), None, CALIBRATION)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    with pytest.raises(ValueError, match="empty"):
        PTQ(approach_config("c8")).apply(build_tiny(), None, [])
    with pytest.raises(ValueError, match="needs a calibration dataset"):
        PTQ(approach_config("a8w8")).apply(build_tiny())


def test_weight_only_rtn_needs_no_data():
    network = build_tiny()
    ptq = PTQ(approach_config("a16w8"))
    ptq.apply(network)
    ptq.convert(network)
    assert network.model.layers[0].attention.wq.weight.dtype == ms.int8


def test_c8_without_a_kv_cache_fails():
    with pytest.raises(ValueError, match="no \\(non-blacklisted\\) KV cache"):
        PTQ(approach_config("c8", opname_blacklist=("kv_cache",))).apply(build_tiny(), None, CALIBRATION)


def test_nan_in_calibration_activations_is_named():
    network = build_tiny()
    weight = network.model.layers[1].attention.wq.weight
    weight.set_data(Tensor(np.full(weight.shape, np.nan, np.float32)))
    with pytest.raises(ValueError, match="layers.1.attention.(wo|kv_cache).* NaN or Inf"):
        PTQ(approach_config("a8w8c8")).apply(network, None, CALIBRATION)


def test_saving_over_the_source_checkpoint_is_refused(tmp_path):
    network, ptq = quantize_tiny("a16w8")
    ptq.convert(network)
    source = tmp_path / "float.ckpt"
    source.write_bytes(b"float weights")
    with pytest.raises(ValueError, match="refusing to overwrite"):
        save_quantized(network, source, approach_config("a16w8"), source_checkpoint=source)
    assert source.read_bytes() == b"float weights"


def test_convert_before_apply_and_double_apply_fail():
    with pytest.raises(RuntimeError, match="apply\\(\\) first"):
        PTQ(approach_config("a16w8")).convert(build_tiny())
    network, ptq = quantize_tiny("a16w8")
    with pytest.raises(RuntimeError, match="already applied"):
        ptq.apply(network, None, CALIBRATION)


def test_report_says_how_each_cell_was_quantized_or_why_it_stayed_float():
    _, ptq = quantize_tiny("a8w8c8")
    records = {r["name"]: r for r in ptq.report}
    linears = [n for n, r in records.items() if r["kind"] == "linear"]
    assert len(linears) == 2 * 7 + 1 and sum(r["kind"] == "kv_cache" for r in records.values()) == 2
    w2 = records["model.layers.1.feed_forward.w2"]
    assert not w2["quantized"] and w2["reason"] == "opname_blacklist entry 'w2'"
    assert records["model.layers.0.attention.wq"]["smoothing"] == "folded into attention_norm"
    assert records["model.layers.0.attention.wo"]["smoothing"] == "input multiply"
    for name in ("model.layers.0.attention.wq", "model.layers.1.feed_forward.w1"):
        record = records[name]
        assert record["act_min"] < 0 < record["act_max"] and record["smooth_min"] > 0
        assert 0 < record["relative_output_mse"] < 0.05
    kv_cache = records["model.layers.0.attention.kv_cache"]
    assert kv_cache["quantized"] and kv_cache["key_min"] < kv_cache["key_max"]
    embedding = records["model.tok_embeddings"]  # a quantizable cell too (opt-in int8 table), float here
    assert not embedding["quantized"] and embedding["reason"] == "embedding_quant_dtype is None"
    text = format_report(ptq.report)
    assert "opname_blacklist entry 'lm_head'" in text and text.endswith("14 of 18 quantizable cells quantized")


def test_mixed_plan_quantizes_each_layer_as_overridden():
    _, ptq = quantize_tiny("a8w8_mixed")
    records = {r["name"]: r for r in ptq.report}
    assert records["model.layers.0.feed_forward.w2"]["reason"] == \
        "layer_overrides entry 'layers.0.feed_forward.w2': float"
    assert records["model.layers.1.feed_forward.w2"]["scheme"].startswith("A8 static")
    assert records["model.layers.1.attention.wq"]["scheme"].startswith("W8")
    assert records["model.layers.0.feed_forward.w1"]["scheme"].startswith("A8 dynamic per-token")
    assert records["model.layers.0.attention.wo"]["range_observer"] == "histogram_mse"


def test_fixed_fallback_takes_the_most_sensitive_linears_and_deploy_rebuilds_the_plan(tmp_path):
    network, ptq = quantize_tiny("a8w8", opname_blacklist=("lm_head",), sensitivity_samples=2, fallback_layers=3)
    records = [r for r in ptq.report if r["kind"] == "linear" and r.get("sensitivity") is not None]
    ranked = sorted(records, key=lambda r: -r["sensitivity"])
    assert [r["name"] for r in ranked[:3]] == ptq.fallback["layers"]
    assert all(r["fallback"] == "w8" and r["scheme"].startswith("W8") for r in ranked[:3])
    assert all(r["fallback"] is None for r in ranked[3:])
    assert ptq.quantized_config.layer_overrides[:3] == tuple((n, LayerPrecision.W8) for n in ptq.fallback["layers"])
    logits = network(PROBE).asnumpy()
    ptq.convert(network)
    path = save_quantized(network, tmp_path / "mixed.ckpt", ptq.quantized_config)
    deployed = build_tiny(seed=7)
    deploy = PTQ(PTQConfig.load(config_path_for(path), mode="deploy"))
    deploy.apply(deployed)
    deploy.convert(deployed)
    assert stored_signature(deployed) == stored_signature(network)
    load_quantized(deployed, path, deploy.config)
    np.testing.assert_allclose(deployed(PROBE).asnumpy(), logits, atol=5e-2 * np.abs(logits).max())


def test_fallback_search_meets_a_kl_budget_with_the_fewest_fallbacks():
    calibration = CALIBRATION + [RNG.integers(1, 90, (1, 40)).astype(np.int32) for _ in range(2)]
    network = build_tiny()
    ptq = PTQ(config_for("a8w8", opname_blacklist=("lm_head",), sensitivity_samples=2, fallback_kl_budget=1e-9,
                         fallback_max_fraction=1.0, fallback_holdout_samples=2))
    ptq.apply(network, None, calibration)
    history, count = ptq.fallback["kl_by_count"], ptq.fallback["count"]
    assert ptq.fallback["of"] == 14 and history[0] > 1e-9  # the unreachable budget pushes to all 14
    assert count == 14 and not ptq.fallback["met"]
    budget = (history[0] + min(history.values())) / 2  # a budget between none and all fallbacks
    network = build_tiny()
    ptq = PTQ(config_for("a8w8", opname_blacklist=("lm_head",), sensitivity_samples=2, fallback_kl_budget=budget,
                         fallback_max_fraction=1.0, fallback_holdout_samples=2))
    ptq.apply(network, None, calibration)
    history, count = ptq.fallback["kl_by_count"], ptq.fallback["count"]
    assert ptq.fallback["met"] and history[count] <= budget and 0 < count
    assert count - 1 in history and history[count - 1] > budget  # one fewer misses it: the fewest


def test_power_of_two_smoothing_rounds_each_factor_to_within_sqrt2():
    divisors = {}
    for power_of_two in (False, True):
        network = build_tiny()
        ptq = PTQ(approach_config("a8w8", calibration_inputs=CalibrationInputs.FLOAT,
                                  smooth_power_of_two=power_of_two))
        ptq.apply(network, None, CALIBRATION)
        divisors[power_of_two] = {c.wrapper.name: c.wrapper.smooth_factor for c in ptq.cells
                                  if getattr(c.wrapper, "smooth_factor", None) is not None}
    assert len(divisors[True]) == 12 and divisors[True].keys() == divisors[False].keys()
    for path, snapped in divisors[True].items():
        exponents = np.log2(snapped)
        np.testing.assert_array_equal(exponents, np.round(exponents), err_msg=path)
        ratio = snapped / divisors[False][path]  # float inputs: the same statistics in both runs
        assert ((ratio >= 2 ** -0.5 - 1e-6) & (ratio <= 2 ** 0.5 + 1e-6)).all(), path


def test_power_of_two_smoothing_needs_smoothquant():
    with pytest.raises(ValueError, match="smooth_power_of_two needs outliers_suppression=SMOOTH"):
        approach_config("a16w8", smooth_power_of_two=True)
