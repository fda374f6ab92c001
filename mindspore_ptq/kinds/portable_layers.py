"""The portable ParallelLlama's cells, registered to the wrapper of the kind network_helpers' layouts declare."""
from network_helpers.layouts import QUANTIZABLE_CELLS

from ..cells.registry import register


def register_portable_layers(kinds):
    """Register each declared cell type to the wrapper of its kind in `kinds`; returns the registered types."""
    for kind, cell_types in QUANTIZABLE_CELLS.items():
        register(*cell_types)(kinds[kind].wrapper)
    return tuple(t for types in QUANTIZABLE_CELLS.values() for t in types)
