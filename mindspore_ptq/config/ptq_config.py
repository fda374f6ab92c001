"""PTQConfig: the flat, Golden Stick-style description of one quantization, made of self-validating parts
(config.parts), immutable, with a YAML round trip."""
import difflib
import enum
import numbers
import typing
from dataclasses import dataclass, fields
from typing import Optional, Tuple

import yaml
import mindspore as ms

from ms_infra.files import read_yaml_mapping, write_text_atomic

from .enums import (BackendTarget, CalibrationInputs, Granularity, LayerPrecision, OutliersSuppressionType,
                    PrecisionRecovery, PTQMode, RangeObserver)
from .parts import PARTS

_DTYPE_NAMES = {ms.int8: "Int8", ms.qint4x2: "Int4"}  # as written in .ptq.yaml
_ENUM_FIELDS = {"mode": PTQMode, "backend": BackendTarget, "outliers_suppression": OutliersSuppressionType,
                "precision_recovery": PrecisionRecovery,
                "weight_quant_granularity": Granularity, "act_quant_granularity": Granularity,
                "kvcache_quant_granularity": Granularity, "act_observer": RangeObserver,
                "calibration_inputs": CalibrationInputs, "fallback_precision": LayerPrecision}


def _dtype_name(value, field_name):
    if value is None:
        return None
    if value in _DTYPE_NAMES:
        return _DTYPE_NAMES[value]
    raise ValueError(f"PTQConfig.{field_name}: unsupported dtype {value!r}; only mindspore.int8, mindspore.int4 "
                     f"or None")


# What a scalar field's annotation admits: (value types, how the error says it). numpy numbers are numbers.
_SCALARS = {float: ((numbers.Real,), "a number"), int: ((numbers.Integral,), "an integer"),
            bool: ((bool,), "true or false"), type(None): ((type(None),), "null")}


def _admitted(annotation):
    """(value types, description) of a scalar field (float, int, bool, or Optional of one); None otherwise."""
    members = typing.get_args(annotation) if typing.get_origin(annotation) is typing.Union else (annotation,)
    if not all(member in _SCALARS for member in members):
        return None
    kinds = tuple(kind for member in members for kind in _SCALARS[member][0])
    return kinds, " or ".join(_SCALARS[member][1] for member in members)


def _check_scalar(name, value, admitted):
    """A bool is an int to Python, but not a count or a ratio."""
    kinds, description = admitted
    if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
        raise TypeError(f"PTQConfig.{name} must be {description}, got {value!r}")


def _enum_value(name, value):
    """The enum member of field `name` for a stored value, with an error listing the valid values."""
    kind = _ENUM_FIELDS[name]
    try:
        return kind(value)
    except ValueError:
        raise ValueError(f"PTQConfig.{name}: {value!r} is not one of {[m.value for m in kind]}") from None


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
    if not isinstance(value, (dict, list, tuple)) or any(
            not (isinstance(entry, (tuple, list)) and len(entry) == 2 and isinstance(entry[0], str) and entry[0])
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
    `outliers`, `calibration`, `fallback`, `recovery` (see config.parts).

    weight_quant_dtype: int8 -> symmetric int8 weights (A16W8, or A8W8 with act_quant_dtype); int4
        (mindspore.qint4x2) -> symmetric int4 weights, packed two per byte (A16W4).
    weight_quant_granularity, group_size: PER_CHANNEL (one scale per output row) or PER_GROUP (one per
        group_size = 32, 64 or 128 inputs of a row; weight-only).
    precision_recovery: GPTQ rounds the weights of each linear column by column on the Hessian of its
        calibration inputs (gptq_damp_percent, gptq_block_size, gptq_act_order), NONE to nearest.
    act_quant_dtype: int8 -> int8 activations (needs weight quantization), as act_quant_granularity says.
    kvcache_quant_dtype: int8 -> KV cache stored as int8 (C8), with static per-channel scales or, with
        kvcache_quant_granularity=per_token, one dynamic scale per token and kv head.
    embedding_quant_dtype: int8 -> token-embedding tables stored as int8 with one scale per row (opt-in).
    outliers_suppression: SMOOTH applies SmoothQuant with `smooth_alpha` before activation quantization; ROTATE
        rotates the float network first (algorithms.rotation; w2's input rotation needs model_parallel=1); AWQ
        (weight-only) scales each smoothing group's input channels by the activation-aware factor whose
        quantized output error is least (algorithms.awq), folded into the cell feeding them.
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
    group_size: int = 0
    embedding_quant_dtype: Optional[ms.dtype.Type] = None
    precision_recovery: PrecisionRecovery = PrecisionRecovery.NONE
    gptq_damp_percent: float = 0.01
    gptq_block_size: int = 128
    gptq_act_order: bool = False

    def __post_init__(self):
        for name, kind in _ENUM_FIELDS.items():
            if not isinstance(getattr(self, name), kind):
                raise TypeError(f"PTQConfig.{name} must be a {kind.__name__}, got {getattr(self, name)!r}")
        for field in fields(self):
            admitted = _admitted(field.type)
            if admitted is not None:
                _check_scalar(field.name, getattr(self, field.name), admitted)
        if not isinstance(self.opname_blacklist, (list, tuple)) or not all(isinstance(n, str) and n
                                                                           for n in self.opname_blacklist):
            raise TypeError(f"PTQConfig.opname_blacklist must be a list of non-empty strings, got "
                            f"{self.opname_blacklist!r}")
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
        if self.outliers.awq and (activations or not weights):
            raise ValueError("PTQConfig: outliers_suppression=AWQ scales weight-only quantized linears; set "
                             "weight_quant_dtype and leave act_quant_dtype None")
        if self.outliers_suppression not in (OutliersSuppressionType.NONE, OutliersSuppressionType.AWQ) \
                and not activations:
            raise ValueError(f"PTQConfig: outliers_suppression={self.outliers_suppression.value.upper()} only "
                             f"applies with act_quant_dtype=int8")
        if any(p.value.startswith("a8w8") for _, p in self.layer_overrides) and not activations:
            raise ValueError("PTQConfig.layer_overrides: a8w8 layers need act_quant_dtype=int8")
        if self.fallback.enabled and not activations:
            raise ValueError("PTQConfig: fallback applies to activation-quantized linears (act_quant_dtype=int8)")
        if self.fallback.enabled and self.calibration.sensitivity_samples < 1:
            raise ValueError("PTQConfig: fallback ranks linears by sensitivity; set sensitivity_samples >= 1")
        if not weights and not self.kv_cache.enabled and not self.embeddings.enabled:
            raise ValueError("PTQConfig quantizes nothing: set weight_quant_dtype, kvcache_quant_dtype and/or "
                             "embedding_quant_dtype")
        grouped = self.weights.bits != 8 or self.weights.granularity is not Granularity.PER_CHANNEL
        if activations and grouped and self.activations.granularity is not Granularity.PER_TOKEN:
            raise ValueError("PTQConfig: int4 or grouped weights with int8 activations (A8W4) need per-token "
                             "activations (act_quant_granularity=per_token); static per-tensor activations run with "
                             "int8 per-channel weights only")
        if self.recovery.gptq and not weights:
            raise ValueError("PTQConfig: precision_recovery=GPTQ rounds weights; set weight_quant_dtype")

    @property
    def needs_calibration_data(self):
        """Round-to-nearest weights and a per-token KV cache need no data; activation and static KV-cache ranges
        and GPTQ's Hessians do."""
        return self.activations.enabled or self.kv_cache.static or self.recovery.gptq or self.outliers.awq

    @property
    def name(self):
        """Short label, e.g. 'a8w8c8', 'a16w8', 'a16w4e8' (int8 embeddings)."""
        bits = self.weights.bits
        weights = (f"a8w{bits}" if self.activations.enabled else f"a16w{bits}") if self.weights.enabled else ""
        return weights + ("c8" if self.kv_cache.enabled else "") + ("e8" if self.embeddings.enabled else "")

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
        """Inverse of `quantization_fields` (plus optional 'mode'); an unknown key is named with the nearest
        field, an unknown enum value with the valid ones."""
        data = {**data, **overrides}
        names = [f.name for f in fields(cls)]
        unknown = [key for key in data if key not in names]
        if unknown:
            hints = [f"{key!r}" + "".join(f" (did you mean {near!r}?)" for near in
                                          difflib.get_close_matches(str(key), names, 1)) for key in unknown]
            raise ValueError(f"unknown PTQConfig field(s): {', '.join(hints)}")
        values = {}
        for key, value in data.items():
            if key in _ENUM_FIELDS and not isinstance(value, _ENUM_FIELDS[key]):
                value = _enum_value(key, value)
            elif key.endswith("_dtype") and isinstance(value, str):
                by_name = {name: dtype for dtype, name in _DTYPE_NAMES.items()}
                if value not in by_name:
                    raise ValueError(f"PTQConfig.{key}: unsupported dtype {value!r}; expected one of "
                                     f"{sorted(by_name)} or null")
                value = by_name[value]
            values[key] = value
        return cls(**values)

    @classmethod
    def load(cls, path, **overrides):
        """Read a config written by `dump`; any problem is reported with the file's name."""
        data = read_yaml_mapping(path, "PTQ config")
        try:
            return cls.from_dict(data, **overrides)
        except (ValueError, TypeError) as err:
            raise ValueError(f"PTQ config {path}: {err}") from err
