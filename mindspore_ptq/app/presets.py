"""The named quantization approaches, as PTQConfig keyword data: the seed's five, and the accuracy-recovery ones."""
import mindspore as ms

from ..config import (Granularity, LayerPrecision, OutliersSuppressionType, PrecisionRecovery, PTQConfig,
                      RangeObserver)

_SMOOTH = OutliersSuppressionType.SMOOTH
# The seed's A8W8 recipe keeps w2 (the down projection, widest activation range) and lm_head in float.
_A8W8_BLACKLIST = ("w2", "lm_head")
_A8W8_SEED = dict(weight_quant_dtype=ms.int8, act_quant_dtype=ms.int8, outliers_suppression=_SMOOTH)

APPROACHES = {
    "a16w8": dict(weight_quant_dtype=ms.int8),
    "a8w8": dict(_A8W8_SEED, opname_blacklist=_A8W8_BLACKLIST),
    "c8": dict(kvcache_quant_dtype=ms.int8),
    "a16w8c8": dict(weight_quant_dtype=ms.int8, kvcache_quant_dtype=ms.int8),
    "a8w8c8": dict(_A8W8_SEED, kvcache_quant_dtype=ms.int8, opname_blacklist=_A8W8_BLACKLIST),
}

# Accuracy recovery: every decoder linear quantized (lm_head, not a decoder linear, stays float), one technique
# at a time, then all of them with an automatic fallback plan under a held-out KL budget.
_ALL_DECODER = dict(_A8W8_SEED, opname_blacklist=("lm_head",))
_ALPHAS = (None, 0.3, 0.4, 0.6, 0.7, 0.8, 0.9)
_FALLBACK = dict(sensitivity_samples=4, fallback_kl_budget=0.02, fallback_max_fraction=0.1)
_AUTO = dict(_ALL_DECODER, act_observer=RangeObserver.HISTOGRAM_MSE, smooth_alpha_search=_ALPHAS, **_FALLBACK)
_PER_TOKEN = dict(_ALL_DECODER, act_quant_granularity=Granularity.PER_TOKEN, smooth_alpha_search=_ALPHAS)
_ROTATED = dict(_ALL_DECODER, outliers_suppression=OutliersSuppressionType.ROTATE)
RECOVERY_APPROACHES = {
    "a8w8_all": _ALL_DECODER,  # the seed recipe on all decoder linears, as the torch reference measures it
    "a8w8_per_token": _PER_TOKEN,
    "a8w8_percentile": dict(_ALL_DECODER, act_observer=RangeObserver.PERCENTILE),
    "a8w8_histogram": dict(_ALL_DECODER, act_observer=RangeObserver.HISTOGRAM_MSE),
    "a8w8_alpha_search": dict(_ALL_DECODER, smooth_alpha_search=_ALPHAS),
    "a8w8_auto": _AUTO,
    "a8w8c8_auto": dict(_AUTO, kvcache_quant_dtype=ms.int8),
    "a8w8c8_per_token": dict(_PER_TOKEN, kvcache_quant_dtype=ms.int8),
    "a8w8_rotated": _ROTATED,  # static min-max ranges after the Hadamard rotations
    "a8w8c8_rotated_auto": dict(_ROTATED, **_FALLBACK, kvcache_quant_dtype=ms.int8),
}

# Low-bit weights: symmetric int4 per group of 64 inputs (or per row) on every decoder linear, lm_head int8 per
# row, embeddings float; rounded to nearest, by GPTQ, AWQ or both; weight-only or with per-token int8 activations. Groups of 64, not 128: 128 does not divide
# SmolLM2's 576-wide hidden size. (Its embedded weights are dequantized Q4_1, whose asymmetric groups of 32 a
# symmetric g64 grid does not reproduce.)
_INT4_G64 = dict(weight_quant_dtype=ms.qint4x2, weight_quant_granularity=Granularity.PER_GROUP, group_size=64,
                  layer_overrides=(("lm_head", LayerPrecision.W8),))
_INT4_ROW = dict(weight_quant_dtype=ms.qint4x2, layer_overrides=(("lm_head", LayerPrecision.W8),))
_GPTQ = dict(precision_recovery=PrecisionRecovery.GPTQ)
LOW_BIT_APPROACHES = {
    "a16w4_rtn_g64": _INT4_G64,
    "a16w4_gptq_g64": dict(_INT4_G64, **_GPTQ),
    "a16w4_rtn": _INT4_ROW,
    "a16w4_gptq": dict(_INT4_ROW, **_GPTQ),
    "a16w8_gptq": dict(weight_quant_dtype=ms.int8, **_GPTQ),
    "a16w4_awq_g64": dict(_INT4_G64, outliers_suppression=OutliersSuppressionType.AWQ),
    "a16w4_awq_gptq_g64": dict(_INT4_G64, outliers_suppression=OutliersSuppressionType.AWQ, **_GPTQ),
    # A8W4: the same int4 weights with int8 per-token activations (no kernel reads this format on CPU yet)
    "a8w4_gptq_g64": dict(_INT4_G64, act_quant_dtype=ms.int8, act_quant_granularity=Granularity.PER_TOKEN, **_GPTQ),
    # the smallest: lm_head int4 g64 as well, and the token table int8
    "a16w4e8_gptq_g64": dict(_INT4_G64, layer_overrides=(), embedding_quant_dtype=ms.int8, **_GPTQ),
}
# The KV cache as int8 with one scale per token and kv head, computed as each token is written (no calibration).
KV_CACHE_APPROACHES = {
    "c8_per_token": dict(kvcache_quant_dtype=ms.int8, kvcache_quant_granularity=Granularity.PER_TOKEN),
}
ALL_APPROACHES = {**APPROACHES, **RECOVERY_APPROACHES, **LOW_BIT_APPROACHES, **KV_CACHE_APPROACHES}


def approach_config(name, **overrides):
    """PTQConfig for a named approach; `overrides` replace its fields (e.g. mode, opname_blacklist)."""
    if name not in ALL_APPROACHES:
        raise ValueError(f"unknown approach {name!r}; choose from {sorted(ALL_APPROACHES)}")
    return PTQConfig(**{**ALL_APPROACHES[name], **overrides})
