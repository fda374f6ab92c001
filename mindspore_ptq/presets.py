"""The named quantization approaches of the seed, as PTQConfig keyword data."""
import mindspore as ms

from .config import OutliersSuppressionType, PTQConfig

_SMOOTH = OutliersSuppressionType.SMOOTH
# The seed's A8W8 recipe keeps w2 (the down projection, widest activation range) and lm_head in float.
_A8W8_BLACKLIST = ("w2", "lm_head")

APPROACHES = {
    "a16w8": dict(weight_quant_dtype=ms.int8),
    "a8w8": dict(weight_quant_dtype=ms.int8, act_quant_dtype=ms.int8, outliers_suppression=_SMOOTH,
                 opname_blacklist=_A8W8_BLACKLIST),
    "c8": dict(kvcache_quant_dtype=ms.int8),
    "a16w8c8": dict(weight_quant_dtype=ms.int8, kvcache_quant_dtype=ms.int8),
    "a8w8c8": dict(weight_quant_dtype=ms.int8, act_quant_dtype=ms.int8, kvcache_quant_dtype=ms.int8,
                   outliers_suppression=_SMOOTH, opname_blacklist=_A8W8_BLACKLIST),
}


def approach_config(name, **overrides):
    """PTQConfig for a named approach; `overrides` replace its fields (e.g. mode, opname_blacklist)."""
    if name not in APPROACHES:
        raise ValueError(f"unknown approach {name!r}; choose from {sorted(APPROACHES)}")
    return PTQConfig(**{**APPROACHES[name], **overrides})
