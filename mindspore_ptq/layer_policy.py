"""Which cells are quantized how: the registry says what can be, the config and blacklist say what is."""
from dataclasses import dataclass
from typing import Optional

from .cells.registry import wrapper_for
from .config import Granularity, LayerPrecision, OutliersSuppressionType, RangeObserver


@dataclass(frozen=True)
class CellPlan:
    """How one cell is quantized.

    activation: None (weight-only), PER_TENSOR (static) or PER_TOKEN (dynamic) int8 activations.
    smooth_multiply: the SmoothQuant factor is applied by a multiply in the deployed cell because no preceding
    cell can absorb it exactly. range_observer/clip_percentile: how a static range is chosen; range_mantissa_bits:
    its rounding (config.range_mantissa_bits); keep_samples: the wrapper keeps a sample of its inputs (for range
    observers and the smoothing search).
    """
    path: str
    kind: str
    activation: Optional[Granularity] = None
    smooth_multiply: bool = False
    range_observer: str = RangeObserver.MINMAX.value
    clip_percentile: float = 99.99
    range_mantissa_bits: Optional[int] = None
    keep_samples: bool = False
    skip_reason: str = ""  # set when the cell stays float: why

    @property
    def quantized(self):
        return not self.skip_reason


def blacklist_entry(path, blacklist):
    """The seed's fuzzy rule: a cell is skipped if a blacklist entry is a substring of its full name."""
    return next((entry for entry in blacklist if entry in path), None)


_DTYPE_FIELD = {"linear": "weight_quant_dtype", "kv_cache": "kvcache_quant_dtype"}


_ACTIVATION = {LayerPrecision.W8: None, LayerPrecision.A8W8_PER_TENSOR: Granularity.PER_TENSOR,
               LayerPrecision.A8W8_PER_TOKEN: Granularity.PER_TOKEN}


def layer_override(path, config):
    """(pattern, LayerPrecision) of the first layer_overrides entry contained in `path`, else (None, None)."""
    return next(((p, precision) for p, precision in config.layer_overrides if p in path), (None, None))


def _linear_plan(path, relative_path, config, foldable):
    pattern, precision = layer_override(path, config)
    if precision is LayerPrecision.FLOAT:
        return CellPlan(path, "linear", skip_reason=f"layer_overrides entry {pattern!r}: float")
    default = config.act_quant_granularity if config.act_quant_dtype is not None else None
    activation = default if precision is None else _ACTIVATION[precision]
    smooth = activation is not None and config.outliers_suppression is OutliersSuppressionType.SMOOTH
    static = activation is Granularity.PER_TENSOR
    observer = config.act_observer if static else RangeObserver.MINMAX
    keep = activation is not None and (bool(config.smooth_alpha_search) or observer is not RangeObserver.MINMAX)
    return CellPlan(path, "linear", activation, smooth_multiply=smooth and relative_path not in foldable,
                    range_observer=observer.value, clip_percentile=config.act_clip_percentile,
                    range_mantissa_bits=config.range_mantissa_bits, keep_samples=keep)


def _plan(path, relative_path, kind, config, foldable):
    entry = blacklist_entry(path, config.opname_blacklist)
    if entry is not None:
        return CellPlan(path, kind, skip_reason=f"opname_blacklist entry {entry!r}")
    if getattr(config, _DTYPE_FIELD[kind]) is None:
        return CellPlan(path, kind, skip_reason=f"{_DTYPE_FIELD[kind]} is None")
    if kind == "linear":
        return _linear_plan(path, relative_path, config, foldable)
    return CellPlan(path, kind, range_mantissa_bits=config.range_mantissa_bits)


def plan_cells(container, prefix, config, smooth_groups=(), only=None):
    """[(relative path, plan, wrapper class, float cell)] for the registered cells under `container`, skipped
    ones included (their plan says why).

    prefix: the container's full name; only: restrict to these relative paths.
    """
    foldable = {linear for _, linears in smooth_groups for linear in linears}
    plans = []
    for relative_path, cell in container.cells_and_names():
        if not relative_path or (only is not None and relative_path not in only):
            continue
        wrapper_cls = wrapper_for(cell)
        if wrapper_cls is None:
            continue
        path = f"{prefix}.{relative_path}" if prefix else relative_path
        plans.append((relative_path, _plan(path, relative_path, wrapper_cls.kind, config, foldable), wrapper_cls,
                      cell))
    return plans
