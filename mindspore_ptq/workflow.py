"""The user workflow as functions, shared by the example scripts, the CLI and the benchmark."""
import json
import time
from pathlib import Path

import mindspore as ms

from network_helpers.checkpoint_io import load_checkpoint_into
from network_helpers.llama.parallel import tp_rank_and_size

from .checkpoint import config_path_for, load_quantized, save_quantized
from .config import PTQConfig, PTQMode
from .datasets import get_datasets
from .ptq import PTQ


def quantize_to_checkpoint(helper, config, dataset_path, n_samples, output_path, template="squad_3shot"):
    """Calibrate the helper's float network in PyNative on SQuAD train samples, convert, save.

    Returns a summary dict (checkpoint, size_mb, calibration_seconds, n_samples).
    """
    ms.set_context(mode=ms.PYNATIVE_MODE)
    network = helper.create_network()
    dataset = None
    if config.needs_calibration_data:
        dataset = get_datasets("squad1.1", dataset_path, "train", 1, helper.get_spec("seq_length"), 0,
                               helper.create_tokenizer(), helper.get_spec("ignore_token_id"), 1, False,
                               n_samples=n_samples, template=template)
    else:
        n_samples = 0  # round-to-nearest weights need no data
    start = time.perf_counter()
    ptq = PTQ(config)
    ptq.apply(network, helper, dataset)
    ptq.convert(network)
    seconds = time.perf_counter() - start
    checkpoint = save_quantized(network, output_path, config, source_checkpoint=helper.config.get("load_checkpoint"))
    summary = {"approach": config.name, "checkpoint": str(checkpoint), "calibration_seconds": seconds,
               "n_samples": n_samples, "size_mb": checkpoint.stat().st_size / 2 ** 20}
    if tp_rank_and_size()[0] == 0:
        Path(output_path).with_suffix(".json").write_text(json.dumps(summary, indent=2))
    return summary


def deploy_config_for(checkpoint, config=None):
    """DEPLOY config for a checkpoint: `config` if given, else the PTQ config saved beside it, else None."""
    if config is not None:
        return PTQConfig.from_dict(config.quantization_fields(), mode=PTQMode.DEPLOY.value)
    if checkpoint and config_path_for(checkpoint).is_file():
        return PTQConfig.load(config_path_for(checkpoint), mode=PTQMode.DEPLOY.value)
    return None


def load_network(helper, checkpoint=None, config=None):
    """Float network (from `checkpoint` or the YAML's), or the quantized structure rebuilt in DEPLOY mode
    before its checkpoint is loaded."""
    deploy = deploy_config_for(checkpoint, config)
    network = helper.create_network(load_checkpoint=checkpoint is None and deploy is None)
    if deploy is not None:
        ptq = PTQ(deploy)
        ptq.apply(network)
        ptq.convert(network)
        load_quantized(network, checkpoint, deploy)
    elif checkpoint:
        load_checkpoint_into(network, checkpoint)
    return network
