"""Why int8 deployment is slower on MindSpore's CPU backend: time the candidate GEMM kernels of a deployed linear.

A chain of 60 (1536 x 576) weights (212 MB as float32, far beyond the caches, like a decode step's weights) is
multiplied by 1 token (decode) and by 256 tokens (prefill) in GRAPH_MODE:
  fp32            float32 weight, float32 MatMul (the float network)
  int8->fp32      int8 weight cast to float32, then float32 MatMul (our deployed cells)
  int8 x int8     int8 activations and weight, MatMul to int32 (a real integer GEMM)

    python example/bench_matmul_kernels.py [--output kernels.json]
"""
import argparse
import time

import numpy as np
import mindspore as ms
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops

from ms_infra.files import write_json_atomic


class WeightChain(nn.Cell):
    """sum_i sum(x @ W_i^T) over `count` weights stored as `dtype`; `cast` casts each weight to float32 first."""

    def __init__(self, weights, dtype, cast):
        super().__init__()
        self.cast = cast
        self.weights = ParameterTuple([Parameter(Tensor(w.astype(dtype)), name=f"w{i}") for i, w in enumerate(weights)])
        self.matmul = ops.MatMul(transpose_b=True)

    def construct(self, x):
        total = 0
        for weight in self.weights:
            if self.cast:
                weight = weight.astype(ms.float32)
            total = total + self.matmul(x, weight).astype(ms.float32).sum()
        return total


def best_time_ms(cell, x, repeats):
    cell(x).asnumpy()  # compile
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        cell(x).asnumpy()
        times.append(time.perf_counter() - start)
    return 1e3 * min(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=60, help="weights in the chain")
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--output", default=None, help="write the timings as JSON here")
    args = parser.parse_args(argv)
    ms.set_context(mode=ms.GRAPH_MODE, device_target="CPU")
    rng = np.random.default_rng(0)
    weights = [rng.integers(-127, 128, (1536, 576)).astype(np.int8) for _ in range(args.count)]
    kernels = {"fp32": (np.float32, False, np.float32), "int8->fp32": (np.int8, True, np.float32),
               "int8 x int8": (np.int8, False, np.int8)}
    results = {}
    for tokens in (1, 256):
        for name, (weight_dtype, cast, input_dtype) in kernels.items():
            x = Tensor(rng.integers(-127, 128, (tokens, 576)).astype(input_dtype))
            results[f"{name}, {tokens} token(s)"] = best_time_ms(WeightChain(weights, weight_dtype, cast), x,
                                                                 args.repeats)
        base = results[f"fp32, {tokens} token(s)"]
        for name in kernels:
            value = results[f"{name}, {tokens} token(s)"]
            print(f"{tokens:>3} token(s)  {name:<12} {value:8.2f} ms  ({value / base:.2f}x fp32)")
    if args.output:
        write_json_atomic(args.output, results)
    return results


if __name__ == "__main__":
    main()
