"""The command line against careless input: each mistake exits with status 2 and one line that names its culprit,
before any long work, with nothing written or overwritten."""
import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
import yaml

from mindspore_ptq.app.cli import console_main
from mindspore_ptq.io import config_path_for
from mindspore_ptq.io.sharding import rank_path, write_manifest
from ms_infra.checkpoint import save_checkpoint_atomic
from tests.conftest import SQUAD_DIR, needs_mindformers, needs_squad

TRAIN, DEV = SQUAD_DIR / "train-v1.1.json", SQUAD_DIR / "dev-v1.1.json"


@pytest.fixture(autouse=True)
def keep_environment(monkeypatch):
    """The CLI quiets MindSpore through GLOG_v unless it is set: set it here, so no test changes it for the next."""
    monkeypatch.setenv("GLOG_v", "2")


def run(capsys, *argv):
    """`mindspore-ptq argv` in this process: (exit status, what it printed on stderr)."""
    try:
        status = console_main([str(arg) for arg in argv])
    except SystemExit as usage_error:  # argparse's errors
        status = usage_error.code
    return status, capsys.readouterr().err


def files_in(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture(scope="module")
def a16w8(tiny_cli_model, tmp_path_factory):
    """An A16W8 checkpoint of the tiny model and its .ptq.yaml (round to nearest: no calibration data)."""
    folder = tmp_path_factory.mktemp("a16w8")
    assert console_main(["quantize", "--config", str(tiny_cli_model["yaml"]), "--approach", "a16w8",
                         "--output_dir", str(folder), "--log_level", "WARNING"]) == 0
    return folder / "a16w8.ckpt"


def copy_checkpoint(checkpoint, folder, config_text=None):
    """The checkpoint copied into `folder`, with `config_text` as its .ptq.yaml (None: no config beside it)."""
    copy = shutil.copy(checkpoint, folder / "model.ckpt")
    if config_text is not None:
        (folder / "model.ptq.yaml").write_text(config_text)
    return copy


def with_line(text, old_start, new_line):
    """`text` with the line starting with `old_start` replaced by `new_line` (appended if there is none)."""
    lines = [line for line in text.splitlines() if not line.startswith(old_start)]
    return "\n".join(lines + [new_line]) + "\n"


@pytest.mark.parametrize("change, culprit", [
    (lambda text: text + "opname_blacklist: [w2\n", "is not valid YAML: line"),
    (lambda text: "- a8w8\n- c8\n", "must be a YAML mapping, got list"),
    (lambda text: "", "must be a YAML mapping, got nothing"),
    (lambda text: text + "smooth_apha: 0.4\n", "'smooth_apha' (did you mean 'smooth_alpha'?)"),
    (lambda text: with_line(text, "backend:", "backend: gpu"), "PTQConfig.backend: 'gpu' is not one of"),
    (lambda text: with_line(text, "smooth_alpha:", "smooth_alpha: high"), "PTQConfig.smooth_alpha must be a number"),
    (lambda text: with_line(text, "weight_quant_dtype:", "weight_quant_dtype: int8"),
     "PTQConfig.weight_quant_dtype: unsupported dtype 'int8'"),
], ids=["yaml-syntax", "not-a-mapping", "empty", "unknown-field", "enum-value", "wrong-type", "dtype-name"])
def test_a_corrupt_ptq_config_is_named_with_its_file_and_field(capsys, tiny_cli_model, a16w8, tmp_path, change,
                                                               culprit):
    text = change(config_path_for(a16w8).read_text())
    checkpoint = copy_checkpoint(a16w8, tmp_path, text)
    status, err = run(capsys, "eval", "--config", tiny_cli_model["yaml"], "--load_checkpoint", checkpoint,
                      "--n_samples", 0, "--ppl_windows", 0)
    assert status == 2 and f"PTQ config {tmp_path / 'model.ptq.yaml'}" in err and culprit in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_a_quantized_checkpoint_without_its_config_is_reported_as_missing_config(capsys, tiny_cli_model, a16w8,
                                                                                 tmp_path):
    checkpoint = copy_checkpoint(a16w8, tmp_path)
    status, err = run(capsys, "eval", "--config", tiny_cli_model["yaml"], "--load_checkpoint", checkpoint,
                      "--n_samples", 0, "--ppl_windows", 0)
    assert status == 2 and f"its PTQ config {tmp_path / 'model.ptq.yaml'} is missing" in err, err
    assert "dtype" not in err


@pytest.mark.parametrize("argv, message", [
    (["eval", "--ppl_windows", "-1"], "argument --ppl_windows: must be >= 0 (0 skips perplexity), got -1"),
    (["eval", "--n_samples", "-3"], "argument --n_samples: must be >= 0 (0 skips SQuAD), got -3"),
    (["eval", "--max_new_tokens", "0"], "argument --max_new_tokens: must be >= 1, got 0"),
    (["eval", "--batch_size", "0"], "argument --batch_size: must be >= 1, got 0"),
    (["eval", "--ppl_windows", "many"], "argument --ppl_windows: expected an integer >= 0"),
    (["quantize", "--n_samples", "-3"], "argument --n_samples: must be >= 1, got -3"),
    (["quantize", "--text_windows", "-1"], "argument --text_windows: must be >= 0 (0 adds none), got -1"),
    (["bench", "--ppl_windows", "0"], "argument --ppl_windows: must be >= 1, got 0"),
], ids=["ppl-windows", "eval-samples", "max-new-tokens", "batch-size", "not-a-number", "quantize-samples",
        "text-windows", "bench-windows"])
def test_counts_out_of_range_are_usage_errors_that_say_the_rule(capsys, argv, message):
    status, err = run(capsys, *argv)
    assert status == 2 and message in err, err


def test_perplexity_windows_longer_than_seq_length_are_refused(capsys, tiny_cli_model):
    status, err = run(capsys, "eval", "--config", tiny_cli_model["yaml"], "--n_samples", 0, "--ppl_windows", 1,
                      "--ppl_window_length", 4096, "--dataset_path", tiny_cli_model["yaml"])
    assert status == 2 and "perplexity windows of 4096 tokens do not fit the model's seq_length 2048" in err, err


@needs_squad
def test_perplexity_windows_follow_a_short_seq_length(capsys, tiny_cli_model, tmp_path):
    config = yaml.safe_load(tiny_cli_model["yaml"].read_text())
    config["model"]["model_config"]["seq_length"] = 256
    short = tmp_path / "short.yaml"
    short.write_text(yaml.safe_dump(config))
    assert console_main(["eval", "--config", str(short), "--n_samples", "0", "--ppl_windows", "1",
                         "--dataset_path", str(DEV), "--output", str(tmp_path / "ppl.json")]) == 0
    assert "Perplexity (1x256 windows)" in capsys.readouterr().out
    assert json.loads((tmp_path / "ppl.json").read_text())["perplexity"]["tokens"] == 255


@needs_squad
def test_kernels_and_portable_ops_give_the_same_kl_against_stored_fp32_logits(capsys, tiny_cli_model, a16w8,
                                                                             tmp_path):
    common = ["eval", "--config", tiny_cli_model["yaml"], "--n_samples", 0, "--ppl_windows", 2, "--dataset_path",
              DEV, "--log_level", "WARNING"]
    assert run(capsys, *common, "--save_logits", tmp_path / "fp32")[0] == 0
    results = {}
    for backend in ("none", "portable"):
        output = tmp_path / f"{backend}.json"
        assert run(capsys, *common, "--load_checkpoint", a16w8, "--backend", backend, "--reference_logits",
                   tmp_path / "fp32", "--output", output)[0] == 0
        results[backend] = json.loads(output.read_text())["perplexity"]
    assert results["none"]["kl"] > 0
    assert results["none"]["kl"] == pytest.approx(results["portable"]["kl"], rel=1e-3)
    assert results["none"]["top1"] == pytest.approx(results["portable"]["top1"], abs=0.5)
    status, err = run(capsys, *common, "--backend", "portable")  # the float checkpoint has no kernels to choose
    assert status == 2 and "is a float checkpoint (no PTQ config beside it)" in err, err


def test_a_blacklist_entry_that_matches_no_cell_stops_quantize_naming_it(capsys, tiny_cli_model, tmp_path):
    status, err = run(capsys, "quantize", "--config", tiny_cli_model["yaml"], "--approach", "a16w8", "-b", "w22",
                      "lm_head", "--output_dir", tmp_path / "out")
    assert status == 2 and "opname_blacklist entry 'w22' matches no quantizable cell (did you mean 'w2'?)" in err
    assert "feed_forward.w2" in err and "lm_head" in err
    assert not (tmp_path / "out").exists()


@needs_squad
def test_eval_on_a_dev_file_alone_names_the_missing_shots_file_and_the_flag(capsys, tiny_cli_model, tmp_path):
    dev = shutil.copy(DEV, tmp_path / "my_dev.json")
    argv = ["eval", "--config", tiny_cli_model["yaml"], "--dataset_path", dev, "--n_samples", 1, "--max_new_tokens",
            2, "--ppl_windows", 0]
    status, err = run(capsys, *argv)
    assert status == 2 and f"{tmp_path / 'train-v1.1.json'} (looked up beside --dataset_path)" in err, err
    assert "pass --shots_path" in err
    status, err = run(capsys, *argv, "--shots_path", tmp_path / "nope.json")
    assert status == 2 and f"{tmp_path / 'nope.json'} (--shots_path), which does not exist" in err, err
    status, _ = run(capsys, *argv, "--shots_path", TRAIN)
    assert status == 0


def careless_inputs(model, a16w8, tmp):
    """(command line, what the error must say) for mistakes a user makes with paths, folders and checkpoints."""
    config, checkpoint = model["yaml"], model["checkpoint"]
    quantized_source = tmp / "quantized_source.yaml"
    data = yaml.safe_load(config.read_text())
    quantized_source.write_text(yaml.safe_dump({**data, "load_checkpoint": str(a16w8)}))
    missing_source = tmp / "missing_source.yaml"
    missing_source.write_text(yaml.safe_dump({**data, "load_checkpoint": str(tmp / "gone.ckpt")}))
    (tmp / "folder").mkdir()
    (tmp / "plain.txt").write_text("not a folder")
    (tmp / "bad.yaml").write_text("model: [\n")
    (tmp / "list.yaml").write_text("- model\n")
    (tmp / "not_squad.json").write_text('{"version": "1.1"}')
    eval_ = ["eval", "--config", config, "--n_samples", 0, "--ppl_windows", 1, "--dataset_path", config]
    return {
        "config-missing": (["quantize", "--config", tmp / "none.yaml"], f"YAML config not found: {tmp / 'none.yaml'}"),
        "config-folder": (["quantize", "--config", tmp / "folder"], "(a directory)"),
        "config-syntax": (["eval", "--config", tmp / "bad.yaml"], f"YAML config {tmp / 'bad.yaml'} is not valid YAML"),
        "config-list": (["eval", "--config", tmp / "list.yaml"], "must be a YAML mapping, got list"),
        "source-quantized": (["quantize", "--config", quantized_source, "--approach", "a16w8", "--output_dir",
                              tmp / "out"], f"load_checkpoint {a16w8} is a quantized checkpoint"),
        "source-missing": (["quantize", "--config", missing_source, "--approach", "a16w8", "--output_dir",
                            tmp / "out"], f"load_checkpoint {tmp / 'gone.ckpt'} not found"),
        "calibration-missing": (["quantize", "--config", config, "--dataset_path", tmp / "none.json", "--output_dir",
                                 tmp / "out"], f"--dataset_path {tmp / 'none.json'} not found"),
        "calibration-folder": (["quantize", "--config", config, "--dataset_path", tmp / "folder", "--output_dir",
                                tmp / "out"], f"--dataset_path {tmp / 'folder'} is a directory"),
        "calibration-not-squad": (["quantize", "--config", config, "--dataset_path", tmp / "not_squad.json",
                                   "--shots_path", tmp / "not_squad.json", "--n_samples", 1, "--output_dir",
                                   tmp / "out"], "is not in SQuAD format: the top level needs a 'data' list"),
        "template": (["quantize", "--config", config, "--dataset_path", config, "--template", "zero_shot",
                      "--output_dir", tmp / "out"], "unknown prompt template 'zero_shot'"),
        "output-dir-is-a-file": (["quantize", "--config", config, "--approach", "a16w8", "--output_dir",
                                  tmp / "plain.txt"], f"{tmp / 'plain.txt'} is a file, not a folder"),
        "checkpoint-missing": (eval_ + ["--load_checkpoint", tmp / "none.ckpt"],
                               f"--load_checkpoint {tmp / 'none.ckpt'} not found"),
        "checkpoint-folder": (eval_ + ["--load_checkpoint", tmp / "folder"], "is a directory; name a file"),
        "checkpoint-not-a-checkpoint": (eval_ + ["--load_checkpoint", tmp / "plain.txt"],
                                        "is not a readable MindSpore checkpoint"),
        "float-checkpoint-as-quantized": (eval_ + ["--load_checkpoint", checkpoint, "--approach", "a8w8"],
                                          "has no PTQ config beside it"),
        "reference-missing": (eval_ + ["--reference_checkpoint", tmp / "none.ckpt"],
                              f"--reference_checkpoint {tmp / 'none.ckpt'} not found"),
        "reference-logits-missing": (eval_ + ["--reference_logits", tmp / "folder"],
                                     f"--reference_logits {tmp / 'folder'} holds no stored reference logits"),
        "reference-logits-and-checkpoint": (eval_ + ["--reference_logits", tmp / "folder", "--reference_checkpoint",
                                                     checkpoint], "both name the reference: give one"),
        "save-logits-exists": (eval_ + ["--save_logits", tmp / "folder"],
                               f"--save_logits {tmp / 'folder'} exists; pass --overwrite"),
        "save-logits-is-a-file": (eval_ + ["--save_logits", tmp / "plain.txt"], "is a file; name a folder"),
        "save-logits-no-windows": (eval_[:5] + ["--ppl_windows", 0, "--save_logits", tmp / "logits"],
                                   "--ppl_windows is 0"),
        "output-is-the-checkpoint": (eval_ + ["--load_checkpoint", checkpoint, "--output", checkpoint],
                                     "is also an input of this command"),
        "output-is-a-folder": (eval_ + ["--output", tmp / "folder"], f"output {tmp / 'folder'} is a directory"),
        "output-under-a-file": (eval_ + ["--output", tmp / "plain.txt" / "r.json"], "is a file, not a folder"),
        "eval-data-missing": (eval_[:-1] + [tmp / "none.json"], f"--dataset_path {tmp / 'none.json'} not found"),
        "speed-past-seq-length": (eval_ + ["--speed_prompt_tokens", 2000, "--speed_new_tokens", 100],
                                  "exceed the model's seq_length 2048"),
        "approach-flags": (["quantize", "--config", config, "--approach", "a8w8", "-w", "int8"],
                           "apply only with --approach ptq"),
        "gptq-damping-without-gptq": (["quantize", "--config", config, "--approach", "a16w8", "--gptq_damp_percent",
                                       0.1, "--output_dir", tmp / "out"], "applies to an approach with GPTQ"),
        "gptq-damping-out-of-range": (["quantize", "--config", config, "--approach", "a16w4_gptq_g64",
                                       "--gptq_damp_percent", 2, "--output_dir", tmp / "out"],
                                      "gptq_damp_percent must be in (0, 1), got 2"),
        "approach-empty": (["quantize", "--config", config, "--approach", "ptq"], "PTQConfig quantizes nothing"),
        "bench-squad-dir": (["bench", "--config", config, "--squad_dir", tmp / "folder", "--fp16_checkpoint",
                             model["fp16"], "--output_dir", tmp / "bench"],
                            f"--squad_dir train file {tmp / 'folder' / 'train-v1.1.json'} not found"),
        "bench-reuse-overwrite": (["bench", "--config", config, "--reuse", "--overwrite"], "choose one"),
        "merge-manifest-folder": (["merge", tmp / "folder"], f"shard manifest not found: {tmp / 'folder'} (a dir"),
    }


CASES = ["config-missing", "config-folder", "config-syntax", "config-list", "source-quantized", "source-missing",
         "calibration-missing", "calibration-folder", "calibration-not-squad", "template", "output-dir-is-a-file",
         "checkpoint-missing", "checkpoint-folder", "checkpoint-not-a-checkpoint", "float-checkpoint-as-quantized",
         "reference-missing", "reference-logits-missing", "reference-logits-and-checkpoint", "save-logits-exists",
         "save-logits-is-a-file", "save-logits-no-windows", "output-is-the-checkpoint", "output-is-a-folder",
         "output-under-a-file",
         "eval-data-missing", "speed-past-seq-length", "approach-flags", "gptq-damping-without-gptq",
         "gptq-damping-out-of-range", "approach-empty", "bench-squad-dir",
         "bench-reuse-overwrite", "merge-manifest-folder"]


@pytest.mark.parametrize("case", CASES)
def test_careless_input_gets_one_line_naming_its_culprit_and_writes_nothing(capsys, tiny_cli_model, a16w8, tmp_path,
                                                                           case):
    argv, message = careless_inputs(tiny_cli_model, a16w8, tmp_path)[case]
    before = files_in(tmp_path)
    model_files = {path: path.read_bytes() for path in (tiny_cli_model["checkpoint"], a16w8)}
    status, err = run(capsys, *argv)
    assert status == 2 and message in err, err
    assert err.startswith("mindspore-ptq: error: ") and len(err.strip().splitlines()) == 1
    assert files_in(tmp_path) == before  # no output, no temp file
    assert all(path.read_bytes() == content for path, content in model_files.items())


def test_merge_refuses_an_output_that_is_one_of_its_shards(capsys, tmp_path):
    base = tmp_path / "m.ckpt"
    for rank in range(2):
        save_checkpoint_atomic({"w": np.full((2, 3), rank, np.float32)}, rank_path(base, rank))
    manifest = write_manifest(base, 2, {"w": 0})
    shard = rank_path(base, 1).read_bytes()
    for output in (rank_path(base, 1), manifest):
        status, err = run(capsys, "merge", manifest, "--output", output)
        assert status == 2 and f"output {output} is also an input" in err, err
    assert rank_path(base, 1).read_bytes() == shard and not base.exists()


# What MindSpore (`[WARNING] ME(...)`), MindFormers (`... - mindformers./output/log[...]`), jieba and transformers
# (its advice when torch is absent) print.
FRAMEWORK_LINE = re.compile(r"\] ME\(|- mindformers|Building prefix dict|Loading model from cache|jieba|"
                            r"None of PyTorch")


def cli(cwd, *args):
    """`python -m mindspore_ptq.app.cli args` in a fresh process, as a user starts it (no GLOG_v of ours)."""
    env = {name: value for name, value in os.environ.items() if name != "GLOG_v"}
    return subprocess.run([sys.executable, "-m", "mindspore_ptq.app.cli", *map(str, args)], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=600)


def framework_lines(run):
    return [line for line in (run.stdout + run.stderr).splitlines() if FRAMEWORK_LINE.search(line)]


@needs_squad
def test_quantize_and_eval_print_no_framework_log_lines_at_the_default_level(tiny_cli_model, tmp_path):
    quantize = cli(tmp_path, "quantize", "--config", tiny_cli_model["yaml"], "--approach", "a8w8c8", "--n_samples", 1,
                   "--dataset_path", TRAIN, "--output_dir", tmp_path / "q")
    assert quantize.returncode == 0, quantize.stderr
    evaluate = cli(tmp_path, "eval", "--config", tiny_cli_model["yaml"], "--load_checkpoint", tmp_path / "q" /
                   "a8w8c8.ckpt", "--n_samples", 1, "--max_new_tokens", 2, "--ppl_windows", 1, "--dataset_path", DEV,
                   "--reference_checkpoint", tiny_cli_model["checkpoint"])
    assert evaluate.returncode == 0, evaluate.stderr
    assert framework_lines(quantize) == [] and framework_lines(evaluate) == []
    assert "PTQ a8w8c8 (quantize): 14 cells quantized" in quantize.stderr  # our own INFO report still shows
    assert "SQuAD (1 questions" in evaluate.stdout and "KL" in evaluate.stdout


@needs_mindformers  # the lines it looks for are MindFormers'
def test_debug_shows_the_frameworks_own_lines(tiny_cli_model, tmp_path):
    run = cli(tmp_path, "quantize", "--config", tiny_cli_model["yaml"], "--approach", "a16w8", "-b", "w22",
              "--output_dir", tmp_path / "q", "--log_level", "DEBUG")
    assert run.returncode == 2 and "'w22' matches no quantizable cell" in run.stderr
    assert any("- mindformers" in line for line in framework_lines(run))  # what the default level hides


@needs_squad
def test_a_failed_bench_step_exits_1_naming_the_step_and_its_log(capsys, tiny_cli_model, tmp_path):
    squad = tmp_path / "squad"
    squad.mkdir()
    for name in ("train-v1.1.json", "dev-v1.1.json"):  # a "train" file without the 3-shot template's questions
        shutil.copy(DEV, squad / name)
    status, err = run(capsys, "bench", "--config", tiny_cli_model["yaml"], "--fp16_checkpoint", tiny_cli_model["fp16"],
                      "--squad_dir", squad, "--approaches", "a16w8", "--n_samples", 1, "--output_dir", tmp_path / "b")
    assert status == 1 and "bench step `mindspore-ptq eval --config" in err and "failed with exit status 2" in err
    assert f"its output is in {tmp_path / 'b' / 'fp32' / 'squad.log'}" in err and "Traceback" not in err
    assert not (tmp_path / "b" / "results.json").exists()
