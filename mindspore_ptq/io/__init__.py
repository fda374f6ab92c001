"""Quantized checkpoints: saved with their config, loaded into a checked structure, merged from TP shards."""
from .checkpoint import checkpoint_size_mb, load_quantized, quantized_parameter, save_quantized
from .paths import config_path_for

__all__ = ["checkpoint_size_mb", "config_path_for", "load_quantized", "quantized_parameter", "save_quantized"]
