"""Tensor-parallel collectives over MindSpore's world group (used only when model_parallel > 1)."""
from mindspore import ops
from mindspore.communication import GlobalComm, get_group_size, get_rank
from mindspore.communication._comm_helper import _is_initialized


def tp_rank_and_size():
    """(rank, world size) of the initialised communication group, (0, 1) without one."""
    if not _is_initialized():
        return 0, 1
    return get_rank(), get_group_size()


def all_reduce_sum(x):
    """Sum `x` over all ranks."""
    return ops.AllReduce(ops.ReduceOp.SUM, GlobalComm.WORLD_COMM_GROUP)(x)


def all_gather_last_dim(x, tp_size):
    """Concatenate each rank's `x` along the last axis (AllGather works on axis 0)."""
    gathered = ops.AllGather(GlobalComm.WORLD_COMM_GROUP)(ops.moveaxis(x, -1, 0))
    return ops.moveaxis(gathered, 0, -1)


def init_tensor_parallel(model_parallel, data_parallel=1):
    """Initialise MindSpore communication when launched by msrun, and check the worker count fits.

    Returns (rank, world size); (0, 1) without msrun.
    """
    import os
    from mindspore.communication import init
    if os.environ.get("MS_ROLE") in ("MS_WORKER", "MS_SCHED") and not _is_initialized():
        init()  # msrun also runs the script as its scheduler, which serves inside init()
    rank, world = tp_rank_and_size()
    if data_parallel != 1:
        raise ValueError(f"parallel_config.data_parallel={data_parallel}: only tensor parallelism is supported; "
                         "set data_parallel to 1")
    if world != model_parallel * data_parallel:
        raise ValueError(f"{world} worker(s) are running but parallel_config asks for model_parallel "
                         f"({model_parallel}) x data_parallel ({data_parallel}) = {model_parallel * data_parallel}; "
                         f"launch msrun with --worker_num={model_parallel * data_parallel}")
    return rank, world
