"""MFParallelLlama2Helper: a MindFormers YAML (`predict_llama2_7b.yaml` format) -> the portable ParallelLlama."""
import logging
import os
from dataclasses import fields, replace
from pathlib import Path

import mindspore as ms

from ms_infra.checkpoint import load_checkpoint_into
from .layouts import LlamaLayout
from .llama import LlamaArgs, ParallelLlamaForCausalLM
from ms_infra.parallel import init_tensor_parallel
from .network_helper import NetworkHelper

logger = logging.getLogger(__name__)

SUPPORTED_ARCHS = ("ParallelLlamaForCausalLM", "LlamaForCausalLM")

def _tokenizer_from_dir(tokenizer_cfg):
    from transformers import AutoTokenizer
    directory = tokenizer_cfg.get("tokenizer_dir") or tokenizer_cfg.get("pretrained_model_dir")
    if not directory or not Path(directory).is_dir():
        raise FileNotFoundError(f"processor.tokenizer.tokenizer_dir is not a directory: {directory!r}")
    return AutoTokenizer.from_pretrained(str(directory))


def _tokenizer_from_mindformers(tokenizer_cfg):
    from mindformers.models.build_tokenizer import build_tokenizer
    return build_tokenizer(tokenizer_cfg)


TOKENIZER_BUILDERS = {
    "PreTrainedTokenizerFast": _tokenizer_from_dir,
    "AutoTokenizer": _tokenizer_from_dir,
}


def load_config(config):
    """A MindFormerConfig from a YAML path or an existing config, with errors naming the file or field."""
    from mindformers.tools.register import MindFormerConfig
    if isinstance(config, (str, os.PathLike)):
        path = Path(config)
        if not path.is_file():
            raise FileNotFoundError(f"YAML config not found: {path}")
        try:
            config = MindFormerConfig(str(path))
        except Exception as err:  # yaml errors come in several types
            raise ValueError(f"{path} is not a valid MindFormers YAML: {err}") from err
    for section in ("model", "model.model_config", "model.arch"):
        node = config
        for key in section.split("."):
            node = node.get(key) if hasattr(node, "get") else None
        if node is None:
            raise KeyError(f"the YAML has no `{section}` section")
    arch = config.model.arch.get("type")
    if arch not in SUPPORTED_ARCHS:
        raise ValueError(f"model.arch.type {arch!r} is not supported; expected one of {SUPPORTED_ARCHS}")
    return config


class MFParallelLlama2Helper(NetworkHelper):
    """Builds the portable ParallelLlama from a MindFormers YAML path or MindFormerConfig."""

    def __init__(self, config):
        self.config = load_config(config)
        parallel = self.config.get("parallel_config") or {}
        self.args = LlamaArgs.from_model_config(self.config.model.model_config,
                                                model_parallel=int(parallel.get("model_parallel") or 1))

    def set_context(self, mode=None):
        """Apply the YAML's `context.device_target` and `context.mode` (or `mode` if given); under msrun,
        initialise communication and check the worker count against `parallel_config`."""
        context = self.config.get("context") or {}
        ms.set_context(mode=context.get("mode", ms.GRAPH_MODE) if mode is None else mode,
                       device_target=context.get("device_target", "CPU"),
                       max_call_depth=context.get("max_call_depth", 10000))
        parallel = self.config.get("parallel_config") or {}
        init_tensor_parallel(self.args.model_parallel, int(parallel.get("data_parallel") or 1))

    def with_specs(self, **changes):
        """A copy of this helper whose model arguments differ (e.g. batch_size, seq_length)."""
        helper = object.__new__(type(self))
        helper.config, helper.args = self.config, replace(self.args, **changes)
        return helper

    def create_network(self, load_checkpoint=True):
        network = ParallelLlamaForCausalLM(self.args)
        checkpoint = self.config.get("load_checkpoint")
        if load_checkpoint and checkpoint:
            load_checkpoint_into(network, checkpoint)
            logger.info("loaded %s", checkpoint)
        return network

    def get_spec(self, name):
        specs = {f.name: getattr(self.args, f.name) for f in fields(self.args)}
        specs["head_dim"] = self.args.head_dim
        if name not in specs:
            raise KeyError(f"unknown spec {name!r}; valid names: {', '.join(sorted(specs))}")
        return specs[name]

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
