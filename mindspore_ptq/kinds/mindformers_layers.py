"""MindFormers 1.6 experimental.infer layers: the same quantized linears serve its parallel linears.

Registered when MindFormers is importable; a debug log says so when it is not. Its paged KV cache
(ParallelPagedAttentionMgr) relies on Ascend-only kernels and is not registered for C8.
"""
import logging

from ..cells.registry import register

logger = logging.getLogger(__name__)


def register_mindformers_layers(kinds):
    """Register MindFormers' ColumnParallelLinear/RowParallelLinear; returns the registered classes."""
    try:
        from mindformers.experimental.infer.core.layers import ColumnParallelLinear, RowParallelLinear
    except ImportError as err:
        logger.debug("MindFormers layers not registered for quantization: %s", err)
        return ()
    register(ColumnParallelLinear, RowParallelLinear)(kinds["linear"].wrapper)
    return ColumnParallelLinear, RowParallelLinear
