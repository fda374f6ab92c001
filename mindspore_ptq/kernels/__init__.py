"""CPU kernels for deployed quantized linears (W8, W4, A8W8) and the decode attention over an int8 KV cache,
called through MindSpore ops.Custom (AOT).

`kernels_available()` says whether the library could be built here (`unavailable_reason()` why not); the cells
of `cpu` then run the kernels, and `reference` holds the same maths in portable MindSpore ops.
"""
from .build import kernels_available, library_path, unavailable_reason
from .cpu import (A8W8DynamicMatMul, A8W8MatMul, A8W8StaticMatMul, KV8DecodeAttention, QuantPerToken, QuantStatic,
                  W4MatMul, W8MatMul, default_threads, isa, prefill_min_tokens, set_isa, set_threads, threads)
from .reference import pack_int4

__all__ = ["kernels_available", "library_path", "unavailable_reason", "W8MatMul", "W4MatMul", "A8W8MatMul",
           "QuantPerToken", "QuantStatic", "A8W8DynamicMatMul", "A8W8StaticMatMul", "KV8DecodeAttention",
           "default_threads", "isa", "set_isa", "set_threads", "threads", "prefill_min_tokens", "pack_int4"]
