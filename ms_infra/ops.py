"""MindSpore building blocks shared by the networks and the quantized cells."""
from mindspore import ops


def linear(x, weight, compute_dtype):
    """x @ weight^T for x (..., in) and weight (out, in), as one 2-D MatMul without materialising weight^T."""
    if x.dtype != compute_dtype:
        x = x.astype(compute_dtype)
    if weight.dtype != compute_dtype:
        weight = weight.astype(compute_dtype)
    out = ops.MatMul(transpose_b=True)(x.reshape(-1, x.shape[-1]), weight)
    return out.reshape(x.shape[:-1] + (weight.shape[0],))
