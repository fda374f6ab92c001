"""MFParallelLlama2Helper: a MindFormers YAML (`predict_llama2_7b.yaml` format) -> the portable ParallelLlama."""
import contextlib
import difflib
import logging
import os
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import mindspore as ms
from mindspore.nn.utils import no_init_parameters

from ms_infra.checkpoint import load_checkpoint_into
from ms_infra.files import read_yaml_mapping
from ms_infra.frameworks import import_quietly, mindformers_installed
from ms_infra.parallel import init_tensor_parallel

from .layouts import LlamaLayout
from .llama import LlamaArgs, ParallelLlamaForCausalLM
from .network_helper import NetworkHelper
from .yaml_config import read_config

logger = logging.getLogger(__name__)

SUPPORTED_ARCHS = ("ParallelLlamaForCausalLM", "LlamaForCausalLM")

class BatchDecodingTokenizer:
    """A Hugging Face tokenizer that also decodes a batch the way MindFormers tokenizers do:
    `decode([ids, ids, ...])` (a list of id sequences or a 2-D array) returns a list of strings."""

    def __init__(self, tokenizer):
        self._tokenizer = tokenizer

    def __getattr__(self, name):
        return getattr(self._tokenizer, name)

    def __call__(self, *args, **kwargs):
        return self._tokenizer(*args, **kwargs)

    def __len__(self):
        return len(self._tokenizer)

    def decode(self, token_ids, **kwargs):
        if isinstance(token_ids, np.ndarray) and token_ids.ndim == 2 or (
                isinstance(token_ids, (list, tuple)) and token_ids and np.ndim(token_ids[0]) == 1):
            return self._tokenizer.batch_decode([np.asarray(ids).tolist() for ids in token_ids], **kwargs)
        return self._tokenizer.decode(np.asarray(token_ids).tolist(), **kwargs)


def _tokenizer_from_dir(tokenizer_cfg):
    from transformers import AutoTokenizer
    directory = tokenizer_cfg.get("tokenizer_dir") or tokenizer_cfg.get("pretrained_model_dir")
    if not directory or not Path(directory).is_dir():
        raise FileNotFoundError(f"processor.tokenizer.tokenizer_dir is not a directory: {directory!r}")
    return BatchDecodingTokenizer(AutoTokenizer.from_pretrained(str(directory)))


def _tokenizer_from_mindformers(tokenizer_cfg):
    if not mindformers_installed():
        raise ValueError(f"processor.tokenizer.type {tokenizer_cfg.get('type')!r} is built by MindFormers, which is "
                         "not installed (pip install 'mindspore-ptq[mindformers]'); without it use type "
                         f"{' or '.join(TOKENIZER_BUILDERS)} with a tokenizer_dir")
    from mindformers.models.build_tokenizer import build_tokenizer
    return build_tokenizer(tokenizer_cfg)


TOKENIZER_BUILDERS = {
    "PreTrainedTokenizerFast": _tokenizer_from_dir,
    "AutoTokenizer": _tokenizer_from_dir,
}


def _check_load_checkpoint_key(config):
    """A YAML with no `load_checkpoint` but a key spelled like it would build a randomly initialised network."""
    if config.get("load_checkpoint"):
        return
    near = difflib.get_close_matches("load_checkpoint", [k for k in config if k != "load_checkpoint"], 1, 0.8)
    if near:
        raise KeyError(f"the YAML has no `load_checkpoint` but has {near[0]!r}: did you mean load_checkpoint?")


def _read_mindformers_config(path):
    MindFormerConfig = import_quietly("mindformers.tools.register").MindFormerConfig  # noqa: N806
    read_yaml_mapping(path, "YAML config")  # a syntax error or a non-mapping, named with the file
    try:
        return MindFormerConfig(str(path))
    except Exception as err:  # yaml errors come in several types
        raise ValueError(f"{path} is not a valid MindFormers YAML: {err}") from err


def load_config(config):
    """The config of a YAML path (a MindFormerConfig when MindFormers is installed, else our YamlConfig) or an
    existing config, with errors naming the file or field."""
    if isinstance(config, (str, os.PathLike)):
        path = Path(config)
        config = _read_mindformers_config(path) if mindformers_installed() else read_config(path)
    for section in ("model", "model.model_config", "model.arch"):
        node = config
        for key in section.split("."):
            node = node.get(key) if hasattr(node, "get") else None
        if node is None:
            raise KeyError(f"the YAML has no `{section}` section")
    _check_load_checkpoint_key(config)
    arch = config.model.arch.get("type")
    if arch not in SUPPORTED_ARCHS:
        raise ValueError(f"model.arch.type {arch!r} is not supported; expected one of {SUPPORTED_ARCHS}")
    return config


class MFParallelLlama2Helper(NetworkHelper):
    """Builds the portable ParallelLlama from a MindFormers YAML path or its config (MindFormerConfig or
    YamlConfig)."""

    def __init__(self, config):
        self.config = load_config(config)
        parallel = self.config.get("parallel_config") or {}
        self.args = LlamaArgs.from_model_config(self.config.model.model_config,
                                                model_parallel=int(parallel.get("model_parallel") or 1))

    def set_context(self, mode=None):
        """Apply the YAML's `context.device_target` and `context.mode` (or `mode` if given); under msrun,
        initialise communication and check the worker count against `parallel_config`."""
        context = self.config.get("context") or {}
        device = context.get("device_target", "CPU")
        if ms.get_context("device_target") != device:  # set_device refuses a second call once kernels ran
            ms.set_device(device)
        ms.set_recursion_limit(context.get("max_call_depth", 10000))
        ms.set_context(mode=context.get("mode", ms.GRAPH_MODE) if mode is None else mode)
        parallel = self.config.get("parallel_config") or {}
        init_tensor_parallel(self.args.model_parallel, int(parallel.get("data_parallel") or 1))

    def with_specs(self, **changes):
        """A copy of this helper whose model arguments differ (e.g. batch_size, seq_length)."""
        helper = object.__new__(type(self))
        helper.config, helper.args = self.config, replace(self.args, **changes)
        return helper

    def create_network(self, load_checkpoint=True, defer_weights=False):
        """The float network, with the YAML's load_checkpoint loaded unless `load_checkpoint` is False.

        defer_weights: leave the weights unallocated (MindSpore's no_init_parameters) for a caller that loads
        them, or replaces their cells, next; a checkpoint loaded here is always loaded so.
        """
        checkpoint = self.config.get("load_checkpoint")
        # deferred: no random weights to allocate, fill and then replace
        deferred = defer_weights or (load_checkpoint and checkpoint)
        with no_init_parameters() if deferred else contextlib.nullcontext():
            network = ParallelLlamaForCausalLM(self.args)
        if load_checkpoint and checkpoint:
            load_checkpoint_into(network, checkpoint)
            logger.info("loaded %s", checkpoint)
        elif load_checkpoint:
            logger.warning("the YAML names no load_checkpoint: the network keeps its random initial weights")
        return network

    def get_spec(self, name):
        """A model argument (LlamaArgs, e.g. batch_size, seq_length, head_dim), else a `model.model_config` key of
        the YAML (e.g. the generation settings top_k, top_p, do_sample); a KeyError lists both."""
        specs = {f.name: getattr(self.args, f.name) for f in fields(self.args)}
        specs["head_dim"] = self.args.head_dim
        model_config = self.config.model.model_config
        if name in specs:
            return specs[name]
        if name in model_config:
            return model_config[name]
        raise KeyError(f"unknown spec {name!r}; model arguments: {', '.join(sorted(specs))}; YAML "
                       f"model_config keys: {', '.join(sorted(model_config))}")

    def create_tokenizer(self):
        tokenizer_cfg = dict(self.config.get("processor", {}).get("tokenizer") or {})
        if not tokenizer_cfg:
            raise KeyError("the YAML has no `processor.tokenizer` section")
        builder = TOKENIZER_BUILDERS.get(tokenizer_cfg.get("type"), _tokenizer_from_mindformers)
        return builder(tokenizer_cfg)

    def generate(self, network, input_ids, max_new_tokens=None, **kwargs):
        return network.generate(input_ids, max_new_tokens=max_new_tokens, **kwargs)

    @property
    def layout(self):
        return LlamaLayout()
