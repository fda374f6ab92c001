"""The example scripts and the CLI run end to end on tiny settings: quantize, deploy and evaluate, benchmark."""
import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest
import yaml

from ms_infra.checkpoint import save_checkpoint_atomic
from network_helpers.llama import LlamaArgs, ParallelLlamaForCausalLM
from tests.conftest import REPO_ROOT, SQUAD_DIR

pytestmark = pytest.mark.skipif(not (SQUAD_DIR / "dev-v1.1.json").is_file(), reason=f"no SQuAD data in {SQUAD_DIR}")


def load_script(name):
    spec = importlib.util.spec_from_file_location(name, REPO_ROOT / "example" / "ptq" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tiny_yaml(smollm2_artifacts, tmp_path_factory):
    """A 2-layer random Llama with SmolLM2's real vocabulary and tokenizer."""
    directory = tmp_path_factory.mktemp("tiny_real_vocab")
    config = yaml.safe_load(smollm2_artifacts["yaml"].read_text())
    model = config["model"]["model_config"]
    model.update(hidden_size=64, num_layers=2, num_heads=4, n_kv_heads=2, intermediate_size=128, seq_length=1024)
    args = LlamaArgs.from_model_config(model)
    rng = np.random.default_rng(0)
    weights = {p.name: (rng.standard_normal(p.shape) * 0.05 + (p.name.endswith("norm.weight") or
                                                              p.name.endswith("norm_out.weight"))).astype(np.float32)
               for p in ParallelLlamaForCausalLM(args).get_parameters() if not p.name.endswith("_cache")}
    config["load_checkpoint"] = str(save_checkpoint_atomic(weights, directory / "tiny.ckpt"))
    save_checkpoint_atomic({k: v.astype(np.float16) for k, v in weights.items()}, directory / "tiny_fp16.ckpt")
    path = directory / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_quantize_then_deploy_and_evaluate(tiny_yaml, tmp_path):
    summary = load_script("quant_ckpt").main([
        "--config", str(tiny_yaml), "--approach", "a8w8c8", "--n_samples", "2",
        "--dataset_path", str(SQUAD_DIR / "train-v1.1.json"), "--output_dir", str(tmp_path)])
    assert summary["n_samples"] == 2 and (tmp_path / "a8w8c8.ptq.yaml").is_file()
    assert summary["peak_rss_mb"] >= summary["rss_before_mb"] > 0
    report = json.loads((tmp_path / "a8w8c8.report.json").read_text())
    assert {r["name"] for r in report if not r["quantized"]} == {"model.layers.0.feed_forward.w2",
                                                                 "model.layers.1.feed_forward.w2", "lm_head"}
    results = load_script("eval_squad").main([
        "--config", str(tiny_yaml), "--load_checkpoint", summary["checkpoint"], "--n_samples", "2",
        "--max_new_tokens", "4", "--ppl_windows", "1", "--dataset_path", str(SQUAD_DIR / "dev-v1.1.json"),
        "--reference_checkpoint", yaml.safe_load(tiny_yaml.read_text())["load_checkpoint"],
        "--output", str(tmp_path / "eval.json")])
    saved = json.loads((tmp_path / "eval.json").read_text())
    assert saved["squad"]["n"] == 2 and 0 <= saved["squad"]["f1"] <= 100
    assert results["perplexity"]["kl"] >= 0 and 0 <= results["perplexity"]["top1"] <= 100
    traced = load_script("trace_layer_error").main([
        "--config", str(tiny_yaml), "--load_checkpoint", summary["checkpoint"], "--windows", "1",
        "--dataset_path", str(SQUAD_DIR / "dev-v1.1.json")])
    assert [row["layer"] for row in traced["layers"]] == ["model.layers.0", "model.layers.1"]
    assert all(row["own"] > 0 for row in traced["layers"])
    # the same window in PyNative as the evaluation's in GRAPH_MODE: the same KL
    np.testing.assert_allclose(traced["kl"], results["perplexity"]["kl"], rtol=1e-2)


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
    assert tables.count("| a8w8c8 |") == 2 and "decode tok/s" in tables
    for plot in ("accuracy_vs_size.png", "layer_errors.png"):
        assert (tmp_path / plot).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
