"""Checkpoints through MindSpore's checkpoint API: atomic saving, and loading checked against the network
(names, shapes, dtypes), sliced per tensor-parallel rank."""
from pathlib import Path

import numpy as np
import mindspore as ms

from .files import atomic_set
from .parallel import tp_rank_and_size


def save_checkpoint(params, path, choice_func=None):
    """Save a Cell or {name: array/Tensor/Parameter} to `path` with MindSpore's checkpoint API (not atomic:
    see save_checkpoint_atomic, or ms_infra.files.atomic_set for a set of files)."""
    if isinstance(params, dict):
        params = [{"name": name, "data": ms.Tensor(value) if isinstance(value, np.ndarray) else value}
                  for name, value in params.items()]
    ms.save_checkpoint(params, str(path), choice_func=choice_func)
    return path


def save_checkpoint_atomic(params, path, choice_func=None):
    """Save a Cell or {name: array/Tensor/Parameter} to `path` via a temp file and rename."""
    with atomic_set([path]) as (temp,):
        save_checkpoint(params, temp, choice_func)
    return Path(path)


# buffers rebuilt at run time, never stored: the KV cache and the scales of a per-token int8 one
RUNTIME_STATE = ("key_cache", "value_cache", "key_cache_scale", "value_cache_scale")


def is_runtime_state(name):
    """True for parameters that hold run-time state (the KV cache) rather than weights."""
    return name.rsplit(".", 1)[-1] in RUNTIME_STATE


def read_checkpoint(path):
    """{name: Parameter} from a MindSpore checkpoint, with errors that name the file."""
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"checkpoint {path} is a directory, not a checkpoint file")
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint file not found: {path}")
    try:
        return ms.load_checkpoint(str(path))
    except (ValueError, RuntimeError) as err:
        raise ValueError(f"{path} is not a readable MindSpore checkpoint: {err}") from err


def shard_axes(network):
    """{full parameter name: axis split across tensor-parallel ranks}, from cells declaring `shard_axes()`."""
    axes = {}
    for _, cell in network.cells_and_names():
        if hasattr(cell, "shard_axes"):
            for local_name, axis in cell.shard_axes().items():
                axes[getattr(cell, local_name).name] = axis
    return axes


def slice_for_rank(stored, params, axes, rank, world):
    """Replace each full-size stored tensor by this rank's slice where the network holds a shard."""
    sliced = dict(stored)
    for name, param in params.items():
        axis = axes.get(name)
        if world == 1 or name not in stored or axis is None:
            continue
        full, local = stored[name].shape, param.shape
        if tuple(full) != tuple(local) and full[axis] == local[axis] * world:
            index = [slice(None)] * len(full)
            index[axis] = slice(rank * local[axis], (rank + 1) * local[axis])
            sliced[name] = ms.Tensor(stored[name].asnumpy()[tuple(index)])
    return sliced


def load_checkpoint_into(network, path, rank=None, world=None, stored=None):
    """Load weights into `network`, checking names, shapes and dtypes first; floats are cast as needed.

    Every network parameter except run-time state must be present with its shape, and every checkpoint entry
    must belong to the network; any mismatch raises a ValueError that lists the offending names. With
    `world` > 1 ranks (default: the initialised communication group), a full (unsplit) checkpoint is sliced to
    this rank's shard on the way in. `stored`: the checkpoint's contents if already read (`read_checkpoint(path)`).
    """
    if rank is None:
        rank, world = tp_rank_and_size()
    params = {p.name: p for p in network.get_parameters() if not is_runtime_state(p.name)}
    stored = read_checkpoint(path) if stored is None else stored
    stored = slice_for_rank(stored, params, shard_axes(network), rank, world)
    missing = sorted(set(params) - set(stored))
    unexpected = sorted(n for n in set(stored) - set(params) if not is_runtime_state(n))
    wrong_shape = [f"{n}: checkpoint {tuple(stored[n].shape)} vs network {tuple(params[n].shape)}"
                   for n in sorted(set(params) & set(stored)) if tuple(stored[n].shape) != tuple(params[n].shape)]
    wrong_dtype = [f"{n}: checkpoint {stored[n].dtype} vs network {params[n].dtype}"
                   for n in sorted(set(params) & set(stored))
                   if stored[n].dtype != params[n].dtype and not (stored[n].is_floating_point()
                                                                 and params[n].is_floating_point())]
    problems = [("missing parameter(s)", missing), ("unexpected parameter(s)", unexpected),
                ("wrong shape(s)", wrong_shape), ("wrong dtype(s)", wrong_dtype)]
    message = "; ".join(f"{what} {items[:8]}{' ...' if len(items) > 8 else ''} ({len(items)} in all)"
                        for what, items in problems if items)
    if message:
        raise ValueError(f"checkpoint {path} does not match the network: {message}")
    for name, param in params.items():
        value = stored[name]
        param.set_data(value.astype(param.dtype) if value.dtype != param.dtype else value)
    return network
