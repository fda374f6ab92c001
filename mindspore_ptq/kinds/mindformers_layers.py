"""MindFormers 1.6 experimental.infer layers: the same quantized linears serve its parallel linears.

Registered when MindFormers is importable; a debug log says so when it is not. Its paged KV cache
(ParallelPagedAttentionMgr) relies on Ascend-only kernels and is not registered for C8.
"""
import logging

from ms_infra.frameworks import import_quietly

from ..cells.registry import register

logger = logging.getLogger(__name__)


def register_mindformers_layers(kinds):
    """Register MindFormers' ColumnParallelLinear/RowParallelLinear; returns the registered classes."""
    try:
        layers = import_quietly("mindformers.experimental.infer.core.layers")
    except ImportError as err:
        logger.debug("MindFormers layers not registered for quantization: %s", err)
        return ()
    register(layers.ColumnParallelLinear, layers.RowParallelLinear)(kinds["linear"].wrapper)
    return layers.ColumnParallelLinear, layers.RowParallelLinear
