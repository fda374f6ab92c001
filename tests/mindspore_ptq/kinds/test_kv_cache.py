"""The int8 KV cache against the float cache: same positions, values within half a step per channel."""
import numpy as np
import mindspore as ms
from mindspore import Tensor

from mindspore_ptq import quant_functions as qf
from mindspore_ptq.kinds.kv_cache import Int8KVCache
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
