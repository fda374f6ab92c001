"""CellKind: everything the plugin knows about one kind of quantizable cell, in one record."""
from dataclasses import dataclass
from typing import Callable, Tuple


@dataclass(frozen=True)
class CellKind:
    """name: the kind ('linear', 'kv_cache'), as network layouts declare their cells; wrapper: the calibrating
    wrapper class; enabled_by: (config part, the PTQConfig field a user sets) that turns the kind on;
    plan(path, relative_path, config, foldable) -> CellPlan; quantize(wrapper) -> deployed cell (round to nearest,
    from the observations); empty_cell(wrapper) -> the deployed cell with zero parameters (DEPLOY);
    facts(calibrated_cell) -> the report's fields for the cell."""
    name: str
    wrapper: type
    enabled_by: Tuple[str, str]
    plan: Callable
    quantize: Callable
    empty_cell: Callable
    facts: Callable
