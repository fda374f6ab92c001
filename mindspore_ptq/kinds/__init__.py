"""The kinds of quantizable cell, one module each (see kinds.kind.CellKind); KINDS is their table. The float
cells of the portable network and of MindFormers (when importable) are registered to their kinds' wrappers."""
from . import embedding, kv_cache, linear
from .kind import CellKind
from .mindformers_layers import register_mindformers_layers
from .portable_layers import register_portable_layers

KINDS = {kind.name: kind for kind in (linear.KIND, kv_cache.KIND, embedding.KIND)}
register_portable_layers(KINDS)
register_mindformers_layers(KINDS)

__all__ = ["CellKind", "KINDS"]
