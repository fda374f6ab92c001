"""Which kernel a deployed linear runs, chosen by PTQConfig.backend and the device (None: portable ops).

BackendTarget.NONE takes the fastest kernels for the device the process runs on (the C++ CPU kernels on CPU,
when they build; portable ops elsewhere), ASCEND MindSpore's Ascend quantized matmuls, PORTABLE the portable
MindSpore ops everywhere (the reference path). A kernel runs with the cell's 2-D float32 input and its stored
parameters only, so the checkpoint does not depend on the choice.
"""
import logging

import mindspore as ms

from ..config import BackendTarget, Granularity
from .ascend import AscendA8W8DynamicMatMul, AscendW8MatMul
from .build import kernels_available
from .cpu import A8W8DynamicMatMul, A8W8StaticMatMul, KV8DecodeAttention, W8MatMul

logger = logging.getLogger(__name__)

# Kernel cell per activation granularity (None: weight-only), per kernel family.
CPU_KERNELS = {None: W8MatMul, Granularity.PER_TENSOR: A8W8StaticMatMul, Granularity.PER_TOKEN: A8W8DynamicMatMul}
ASCEND_KERNELS = {None: AscendW8MatMul, Granularity.PER_TOKEN: AscendA8W8DynamicMatMul}


def _cpu_kernels():
    return CPU_KERNELS if ms.get_context("device_target") == "CPU" and kernels_available() else {}


FAMILIES = {BackendTarget.NONE: _cpu_kernels, BackendTarget.ASCEND: lambda: ASCEND_KERNELS,
            BackendTarget.PORTABLE: dict}


def linear_kernel(activation, backend, split_tokens=False):
    """A kernel cell for a deployed linear with `activation` granularity, or None for portable ops.

    split_tokens: each rank holds part of every token's channels (a row-parallel linear under TP), so per-token
    scales need a collective the fused kernels do not do: portable ops then.
    """
    kernel = FAMILIES[backend]().get(activation)
    if kernel is None or (split_tokens and activation is Granularity.PER_TOKEN):
        if backend is BackendTarget.ASCEND:
            logger.info("no Ascend kernel for %s activations: portable ops", getattr(activation, "value", "no"))
        return None
    return kernel()


def kv_attention_kernel(backend):
    """A kernel cell that attends a decode step over an int8 KV cache's valid prefix, or None (the cache then
    dequantizes itself for the network's attention)."""
    return KV8DecodeAttention() if backend is BackendTarget.NONE and _cpu_kernels() else None


def decode_layer_kernel_available(backend):
    """True when deployed decoder layers should run each decode step as one CPU kernel call
    (cells.decode_layer): the CPU kernels are in use."""
    return backend is BackendTarget.NONE and bool(_cpu_kernels())
