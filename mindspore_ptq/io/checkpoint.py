"""Quantized checkpoints: saved atomically with their PTQConfig beside them, loaded only into a matching structure."""
from pathlib import Path

import mindspore as ms

from ms_infra.checkpoint import (is_runtime_state, load_checkpoint_into, save_checkpoint, save_checkpoint_atomic,
                                 shard_axes)
from ms_infra.files import atomic_set
from ms_infra.parallel import tp_rank_and_size

from ..config import PTQConfig
from .paths import config_path_for
from .sharding import rank_path, write_manifest

QUANT_PARAM_SUFFIXES = ("_scale", "_zero_point")  # kept in float32 whatever `float_dtype` is
DEPLOYMENT_FIELDS = ("backend",)  # chosen at deployment: they do not shape the checkpoint


def _stored_value(param, float_dtype):
    if param.dtype == ms.float32 and float_dtype != ms.float32 and not param.name.endswith(QUANT_PARAM_SUFFIXES):
        return param.astype(float_dtype)
    return param


def save_quantized(network, path, config, source_checkpoint=None, float_dtype=ms.float16):
    """Write the network's weights (no KV cache) and `config` next to them; float weights become `float_dtype`.

    Refuses to write over `source_checkpoint`, the float checkpoint the network was loaded from.
    """
    path = Path(path)
    if source_checkpoint and path.resolve() == Path(source_checkpoint).resolve():
        raise ValueError(f"refusing to overwrite the source float checkpoint {source_checkpoint}")
    params = {p.name: _stored_value(p, float_dtype) for p in network.get_parameters() if not is_runtime_state(p.name)}
    rank, world = tp_rank_and_size()
    if world > 1:  # one file per rank, and a manifest to merge them (io.sharding)
        save_checkpoint_atomic(params, rank_path(path, rank))
        if rank == 0:
            write_manifest(path, world, {n: a for n, a in shard_axes(network).items() if n in params})
            config.dump(config_path_for(path))
        return rank_path(path, rank)
    with atomic_set([path, config_path_for(path)]) as (checkpoint_temp, config_temp):  # the pair, or nothing
        save_checkpoint(params, checkpoint_temp)
        config.dump(config_temp)
    return path


def check_config_matches(checkpoint, config):
    """Raise if the PTQConfig saved beside `checkpoint` differs from `config` in any quantization field."""
    saved_path = config_path_for(checkpoint)
    if not saved_path.is_file():
        raise FileNotFoundError(f"{checkpoint} has no PTQ config beside it ({saved_path.name}); "
                                "was it written by mindspore_ptq.io.checkpoint.save_quantized?")
    saved = PTQConfig.load(saved_path).quantization_fields()
    wanted = config.quantization_fields()
    for deployment_choice in DEPLOYMENT_FIELDS:
        saved.pop(deployment_choice), wanted.pop(deployment_choice)
    differences = [f"{k}: checkpoint {saved.get(k)!r} vs deploy {wanted.get(k)!r}"
                   for k in sorted(set(saved) | set(wanted)) if saved.get(k) != wanted.get(k)]
    if differences:
        raise ValueError(f"{checkpoint} was quantized with another config: " + "; ".join(differences))


def load_quantized(network, path, config):
    """Check `config` against the checkpoint's own, then load (names, shapes and dtypes checked)."""
    check_config_matches(path, config)
    return load_checkpoint_into(network, path)


def quantized_parameter(stored):
    """The name of a parameter that only a quantized checkpoint holds (int8, or a scale or zero point) among
    `stored` ({name: Tensor}), else None."""
    return next((name for name, value in stored.items()
                 if value.dtype == ms.int8 or name.endswith(QUANT_PARAM_SUFFIXES)), None)


def checkpoint_size_mb(path):
    return Path(path).stat().st_size / 2 ** 20
