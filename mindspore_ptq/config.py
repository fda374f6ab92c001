"""PTQConfig: a self-validating, immutable description of one quantization, with a YAML round trip."""
import enum
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Optional, Tuple

import yaml
import mindspore as ms


class PTQMode(enum.Enum):
    QUANTIZE = "quantize"  # calibrate (PyNative) and quantize a float network
    DEPLOY = "deploy"      # rebuild the quantized structure, to be filled by load_checkpoint


class BackendTarget(enum.Enum):
    NONE = "none"      # portable MindSpore ops (CPU, GPU)
    ASCEND = "ascend"  # same checkpoint layout; Ascend-specific kernels are not wired in yet


class OutliersSuppressionType(enum.Enum):
    NONE = "none"
    SMOOTH = "smooth"  # SmoothQuant: move activation outliers into the weights
    ROTATE = "rotate"  # Hadamard rotations of the residual stream and of w2's input (algorithms.rotation)


class Granularity(enum.Enum):
    PER_TENSOR = "per_tensor"    # activations: one static scale/zero point from calibration
    PER_CHANNEL = "per_channel"  # weights and KV cache: one scale per output channel
    PER_TOKEN = "per_token"      # activations: one symmetric scale per token, computed at run time


class RangeObserver(enum.Enum):
    """How a static activation range is chosen from the calibration data."""
    MINMAX = "minmax"                # the observed extremes
    PERCENTILE = "percentile"        # clip each tail at the act_clip_percentile-th percentile of x
    HISTOGRAM_MSE = "histogram_mse"  # the clip that minimises the quantization MSE of a histogram


class CalibrationInputs(enum.Enum):
    """What each decoder layer is calibrated on."""
    QUANTIZED = "quantized"  # the outputs of the already-quantized layers before it: their error is seen
    FLOAT = "float"          # the float network's: independent of earlier roundings, so equal under any TP size


class LayerPrecision(enum.Enum):
    """A per-layer override of how a linear is quantized (layer_overrides)."""
    FLOAT = "float"
    W8 = "w8"                              # int8 weights only
    A8W8_PER_TENSOR = "a8w8_per_tensor"    # static activations
    A8W8_PER_TOKEN = "a8w8_per_token"      # dynamic activations


_INT8 = "Int8"
_DTYPE_NAMES = {None: None, ms.int8: _INT8}


_ENUM_FIELDS = {"mode": PTQMode, "backend": BackendTarget, "outliers_suppression": OutliersSuppressionType,
                "weight_quant_granularity": Granularity, "act_quant_granularity": Granularity,
                "kvcache_quant_granularity": Granularity, "act_observer": RangeObserver,
                "calibration_inputs": CalibrationInputs, "fallback_precision": LayerPrecision}


def _dtype_name(value, field_name):
    if value is None or value == ms.int8:
        return _DTYPE_NAMES[value if value is None else ms.int8]
    raise ValueError(f"PTQConfig.{field_name}: unsupported dtype {value!r}; only mindspore.int8 or None")


def _plain(value):
    """Enums to their values, tuples to lists: YAML-safe data."""
    if isinstance(value, enum.Enum):
        return value.value
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class PTQConfig:
    """What to quantize and how. `None` dtypes leave that part in float.

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
        which are then held out of calibration. Either way the plan joins `layer_overrides` in the saved config.
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
        for name in ("weight_quant_dtype", "act_quant_dtype", "kvcache_quant_dtype"):
            _dtype_name(getattr(self, name), name)
        if isinstance(self.opname_blacklist, str) or not all(isinstance(n, str) for n in self.opname_blacklist):
            raise TypeError(f"PTQConfig.opname_blacklist must be a list of strings, got {self.opname_blacklist!r}")
        object.__setattr__(self, "opname_blacklist", tuple(self.opname_blacklist))
        if self.act_quant_dtype is not None and self.weight_quant_dtype is None:
            raise ValueError("PTQConfig: activation quantization (act_quant_dtype) needs weight quantization "
                             "(weight_quant_dtype=int8)")
        if self.outliers_suppression is not OutliersSuppressionType.NONE and self.act_quant_dtype is None:
            raise ValueError(f"PTQConfig: outliers_suppression={self.outliers_suppression.value.upper()} only "
                             f"applies with act_quant_dtype=int8")
        if not 0.0 <= self.smooth_alpha <= 1.0:
            raise ValueError(f"PTQConfig.smooth_alpha must be in [0, 1], got {self.smooth_alpha}")
        supported = ((self.weight_quant_granularity, (Granularity.PER_CHANNEL,), "weight_quant_granularity"),
                     (self.act_quant_granularity, (Granularity.PER_TENSOR, Granularity.PER_TOKEN),
                      "act_quant_granularity"),
                     (self.kvcache_quant_granularity, (Granularity.PER_CHANNEL,), "kvcache_quant_granularity"))
        for value, allowed, name in supported:
            if value not in allowed:
                raise ValueError(f"PTQConfig.{name}={value.value} is not supported; use "
                                 f"{' or '.join(a.value for a in allowed)}")
        self._check_calibration_options()
        if self.weight_quant_dtype is None and self.kvcache_quant_dtype is None:
            raise ValueError("PTQConfig quantizes nothing: set weight_quant_dtype and/or kvcache_quant_dtype")

    def _check_calibration_options(self):
        if not 50.0 < self.act_clip_percentile <= 100.0:
            raise ValueError(f"PTQConfig.act_clip_percentile must be in (50, 100], got {self.act_clip_percentile}")
        if self.act_observer is not RangeObserver.MINMAX and self.act_quant_dtype is None:
            raise ValueError("PTQConfig.act_observer only applies with act_quant_dtype=int8")
        if not isinstance(self.smooth_alpha_search, (tuple, list)):
            raise TypeError(f"PTQConfig.smooth_alpha_search must be a list of alphas, got {self.smooth_alpha_search!r}")
        alphas = tuple(self.smooth_alpha_search)
        if alphas and self.outliers_suppression is not OutliersSuppressionType.SMOOTH:
            raise ValueError("PTQConfig.smooth_alpha_search needs outliers_suppression=SMOOTH")
        if self.smooth_power_of_two and self.outliers_suppression is not OutliersSuppressionType.SMOOTH:
            raise ValueError("PTQConfig.smooth_power_of_two needs outliers_suppression=SMOOTH")
        if self.range_mantissa_bits is not None and not (isinstance(self.range_mantissa_bits, int)
                                                         and 1 <= self.range_mantissa_bits <= 23):
            raise ValueError(f"PTQConfig.range_mantissa_bits must be an integer in [1, 23] or None, got "
                             f"{self.range_mantissa_bits!r}")
        if any(a is not None and not 0.0 <= a <= 1.0 for a in alphas):
            raise ValueError(f"PTQConfig.smooth_alpha_search values must be in [0, 1] or None, got {alphas}")
        object.__setattr__(self, "smooth_alpha_search", alphas)
        self._check_layer_overrides()
        self._check_fallback_options()

    def _check_layer_overrides(self):
        pairs = self.layer_overrides.items() if isinstance(self.layer_overrides, dict) else self.layer_overrides
        choices = [p.value for p in LayerPrecision]
        if any(not (isinstance(entry, (tuple, list)) and len(entry) == 2 and isinstance(entry[0], str) and entry[0])
               for entry in pairs):
            raise ValueError(f"PTQConfig.layer_overrides must map non-empty name substrings to precisions, got "
                             f"{self.layer_overrides!r}")
        bad = [p for _, p in pairs if not isinstance(p, LayerPrecision) and p not in choices]
        if bad:
            raise ValueError(f"PTQConfig.layer_overrides: {bad[0]!r} is not one of {choices}")
        overrides = tuple((pattern, LayerPrecision(precision)) for pattern, precision in pairs)
        if any(p.value.startswith("a8w8") for _, p in overrides) and self.act_quant_dtype is None:
            raise ValueError("PTQConfig.layer_overrides: a8w8 layers need act_quant_dtype=int8")
        object.__setattr__(self, "layer_overrides", overrides)

    def _check_fallback_options(self):
        searching = self.fallback_kl_budget is not None
        if (self.fallback_layers or searching) and self.act_quant_dtype is None:
            raise ValueError("PTQConfig: fallback applies to activation-quantized linears (act_quant_dtype=int8)")
        if (self.fallback_layers or searching) and self.sensitivity_samples < 1:
            raise ValueError("PTQConfig: fallback ranks linears by sensitivity; set sensitivity_samples >= 1")
        if self.fallback_layers and searching:
            raise ValueError("PTQConfig: set fallback_layers or fallback_kl_budget, not both")
        if self.fallback_precision not in (LayerPrecision.W8, LayerPrecision.FLOAT):
            raise ValueError(f"PTQConfig.fallback_precision must be w8 or float, got {self.fallback_precision.value}")
        if min(self.sensitivity_samples, self.fallback_layers) < 0 or self.fallback_holdout_samples < 1:
            raise ValueError("PTQConfig: sensitivity_samples and fallback_layers must be >= 0, "
                             "fallback_holdout_samples >= 1")
        if not 0.0 <= self.fallback_max_fraction <= 1.0 or (searching and self.fallback_kl_budget <= 0):
            raise ValueError("PTQConfig: fallback_max_fraction must be in [0, 1] and fallback_kl_budget > 0")

    @property
    def needs_calibration_data(self):
        """Round-to-nearest weights need no data; activation and KV-cache ranges do."""
        return self.act_quant_dtype is not None or self.kvcache_quant_dtype is not None

    @property
    def name(self):
        """Short label, e.g. 'a8w8c8', 'a16w8'."""
        parts = []
        if self.weight_quant_dtype is not None:
            parts.append("a8w8" if self.act_quant_dtype is not None else "a16w8")
        if self.kvcache_quant_dtype is not None:
            parts.append("c8")
        return "".join(parts)

    def quantization_fields(self):
        """Everything that shapes the quantized checkpoint (all but `mode`), as plain data."""
        data = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "mode":
                continue
            if f.name.endswith("_dtype"):
                value = _dtype_name(value, f.name)
            data[f.name] = _plain(value)
        return data

    def dump(self, path):
        """Write the config as YAML (atomically)."""
        path = Path(path)
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(yaml.safe_dump({"mode": self.mode.value, **self.quantization_fields()}, sort_keys=False))
        tmp.replace(path)
        return path

    @classmethod
    def from_dict(cls, data, **overrides):
        """Inverse of `quantization_fields` (plus optional 'mode'); unknown keys are named in the error."""
        data = {**data, **overrides}
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(data) - set(known))
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
