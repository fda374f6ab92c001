"""Ascend bindings for deployed linears: MindSpore's quantized matmul primitives (WeightQuantBatchMatmul for
int8 weights, QuantBatchMatmul for int8 x int8 with per-token scales). They are built here but run only on
Ascend; the cells call them with the interface of the CPU kernels (2-D float activations, int8 weights (out, in),
float32 per-channel scales)."""
import mindspore as ms
from mindspore import nn, ops
from mindspore.ops import auto_generate as gen


class AscendW8MatMul(nn.Cell):
    """y = (x @ Wq^T) * scale by WeightQuantBatchMatmul (float16 activations, int8 weights)."""

    def __init__(self):
        super().__init__()
        self.matmul = gen.WeightQuantBatchMatmul(transpose_x=False, transpose_weight=True)

    def construct(self, x, weight, scale):
        out = self.matmul(x.astype(ms.float16), weight, scale.astype(ms.float16), None, None, None, None)
        return out.astype(ms.float32)


class AscendA8W8DynamicMatMul(nn.Cell):
    """Per-token symmetric int8 activations, s_t = max|x_t| / 127, then QuantBatchMatmul with the weight scales
    and the per-token scales."""

    def __init__(self):
        super().__init__()
        self.matmul = gen.QuantBatchMatmul(transpose_x1=False, transpose_x2=True, dtype=ms.float16)

    def construct(self, x, weight, scale):
        abs_max = ops.amax(ops.abs(x), -1, keepdims=True)
        token_scale = ops.where(abs_max > 0, abs_max / 127.0, ops.ones_like(abs_max))
        q = ops.clip_by_value(ops.round(x / token_scale), -127.0, 127.0).astype(ms.int8)
        out = self.matmul(q, weight, scale, None, None, token_scale.reshape(-1))
        return out.astype(ms.float32)
