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
from .cpu import A8W8DynamicMatMul, A8W8StaticMatMul, KV8DecodeAttention, W4MatMul, W8MatMul

logger = logging.getLogger(__name__)

# Kernel cell per (activation granularity (None: weight-only), weight format), per kernel family. Weight formats:
# "w8" int8 with one scale per row, "w4" packed int4 with (out, groups) scales; grouped int8 has no kernel.
CPU_KERNELS = {(None, "w8"): W8MatMul, (Granularity.PER_TENSOR, "w8"): A8W8StaticMatMul,
               (Granularity.PER_TOKEN, "w8"): A8W8DynamicMatMul, (None, "w4"): W4MatMul}
ASCEND_KERNELS = {(None, "w8"): AscendW8MatMul, (Granularity.PER_TOKEN, "w8"): AscendA8W8DynamicMatMul}


def _cpu_kernels():
    return CPU_KERNELS if ms.get_context("device_target") == "CPU" and kernels_available() else {}


FAMILIES = {BackendTarget.NONE: _cpu_kernels, BackendTarget.ASCEND: lambda: ASCEND_KERNELS,
            BackendTarget.PORTABLE: dict}


def linear_kernel(activation, backend, split_tokens=False, weight_format="w8"):
    """A kernel cell for a deployed linear with `activation` granularity and `weight_format` (see the tables), or
    None for portable ops.

    split_tokens: each rank holds part of every token's channels (a row-parallel linear under TP), so per-token
    scales need a collective the fused kernels do not do: portable ops then.
    """
    kernel = FAMILIES[backend]().get((activation, weight_format))
    if kernel is None or (split_tokens and activation is Granularity.PER_TOKEN):
        if backend is not BackendTarget.PORTABLE:
            logger.info("no %s kernel for %s activations with %s weights: portable ops", backend.value,
                        getattr(activation, "value", "float"), weight_format)
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
