"""The int8 KV caches against the float cache and exact maths: same positions, values within half a step per
channel (static) or of each token's own scale (per token)."""
import numpy as np
import mindspore as ms
from mindspore import Tensor

from mindspore_ptq import quant_functions as qf
from mindspore_ptq.kinds.kv_cache import Int8KVCache, PerTokenInt8KVCache
from ms_infra.checkpoint import is_runtime_state
from network_helpers.llama.kv_cache import StaticKVCache

RNG = np.random.default_rng(0)
B, H, S, D = 2, 3, 16, 8


def _pair():
    keys = RNG.standard_normal((B, H, 6, D)).astype(np.float32) + np.arange(D)  # channel offsets
    values = RNG.standard_normal((B, H, 6, D)).astype(np.float32)
    cache = Int8KVCache.from_float(StaticKVCache(B, H, S, D))
    per_channel = lambda x: x.transpose(1, 3, 0, 2).reshape(H, D, -1)  # noqa: E731
    k_scale, k_zp = qf.asymmetric_scale_zero_point(per_channel(keys).min(-1), per_channel(keys).max(-1))
    v_scale, v_zp = qf.asymmetric_scale_zero_point(per_channel(values).min(-1), per_channel(values).max(-1))
    cache.set_quant_params(k_scale, k_zp, v_scale, v_zp)
    return keys, values, cache, StaticKVCache(B, H, S, D), k_scale.reshape(1, H, 1, D)


def test_prefill_then_decode_matches_float_cache_within_half_a_step():
    keys, values, int8_cache, float_cache, k_scale = _pair()
    lengths = Tensor([4, 5], ms.int32)
    for cache in (int8_cache, float_cache):
        cache(Tensor(keys[:, :, :5]), Tensor(values[:, :, :5]), lengths)
    step_key, step_value = keys[:, :, 5:6], values[:, :, 5:6]
    k8, _ = int8_cache(Tensor(step_key), Tensor(step_value), Tensor([5, 6], ms.int32))
    kf, _ = float_cache(Tensor(step_key), Tensor(step_value), Tensor([5, 6], ms.int32))
    assert int8_cache.key_cache.dtype == ms.int8
    error = np.abs(k8.asnumpy() - kf.asnumpy())
    for row, length in enumerate([5, 6]):  # positions past each row's length are masked by attention
        assert (error[row, :, :length] <= k_scale[0] / 2 + 1e-6).all()
    np.testing.assert_allclose(k8.asnumpy()[1, :, 5], step_key[1, :, 0], atol=float(k_scale.max()) / 2 + 1e-6)


def test_full_forward_returns_the_round_tripped_values():
    keys, values, int8_cache, _, k_scale = _pair()
    k8, _ = int8_cache(Tensor(keys), Tensor(values))
    assert (np.abs(k8.asnumpy() - keys) <= k_scale / 2 + 1e-6).all()


def per_token_round_trip(x):
    """numpy: x quantized to int8 with one symmetric scale per (batch, head, token), and back."""
    scale = np.abs(x).max(-1, keepdims=True) / qf.SYM_MAX
    scale = np.where(scale > 0, scale, 1.0)
    return np.clip(np.round(x / scale), -qf.SYM_MAX, qf.SYM_MAX) * scale, scale


def test_per_token_cache_stores_each_token_with_its_own_scale():
    """Prefill 5 tokens, then decode two steps at each row's own position: every written token reads back as its
    per-token round trip (half a step of its own scale at most), the scales are run-time state, unwritten
    positions stay zero."""
    keys = RNG.standard_normal((B, H, 7, D)).astype(np.float32) * np.geomspace(0.01, 100, 7)[None, None, :, None]
    values = RNG.standard_normal((B, H, 7, D)).astype(np.float32)
    cache = PerTokenInt8KVCache.from_float(StaticKVCache(B, H, S, D))
    assert cache.key_cache.dtype == ms.int8 and cache.key_cache_scale.shape == (B, H, S, 1)
    assert all(is_runtime_state(name) for name, _ in cache.parameters_and_names())
    cache(Tensor(keys[:, :, :5]), Tensor(values[:, :, :5]), Tensor([5, 5], ms.int32))
    lengths = np.array([4, 5])  # row 0's prompt was one token shorter: its steps overwrite position 4, then 5
    for step in range(2):
        lengths += 1
        positions = lengths - 1
        step_keys = keys[np.arange(B), :, positions][:, :, None]  # (B, H, 1, D): each row's token at its position
        step_values = values[np.arange(B), :, positions][:, :, None]
        key_out, value_out = cache(Tensor(step_keys), Tensor(step_values), Tensor(lengths, ms.int32))
    key_out, value_out = key_out.asnumpy(), value_out.asnumpy()
    for row, length in enumerate(lengths):
        expected_keys, key_scale = per_token_round_trip(keys[row, :, :length])
        np.testing.assert_allclose(key_out[row, :, :length], expected_keys, rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(value_out[row, :, :length], per_token_round_trip(values[row, :, :length])[0],
                                   rtol=1e-6, atol=1e-7)
        assert (np.abs(key_out[row, :, :length] - keys[row, :, :length]) <= key_scale / 2 * (1 + 1e-6)).all()
        assert not key_out[row, :, length:].any()
    # a per-token scale follows each token's own range: the smallest keys keep their relative precision
    relative = np.abs(key_out[1, :, 0] - keys[1, :, 0]).max() / np.abs(keys[1, :, 0]).max()
    assert relative <= 0.5 / qf.SYM_MAX + 1e-6


def test_per_token_full_forward_is_the_round_trip():
    keys = RNG.standard_normal((B, H, 6, D)).astype(np.float32)
    key_out, _ = PerTokenInt8KVCache.from_float(StaticKVCache(B, H, S, D))(Tensor(keys), Tensor(keys))
    np.testing.assert_allclose(key_out.asnumpy(), per_token_round_trip(keys)[0], rtol=1e-6, atol=1e-7)
