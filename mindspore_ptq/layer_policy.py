"""Which cells are quantized how: the registry says what can be, the config and blacklist say what is."""
from .cell_plan import CellPlan, blacklist_entry
from .cells.registry import wrapper_for
from .kinds import KINDS


def _plan(path, relative_path, kind, config, foldable):
    entry = blacklist_entry(path, config.opname_blacklist)
    if entry is not None:
        return CellPlan(path, kind, skip_reason=f"opname_blacklist entry {entry!r}")
    part, field_name = KINDS[kind].enabled_by
    if not getattr(config, part).enabled:
        return CellPlan(path, kind, skip_reason=f"{field_name} is None")
    return KINDS[kind].plan(path, relative_path, config, foldable)


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
