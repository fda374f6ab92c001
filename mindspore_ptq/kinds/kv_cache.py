"""The KV-cache kind (C8): the KV cache stored as int8, with static per-channel (kv head x head dim) scales and
zero points, or with one dynamic symmetric scale per token and kv head. Everything about the kind is here: the
calibrating wrapper (running min/max of keys and values), the int8 caches, the plan, the quantizer, the empty
DEPLOY cell and the report facts.

The static int8 cache is the network's own cache class with its storage hooks (`storage_dtype`, `encode_*`,
`decode_*`, the contract of network_helpers' KV caches) replaced: `Int8KVCache.from_float(cache)`. The
per-token one also stores each token's scales, in two more run-time caches: `PerTokenInt8KVCache.from_float`.
"""
import functools

import numpy as np
import mindspore as ms
from mindspore import Parameter, Tensor, ops

from .. import quant_functions as qf
from ..cell_plan import CellPlan, kernel_backend_for
from ..cells.wrapper import QuantWrapper
from ..kernels.select import kv_attention_kernel
from ..observers import MinMaxObserver
from .kind import CellKind

SCALE_NAMES = ("key_scale", "key_zero_point", "value_scale", "value_zero_point")


class Int8KVCache:
    """Mixin over a float KV cache class: stored keys/values are int8, q = clip(round(x / scale) + zp),
    x' = (q - zp) * scale."""
    scheme = "KV int8 static per-channel asymmetric"
    decode_scheme = "int8"

    def __init__(self, batch_size, n_kv_heads, seq_length, head_dim, dtype=ms.float32, attention=None):
        super().__init__(batch_size, n_kv_heads, seq_length, head_dim, dtype)
        shape = (1, n_kv_heads, 1, head_dim)
        for name in SCALE_NAMES:
            setattr(self, name, Parameter(Tensor(np.zeros(shape), ms.float32), name=name, requires_grad=False))
        self.attention, self.fused_decode = attention, attention is not None

    @classmethod
    def from_float(cls, float_cache, attention=None):
        """An empty int8 cache of the same class and shape as `float_cache`; with an `attention` kernel (see
        kernels.select) decode steps attend the int8 cache directly, over the valid prefix only."""
        batch, heads, seq, dim = float_cache.key_cache.shape
        return int8_cache_class(type(float_cache))(batch, heads, seq, dim, float_cache.key_cache.dtype, attention)

    def decode_attention(self, query, key, value, lengths, scale):
        """Store a decode step's key/value at position length-1, then attend positions [0, length) of the int8
        cache with the kernel: no dequantized copy of the cache."""
        key_cache, value_cache = self.write(self.encode_key(key), self.encode_value(value),
                                            lengths.astype(ms.int32).reshape(-1, 1) - 1)
        return self.attention(query.astype(ms.float32), key_cache, value_cache, self.key_scale, self.key_zero_point,
                              self.value_scale, self.value_zero_point, lengths.astype(ms.int32),
                              Tensor([scale], ms.float32))

    def decode_operands(self):
        return (self.key_cache, self.value_cache, self.key_scale, self.key_zero_point, self.value_scale,
                self.value_zero_point)

    @staticmethod
    def storage_dtype(compute_dtype):
        return ms.int8

    @staticmethod
    def shard_axes():
        """Scales follow the kv heads, which are split across tensor-parallel ranks."""
        return {name: 1 for name in SCALE_NAMES}

    @staticmethod
    def _encode(x, scale, zero_point):
        q = ops.round(x.astype(ms.float32) / scale) + zero_point
        return ops.clip_by_value(q, qf.QMIN, qf.QMAX).astype(ms.int8)

    def encode_key(self, key):
        return self._encode(key, self.key_scale, self.key_zero_point)

    def encode_value(self, value):
        return self._encode(value, self.value_scale, self.value_zero_point)

    def decode_key(self, key, dtype):
        return ((key.astype(ms.float32) - self.key_zero_point) * self.key_scale).astype(dtype)

    def decode_value(self, value, dtype):
        return ((value.astype(ms.float32) - self.value_zero_point) * self.value_scale).astype(dtype)

    def set_quant_params(self, key_scale, key_zero_point, value_scale, value_zero_point):
        shape = self.key_scale.shape
        for param, value in ((self.key_scale, key_scale), (self.key_zero_point, key_zero_point),
                             (self.value_scale, value_scale), (self.value_zero_point, value_zero_point)):
            param.set_data(Tensor(np.reshape(value, shape), ms.float32))


class PerTokenInt8KVCache:
    """Mixin over a float KV cache class: each token's key (and value) of each kv head is stored as int8 codes
    q = clip(round(x / s), -127, 127) with s = max|x| / 127 over the head's channels, computed as the token is
    written; s goes into `key_cache_scale`/`value_cache_scale` (batch, kv heads, seq, 1), run-time state like
    the cache itself, so nothing is calibrated or stored. x' = q * s. Decode steps dequantize the cache (no
    attention kernel reads this format)."""
    scheme = "KV int8 dynamic per-token symmetric (one scale per token and kv head)"
    decode_scheme = "int8_per_token"

    def __init__(self, batch_size, n_kv_heads, seq_length, head_dim, dtype=ms.float32):
        super().__init__(batch_size, n_kv_heads, seq_length, head_dim, dtype)
        shape = (batch_size, n_kv_heads, seq_length, 1)
        self.key_cache_scale = Parameter(Tensor(np.ones(shape), ms.float32), name="key_cache_scale",
                                         requires_grad=False)
        self.value_cache_scale = Parameter(Tensor(np.ones(shape), ms.float32), name="value_cache_scale",
                                           requires_grad=False)

    @classmethod
    def from_float(cls, float_cache):
        """An empty per-token int8 cache of the same class and shape as `float_cache`."""
        batch, heads, seq, dim = float_cache.key_cache.shape
        return per_token_cache_class(type(float_cache))(batch, heads, seq, dim, float_cache.key_cache.dtype)

    @staticmethod
    def storage_dtype(compute_dtype):
        return ms.int8

    @staticmethod
    def shard_axes():
        return {}

    @staticmethod
    def _quantize(x):
        """(codes int8, scales (..., 1)) of x (B, H, S, D), one symmetric scale per token and head."""
        x = x.astype(ms.float32)
        abs_max = ops.amax(ops.abs(x), -1, keepdims=True)
        scale = ops.where(abs_max > 0, abs_max / qf.SYM_MAX, ops.ones_like(abs_max))
        return ops.clip_by_value(ops.round(x / scale), -qf.SYM_MAX, qf.SYM_MAX).astype(ms.int8), scale

    @staticmethod
    def _dequantize(codes, scale, dtype):
        return (codes.astype(ms.float32) * scale).astype(dtype)

    def construct(self, key, value, batch_valid_length=None):
        """As the float cache's construct (see network_helpers' StaticKVCache), on (codes, scales) pairs."""
        (key_q, key_s), (value_q, value_s) = self._quantize(key), self._quantize(value)
        if batch_valid_length is None:  # full forward without cache: the values as the cache would return them
            return self._dequantize(key_q, key_s, key.dtype), self._dequantize(value_q, value_s, value.dtype)
        seq = key.shape[2]
        updates = ((self.key_cache, key_q), (self.value_cache, value_q), (self.key_cache_scale, key_s),
                   (self.value_cache_scale, value_s))
        if batch_valid_length.ndim == 1 and seq > 1:  # prefill: write positions [0, seq)
            pad = (0, 0, 0, self.seq_length - seq)
            written = [ops.assign(cache, ops.pad(new, pad)) for cache, new in updates]
            key_out, value_out = self._dequantize(key_q, key_s, key.dtype), self._dequantize(value_q, value_s,
                                                                                             value.dtype)
            return ops.depend(key_out, written), ops.depend(value_out, written)
        positions = batch_valid_length if batch_valid_length.ndim == 2 else batch_valid_length.reshape(-1, 1) - 1
        key_cache, value_cache, key_scale, value_scale = (self.store(cache, new, positions) for cache, new in updates)
        return self._dequantize(key_cache, key_scale, key.dtype), self._dequantize(value_cache, value_scale,
                                                                                   value.dtype)

    def set_quant_params(self):
        """Nothing to set: the scales are computed as tokens are written."""


@functools.lru_cache(maxsize=None)
def int8_cache_class(float_cache_class):
    """The int8 variant of a float KV cache class (one class per float class)."""
    return type(f"Int8{float_cache_class.__name__}", (Int8KVCache, float_cache_class), {})


@functools.lru_cache(maxsize=None)
def per_token_cache_class(float_cache_class):
    """The per-token int8 variant of a float KV cache class (one class per float class)."""
    return type(f"PerTokenInt8{float_cache_class.__name__}", (PerTokenInt8KVCache, float_cache_class), {})


def _channels(x):
    """(B, H, S, D) -> (B*S, H*D): one row per token, one column per cache channel."""
    batch, heads, seq, dim = x.shape
    return x.transpose(0, 2, 1, 3).reshape(batch * seq, heads * dim)


class KVCacheQuantWrapper(QuantWrapper):
    """Stands in for a float KV cache: observes keys/values (running min/max), then runs the int8 cache."""
    kind = "kv_cache"
    fused_decode = False  # calibration runs full forwards only

    def __init__(self, name, float_cell, plan):
        super().__init__(name, float_cell, plan)
        self.key_observer = MinMaxObserver(f"{name} (keys)")
        self.value_observer = MinMaxObserver(f"{name} (values)")

    def construct(self, key, value, batch_valid_length=None):
        if self.quantized is None and not self.plan.per_token:
            self.key_observer.update(_channels(key.asnumpy()))
            self.value_observer.update(_channels(value.asnumpy()))
        if self.quantized is None or not self.active:  # inactive: the float cache, for sensitivity measurements
            return self.float_cell(key, value, batch_valid_length)
        return self.run_quantized(key, value, batch_valid_length)


def plan(path, relative_path, config, foldable):
    """activation: the cache's granularity (PER_CHANNEL static, PER_TOKEN dynamic)."""
    return CellPlan(path, "kv_cache", config.kv_cache.granularity,
                    range_mantissa_bits=config.calibration.range_mantissa_bits,
                    kernel_backend=kernel_backend_for(config))


def quantize_kv_cache(wrapper):
    """The int8 KV cache: per-channel scales and zero points from the observed key/value ranges, or per token."""
    if wrapper.plan.per_token:
        return wrapper.set_quantized(PerTokenInt8KVCache.from_float(wrapper.float_cell))
    wrapper.key_observer.check_seen()
    params = [qf.asymmetric_scale_zero_point(*wrapper.planned_range(observer.minimum, observer.maximum))
              for observer in (wrapper.key_observer, wrapper.value_observer)]
    cell = Int8KVCache.from_float(wrapper.float_cell)
    cell.set_quant_params(*params[0], *params[1])
    return wrapper.set_quantized(cell)


def facts(cell):
    wrapper = cell.wrapper
    facts = {"scheme": wrapper.quantized.scheme}
    if not wrapper.plan.per_token and wrapper.key_observer.minimum is not None:
        facts.update(key_min=float(wrapper.key_observer.minimum.min()),
                     key_max=float(wrapper.key_observer.maximum.max()),
                     value_min=float(wrapper.value_observer.minimum.min()),
                     value_max=float(wrapper.value_observer.maximum.max()))
    return facts


def empty_cell(wrapper):
    if wrapper.plan.per_token:
        return PerTokenInt8KVCache.from_float(wrapper.float_cell)
    backend = wrapper.plan.kernel_backend
    return Int8KVCache.from_float(wrapper.float_cell, None if backend is None else kv_attention_kernel(backend))


KIND = CellKind("kv_cache", KVCacheQuantWrapper, enabled_by=("kv_cache", "kvcache_quant_dtype"), plan=plan,
                quantize=quantize_kv_cache, empty_cell=empty_cell, facts=facts)
