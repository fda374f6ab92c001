"""Our YAML reader (used without MindFormers) gives what MindFormerConfig gives, and the same errors."""
import copy
import pickle

import pytest

import network_helpers.mf_parallel_llama2_helper as mf_helper
from network_helpers import MFParallelLlama2Helper
from network_helpers.yaml_config import YamlConfig, read_config
from ms_infra.frameworks import import_quietly
from tests.conftest import REPO_ROOT, needs_mindformers

EXAMPLE = REPO_ROOT / "example" / "configs" / "predict_smollm2_135m.yaml"


def mindformer_config(path):
    return import_quietly("mindformers.tools.register").MindFormerConfig(str(path))


def as_in(mindformers, ours):
    """MindFormers' config cut down to the keys of ours: it adds its run-mode templates' defaults."""
    return {key: as_in(mindformers[key], value) if isinstance(value, dict) else mindformers[key]
            for key, value in ours.items() if key in mindformers}


@needs_mindformers
def test_the_example_yaml_reads_as_mindformers_reads_it():
    ours, theirs = read_config(EXAMPLE), mindformer_config(EXAMPLE)
    assert as_in(theirs, ours) == ours
    assert ours.model.model_config.hidden_size == theirs.model.model_config.hidden_size == 576
    assert ours.no_such_key is None and theirs.no_such_key is None
    helpers = [MFParallelLlama2Helper(config) for config in (ours, theirs)]
    assert helpers[0].args == helpers[1].args
    for section in ("context", "parallel_config", "processor"):  # what set_context and create_tokenizer read
        assert {k: helpers[1].config[section][k] for k in helpers[0].config[section]} == helpers[0].config[section]


@needs_mindformers
def test_base_config_is_merged_as_mindformers_merges_it(tmp_path):
    (tmp_path / "base").mkdir()
    (tmp_path / "base" / "common.yaml").write_text("seed: 1\nrun_mode: predict\ncontext: {mode: 0, device_target: CPU}\n"
                                                   "model: {model_config: {hidden_size: 64, num_layers: 2}}\n")
    (tmp_path / "child.yaml").write_text("base_config: base/common.yaml\ncontext: {mode: 1}\n"
                                         "model: {model_config: {num_layers: 4}}\n")
    ours = read_config(tmp_path / "child.yaml")
    assert ours == {"seed": 1, "run_mode": "predict", "context": {"mode": 1, "device_target": "CPU"},
                    "model": {"model_config": {"hidden_size": 64, "num_layers": 4}}}
    assert as_in(mindformer_config(tmp_path / "child.yaml"), ours) == ours


@pytest.mark.parametrize("name, text, error, message", [
    ("bad.yaml", "model: [1\n", ValueError, "YAML config {path} is not valid YAML: line 2, column 1"),
    ("list.yaml", "- model\n", ValueError, "YAML config {path} must be a YAML mapping, got list"),
    ("empty.yaml", "", ValueError, "YAML config {path} must be a YAML mapping, got nothing"),
    ("none.yaml", None, FileNotFoundError, "YAML config not found: {path}"),
], ids=["syntax", "list", "empty", "missing"])
def test_errors_are_the_same_with_and_without_mindformers(tmp_path, monkeypatch, name, text, error, message):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    raised = []
    for installed in sorted({False, mf_helper.mindformers_installed()}):
        monkeypatch.setattr(mf_helper, "mindformers_installed", lambda installed=installed: installed)
        with pytest.raises(error) as caught:
            mf_helper.load_config(str(path))
        raised.append((type(caught.value), str(caught.value)))
    assert raised[0][1].startswith(message.format(path=path)) and len(set(raised)) == 1, raised


def test_without_mindformers_the_helper_reads_our_config(monkeypatch):
    monkeypatch.setattr(mf_helper, "mindformers_installed", lambda: False)
    helper = MFParallelLlama2Helper(str(EXAMPLE))
    assert isinstance(helper.config, YamlConfig) and isinstance(helper.config.model.model_config, YamlConfig)
    assert helper.get_spec("num_heads") == 9 and helper.config.context.device_target == "CPU"


def test_a_config_copies_and_pickles_as_itself():
    config = YamlConfig({"model": {"arch": {"type": "LlamaForCausalLM"}}})
    for clone in (copy.deepcopy(config), pickle.loads(pickle.dumps(config))):
        assert clone == config and clone.model.arch.type == "LlamaForCausalLM"
        assert isinstance(clone.model, YamlConfig)


def test_a_mindformers_tokenizer_type_without_mindformers_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setattr(mf_helper, "mindformers_installed", lambda: False)
    text = EXAMPLE.read_text().replace("type: PreTrainedTokenizerFast", "type: LlamaTokenizer")
    (tmp_path / "mf_tokenizer.yaml").write_text(text)
    with pytest.raises(ValueError, match=r"'LlamaTokenizer' is built by MindFormers.*mindspore-ptq\[mindformers\]"):
        MFParallelLlama2Helper(str(tmp_path / "mf_tokenizer.yaml")).create_tokenizer()
