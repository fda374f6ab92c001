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


@pytest.mark.parametrize("text, message", [
    ("weight_quant_dtype: Int8\nsmooth_apha: 0.4\n", "unknown PTQConfig field(s): 'smooth_apha' (did you mean "
                                                     "'smooth_alpha'?)"),
    ("weight_quant_dtype: Int8\nact_observer: minmx\n", "PTQConfig.act_observer: 'minmx' is not one of ['minmax',"),
    ("weight_quant_dtype: Int8\nsensitivity_samples: many\n", "PTQConfig.sensitivity_samples must be an integer"),
    ("weight_quant_dtype: Int8\nsensitivity_samples: true\n", "PTQConfig.sensitivity_samples must be an integer"),
    ("weight_quant_dtype: Int8\nopname_blacklist: w2\n", "opname_blacklist must be a list of non-empty strings"),
    ("weight_quant_dtype: Int8\nlayer_overrides: 3\n", "layer_overrides must map non-empty name substrings"),
    ("weight_quant_dtype: Int8\nact_quant_dtype: Int8\noutliers_suppression: smooth\nsmooth_alpha_search: [x]\n",
     "smooth_alpha_search values must be in [0, 1] or None"),
    ("weight_quant_dtype: int8\n", "PTQConfig.weight_quant_dtype: unsupported dtype 'int8'"),
    ("weight_quant_dtype: [Int8\n", "is not valid YAML: line 2"),
    ("- weight_quant_dtype\n", "must be a YAML mapping, got list"),
], ids=["unknown", "enum", "not-a-number", "bool-count", "blacklist-string", "overrides-scalar", "alpha-search",
        "dtype-name", "syntax", "list"])
def test_a_bad_yaml_config_is_named_with_its_file_and_field(tmp_path, text, message):
    path = tmp_path / "c.ptq.yaml"
    path.write_text(text)
    with pytest.raises(ValueError, match=f"PTQ config {path}") as error:
        PTQConfig.load(path)
    assert message in str(error.value)


def test_scalar_fields_of_the_wrong_type_are_named():
    with pytest.raises(TypeError, match="PTQConfig.smooth_alpha must be a number, got '0.5'"):
        PTQConfig(weight_quant_dtype=ms.int8, act_quant_dtype=ms.int8, smooth_alpha="0.5",
                  outliers_suppression=OutliersSuppressionType.SMOOTH)
    with pytest.raises(TypeError, match="PTQConfig.fallback_kl_budget must be a number or null"):
        PTQConfig(weight_quant_dtype=ms.int8, fallback_kl_budget="small")


def test_config_is_immutable():
    config = approach_config("a16w8")
    with pytest.raises(AttributeError):
        config.smooth_alpha = 0.9
