"""Statistics that must be global under tensor parallelism, reduced with MindSpore collectives.

On CPU `AllReduce` supports SUM only, so a global max gathers every rank's values and takes the max.
"""
import numpy as np
import mindspore as ms
from mindspore import ops
from mindspore.communication import GlobalComm

from ms_infra.parallel import tp_rank_and_size


def tp_max(array):
    """Elementwise max of `array` over all tensor-parallel ranks (identity on one rank)."""
    array = np.asarray(array, np.float32)
    if tp_rank_and_size()[1] == 1:
        return array
    gathered = ops.AllGather(GlobalComm.WORLD_COMM_GROUP)(ms.Tensor(array.reshape(1, -1)))
    return gathered.asnumpy().max(0).reshape(array.shape)


def tp_min(array):
    """Elementwise min of `array` over all tensor-parallel ranks."""
    return -tp_max(-np.asarray(array, np.float32))


def tp_sum(array):
    """Elementwise sum of `array` over all tensor-parallel ranks."""
    array = np.asarray(array, np.float32)
    if tp_rank_and_size()[1] == 1:
        return array
    return ops.AllReduce(ops.ReduceOp.SUM, GlobalComm.WORLD_COMM_GROUP)(ms.Tensor(array)).asnumpy()
