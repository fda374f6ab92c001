"""Time the CPU kernels against MindSpore's MatMul in GRAPH_MODE on a chain of deployed-size linears.

`count` weights of (out x in) = (1536 x 576), each applied to the same activations, the outputs summed
(sum_i sum(x @ W_i^T)), at 1 token (decode) and 256 tokens (prefill):
  fp32            float32 weight, MatMul
  int8->fp32      int8 weight cast to float32, MatMul, times the per-channel scale (today's deployed cells)
  w8 kernel       W8MatMul                  w4 kernel (g=128)  W4MatMul
  a8w8 dynamic    A8W8DynamicMatMul (per-token quantization fused)
  a8w8 static     A8W8StaticMatMul (per-tensor quantization fused)
  quant+a8w8      QuantPerToken then A8W8MatMul (two calls)

With --attention: `count` (30) decode attentions over int8 KV caches (B=1, H=9, Hkv=3, D=64, L=1024, each its own
cache, the outputs summed) at the valid lengths given (200 and 1000):
  portable        reference.kv8_decode_attention (the whole cache dequantized, masked softmax, BatchMatMul)
  kv8 kernel      KV8DecodeAttention (only the valid prefix read, int8 converted in registers)

    python -m mindspore_ptq.kernels.bench [--count 60] [--tokens 1 256] [--repeats 10] [--threads N]
    python -m mindspore_ptq.kernels.bench --attention [--count 30] [--lengths 200 1000] [--repeats 10]
"""
import argparse
import time

import numpy as np
import mindspore as ms
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops

from . import cpu
from .reference import kv8_decode_attention, pack_int4


class CastMatMul(nn.Cell):
    """x @ cast(weight).T * scale (or a plain float MatMul when the weight is float32 and scale is None)."""

    def __init__(self, scaled):
        super().__init__()
        self.scaled = scaled
        self.matmul = ops.MatMul(transpose_b=True)

    def construct(self, x, weight, scale):
        y = self.matmul(x, weight.astype(ms.float32))
        return y * scale if self.scaled else y


class QuantThenA8W8(nn.Cell):
    def __init__(self):
        super().__init__()
        self.quant, self.matmul = cpu.QuantPerToken(), cpu.A8W8MatMul()
        self.zero = Tensor(np.zeros(1, np.int32))

    def construct(self, x, weight, w_scale):
        q, scale = self.quant(x)
        return self.matmul(q, scale, self.zero, weight, w_scale)


class Layer(nn.Cell):
    """One layer: `fn(*inputs, *params)` over this layer's constant tensors."""

    def __init__(self, fn, arrays, index):
        super().__init__()
        self.fn = fn
        self.params = ParameterTuple([Parameter(Tensor(a), name=f"l{index}_{j}", requires_grad=False)
                                      for j, a in enumerate(arrays)])

    def construct(self, *inputs):
        return self.fn(*inputs, *self.params)


class Chain(nn.Cell):
    def __init__(self, fn, layer_arrays):
        super().__init__()
        self.layers = nn.CellList([Layer(fn, arrays, i) for i, arrays in enumerate(layer_arrays)])

    def construct(self, *inputs):
        total = 0
        for layer in self.layers:
            total = total + layer(*inputs).sum()
        return total


def variants(count, out_features, in_features, rng):
    """name -> (callable cell, per-layer arrays)."""
    q8 = [rng.integers(-127, 128, (out_features, in_features)).astype(np.int8) for _ in range(count)]
    scale = [(rng.random(out_features) * 0.01 + 0.001).astype(np.float32) for _ in range(count)]
    q4 = [pack_int4(rng.integers(-8, 8, (out_features, in_features))) for _ in range(count)]
    s4 = [(rng.random((out_features, in_features // 128)) * 0.01).astype(np.float32) for _ in range(count)]
    static = (np.array([0.02], np.float32), np.array([3.0], np.float32))
    a8w8 = list(zip(q8, scale))
    return {
        "fp32": (CastMatMul(False), [(q8[i].astype(np.float32) * scale[i][:, None], scale[i]) for i in range(count)]),
        "int8->fp32": (CastMatMul(True), list(zip(q8, scale))),
        "w8 kernel": (cpu.W8MatMul(), list(zip(q8, scale))),
        "w4 kernel (g=128)": (cpu.W4MatMul(), list(zip(q4, s4))),
        "a8w8 dynamic": (cpu.A8W8DynamicMatMul(), a8w8),
        "a8w8 static": (cpu.A8W8StaticMatMul(), [static + arrays for arrays in a8w8]),
        "quant+a8w8": (QuantThenA8W8(), a8w8),
    }


class CacheAttention(nn.Cell):
    """`fn` (KV8DecodeAttention or the portable reference) with a layer's int8 cache and its scales given last."""

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def construct(self, query, lengths, softmax_scale, key_cache, value_cache, key_scale, key_zp, value_scale,
                  value_zp):
        return self.fn(query, key_cache, value_cache, key_scale, key_zp, value_scale, value_zp, lengths,
                       softmax_scale)


def attention_caches(count, kv_heads, seq, dim, rng):
    """Per layer: (key_cache, value_cache int8 (1, Hkv, L, D), key_scale, key_zp, value_scale, value_zp)."""
    channels, layers = (1, kv_heads, 1, dim), []
    for _ in range(count):
        key, value = (rng.integers(-128, 128, (1, kv_heads, seq, dim)).astype(np.int8) for _ in range(2))
        scale = [(rng.random(channels) * 0.02 + 0.005).astype(np.float32) for _ in range(2)]
        zp = [rng.integers(-20, 20, channels).astype(np.float32) for _ in range(2)]
        layers.append((key, value, scale[0], zp[0], scale[1], zp[1]))
    return layers


def elapsed_ms(cell, *inputs):
    start = time.perf_counter()
    cell(*inputs).asnumpy()
    return 1e3 * (time.perf_counter() - start)


def best_time_ms(cell, x, repeats):
    """The fastest of `repeats` runs of cell(*x) (cell(x) for a tensor), after one that compiles and warms up."""
    inputs = x if isinstance(x, tuple) else (x,)
    elapsed_ms(cell, *inputs)
    return min(elapsed_ms(cell, *inputs) for _ in range(repeats))


def attention_bench(count=30, lengths=(200, 1000), repeats=10, heads=9, kv_heads=3, seq=1024, dim=64, seed=0):
    """(length, name) -> ms of `count` decode attentions over int8 caches in GRAPH_MODE; printed as it goes."""
    rng = np.random.default_rng(seed)
    caches = attention_caches(count, kv_heads, seq, dim, rng)
    chains = {"portable": Chain(CacheAttention(kv8_decode_attention), caches),
              "kv8 kernel": Chain(CacheAttention(cpu.KV8DecodeAttention()), caches)}
    query = Tensor(rng.standard_normal((1, heads, 1, dim)).astype(np.float32))
    softmax_scale = Tensor(np.array([dim ** -0.5], np.float32))
    results = {}
    for length in lengths:
        inputs = (query, Tensor(np.array([length], np.int32)), softmax_scale)
        for name, chain in chains.items():
            results[(length, name)] = best_time_ms(chain, inputs, repeats)
        base = results[(length, "portable")]
        for name in chains:
            value = results[(length, name)]
            print(f"{count} attentions, length {length:>4} of {seq}  {name:<10} {value:9.2f} ms  "
                  f"({value / base:.2f}x portable)")
    return results


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=None, help="weights in the chain (60; attentions: 30)")
    parser.add_argument("--tokens", type=int, nargs="+", default=[1, 256])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="kernel threads (default: cpu.default_threads())")
    parser.add_argument("--only", nargs="+", default=None, help="run only these variants")
    parser.add_argument("--attention", action="store_true", help="time the int8 KV-cache decode attention instead")
    parser.add_argument("--lengths", type=int, nargs="+", default=[200, 1000], help="valid cache lengths (--attention)")
    args = parser.parse_args(argv)
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    if args.threads:
        cpu.set_threads(args.threads)
    if args.attention:
        print(f"kernel threads {cpu.threads()}")
        return attention_bench(args.count or 30, args.lengths, args.repeats)
    print(f"kernel threads {cpu.threads()}, a8w8 isa {cpu.isa()}, prefill GEMM from {cpu.prefill_min_tokens()} tokens")
    rng = np.random.default_rng(0)
    table = variants(args.count or 60, 1536, 576, rng)
    results = {}
    for tokens in args.tokens:
        x = Tensor(rng.standard_normal((tokens, 576)).astype(np.float32))
        for name, (fn, arrays) in table.items():
            if name == "fp32" or args.only is None or name in args.only:
                results[(tokens, name)] = best_time_ms(Chain(fn, arrays), x, args.repeats)
        base = results[(tokens, "fp32")]
        for (count, name), value in results.items():
            if count == tokens:
                print(f"{tokens:>4} token(s)  {name:<18} {value:9.2f} ms  ({value / base:.2f}x fp32)")
    return results


if __name__ == "__main__":
    main()
