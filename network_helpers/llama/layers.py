"""Building blocks of the portable ParallelLlama: standard MindSpore ops only (CPU, GPU and Ascend).

Parameter names mirror MindFormers 1.6 `experimental.infer` so checkpoints are interchangeable:
linears hold `weight` of shape (out, in), RMSNorm holds `weight`, the embedding holds `embedding_weight`.
"""
import numpy as np
import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops
from mindspore.common.initializer import initializer

from ms_infra.ops import linear
from ms_infra.parallel import all_gather_last_dim, all_reduce_sum


class RMSNorm(nn.Cell):
    """y = x / sqrt(mean(x^2) + eps) * weight, computed in float32."""

    def __init__(self, dim, eps=1e-5, param_init_type=ms.float32):
        super().__init__()
        self.eps = eps
        self.weight = Parameter(initializer("ones", (dim,), param_init_type), name="weight")

    def decode_operands(self):
        return (self.weight,)

    def construct(self, x):
        x32 = x.astype(ms.float32)
        norm = x32 * ops.rsqrt(ops.mean(ops.square(x32), -1, keep_dims=True) + self.eps)
        return (norm * self.weight.astype(ms.float32)).astype(x.dtype)


class _ParallelLinear(nn.Cell):
    """y = x @ W^T, W (out, in), with W split along `split_axis` (0: out, 1: in) across `tp_size` ranks."""
    split_axis = 0
    decode_scheme = "f32"

    def __init__(self, input_size, output_size, tp_size, param_init_type, compute_dtype):
        super().__init__()
        shape = [output_size, input_size]
        if shape[self.split_axis] % tp_size:
            raise ValueError(f"{('output_size', 'input_size')[self.split_axis]} {shape[self.split_axis]} is not "
                             f"divisible by model_parallel {tp_size}")
        shape[self.split_axis] //= tp_size
        self.input_size, self.output_size, self.tp_size = input_size, output_size, tp_size
        self.compute_dtype = compute_dtype
        self.weight = Parameter(initializer("normal", tuple(shape), param_init_type), name="weight")

    def shard_axes(self):
        """{local parameter name: axis split across tensor-parallel ranks}."""
        return {"weight": self.split_axis}

    def decode_operands(self):
        return (self.weight,)


class ColumnParallelLinear(_ParallelLinear):
    """y = x @ W^T with W (out, in) split along `out` across `tp_size` ranks; optionally gathered."""
    parallel_mode = "column"
    split_axis = 0

    def __init__(self, input_size, output_size, tp_size=1, gather_output=False,
                 param_init_type=ms.float32, compute_dtype=ms.float32):
        super().__init__(input_size, output_size, tp_size, param_init_type, compute_dtype)
        self.gather_output = gather_output

    def construct(self, x):
        out = linear(x, self.weight, self.compute_dtype)
        if self.gather_output and self.tp_size > 1:
            out = all_gather_last_dim(out, self.tp_size)
        return out


class RowParallelLinear(_ParallelLinear):
    """y = x @ W^T with W (out, in) split along `in` across ranks; partial sums are all-reduced."""
    parallel_mode = "row"
    split_axis = 1

    def __init__(self, input_size, output_size, tp_size=1, param_init_type=ms.float32,
                 compute_dtype=ms.float32):
        super().__init__(input_size, output_size, tp_size, param_init_type, compute_dtype)
        self.input_is_parallel = True

    def construct(self, x):
        out = linear(x, self.weight, self.compute_dtype)
        if self.tp_size > 1:
            out = all_reduce_sum(out)
        return out


class VocabEmbedding(nn.Cell):
    """Token embedding table, replicated on every rank."""

    def __init__(self, vocab_size, hidden_size, param_init_type=ms.float32):
        super().__init__()
        self.embedding_weight = Parameter(initializer("normal", (vocab_size, hidden_size), param_init_type),
                                          name="embedding_weight")

    def construct(self, input_ids):
        return ops.gather(self.embedding_weight, input_ids, 0)


def rotary_tables(head_dim, max_positions, theta):
    """cos/sin tables (max_positions, head_dim) for rotate-half RoPE: angle[p, i] = p * theta^(-2i/d)."""
    inv_freq = 1.0 / (theta ** (np.arange(0, head_dim, 2, dtype=np.float64) / head_dim))
    angles = np.outer(np.arange(max_positions, dtype=np.float64), inv_freq)
    angles = np.concatenate([angles, angles], axis=-1)
    return Tensor(np.cos(angles), ms.float32), Tensor(np.sin(angles), ms.float32)


def rotate_half_matrix(head_dim):
    """R with x @ R = rotate_half(x) = [-x2, x1] for x = [x1, x2]: one small MatMul instead of slices."""
    half = head_dim // 2
    matrix = np.zeros((head_dim, head_dim), np.float32)
    matrix[half:, :half] = -np.eye(half)
    matrix[:half, half:] = np.eye(half)
    return Tensor(matrix)


def apply_rotary(x, cos, sin, rotate_half):
    """x * cos + rotate_half(x) * sin, on the last axis of x (..., head_dim)."""
    rotated = ops.MatMul()(x.reshape(-1, x.shape[-1]), rotate_half.astype(x.dtype)).reshape(x.shape)
    return x * cos.astype(x.dtype) + rotated * sin.astype(x.dtype)
