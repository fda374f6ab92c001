"""The decode attention over an int8 KV cache (KV8DecodeAttention) against a float64 numpy oracle and the portable
reference (whole cache dequantized, positions >= length masked), in PyNative and GRAPH_MODE."""
import numpy as np
import pytest
from mindspore import Tensor

from mindspore_ptq.kernels import cpu, reference
from tests.mindspore_ptq.kernels.test_cpu_kernels import (Wrap, assert_close, int8, mode,  # noqa: F401 (mode)
                                                           needs_kernels)


def np_attention(query, key_cache, value_cache, key_scale, key_zp, value_scale, value_zp, lengths, softmax_scale):
    """The maths in float64, one (row, head) at a time over the valid prefix only."""
    batch, heads, _, dim = query.shape
    n_rep = heads // key_cache.shape[1]
    key = (key_cache.astype(np.float64) - key_zp) * key_scale
    value = (value_cache.astype(np.float64) - value_zp) * value_scale
    context = np.zeros((batch, heads, 1, dim))
    for b in range(batch):
        n = int(lengths[b])
        for h in range(heads):
            g = h // n_rep
            scores = key[b, g, :n] @ query[b, h, 0].astype(np.float64) * float(softmax_scale[0])
            weights = np.exp(scores - scores.max())
            context[b, h, 0] = (weights / weights.sum()) @ value[b, g, :n]
    return context


def caller(fn, graph):
    """fn on numpy arrays, from a cell's construct under GRAPH_MODE (one cell, so one graph per input shapes)."""
    cell = Wrap(fn) if graph else fn
    return lambda *arrays: cell(*[Tensor(a) for a in arrays]).asnumpy()


def inputs(rng, batch, heads, kv_heads, seq, dim, lengths, saturate=False):
    """(query, key_cache, value_cache, key_scale, key_zp, value_scale, value_zp, lengths, softmax_scale)."""
    channels = (1, kv_heads, 1, dim)
    query = (rng.standard_normal((batch, heads, 1, dim)) * 2).astype(np.float32)
    scales = [(rng.random(channels) * 0.02 + 0.005).astype(np.float32) for _ in range(2)]
    zps = [rng.integers(-128, 128, channels).astype(np.float32) for _ in range(2)]
    cache = (batch, kv_heads, seq, dim)
    return (query, int8(rng, cache, saturate), int8(rng, cache, saturate), scales[0], zps[0],
            scales[1], zps[1], np.asarray(lengths, np.int32), np.array([dim ** -0.5], np.float32))


def ragged_lengths(batch, seq):
    """Length vectors covering 1, L and a length in between (not a multiple of 4 or 8)."""
    middle = seq // 2 + 3
    return [[1], [seq], [middle]] if batch == 1 else [[1, seq], [middle, 1], [seq, middle]]


@needs_kernels
@pytest.mark.parametrize("dim, seq", [(64, 64), (24, 32), (7, 32)])
@pytest.mark.parametrize("heads, kv_heads", [(9, 3), (4, 4)])
@pytest.mark.parametrize("batch", [1, 2])
def test_kv8_decode_attention(batch, heads, kv_heads, dim, seq, mode):
    rng = np.random.default_rng(batch * 100 + heads * 10 + dim)
    kernel, ref = caller(cpu.KV8DecodeAttention(), mode == "graph"), caller(reference.kv8_decode_attention,
                                                                             mode == "graph")
    for lengths in ragged_lengths(batch, seq):
        for saturate in (False, True):
            arrays = inputs(rng, batch, heads, kv_heads, seq, dim, lengths, saturate)
            context = kernel(*arrays)
            assert context.shape == (batch, heads, 1, dim) and context.dtype == np.float32
            expected = ref(*arrays)
            assert_close(context, expected)
            assert_close(context, np_attention(*arrays))
            assert_close(expected, np_attention(*arrays))


@needs_kernels
@pytest.mark.parametrize("dim", [64, 7])
def test_positions_beyond_length_are_ignored(dim):
    """Extreme codes from `length` on, and an extreme query: the results must not change at all."""
    rng = np.random.default_rng(dim)
    seq, lengths = 32, [5, 17]
    arrays = list(inputs(rng, 2, 9, 3, seq, dim, lengths))
    arrays[0] *= 20  # scores far from 0: a stray position would dominate the softmax
    kernel = cpu.KV8DecodeAttention()
    clean = caller(kernel, False)(*arrays)
    for fill in (-128, 127):
        garbage = [a.copy() for a in arrays]
        for b, n in enumerate(lengths):
            # the extreme codes of the sign of each kv head's first query head: its q . k as far from 0 as can be
            garbage[1][b, :, n:] = np.where(arrays[0][b, ::3] > 0, fill, -1 - fill)
            garbage[2][b, :, n:] = fill
        read_all = np_attention(*garbage[:7], np.full(2, seq, np.int32), garbage[8])
        assert np.abs(read_all - clean).max() > 0.1 * np.abs(clean).max()  # the garbage would show
        np.testing.assert_array_equal(caller(kernel, False)(*garbage), clean)
        np.testing.assert_array_equal(caller(reference.kv8_decode_attention, False)(*garbage),
                                      caller(reference.kv8_decode_attention, False)(*arrays))
    assert_close(clean, np_attention(*arrays))


@needs_kernels
def test_results_do_not_depend_on_the_thread_count():
    arrays = inputs(np.random.default_rng(5), 2, 9, 3, 64, 64, [40, 64])
    before = cpu.threads()
    try:
        cpu.set_threads(1)
        one = caller(cpu.KV8DecodeAttention(), False)(*arrays)
        cpu.set_threads(3)
        np.testing.assert_array_equal(caller(cpu.KV8DecodeAttention(), False)(*arrays), one)
    finally:
        cpu.set_threads(before)


@needs_kernels
def test_wrong_shapes_and_lengths_are_rejected(mode):
    arrays = inputs(np.random.default_rng(6), 2, 4, 2, 16, 8, [3, 16])
    run = caller(cpu.KV8DecodeAttention(), mode == "graph")

    def replaced(index, value):
        return [value if i == index else a for i, a in enumerate(arrays)]

    for index, value, match in [
            (0, arrays[0][:, :3], "not a multiple"), (0, np.concatenate([arrays[0]] * 2, axis=2), "one decode step"),
            (0, arrays[0][..., :4], "head dims"), (2, arrays[2][:, :, :8], "differs"),
            (3, arrays[3].reshape(1, 2, 8), "key_scale"), (6, arrays[6][:, :1], "value_zero_point"),
            (7, arrays[7][:1], "lengths"), (8, np.ones(2, np.float32), "softmax_scale")]:
        with pytest.raises(ValueError, match=match):
            run(*replaced(index, value))
    if mode == "pynative":  # a failed graph run leaves MindSpore refusing the next ones ("previous step")
        for lengths in ([0, 16], [3, 17]):
            with pytest.raises(RuntimeError, match="PtqKV8DecodeAttention"):
                run(*replaced(7, np.array(lengths, np.int32)))


def test_reference(mode):
    """The portable path alone (what runs without the kernels), in both modes, against the float64 oracle."""
    rng = np.random.default_rng(7)
    for batch, heads, kv_heads, lengths in ((2, 9, 3, [1, 20]), (1, 4, 4, [32])):
        arrays = inputs(rng, batch, heads, kv_heads, 32, 24, lengths)
        assert_close(caller(reference.kv8_decode_attention, mode == "graph")(*arrays), np_attention(*arrays))
