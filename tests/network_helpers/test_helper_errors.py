"""MFParallelLlama2Helper and checkpoint loading: bad input gets an error naming the culprit."""
import numpy as np
import pytest
import yaml
import mindspore as ms

from network_helpers import MFParallelLlama2Helper
from ms_infra.checkpoint import load_checkpoint_into, save_checkpoint_atomic
from tests.conftest import build_tiny, tiny_weights

TINY_YAML = {
    "load_checkpoint": "",
    "context": {"mode": 1, "device_target": "CPU"},
    "parallel_config": {"model_parallel": 1},
    "model": {"model_config": {"type": "LlamaConfig", "vocab_size": 96, "hidden_size": 64, "num_layers": 2,
                               "num_heads": 4, "n_kv_heads": 2, "intermediate_size": 96, "seq_length": 64,
                               "batch_size": 1, "pad_token_id": 0, "eos_token_id": 95},
              "arch": {"type": "ParallelLlamaForCausalLM"}},
    "processor": {"tokenizer": {"type": "PreTrainedTokenizerFast", "tokenizer_dir": "/nonexistent"}},
}


def write_yaml(tmp_path, data, name="tiny.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data))
    return path


def with_model(**changes):
    data = yaml.safe_load(yaml.safe_dump(TINY_YAML))
    data["model"]["model_config"].update(changes)
    return data


def test_tiny_yaml_builds_the_tiny_network(tmp_path):
    checkpoint = save_checkpoint_atomic(tiny_weights(), tmp_path / "tiny.ckpt")
    helper = MFParallelLlama2Helper(str(write_yaml(tmp_path, {**TINY_YAML, "load_checkpoint": str(checkpoint)})))
    assert helper.get_spec("n_kv_heads") == 2 and helper.get_spec("ffn_hidden_size") == 96
    ids = ms.Tensor([[1, 2, 3]], ms.int32)
    np.testing.assert_array_equal(helper.create_network()(ids).asnumpy(), build_tiny()(ids).asnumpy())


def test_missing_yaml_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.yaml"):
        MFParallelLlama2Helper(str(tmp_path / "nope.yaml"))


def test_missing_required_model_field(tmp_path):
    data = with_model()
    del data["model"]["model_config"]["num_heads"]
    with pytest.raises(KeyError, match="num_heads"):
        MFParallelLlama2Helper(str(write_yaml(tmp_path, data)))


def test_missing_model_section(tmp_path):
    with pytest.raises(KeyError, match="model"):
        MFParallelLlama2Helper(str(write_yaml(tmp_path, {"context": {"mode": 0}})))


@pytest.mark.parametrize("changes, message", [
    (dict(num_heads=5), "hidden_size \\(64\\) is not divisible by num_heads \\(5\\)"),
    (dict(n_kv_heads=3), "num_heads \\(4\\) is not divisible by n_kv_heads \\(3\\)"),
    (dict(seq_length=0), "seq_length must be a positive integer"),
    (dict(compute_dtype="float8"), "compute_dtype: unknown dtype"),
], ids=["heads", "kv-heads", "seq-length", "dtype"])
def test_invalid_model_fields(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        MFParallelLlama2Helper(str(write_yaml(tmp_path, with_model(**changes))))


def test_unsupported_arch(tmp_path):
    data = with_model()
    data["model"]["arch"]["type"] = "GPT2LMHeadModel"
    with pytest.raises(ValueError, match="GPT2LMHeadModel"):
        MFParallelLlama2Helper(str(write_yaml(tmp_path, data)))


def test_unknown_spec_lists_valid_names(tmp_path):
    helper = MFParallelLlama2Helper(str(write_yaml(tmp_path, TINY_YAML)))
    with pytest.raises(KeyError, match="unknown spec 'max_len'.*seq_length"):
        helper.get_spec("max_len")


def test_missing_tokenizer_directory(tmp_path):
    helper = MFParallelLlama2Helper(str(write_yaml(tmp_path, TINY_YAML)))
    with pytest.raises(FileNotFoundError, match="tokenizer_dir"):
        helper.create_tokenizer()


def test_missing_checkpoint_file(tmp_path):
    helper = MFParallelLlama2Helper(str(write_yaml(tmp_path, {**TINY_YAML, "load_checkpoint": "/no/such.ckpt"})))
    with pytest.raises(FileNotFoundError, match="/no/such.ckpt"):
        helper.create_network()


def test_checkpoint_with_wrong_shape_or_missing_parameter(tmp_path):
    weights = tiny_weights()
    weights["model.layers.0.attention.wq.weight"] = weights["model.layers.0.attention.wq.weight"][:, :32]
    del weights["model.layers.1.ffn_norm.weight"]
    path = save_checkpoint_atomic(weights, tmp_path / "bad.ckpt")
    with pytest.raises(ValueError) as error:
        load_checkpoint_into(build_tiny(), path)
    assert "model.layers.1.ffn_norm.weight" in str(error.value)
    assert "model.layers.0.attention.wq.weight: checkpoint (64, 32) vs network (64, 64)" in str(error.value)


def test_unreadable_checkpoint(tmp_path):
    path = tmp_path / "garbage.ckpt"
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="garbage.ckpt"):
        load_checkpoint_into(build_tiny(), path)


def test_fp16_checkpoint_loads_into_fp32_network(tmp_path):
    path = save_checkpoint_atomic({k: v.astype(np.float16) for k, v in tiny_weights().items()}, tmp_path / "h.ckpt")
    network = load_checkpoint_into(build_tiny(seed=3), path)
    expected = tiny_weights()["lm_head.weight"].astype(np.float16).astype(np.float32)
    np.testing.assert_array_equal(network.lm_head.weight.asnumpy(), expected)
    assert network.lm_head.weight.dtype == ms.float32


def test_generation_specs_come_from_the_yaml_model_config(tmp_path):
    """The guide's evaluation loop asks for top_k, top_p, do_sample and pad_token_id."""
    helper = MFParallelLlama2Helper(str(write_yaml(tmp_path, with_model(top_k=3, top_p=1.0, do_sample=False))))
    assert (helper.get_spec("top_k"), helper.get_spec("top_p"), helper.get_spec("do_sample")) == (3, 1.0, False)
    assert helper.get_spec("pad_token_id") == 0
    with pytest.raises(KeyError, match="unknown spec 'top_q'.*model_config keys: .*top_k"):
        helper.get_spec("top_q")


@pytest.mark.parametrize("changes, message", [
    (dict(thetta=500000.0), "unknown field\\(s\\): 'thetta' \\(did you mean 'theta'\\?\\)"),
    (dict(qkv_has_bias=True), "qkv_has_bias=True is not supported"),
], ids=["typo", "unsupported-bias"])
def test_model_config_keys_that_would_change_the_maths_silently_are_refused(tmp_path, changes, message):
    with pytest.raises(ValueError, match=message):
        MFParallelLlama2Helper(str(write_yaml(tmp_path, with_model(**changes))))


def test_mindformers_runtime_keys_are_accepted(tmp_path):
    helper = MFParallelLlama2Helper(str(write_yaml(tmp_path, with_model(use_flash_attention=False, block_size=16,
                                                                        rotary_dtype="float32"))))
    assert helper.get_spec("num_heads") == 4


def test_a_misspelled_load_checkpoint_key_is_named(tmp_path):
    data = yaml.safe_load(yaml.safe_dump(TINY_YAML))
    data["load_checkpiont"] = data.pop("load_checkpoint") or "float.ckpt"
    with pytest.raises(KeyError, match="'load_checkpiont': did you mean load_checkpoint"):
        MFParallelLlama2Helper(str(write_yaml(tmp_path, data)))


def test_a_network_built_to_be_loaded_allocates_no_weights_and_loads_the_same(tmp_path):
    checkpoint = save_checkpoint_atomic(tiny_weights(), tmp_path / "tiny.ckpt")
    helper = MFParallelLlama2Helper(str(write_yaml(tmp_path, dict(TINY_YAML, load_checkpoint=str(checkpoint)))))
    deferred = helper.create_network(load_checkpoint=False, defer_weights=True)
    weights = [p for p in deferred.get_parameters() if not p.name.endswith("_cache")]
    assert weights and all(p.has_init for p in weights)  # nothing allocated or filled yet
    eager = helper.create_network(load_checkpoint=False)
    assert not any(p.has_init for p in eager.get_parameters())
    ids = ms.Tensor(np.arange(1, 9, dtype=np.int32)[None])
    expected = helper.create_network()(ids).asnumpy()  # the YAML's checkpoint, loaded by the helper itself
    np.testing.assert_array_equal(load_checkpoint_into(deferred, checkpoint)(ids).asnumpy(), expected)
