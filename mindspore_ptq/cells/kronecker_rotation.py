"""An online rotation cell: x -> x @ kron(left, right), for the rotations DEPLOY rebuilds (algorithms.rotation)."""
import numpy as np
import mindspore as ms
from mindspore import Tensor, nn, ops


class KroneckerRotation(nn.Cell):
    """x -> x @ kron(left, right) for orthogonal left (a x a) and right (b x b), without forming the product:
    the last axis is viewed as (a, b) and rotated as left^T X right, with two 2-D MatMuls, in float32."""

    def __init__(self, left, right):
        super().__init__()
        self.left = Tensor(np.asarray(left, np.float32))
        self.right = Tensor(np.asarray(right, np.float32))
        self.a, self.b = self.left.shape[0], self.right.shape[0]

    def construct(self, x):
        shape, dtype = x.shape, x.dtype
        rows = ops.matmul(x.astype(ms.float32).reshape(-1, self.b), self.right)            # X right, (N*a, b)
        columns = rows.reshape(-1, self.a, self.b).transpose(0, 2, 1).reshape(-1, self.a)  # (N*b, a)
        rotated = ops.matmul(columns, self.left)                                           # (left^T X right)^T
        return rotated.reshape(-1, self.b, self.a).transpose(0, 2, 1).reshape(shape).astype(dtype)
