"""Per-rank quantized checkpoints and merging them into one file.

A tensor-parallel run saves `<name>_rank<r>.ckpt` per rank and `<name>.shards.json` (world size, files, and the
axis each sharded parameter is split along). `merge` concatenates the shards into `<name>.ckpt`, which loads
into any model_parallel: the loader slices it per rank (`ms_infra.checkpoint.slice_for_rank`).

    mindspore-ptq merge outputs/a8w8c8/a8w8c8.shards.json
"""
import json
import shutil
from pathlib import Path

import numpy as np
import mindspore as ms

from ms_infra.checkpoint import read_checkpoint, save_checkpoint_atomic
from ms_infra.files import write_json_atomic

from .paths import config_path_for


def rank_path(path, rank):
    path = Path(path)
    return path.with_name(f"{path.stem}_rank{rank}{path.suffix}")


def manifest_path(path):
    path = Path(path)
    return path.with_name(f"{path.stem}.shards.json")


def write_manifest(path, world, axes):
    """Record the per-rank files of `path` and the split axis of each sharded parameter."""
    manifest = {"world": world, "checkpoint": Path(path).name,
                "files": [rank_path(path, r).name for r in range(world)], "axes": axes}
    return write_json_atomic(manifest_path(path), manifest)


def merge(manifest, output=None):
    """Concatenate the per-rank checkpoints listed in `manifest` into one; returns the merged path.

    Replicated parameters must be identical on every rank; a missing rank file is named in the error.
    """
    manifest = Path(manifest)
    info = json.loads(manifest.read_text())
    files = [manifest.parent / name for name in info["files"]]
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise FileNotFoundError(f"{manifest} lists {info['world']} ranks but these files are missing: {missing}")
    shards = [read_checkpoint(f) for f in files]
    names = set(shards[0])
    for rank, shard in enumerate(shards[1:], start=1):
        if set(shard) != names:
            raise ValueError(f"{files[rank]} holds other parameters than {files[0]}: "
                             f"{sorted(set(shard) ^ names)[:8]}")
    merged = {}
    for name in sorted(names):
        arrays = [shard[name].asnumpy() for shard in shards]
        axis = info["axes"].get(name)
        if axis is None:
            if any(not np.array_equal(arrays[0], a) for a in arrays[1:]):
                raise ValueError(f"replicated parameter {name} differs between ranks")
            merged[name] = ms.Tensor(arrays[0])
        else:
            merged[name] = ms.Tensor(np.concatenate(arrays, axis=axis))
    output = Path(output) if output else manifest.parent / info["checkpoint"]
    save_checkpoint_atomic(merged, output)
    config = config_path_for(files[0].with_name(info["checkpoint"]))
    if config.is_file() and config_path_for(output) != config:
        shutil.copyfile(config, config_path_for(output))
    return output


def compare(first, second):
    """How two checkpoints with the same parameters differ, summarised by kind.

    Returns {'int8': (differing values, all values, largest step), 'float': (largest |a - b| / max |b|, name)}.
    """
    a, b = read_checkpoint(first), read_checkpoint(second)
    if set(a) != set(b):
        raise ValueError(f"{first} and {second} hold different parameters: {sorted(set(a) ^ set(b))[:8]}")
    differing, total, step, relative, worst = 0, 0, 0, 0.0, None
    for name in sorted(a):
        x, y = a[name].asnumpy().astype(np.float64), b[name].asnumpy().astype(np.float64)
        if x.shape != y.shape:
            raise ValueError(f"{name}: shape {x.shape} in {first} vs {y.shape} in {second}")
        difference = np.abs(x - y).max()
        if a[name].dtype == ms.int8:
            differing, total, step = differing + int((x != y).sum()), total + x.size, max(step, int(difference))
        elif difference / max(np.abs(y).max(), 1e-30) > relative:
            relative, worst = float(difference / max(np.abs(y).max(), 1e-30)), name
    return {"int8": (differing, total, step), "float": (relative, worst)}
