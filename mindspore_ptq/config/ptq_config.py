"""PTQConfig: the flat, Golden Stick-style description of one quantization, made of self-validating parts
(config.parts), immutable, with a YAML round trip."""
import enum
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional, Tuple

import yaml
import mindspore as ms

from ms_infra.files import write_text_atomic

from .enums import (BackendTarget, CalibrationInputs, Granularity, LayerPrecision, OutliersSuppressionType, PTQMode,
                    RangeObserver)
from .parts import PARTS

_INT8 = "Int8"
_ENUM_FIELDS = {"mode": PTQMode, "backend": BackendTarget, "outliers_suppression": OutliersSuppressionType,
                "weight_quant_granularity": Granularity, "act_quant_granularity": Granularity,
                "kvcache_quant_granularity": Granularity, "act_observer": RangeObserver,
                "calibration_inputs": CalibrationInputs, "fallback_precision": LayerPrecision}


def _dtype_name(value, field_name):
    if value is None:
        return None
    if value == ms.int8:
        return _INT8
    raise ValueError(f"PTQConfig.{field_name}: unsupported dtype {value!r}; only mindspore.int8 or None")


def _plain(value):
    """Enums to their values, tuples to lists: YAML-safe data."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


def _layer_overrides(value):
    """(pattern, LayerPrecision) pairs from a dict or a list of pairs, with errors naming the bad entry."""
    pairs = value.items() if isinstance(value, dict) else value
    choices = [p.value for p in LayerPrecision]
    if any(not (isinstance(entry, (tuple, list)) and len(entry) == 2 and isinstance(entry[0], str) and entry[0])
           for entry in pairs):
        raise ValueError(f"PTQConfig.layer_overrides must map non-empty name substrings to precisions, got {value!r}")
    bad = [p for _, p in pairs if not isinstance(p, LayerPrecision) and p not in choices]
    if bad:
        raise ValueError(f"PTQConfig.layer_overrides: {bad[0]!r} is not one of {choices}")
    return tuple((pattern, LayerPrecision(precision)) for pattern, precision in pairs)


@dataclass(frozen=True)
class PTQConfig:
    """What to quantize and how. `None` dtypes leave that part in float. The fields are Golden Stick's flat
    names; after validation the same settings are read as parts: `weights`, `activations`, `kv_cache`,
    `outliers`, `calibration`, `fallback` (see config.parts).

    weight_quant_dtype: int8 -> per-channel symmetric int8 weights (A16W8, or A8W8 with act_quant_dtype).
    act_quant_dtype: int8 -> int8 activations (needs weight quantization), as act_quant_granularity says.
    kvcache_quant_dtype: int8 -> KV cache stored as int8 with static per-channel scales (C8).
    outliers_suppression: SMOOTH applies SmoothQuant with `smooth_alpha` before activation quantization; ROTATE
        rotates the float network first (algorithms.rotation; w2's input rotation needs model_parallel=1).
    opname_blacklist: cells whose full name contains any of these strings stay float.
    act_quant_granularity: PER_TENSOR (static, from calibration) or PER_TOKEN (dynamic, at run time).
    act_observer: how static activation ranges are chosen (act_clip_percentile for PERCENTILE).
    calibration_inputs: QUANTIZED feeds each decoder layer the quantized layers' outputs (the default); FLOAT
        feeds it the float network's, which skips one pass per layer and gives the same checkpoint at any
        model_parallel (quantized inputs amplify the float reassociation of tensor-parallel sums).
    smooth_power_of_two: round each SmoothQuant factor to the nearest power of two (within sqrt(2) of it), so the
        int8 weights no longer depend on float noise in the activation statistics: with calibration_inputs=FLOAT,
        a tensor-parallel run then gives the single-process int8 weights exactly.
    range_mantissa_bits: widen each calibrated range (static activation and KV-cache min/max) outward to the
        nearest values with this many significant bits (N widens it by at most 2^(1-N)), so float noise below that
        precision, such as the reassociated sums of tensor parallelism, leaves the scales unchanged. None: exact.
    smooth_alpha_search: candidate alphas (None: no smoothing); each smoothing group takes the one with the least
        output error on its calibration inputs (`smooth_alpha` is always a candidate). Empty: `smooth_alpha`.
    layer_overrides: (name substring, LayerPrecision) pairs, first match wins: per-layer mixed precision, e.g.
        a fallback plan. They take effect after the blacklist.
    sensitivity_samples: calibration samples on which each linear's sensitivity is measured (0: not measured).
    fallback_layers: the K most sensitive activation-quantized linears fall back to `fallback_precision`.
    fallback_kl_budget: instead, the fewest fallbacks (at most fallback_max_fraction of the activation-quantized
        linears) with KL(float || quantized) <= budget on the last `fallback_holdout_samples` calibration samples,
        which are then held out of calibration. Either way PTQ returns the plan (`PTQ.quantized_config`).
    """
    mode: PTQMode = PTQMode.QUANTIZE
    backend: BackendTarget = BackendTarget.NONE
    opname_blacklist: Tuple[str, ...] = ()
    weight_quant_dtype: Optional[ms.dtype.Type] = None
    act_quant_dtype: Optional[ms.dtype.Type] = None
    kvcache_quant_dtype: Optional[ms.dtype.Type] = None
    outliers_suppression: OutliersSuppressionType = OutliersSuppressionType.NONE
    smooth_alpha: float = 0.5
    weight_quant_granularity: Granularity = Granularity.PER_CHANNEL
    act_quant_granularity: Granularity = Granularity.PER_TENSOR
    kvcache_quant_granularity: Granularity = Granularity.PER_CHANNEL
    act_observer: RangeObserver = RangeObserver.MINMAX
    act_clip_percentile: float = 99.99
    calibration_inputs: CalibrationInputs = CalibrationInputs.QUANTIZED
    smooth_power_of_two: bool = False
    range_mantissa_bits: Optional[int] = None
    smooth_alpha_search: Tuple[Optional[float], ...] = ()
    layer_overrides: Tuple[Tuple[str, LayerPrecision], ...] = ()
    sensitivity_samples: int = 0
    fallback_layers: int = 0
    fallback_precision: LayerPrecision = LayerPrecision.W8
    fallback_kl_budget: Optional[float] = None
    fallback_max_fraction: float = 0.1
    fallback_holdout_samples: int = 4

    def __post_init__(self):
        for name, kind in _ENUM_FIELDS.items():
            if not isinstance(getattr(self, name), kind):
                raise TypeError(f"PTQConfig.{name} must be a {kind.__name__}, got {getattr(self, name)!r}")
        if isinstance(self.opname_blacklist, str) or not all(isinstance(n, str) for n in self.opname_blacklist):
            raise TypeError(f"PTQConfig.opname_blacklist must be a list of strings, got {self.opname_blacklist!r}")
        if isinstance(self.smooth_alpha_search, list):
            object.__setattr__(self, "smooth_alpha_search", tuple(self.smooth_alpha_search))
        object.__setattr__(self, "opname_blacklist", tuple(self.opname_blacklist))
        object.__setattr__(self, "layer_overrides", _layer_overrides(self.layer_overrides))
        for name, part in PARTS.items():
            object.__setattr__(self, name, part.from_config(self))
        self._check_parts_agree()

    def _check_parts_agree(self):
        """The checks that span parts."""
        weights, activations = self.weights.enabled, self.activations.enabled
        if activations and not weights:
            raise ValueError("PTQConfig: activation quantization (act_quant_dtype) needs weight quantization "
                             "(weight_quant_dtype=int8)")
        if self.outliers_suppression is not OutliersSuppressionType.NONE and not activations:
            raise ValueError(f"PTQConfig: outliers_suppression={self.outliers_suppression.value.upper()} only "
                             f"applies with act_quant_dtype=int8")
        if any(p.value.startswith("a8w8") for _, p in self.layer_overrides) and not activations:
            raise ValueError("PTQConfig.layer_overrides: a8w8 layers need act_quant_dtype=int8")
        if self.fallback.enabled and not activations:
            raise ValueError("PTQConfig: fallback applies to activation-quantized linears (act_quant_dtype=int8)")
        if self.fallback.enabled and self.calibration.sensitivity_samples < 1:
            raise ValueError("PTQConfig: fallback ranks linears by sensitivity; set sensitivity_samples >= 1")
        if not weights and not self.kv_cache.enabled:
            raise ValueError("PTQConfig quantizes nothing: set weight_quant_dtype and/or kvcache_quant_dtype")

    @property
    def needs_calibration_data(self):
        """Round-to-nearest weights need no data; activation and KV-cache ranges do."""
        return self.activations.enabled or self.kv_cache.enabled

    @property
    def name(self):
        """Short label, e.g. 'a8w8c8', 'a16w8'."""
        weights = ("a8w8" if self.activations.enabled else "a16w8") if self.weights.enabled else ""
        return weights + ("c8" if self.kv_cache.enabled else "")

    def quantization_fields(self):
        """Everything that shapes the quantized checkpoint (all but `mode`), as plain data."""
        return {f.name: _dtype_name(getattr(self, f.name), f.name) if f.name.endswith("_dtype")
                else _plain(getattr(self, f.name)) for f in fields(self) if f.name != "mode"}

    def dump(self, path):
        """Write the config as YAML (atomically)."""
        return write_text_atomic(path, yaml.safe_dump({"mode": self.mode.value, **self.quantization_fields()},
                                                      sort_keys=False))

    @classmethod
    def from_dict(cls, data, **overrides):
        """Inverse of `quantization_fields` (plus optional 'mode'); unknown keys are named in the error."""
        data = {**data, **overrides}
        unknown = sorted(set(data) - {f.name for f in fields(cls)})
        if unknown:
            raise KeyError(f"unknown PTQConfig field(s): {unknown}")
        values = {}
        for key, value in data.items():
            if key in _ENUM_FIELDS and not isinstance(value, _ENUM_FIELDS[key]):
                value = _ENUM_FIELDS[key](value)
            elif key.endswith("_dtype") and isinstance(value, str):
                if value != _INT8:
                    raise ValueError(f"PTQConfig.{key}: unsupported dtype {value!r}")
                value = ms.int8
            values[key] = value
        return cls(**values)

    @classmethod
    def load(cls, path, **overrides):
        """Read a config written by `dump`."""
        path = Path(path)
        if not path.is_file():
            raise FileNotFoundError(f"PTQ config not found: {path}")
        return cls.from_dict(yaml.safe_load(path.read_text()) or {}, **overrides)
