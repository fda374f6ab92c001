"""Quantized cells, found through one registry keyed by the float cell type."""
from . import kv_cache, linear_wrapper  # noqa: F401  (each module registers its wrappers)
from .mindformers_layers import register_mindformers_layers
from .registry import register, registered_types, wrapper_for

register_mindformers_layers()

__all__ = ["register", "registered_types", "wrapper_for"]
