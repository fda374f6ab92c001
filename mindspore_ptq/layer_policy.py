"""Which cells are quantized how: the registry says what can be, the config and blacklist say what is."""
from dataclasses import dataclass

from .cells.registry import wrapper_for
from .config import OutliersSuppressionType


@dataclass(frozen=True)
class CellPlan:
    """How one cell is quantized. `smooth_multiply`: the SmoothQuant factor is applied by a multiply in the
    deployed cell because no preceding cell can absorb it exactly."""
    path: str
    kind: str
    activation: bool = False
    smooth_multiply: bool = False
    skip_reason: str = ""  # set when the cell stays float: why

    @property
    def quantized(self):
        return not self.skip_reason


def blacklist_entry(path, blacklist):
    """The seed's fuzzy rule: a cell is skipped if a blacklist entry is a substring of its full name."""
    return next((entry for entry in blacklist if entry in path), None)


_DTYPE_FIELD = {"linear": "weight_quant_dtype", "kv_cache": "kvcache_quant_dtype"}


def _plan(path, relative_path, kind, config, foldable):
    entry = blacklist_entry(path, config.opname_blacklist)
    if entry is not None:
        return CellPlan(path, kind, skip_reason=f"opname_blacklist entry {entry!r}")
    if getattr(config, _DTYPE_FIELD[kind]) is None:
        return CellPlan(path, kind, skip_reason=f"{_DTYPE_FIELD[kind]} is None")
    if kind == "linear":
        activation = config.act_quant_dtype is not None
        smooth = activation and config.outliers_suppression is OutliersSuppressionType.SMOOTH
        return CellPlan(path, kind, activation, smooth_multiply=smooth and relative_path not in foldable)
    return CellPlan(path, kind)


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
