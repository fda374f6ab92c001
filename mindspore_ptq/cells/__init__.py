"""Calibrating wrappers and deployed quantized cells, found through one registry keyed by the float cell type
(the kinds package registers the float cells)."""
from .registry import register, registered_types, wrapper_for

__all__ = ["register", "registered_types", "wrapper_for"]
