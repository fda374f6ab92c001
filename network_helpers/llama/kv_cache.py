"""Static (pre-allocated) KV cache: one decode step writes one position and reads the whole cache."""
import numpy as np
import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops


def scatter_indices(positions, n_kv_heads):
    """(B, H, S, 3) indices (b, h, position) of the tokens at `positions` (B, S)."""
    batch, seq = positions.shape
    shape = (batch, n_kv_heads, seq)
    b = ops.arange(batch, dtype=ms.int32).reshape(batch, 1, 1).broadcast_to(shape)
    h = ops.arange(n_kv_heads, dtype=ms.int32).reshape(1, n_kv_heads, 1).broadcast_to(shape)
    pos = positions.astype(ms.int32).reshape(batch, 1, seq).broadcast_to(shape)
    return ops.stack((b, h, pos), -1)


class StaticKVCache(nn.Cell):
    """key/value caches of shape (batch, n_kv_heads, seq_length, head_dim).

    `construct(key, value, batch_valid_length)` stores the new key/value (B, H, S, D) and returns the keys and
    values attention must use: the new ones for a full or prefill pass (S > 1 or no length given) and the whole
    cache for a decode step (S == 1, lengths (B,)) or a prefill chunk (`batch_valid_length` then holds the
    chunk's cache positions, (B, S)). Subclasses change how values are stored through `encode`/`decode`; one
    with `fused_decode` True also attends a decode step itself: `decode_attention(query, key, value, lengths,
    scale)` stores the step (`write`) and returns the attention context (B, H, 1, D). `decode_operands()` are
    what a decode-layer kernel reads, in the format `decode_scheme` names.
    """
    fused_decode = False
    decode_scheme = "f32"

    def __init__(self, batch_size, n_kv_heads, seq_length, head_dim, dtype=ms.float32):
        super().__init__()
        shape = (batch_size, n_kv_heads, seq_length, head_dim)
        self.n_kv_heads, self.seq_length = n_kv_heads, seq_length
        self.key_cache = Parameter(Tensor(np.zeros(shape), self.storage_dtype(dtype)), name="key_cache",
                                   requires_grad=False)
        self.value_cache = Parameter(Tensor(np.zeros(shape), self.storage_dtype(dtype)), name="value_cache",
                                     requires_grad=False)

    @staticmethod
    def storage_dtype(compute_dtype):
        return compute_dtype

    def decode_operands(self):
        return self.key_cache, self.value_cache

    def encode_key(self, key):
        return key.astype(self.key_cache.dtype)

    def encode_value(self, value):
        return value.astype(self.value_cache.dtype)

    def decode_key(self, key, dtype):
        return key.astype(dtype)

    def decode_value(self, value, dtype):
        return value.astype(dtype)

    def construct(self, key, value, batch_valid_length=None):
        stored_key, stored_value = self.encode_key(key), self.encode_value(value)
        if batch_valid_length is None:  # full forward without cache (perplexity, calibration)
            return self.decode_key(stored_key, key.dtype), self.decode_value(stored_value, value.dtype)
        seq = key.shape[2]
        if batch_valid_length.ndim == 2:  # a chunk: write its positions, attend over the whole cache
            return self._write_and_read(stored_key, stored_value, batch_valid_length, key.dtype)
        if seq > 1:  # prefill: write positions [0, seq)
            padded_key = ops.pad(stored_key, (0, 0, 0, self.seq_length - seq))
            padded_value = ops.pad(stored_value, (0, 0, 0, self.seq_length - seq))
            key_cache = ops.assign(self.key_cache, padded_key)
            value_cache = ops.assign(self.value_cache, padded_value)
            key_out = ops.depend(self.decode_key(stored_key, key.dtype), key_cache)
            value_out = ops.depend(self.decode_value(stored_value, value.dtype), value_cache)
            return key_out, value_out
        return self._write_and_read(stored_key, stored_value, batch_valid_length.reshape(-1, 1) - 1, key.dtype)

    def store(self, cache, values, positions):
        """Write `values` (B, H, S, X) into `cache` (B, H, seq_length, X) at `positions` (B, S); returns the
        updated cache. (Subclasses keep more per-token state than keys and values, e.g. their scales.)"""
        return ops.scatter_nd_update(cache, scatter_indices(positions, self.n_kv_heads), values)

    def write(self, stored_key, stored_value, positions):
        """Write encoded keys/values (B, H, S, D) at cache `positions` (B, S); returns the updated caches."""
        return self.store(self.key_cache, stored_key, positions), self.store(self.value_cache, stored_value, positions)

    def _write_and_read(self, stored_key, stored_value, positions, dtype):
        """Write the stored key/value at `positions` (B, S); return the whole decoded cache."""
        key_cache, value_cache = self.write(stored_key, stored_value, positions)
        return self.decode_key(key_cache, dtype), self.decode_value(value_cache, dtype)
