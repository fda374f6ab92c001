"""C8: the KV cache stored as int8 with static per-channel (kv head x head dim) scales and zero points."""
import numpy as np
import mindspore as ms
from mindspore import Parameter, Tensor, ops

from network_helpers.llama.kv_cache import StaticKVCache

from .. import quant_functions as qf
from ..observers import MinMaxObserver
from .registry import register
from .wrapper import QuantWrapper


class Int8KVCache(StaticKVCache):
    """StaticKVCache whose stored keys/values are int8: q = clip(round(x / scale) + zp), x' = (q - zp) * scale."""

    def __init__(self, batch_size, n_kv_heads, seq_length, head_dim, dtype=ms.float32):
        super().__init__(batch_size, n_kv_heads, seq_length, head_dim, dtype)
        shape = (1, n_kv_heads, 1, head_dim)
        for name in ("key_scale", "key_zero_point", "value_scale", "value_zero_point"):
            setattr(self, name, Parameter(Tensor(np.zeros(shape), ms.float32), name=name, requires_grad=False))

    @staticmethod
    def storage_dtype(compute_dtype):
        return ms.int8

    @staticmethod
    def shard_axes():
        """Scales follow the kv heads, which are split across tensor-parallel ranks."""
        return {name: 1 for name in ("key_scale", "key_zero_point", "value_scale", "value_zero_point")}

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


def _channels(x):
    """(B, H, S, D) -> (B*S, H*D): one row per token, one column per cache channel."""
    batch, heads, seq, dim = x.shape
    return x.transpose(0, 2, 1, 3).reshape(batch * seq, heads * dim)


@register(StaticKVCache)
class KVCacheQuantWrapper(QuantWrapper):
    """Stands in for a float KV cache: observes keys/values (running min/max), then runs the int8 cache."""
    kind = "kv_cache"

    def __init__(self, name, float_cell, plan):
        super().__init__(name, float_cell, plan)
        self.key_observer = MinMaxObserver(f"{name} (keys)")
        self.value_observer = MinMaxObserver(f"{name} (values)")

    def construct(self, key, value, batch_valid_length=None):
        if self.quantized is not None and self.active:
            return self.quantized(key, value, batch_valid_length)
        if self.quantized is not None:  # inactive: the float cache, for sensitivity measurements
            return self.float_cell(key, value, batch_valid_length)
        self.key_observer.update(_channels(key.asnumpy()))
        self.value_observer.update(_channels(value.asnumpy()))
        return self.float_cell(key, value, batch_valid_length)

    def stats(self):
        stats = {"scheme": "KV int8 static per-channel asymmetric"}
        if self.key_observer.minimum is not None:
            stats.update(key_min=float(self.key_observer.minimum.min()), key_max=float(self.key_observer.maximum.max()),
                         value_min=float(self.value_observer.minimum.min()),
                         value_max=float(self.value_observer.maximum.max()))
        return stats

    def build_empty(self):
        batch, heads, seq, dim = self.float_cell.key_cache.shape
        cell = Int8KVCache(batch, heads, seq, dim, self.float_cell.key_cache.dtype)
        object.__setattr__(self, "quantized", cell)
        return cell

    def quantize(self):
        self.key_observer.check_seen()
        key_scale, key_zp = qf.asymmetric_scale_zero_point(
            *self.planned_range(self.key_observer.minimum, self.key_observer.maximum))
        value_scale, value_zp = qf.asymmetric_scale_zero_point(
            *self.planned_range(self.value_observer.minimum, self.value_observer.maximum))
        cell = self.build_empty()
        cell.set_quant_params(key_scale, key_zp, value_scale, value_zp)
        return cell
