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

from ms_infra.checkpoint import read_checkpoint, save_checkpoint, save_checkpoint_atomic
from ms_infra.files import atomic_set, check_outputs, write_json_atomic

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


# What a manifest holds: field -> (type, what it is), checked before any shard is read.
MANIFEST_FIELDS = {"world": (int, "the number of ranks"), "checkpoint": (str, "the merged checkpoint's name"),
                   "files": (list, "the per-rank checkpoint files"), "axes": (dict, "each sharded parameter's axis")}


def read_manifest(path):
    """The manifest at `path`, checked: every field present with its type, one file per rank."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"shard manifest not found: {path}" + (" (a directory)" if path.is_dir() else ""))
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise ValueError(f"shard manifest {path} is not valid JSON: {err}") from None
    if not isinstance(info, dict):
        raise ValueError(f"shard manifest {path} must be a JSON object, got {type(info).__name__}")
    for field, (kind, meaning) in MANIFEST_FIELDS.items():
        if not isinstance(info.get(field), kind) or isinstance(info.get(field), bool):
            problem = "lacks" if field not in info else f"has a {type(info[field]).__name__} for"
            raise ValueError(f"shard manifest {path} {problem} '{field}' ({meaning}: a JSON {kind.__name__}); "
                             "it is written by a tensor-parallel quantize")
    if info["world"] < 1:
        raise ValueError(f"shard manifest {path}: 'world' (the number of ranks) must be >= 1, got {info['world']}")
    if len(info["files"]) != info["world"] or not all(isinstance(f, str) and f for f in info["files"]):
        raise ValueError(f"shard manifest {path}: 'files' must name {info['world']} rank files ('world'), got "
                         f"{info['files']!r}")
    bad_axes = {name: axis for name, axis in info["axes"].items() if not isinstance(axis, int) or axis < 0}
    if bad_axes:
        raise ValueError(f"shard manifest {path}: 'axes' must map parameter names to axes (0, 1, ...), got "
                         f"{dict(list(bad_axes.items())[:4])}")
    return info


def merge(manifest, output=None, overwrite=False):
    """Concatenate the per-rank checkpoints listed in `manifest` into one; returns the merged path.

    The manifest and the output are checked before any shard is read: an output that is the manifest or a shard
    is refused, an existing one unless `overwrite`. Replicated parameters must be identical on every rank; a
    missing rank file is named in the error.
    """
    manifest = Path(manifest)
    info = read_manifest(manifest)
    files = [manifest.parent / name for name in info["files"]]
    output = Path(output) if output else manifest.parent / info["checkpoint"]
    source_config = config_path_for(manifest.parent / info["checkpoint"])
    copy_config = source_config.is_file() and config_path_for(output) != source_config
    outputs = [output, config_path_for(output)] if copy_config else [output]
    check_outputs(outputs, overwrite, inputs=[manifest, *files, source_config])
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
    if len(outputs) == 1:
        save_checkpoint_atomic(merged, output)
    else:  # the merged checkpoint with a copy of its config, as a pair
        with atomic_set(outputs) as (checkpoint_temp, config_temp):
            save_checkpoint(merged, checkpoint_temp)
            shutil.copyfile(source_config, config_temp)
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
