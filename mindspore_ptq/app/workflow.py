"""The user workflow as functions, shared by the example scripts, the CLI and the benchmark."""
import time
from pathlib import Path

import mindspore as ms

from ms_infra.checkpoint import load_checkpoint_into, read_checkpoint
from ms_infra.files import write_json_atomic
from ms_infra.parallel import tp_rank_and_size

from ..io import checkpoint_size_mb, config_path_for, load_quantized, quantized_parameter, save_quantized
from ..io.sharding import manifest_path, rank_path
from ..config import PTQConfig, PTQMode
from ..datasets import context_windows, get_datasets
from ..evaluation.resources import peak_rss_mb, reset_peak_rss, rss_mb
from ..layer_policy import check_name_patterns
from ..log import progress
from ..ptq import PTQ
from .reports import report_path_for, save_report


def _float_forward_seconds(network, samples):
    """Wall time of one float forward pass over the calibration set (the yardstick for calibration cost)."""
    start = time.perf_counter()
    for ids in progress(samples, desc="float forward"):
        network(ms.Tensor(ids, ms.int32))
    return time.perf_counter() - start


def interleave(first, second):
    """first[0], second[0], first[1], second[1], ...; the longer list's tail comes last."""
    mixed = [item for pair in zip(first, second) for item in pair]
    shorter = min(len(first), len(second))
    return mixed + list(first[shorter:]) + list(second[shorter:])


def calibration_samples(helper, dataset_path, n_samples, template="squad_3shot", text_windows=0, window=512,
                        dataset_type="squad1.1", shots_path=None):
    """Calibration input ids, (1, S) arrays: `n_samples` train questions of the `dataset_type` file rendered with
    `template` (worked examples from `shots_path`, default beside the file) plus their gold answer, interleaved
    with `text_windows` plain-text windows of the same file's contexts (so that ranges and the held-out slice also
    see text that is not a prompt)."""
    tokenizer = helper.create_tokenizer()
    dataset = get_datasets(dataset_type, dataset_path, "train", 1, helper.get_spec("seq_length"), 0, tokenizer,
                           helper.get_spec("ignore_token_id"), 1, False, n_samples=n_samples, template=template,
                           shots_path=shots_path)
    prompts = [item["input_ids"] for item in dataset.create_dict_iterator(output_numpy=True)]
    if not text_windows:
        return prompts
    windows = context_windows(dataset_path, tokenizer, min(window, helper.get_spec("seq_length")), text_windows)
    return interleave(prompts, [row[None] for row in windows])


def quantize_to_checkpoint(helper, config, dataset_path, n_samples, output_path, template="squad_3shot",
                           time_float_forward=False, text_windows=0, dataset_type="squad1.1", shots_path=None):
    """Calibrate the helper's float network in PyNative on SQuAD train samples (see `calibration_samples`),
    convert, save the checkpoint, its config and the per-layer report (<name>.report.json) beside it.

    Returns a summary dict: checkpoint, size_mb, calibration_seconds, n_samples, rss_before_mb (after the float
    network is loaded), peak_rss_mb (during calibration), and float_forward_seconds if `time_float_forward`.
    """
    ms.set_context(mode=ms.PYNATIVE_MODE)
    network = helper.create_network()
    check_name_patterns(network, helper.layout, config)  # before the samples are built and the layers calibrated
    samples = None
    if config.needs_calibration_data:
        samples = calibration_samples(helper, dataset_path, n_samples, template, text_windows,
                                      dataset_type=dataset_type, shots_path=shots_path)
    summary = {"scheme": config.name, "n_samples": len(samples) if samples else 0}
    if time_float_forward and samples:
        summary["float_forward_seconds"] = _float_forward_seconds(network, samples)
    peak_tracked = reset_peak_rss()  # first: memory freed before the reading must not leave the peak below it
    summary["rss_before_mb"] = rss_mb()
    start = time.perf_counter()
    ptq = PTQ(config)
    ptq.apply(network, helper, samples)
    ptq.convert(network)
    summary["calibration_seconds"] = time.perf_counter() - start
    summary["peak_rss_mb"] = peak_rss_mb() if peak_tracked else None
    # the config with the mixed-precision plan that fallback chose, so DEPLOY rebuilds it
    checkpoint = save_quantized(network, output_path, ptq.quantized_config,
                                source_checkpoint=helper.config.get("load_checkpoint"))
    summary.update(checkpoint=str(checkpoint), size_mb=checkpoint_size_mb(checkpoint), fallback=ptq.fallback)
    if tp_rank_and_size()[0] == 0:
        save_report(ptq.report, report_path_for(output_path))
        write_json_atomic(Path(output_path).with_suffix(".json"), summary)
    return summary


def output_files(checkpoint):
    """Every file `quantize_to_checkpoint` writes for `checkpoint` (one process, or per rank under msrun)."""
    rank, world = tp_rank_and_size()
    files = [config_path_for(checkpoint), report_path_for(checkpoint), Path(checkpoint).with_suffix(".json")]
    if world > 1:
        return files + [rank_path(checkpoint, rank), manifest_path(checkpoint)]
    return files + [Path(checkpoint)]


def deploy_config_for(checkpoint, config=None, backend=None):
    """DEPLOY config for a checkpoint: `config` if given, else the PTQ config saved beside it, else None; with
    `backend` (a BackendTarget value) in place of the saved one."""
    overrides = dict(mode=PTQMode.DEPLOY.value, **({"backend": backend} if backend else {}))
    if config is not None:
        return PTQConfig.from_dict(config.quantization_fields(), **overrides)
    if checkpoint and config_path_for(checkpoint).is_file():
        return PTQConfig.load(config_path_for(checkpoint), **overrides)
    return None


def check_float_checkpoint(checkpoint, what):
    """Before any long work: `checkpoint` (described as `what`) must be a float one, not a quantized one (which has
    its PTQ config beside it)."""
    if checkpoint and config_path_for(checkpoint).is_file():
        raise ValueError(f"{what} {checkpoint} is a quantized checkpoint (its PTQ config {config_path_for(checkpoint)} "
                         "is beside it); this needs the float checkpoint")


def _load_float(network, checkpoint):
    """Load a float checkpoint; a quantized one whose config is missing is named as such (its int8 parameters
    would otherwise read as a dtype mismatch)."""
    stored = read_checkpoint(checkpoint)
    quantized = quantized_parameter(stored)
    if quantized is not None:
        raise FileNotFoundError(f"{checkpoint} is a quantized checkpoint (it holds {quantized}) but its PTQ config "
                                f"{config_path_for(checkpoint)} is missing: put the .ptq.yaml written with it beside "
                                "it")
    load_checkpoint_into(network, checkpoint, stored=stored)


def load_network(helper, checkpoint=None, config=None, backend=None):
    """The network of `checkpoint` (default: the YAML's load_checkpoint): float, or the quantized structure
    rebuilt in DEPLOY mode (from `config`, else the PTQ config beside the checkpoint; its kernels from `backend`,
    else the config's) before it is loaded."""
    checkpoint = checkpoint or helper.config.get("load_checkpoint")
    if not checkpoint:
        if config is not None:
            raise ValueError(f"a quantized network ({config.name}) needs its checkpoint; none was given")
        return helper.create_network()  # random weights; the helper warns
    deploy = deploy_config_for(checkpoint, config, backend)
    network = helper.create_network(load_checkpoint=False, defer_weights=True)
    if deploy is None:
        if backend:
            raise ValueError(f"a backend ({backend}) chooses a quantized network's kernels, but {checkpoint} is a "
                             "float checkpoint (no PTQ config beside it)")
        _load_float(network, checkpoint)
        return network
    ptq = PTQ(deploy)
    ptq.apply(network)
    ptq.convert(network)
    load_quantized(network, checkpoint, deploy)
    return network
