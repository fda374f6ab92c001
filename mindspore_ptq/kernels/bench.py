"""Time the CPU kernels against MindSpore's MatMul in GRAPH_MODE on a chain of deployed-size linears.

`count` weights of (out x in) = (1536 x 576), each applied to the same activations, the outputs summed
(sum_i sum(x @ W_i^T)), at 1 token (decode) and 256 tokens (prefill):
  fp32            float32 weight, MatMul
  int8->fp32      int8 weight cast to float32, MatMul, times the per-channel scale (today's deployed cells)
  w8 kernel       W8MatMul                  w4 kernel (g=128)  W4MatMul
  a8w8 dynamic    A8W8DynamicMatMul (per-token quantization fused)
  a8w8 static     A8W8StaticMatMul (per-tensor quantization fused)
  quant+a8w8      QuantPerToken then A8W8MatMul (two calls)

    python -m mindspore_ptq.kernels.bench [--count 60] [--tokens 1 256] [--repeats 10] [--threads N]
"""
import argparse
import time

import numpy as np
import mindspore as ms
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops

from . import cpu
from .reference import pack_int4


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
    """One linear: `fn(x, *params)` over this layer's constant tensors."""

    def __init__(self, fn, arrays, index):
        super().__init__()
        self.fn = fn
        self.params = ParameterTuple([Parameter(Tensor(a), name=f"l{index}_{j}", requires_grad=False)
                                      for j, a in enumerate(arrays)])

    def construct(self, x):
        return self.fn(x, *self.params)


class Chain(nn.Cell):
    def __init__(self, fn, layer_arrays):
        super().__init__()
        self.layers = nn.CellList([Layer(fn, arrays, i) for i, arrays in enumerate(layer_arrays)])

    def construct(self, x):
        total = 0
        for layer in self.layers:
            total = total + layer(x).sum()
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


def elapsed_ms(cell, x):
    start = time.perf_counter()
    cell(x).asnumpy()
    return 1e3 * (time.perf_counter() - start)


def best_time_ms(cell, x, repeats):
    """The fastest of `repeats` runs, after one that compiles and warms up."""
    elapsed_ms(cell, x)
    return min(elapsed_ms(cell, x) for _ in range(repeats))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=60, help="weights in the chain")
    parser.add_argument("--tokens", type=int, nargs="+", default=[1, 256])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="kernel threads (default: cpu.default_threads())")
    parser.add_argument("--only", nargs="+", default=None, help="run only these variants")
    args = parser.parse_args(argv)
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    if args.threads:
        cpu.set_threads(args.threads)
    print(f"kernel threads {cpu.threads()}, a8w8 isa {cpu.isa()}, prefill GEMM from {cpu.prefill_min_tokens()} tokens")
    rng = np.random.default_rng(0)
    table = variants(args.count, 1536, 576, rng)
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
