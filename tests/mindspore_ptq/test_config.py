"""PTQConfig validation and its YAML round trip."""
import pytest
import mindspore as ms

from mindspore_ptq import OutliersSuppressionType, PTQConfig, PTQMode
from mindspore_ptq.config import CalibrationInputs, Granularity, LayerPrecision, RangeObserver
from mindspore_ptq.app.presets import ALL_APPROACHES, APPROACHES, approach_config


@pytest.mark.parametrize("name", sorted(ALL_APPROACHES))
def test_yaml_round_trip(tmp_path, name):
    config = approach_config(name, mode=PTQMode.DEPLOY)
    loaded = PTQConfig.load(config.dump(tmp_path / "c.yaml"))
    assert loaded == config and (loaded.name == name or name not in APPROACHES)


@pytest.mark.parametrize("kwargs, message", [
    (dict(act_quant_dtype=ms.int8), "needs weight quantization"),
    (dict(weight_quant_dtype=ms.uint8), "unsupported dtype"),
    (dict(weight_quant_dtype=ms.int8, kvcache_quant_dtype=ms.float16), "unsupported dtype"),
    (dict(), "quantizes nothing"),
    (dict(weight_quant_dtype=ms.int8, outliers_suppression=OutliersSuppressionType.SMOOTH), "only applies"),
    (dict(weight_quant_dtype=ms.int8, act_quant_dtype=ms.int8, smooth_alpha=1.5), "smooth_alpha"),
    (dict(weight_quant_dtype=ms.int8, weight_quant_granularity=Granularity.PER_TENSOR), "not supported"),
    (dict(weight_quant_dtype=ms.int8, act_observer=RangeObserver.PERCENTILE), "act_observer only applies"),
    (dict(weight_quant_dtype=ms.int8, act_quant_dtype=ms.int8, smooth_alpha_search=(0.3,)), "needs outliers"),
    (dict(weight_quant_dtype=ms.int8, layer_overrides={"w2": "a8w8_per_token"}), "need act_quant_dtype"),
    (dict(weight_quant_dtype=ms.int8, act_quant_dtype=ms.int8, act_clip_percentile=0), "act_clip_percentile"),
    (dict(kvcache_quant_dtype=ms.int8, range_mantissa_bits=0), "range_mantissa_bits"),
], ids=["act-without-weight", "uint8", "fp16-kv", "nothing", "smooth-without-act", "alpha", "granularity",
        "observer-without-act", "search-without-smooth", "override-without-act", "percentile", "range-bits"])
def test_invalid_combinations_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        PTQConfig(**kwargs)


def test_accuracy_recovery_fields_round_trip(tmp_path):
    config = PTQConfig(weight_quant_dtype=ms.int8, act_quant_dtype=ms.int8,
                       outliers_suppression=OutliersSuppressionType.SMOOTH, act_observer=RangeObserver.HISTOGRAM_MSE,
                       act_quant_granularity=Granularity.PER_TOKEN, smooth_alpha_search=[None, 0.3],
                       layer_overrides={"layers.3.feed_forward.w2": "float", "w1": "w8"},
                       calibration_inputs=CalibrationInputs.FLOAT)
    assert config.layer_overrides == (("layers.3.feed_forward.w2", LayerPrecision.FLOAT), ("w1", LayerPrecision.W8))
    assert PTQConfig.load(config.dump(tmp_path / "c.yaml")) == config
    with pytest.raises(ValueError, match="'fp8'"):
        PTQConfig(weight_quant_dtype=ms.int8, layer_overrides={"w1": "fp8"})


def test_wrong_types_are_named():
    with pytest.raises(TypeError, match="mode"):
        PTQConfig(mode="quantize", weight_quant_dtype=ms.int8)
    with pytest.raises(TypeError, match="opname_blacklist"):
        PTQConfig(weight_quant_dtype=ms.int8, opname_blacklist="w2")


def test_unknown_yaml_field_is_named(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("weight_quant_dtype: Int8\nsmooth_apha: 0.4\n")
    with pytest.raises(KeyError, match="smooth_apha"):
        PTQConfig.load(path)


def test_config_is_immutable():
    config = approach_config("a16w8")
    with pytest.raises(AttributeError):
        config.smooth_alpha = 0.9
