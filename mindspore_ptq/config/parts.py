"""The parts a PTQConfig is made of, each validating itself: weights, activations, KV cache, outlier
suppression, calibration and fallback.

`FIELDS` maps each part's attribute to the flat PTQConfig field the user sets (Golden Stick's names), so an error
names the field the user wrote.
"""
from dataclasses import dataclass
from typing import Optional, Tuple

import mindspore as ms

from .enums import (CalibrationInputs, Granularity, LayerPrecision, OutliersSuppressionType, PrecisionRecovery,
                    RangeObserver)

SUPPORTED_DTYPES = (ms.int8,)
WEIGHT_BITS = {ms.int8: 8, ms.qint4x2: 4}  # the weight dtypes and their bits (qint4x2 is mindspore.int4)
GROUP_SIZES = (32, 64, 128)


class Part:
    """Base of the parts: `FIELDS` {attribute: PTQConfig field}; `from_config` builds the part from a config."""
    FIELDS = {}

    @classmethod
    def from_config(cls, config):
        return cls(**{attribute: getattr(config, name) for attribute, name in cls.FIELDS.items()})

    def field(self, attribute):
        return f"PTQConfig.{self.FIELDS[attribute]}"

    SUPPORTED = SUPPORTED_DTYPES

    def check_dtype(self, value, attribute):
        if value is not None and value not in self.SUPPORTED:
            names = " or ".join(f"mindspore.{d}".lower() for d in self.SUPPORTED)
            raise ValueError(f"{self.field(attribute)}: unsupported dtype {value!r}; only {names} or None")



@dataclass(frozen=True)
class TensorQuant(Part):
    """A quantized tensor kind: its dtype (None: float) and which values share a scale (one of ALLOWED)."""
    dtype: Optional[ms.dtype.Type] = None
    granularity: Granularity = Granularity.PER_CHANNEL
    ALLOWED = (Granularity.PER_CHANNEL,)

    def __post_init__(self):
        self.check_dtype(self.dtype, "dtype")
        if self.granularity not in self.ALLOWED:
            raise ValueError(f"{self.field('granularity')}={self.granularity.value} is not supported; use "
                             f"{' or '.join(a.value for a in self.ALLOWED)}")

    @property
    def enabled(self):
        return self.dtype is not None


@dataclass(frozen=True)
class WeightQuant(TensorQuant):
    """Symmetric int8 or int4 weights, one scale per output channel or per group of `group_size` inputs of a row."""
    group_size: int = 0
    ALLOWED = (Granularity.PER_CHANNEL, Granularity.PER_GROUP)
    SUPPORTED = tuple(WEIGHT_BITS)
    FIELDS = {"dtype": "weight_quant_dtype", "granularity": "weight_quant_granularity", "group_size": "group_size"}

    def __post_init__(self):
        super().__post_init__()
        grouped = self.granularity is Granularity.PER_GROUP
        if grouped and self.group_size not in GROUP_SIZES:
            raise ValueError(f"{self.field('group_size')} must be one of {GROUP_SIZES} with "
                             f"weight_quant_granularity=per_group, got {self.group_size}")
        if not grouped and self.group_size:
            raise ValueError(f"{self.field('group_size')}={self.group_size} needs weight_quant_granularity=per_group")

    @property
    def bits(self):
        return WEIGHT_BITS.get(self.dtype, 0)


@dataclass(frozen=True)
class Recovery(Part):
    """How weights are rounded: to nearest, or by GPTQ (damping as a fraction of the mean Hessian diagonal, lazy
    updates in blocks of `block_size` columns, columns in order of decreasing Hessian diagonal with act_order)."""
    method: PrecisionRecovery = PrecisionRecovery.NONE
    damp_percent: float = 0.01
    block_size: int = 128
    act_order: bool = False
    FIELDS = {"method": "precision_recovery", "damp_percent": "gptq_damp_percent",
              "block_size": "gptq_block_size", "act_order": "gptq_act_order"}

    def __post_init__(self):
        if not 0.0 < self.damp_percent < 1.0:
            raise ValueError(f"{self.field('damp_percent')} must be in (0, 1), got {self.damp_percent}")
        if self.block_size < 1:
            raise ValueError(f"{self.field('block_size')} must be >= 1, got {self.block_size}")

    @property
    def gptq(self):
        return self.method is PrecisionRecovery.GPTQ


@dataclass(frozen=True)
class ActivationQuant(TensorQuant):
    """int8 activations: static per-tensor (range chosen by `observer`) or dynamic per-token."""
    granularity: Granularity = Granularity.PER_TENSOR
    observer: RangeObserver = RangeObserver.MINMAX
    clip_percentile: float = 99.99
    ALLOWED = (Granularity.PER_TENSOR, Granularity.PER_TOKEN)
    FIELDS = {"dtype": "act_quant_dtype", "granularity": "act_quant_granularity", "observer": "act_observer",
              "clip_percentile": "act_clip_percentile"}

    def __post_init__(self):
        super().__post_init__()
        if not 50.0 < self.clip_percentile <= 100.0:
            raise ValueError(f"{self.field('clip_percentile')} must be in (50, 100], got {self.clip_percentile}")
        if self.observer is not RangeObserver.MINMAX and not self.enabled:
            raise ValueError(f"{self.field('observer')} only applies with act_quant_dtype=int8")


@dataclass(frozen=True)
class KVCacheQuant(TensorQuant):
    """The KV cache stored as int8 (C8): with static scales and zero points per channel (kv head x head dim),
    calibrated from the observed key and value ranges, or (per_token) with one symmetric scale per token and kv
    head, computed as each token is written (no calibration)."""
    ALLOWED = (Granularity.PER_CHANNEL, Granularity.PER_TOKEN)
    FIELDS = {"dtype": "kvcache_quant_dtype", "granularity": "kvcache_quant_granularity"}

    @property
    def static(self):
        return self.enabled and self.granularity is Granularity.PER_CHANNEL


@dataclass(frozen=True)
class EmbeddingQuant(TensorQuant):
    """Token-embedding tables stored as int8, one symmetric scale per token row (weight-only, no data needed)."""
    FIELDS = {"dtype": "embedding_quant_dtype"}


@dataclass(frozen=True)
class OutlierSuppression(Part):
    """SmoothQuant (fixed or searched alpha, optionally power-of-two factors) or Hadamard rotations."""
    method: OutliersSuppressionType = OutliersSuppressionType.NONE
    alpha: float = 0.5
    alpha_search: Tuple[Optional[float], ...] = ()
    power_of_two: bool = False
    FIELDS = {"method": "outliers_suppression", "alpha": "smooth_alpha", "alpha_search": "smooth_alpha_search",
              "power_of_two": "smooth_power_of_two"}

    def __post_init__(self):
        if not 0.0 <= self.alpha <= 1.0:
            raise ValueError(f"{self.field('alpha')} must be in [0, 1], got {self.alpha}")
        if not isinstance(self.alpha_search, tuple):
            raise TypeError(f"{self.field('alpha_search')} must be a list of alphas, got {self.alpha_search!r}")
        if any(a is not None and not (isinstance(a, (int, float)) and 0.0 <= a <= 1.0) for a in self.alpha_search):
            raise ValueError(f"{self.field('alpha_search')} values must be in [0, 1] or None, got "
                             f"{self.alpha_search}")
        for attribute in ("alpha_search", "power_of_two"):
            if getattr(self, attribute) and not self.smooths:
                raise ValueError(f"{self.field(attribute)} needs outliers_suppression=SMOOTH")

    @property
    def smooths(self):
        return self.method is OutliersSuppressionType.SMOOTH

    @property
    def awq(self):
        return self.method is OutliersSuppressionType.AWQ

    @property
    def rotates(self):
        return self.method is OutliersSuppressionType.ROTATE


@dataclass(frozen=True)
class Calibration(Part):
    """What the layers are calibrated on, how calibrated ranges are rounded, and the sensitivity measure."""
    inputs: CalibrationInputs = CalibrationInputs.QUANTIZED
    range_mantissa_bits: Optional[int] = None
    sensitivity_samples: int = 0
    FIELDS = {"inputs": "calibration_inputs", "range_mantissa_bits": "range_mantissa_bits",
              "sensitivity_samples": "sensitivity_samples"}

    def __post_init__(self):
        bits = self.range_mantissa_bits
        if bits is not None and not (isinstance(bits, int) and 1 <= bits <= 23):
            raise ValueError(f"{self.field('range_mantissa_bits')} must be an integer in [1, 23] or None, got "
                             f"{bits!r}")
        if self.sensitivity_samples < 0:
            raise ValueError(f"{self.field('sensitivity_samples')} must be >= 0")


@dataclass(frozen=True)
class Fallback(Part):
    """The most sensitive activation-quantized linears fall back: a fixed count, or the fewest within a KL
    budget on held-out calibration samples."""
    layers: int = 0
    precision: LayerPrecision = LayerPrecision.W8
    kl_budget: Optional[float] = None
    max_fraction: float = 0.1
    holdout_samples: int = 4
    FIELDS = {"layers": "fallback_layers", "precision": "fallback_precision", "kl_budget": "fallback_kl_budget",
              "max_fraction": "fallback_max_fraction", "holdout_samples": "fallback_holdout_samples"}

    def __post_init__(self):
        if self.layers and self.searching:
            raise ValueError("PTQConfig: set fallback_layers or fallback_kl_budget, not both")
        if self.precision not in (LayerPrecision.W8, LayerPrecision.FLOAT):
            raise ValueError(f"{self.field('precision')} must be w8 or float, got {self.precision.value}")
        if self.layers < 0 or self.holdout_samples < 1:
            raise ValueError("PTQConfig: fallback_layers must be >= 0, fallback_holdout_samples >= 1")
        if not 0.0 <= self.max_fraction <= 1.0 or (self.searching and self.kl_budget <= 0):
            raise ValueError("PTQConfig: fallback_max_fraction must be in [0, 1] and fallback_kl_budget > 0")

    @property
    def searching(self):
        return self.kl_budget is not None

    @property
    def enabled(self):
        return bool(self.layers) or self.searching


PARTS = {"weights": WeightQuant, "activations": ActivationQuant, "kv_cache": KVCacheQuant, "embeddings": EmbeddingQuant,
         "outliers": OutlierSuppression, "calibration": Calibration, "fallback": Fallback, "recovery": Recovery}
