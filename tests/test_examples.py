"""The example scripts and the CLI run end to end on tiny settings: quantize, deploy and evaluate, benchmark. The
measures are recomputed here from the networks' logits, not taken on trust."""
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
import yaml
import mindspore as ms

from mindspore_ptq.app.workflow import load_network
from mindspore_ptq.datasets import context_windows, load_squad
from mindspore_ptq.evaluation import perplexity_window, squad_scores
from network_helpers import MFParallelLlama2Helper
from tests.conftest import REPO_ROOT, SQUAD_DIR, needs_squad


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "example" / "ptq" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def tiny_yaml(tiny_cli_model, monkeypatch):
    monkeypatch.setenv("GLOG_v", "2")  # the CLI would set it for the rest of the session otherwise
    return tiny_cli_model["yaml"]


def log_softmax(logits):
    logits = logits.astype(np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def window_measures(yaml_path, checkpoint, n_windows):
    """Perplexity of the quantized network, and KL(float || quantized) and top-1 agreement against the YAML's float
    network, computed here in numpy from PyNative logits on the evaluation's dev windows."""
    ms.set_context(mode=ms.PYNATIVE_MODE)
    helper = MFParallelLlama2Helper(str(yaml_path))
    quantized, reference = load_network(helper, checkpoint), load_network(helper)
    windows = context_windows(SQUAD_DIR / "dev-v1.1.json", helper.create_tokenizer(),
                              perplexity_window(helper.get_spec("seq_length")), n_windows)
    nll, kl, agree, count = 0.0, 0.0, 0, 0
    for window in windows:
        ids = ms.Tensor(window[None], ms.int32)
        logp_q, logp_f = (log_softmax(net(ids).asnumpy()[0, :-1]) for net in (quantized, reference))
        nll -= logp_q[np.arange(len(window) - 1), window[1:]].sum()
        kl += (np.exp(logp_f) * (logp_f - logp_q)).sum()
        agree += int((logp_q.argmax(-1) == logp_f.argmax(-1)).sum())
        count += len(window) - 1
    return {"ppl": np.exp(nll / count), "kl": kl / count, "top1": 100.0 * agree / count, "tokens": count}


@needs_squad
def test_quantize_then_deploy_and_evaluate(tiny_yaml, tmp_path):
    summary = load_script("quant_ckpt").main([
        "--config", str(tiny_yaml), "--approach", "a8w8c8", "--n_samples", "2",
        "--dataset_path", str(SQUAD_DIR / "train-v1.1.json"), "--output_dir", str(tmp_path)])
    assert summary["n_samples"] == 2 and (tmp_path / "a8w8c8.ptq.yaml").is_file()
    assert summary["peak_rss_mb"] >= summary["rss_before_mb"] > 0
    report = json.loads((tmp_path / "a8w8c8.report.json").read_text())
    assert {r["name"] for r in report if not r["quantized"]} == {"model.layers.0.feed_forward.w2",
                                                                 "model.layers.1.feed_forward.w2", "lm_head",
                                                                 "model.tok_embeddings"}  # int8 table: opt-in
    float_checkpoint = yaml.safe_load(tiny_yaml.read_text())["load_checkpoint"]
    results = load_script("eval_squad").main([
        "--config", str(tiny_yaml), "--load_checkpoint", summary["checkpoint"], "--n_samples", "2",
        "--max_new_tokens", "4", "--ppl_windows", "1", "--dataset_path", str(SQUAD_DIR / "dev-v1.1.json"),
        "--reference_checkpoint", float_checkpoint, "--output", str(tmp_path / "eval.json")])
    saved = json.loads((tmp_path / "eval.json").read_text())
    # SQuAD: the saved scores are those of the saved predictions against the first two dev questions' answers
    golds = [example.answers for example in load_squad(SQUAD_DIR / "dev-v1.1.json")[:2]]
    assert saved["squad"]["n"] == 2 and len(saved["squad"]["predictions"]) == 2
    expected = squad_scores(saved["squad"]["predictions"], golds)
    assert saved["squad"]["f1"] == expected["f1"] and saved["squad"]["exact_match"] == expected["exact_match"]
    # perplexity, KL and top-1 (GRAPH_MODE) against the same measures recomputed here (PyNative, numpy)
    measured = window_measures(tiny_yaml, summary["checkpoint"], 1)
    ppl = results["perplexity"]
    assert ppl["tokens"] == measured["tokens"] == 511
    np.testing.assert_allclose(ppl["ppl"], measured["ppl"], rtol=1e-4)
    np.testing.assert_allclose(ppl["kl"], measured["kl"], rtol=1e-2)
    assert abs(ppl["top1"] - measured["top1"]) <= 100.0 / 511 + 1e-9  # one near-tie may flip between the modes
    assert measured["kl"] > 0 and measured["top1"] < 100  # the quantized network is not the float one
    traced = load_script("trace_layer_error").main([
        "--config", str(tiny_yaml), "--load_checkpoint", summary["checkpoint"], "--windows", "1",
        "--dataset_path", str(SQUAD_DIR / "dev-v1.1.json")])
    assert [row["layer"] for row in traced["layers"]] == ["model.layers.0", "model.layers.1"]
    assert all(row["own"] > 0 for row in traced["layers"])
    np.testing.assert_allclose(traced["kl"], measured["kl"], rtol=1e-2)


def test_cli_help_explains_each_command():
    for command in ("quantize", "eval", "bench"):
        text = subprocess.run([sys.executable, "-m", "mindspore_ptq.app.cli", command, "--help"], check=True,
                              capture_output=True, text=True).stdout
        assert f"usage: mindspore-ptq {command}" in text and "--config" in text and "--log_level" in text


def cli(*args):
    return subprocess.run([sys.executable, "-m", "mindspore_ptq.app.cli", *map(str, args)], capture_output=True,
                          text=True)


def test_cli_refuses_to_write_its_output_over_an_input_before_any_work(tiny_yaml, tmp_path):
    checkpoint = yaml.safe_load(tiny_yaml.read_text())["load_checkpoint"]
    before = open(checkpoint, "rb").read()
    run = cli("eval", "--config", tiny_yaml, "--load_checkpoint", checkpoint, "--output", checkpoint)
    assert run.returncode == 2 and "is also an input" in run.stderr and "Traceback" not in run.stderr
    assert open(checkpoint, "rb").read() == before


def test_cli_refuses_to_quantize_over_an_existing_checkpoint_without_overwrite(tiny_yaml, tmp_path):
    (tmp_path / "a16w8.ckpt").write_bytes(b"an earlier result")
    run = cli("quantize", "--config", tiny_yaml, "--approach", "a16w8", "--output_dir", tmp_path)
    assert run.returncode == 2 and "a16w8.ckpt exists; pass --overwrite" in run.stderr
    assert (tmp_path / "a16w8.ckpt").read_bytes() == b"an earlier result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a16w8.ckpt"]  # nothing else written, no temp file


@needs_squad
def test_bench_writes_results_tables_and_plots(tiny_yaml, tmp_path):
    from mindspore_ptq.app.cli import main
    rows = main(["bench", "--config", str(tiny_yaml), "--fp16_checkpoint", str(tiny_yaml.parent / "tiny_fp16.ckpt"),
                 "--squad_dir", str(SQUAD_DIR), "--approaches", "a8w8c8", "--n_samples", "1", "--ppl_windows", "1",
                 "--calib_samples", "2", "--calib_text_windows", "1", "--speed_prompt_tokens", "16",
                 "--speed_new_tokens", "16", "--output_dir", str(tmp_path), "--log_level", "WARNING"])
    assert list(rows) == ["fp32", "fp16", "a8w8c8"]
    quantized = rows["a8w8c8"]
    assert quantized["n_samples"] == 3  # two prompts and one plain-text window
    assert quantized["size_mb"] < rows["fp16"]["size_mb"] < rows["fp32"]["size_mb"]
    assert quantized["memory_mb"]["weights"] < rows["fp32"]["memory_mb"]["weights"]
    assert quantized["perplexity"]["kl"] > 0 and quantized["speed"]["decode_tokens_per_s"] > 0
    assert quantized["calibration_seconds"] > 0 and quantized["float_forward_seconds"] > 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert set(saved["rows"]) == set(rows) and saved["meta"]["cpu_count"] >= 1
    tables = (tmp_path / "results.md").read_text()
    assert tables.count("| a8w8c8 |") == 2 and "decode tok/s" in tables and "SQuAD eval peak RSS MB" in tables
    assert all(row["eval_peak_rss_mb"] > 0 for row in rows.values())
    assert sorted(p.name for p in (tmp_path / "a8w8c8").iterdir() if p.suffix in (".json", ".log")) == \
        ["a8w8c8.json", "a8w8c8.report.json", "perplexity.json", "perplexity.log", "quantize.log",
         "squad.json", "squad.log"]
    assert (tmp_path / "fp32" / "reference_logits" / "logits.npy").is_file()  # the quantized rows' KL reference
    for plot in ("accuracy_vs_size.png", "layer_errors.png"):
        assert (tmp_path / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
