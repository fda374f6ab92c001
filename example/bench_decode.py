"""Decode speed at batch 1, side by side in one run: a ~200-token prompt and 128 new tokens, each checkpoint
deployed in GRAPH_MODE in its own process, optionally Hugging Face transformers on the same GGUF, and the
memory-bandwidth limit measured in the same run (a timed read of a buffer as large as the fp32 weights).
Decode tokens/s excludes the prefill; "of limit" is weight bytes read per token x tokens/s / measured GB/s.

    python example/bench_decode.py --checkpoints fp32=artifacts/smollm2-135m/smollm2_135m_fp32.ckpt \\
        a16w8=outputs/a16w8/a16w8.ckpt [--transformers] [--llama_cpp DIR] [--output outputs/decode.json]

A path written `fused:PATH` (a float checkpoint) runs the float network's decode steps through the same
one-call-per-layer kernel the deployed quantized networks use (its linears as fp32 GEMVs): the float peer of
that runtime, so that the speed-up of the weights alone shows.

With a llama.cpp build (`bash tools/build_llama_cpp.sh`, into build/llama.cpp, read by default when it is there),
llama-bench times the same SmolLM2 GGUF as F32, Q8_0 and Q4_1 in the same run, on the threads our rows use
(`-p PROMPT -n NEW -t THREADS`: a PROMPT-token prefill, and NEW tokens decoded from an empty context), and every
row's decode is also given as a ratio of llama.cpp Q8_0's.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import mindspore as ms

from mindspore_ptq.app.workflow import load_network
from mindspore_ptq.cells.decode_layer import fuse_decode_layers
from mindspore_ptq.datasets import load_squad
from mindspore_ptq.evaluation.speed import generation_speed, timed
from mindspore_ptq.kernels import default_threads
from ms_infra.checkpoint import is_runtime_state
from ms_infra.files import check_outputs, write_json_atomic
from network_helpers import MFParallelLlama2Helper
from network_helpers.smollm2 import GGUF_NAME, default_gguf_path


FUSED = "fused:"
LLAMA_CPP_DIR = Path(__file__).resolve().parents[1] / "build" / "llama.cpp"  # where tools/build_llama_cpp.sh builds
LLAMA_BENCH = Path("cmake") / "bin" / "llama-bench"  # inside the build folder
LLAMA_CPP_MODELS = (  # (row name, GGUF in the build folder's models/)
    ("llama.cpp F32", "smollm2-135m-f32.gguf"),
    ("llama.cpp Q8_0", "smollm2-135m-q8_0.gguf"),
    ("llama.cpp Q4_1", "smollm2-135m-q4_1.gguf"),
)
LLAMA_CPP_REFERENCE = "llama.cpp Q8_0"  # every row's decode is also a ratio of this row's
COLUMNS = (  # the printed table after the model name: (header, the row's field, its text); "-" if a row lacks it
    ("prefill s", "prefill_s", "{:.3f}".format),
    ("decode tok/s", "decode_tokens_per_s", "{:.1f}".format),
    ("× first row", "vs_first_row", "{:.2f}".format),
    (f"× {LLAMA_CPP_REFERENCE}", "vs_llama_cpp_q8_0", "{:.2f}".format),
    ("weights MB/token", "weight_bytes_per_token", lambda v: f"{v / 1e6:.0f}"),
    ("of bandwidth limit", "bandwidth_fraction", lambda v: f"{100 * v:.0f}%"),
)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="example/configs/predict_smollm2_135m.yaml")
    parser.add_argument("--checkpoints", nargs="+", default=[], metavar="NAME=PATH",
                        help="float or quantized checkpoints (default: the YAML's, as fp32)")
    parser.add_argument("--dataset_path", default=os.environ.get("SQUAD_DIR", "../shared/data/squad1.1")
                        + "/dev-v1.1.json", help="the prompt is the first dev passage, cut to --prompt_tokens")
    parser.add_argument("--prompt_tokens", type=int, default=200)
    parser.add_argument("--new_tokens", type=int, default=128)
    parser.add_argument("--transformers", action="store_true", help="also time HF transformers (torch CPU, fp32)")
    parser.add_argument("--llama_cpp", default=None, metavar="DIR",
                        help="also time llama.cpp with llama-bench on the GGUF variants in this build folder of "
                             "tools/build_llama_cpp.sh (default: build/llama.cpp if it holds one)")
    parser.add_argument("--output", default=None, help="write the results as JSON here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # one checkpoint, in this process
    args = parser.parse_args(argv)
    if args.llama_cpp is None and llama_cpp_build(LLAMA_CPP_DIR):
        args.llama_cpp = str(LLAMA_CPP_DIR)
    elif args.llama_cpp and llama_cpp_build(args.llama_cpp) is None:
        parser.error(f"--llama_cpp {args.llama_cpp}: no {LLAMA_BENCH} there; build it with "
                     f"`bash tools/build_llama_cpp.sh {args.llama_cpp}`")
    return args


def prompt_ids(helper, args):
    text = load_squad(args.dataset_path)[0].context
    return helper.create_tokenizer()(text, add_special_tokens=False)["input_ids"][: args.prompt_tokens]


def weight_bytes_per_token(network):
    """Bytes of the parameters one decode step reads: all but the KV cache and the embedding table (one row)."""
    return sum(p.size * p.itemsize for p in network.get_parameters()
               if not is_runtime_state(p.name) and "tok_embeddings" not in p.name)


def measure_checkpoint(args):
    """The --worker process: deploy one checkpoint in GRAPH_MODE and time it."""
    helper = MFParallelLlama2Helper(args.config)
    helper.set_context(ms.GRAPH_MODE)
    fused = args.worker.startswith(FUSED)
    network = load_network(helper, args.worker[len(FUSED):] if fused else args.worker)
    if fused:
        fuse_decode_layers(helper.layout.decoder_layers(network))
    speed = generation_speed(network, prompt_ids(helper, args), args.new_tokens)
    return {**speed, "weight_bytes_per_token": weight_bytes_per_token(network)}


def memory_bandwidth_gbs(nbytes, threads=2, repeats=5):
    """Read bandwidth: the best of `repeats` timed sums of an `nbytes` buffer split over `threads`."""
    parts = np.array_split(np.ones(nbytes // 4, np.float32), threads)
    with ThreadPoolExecutor(threads) as pool:
        best = min(timed(lambda: list(pool.map(np.sum, parts))) for _ in range(repeats))
    return nbytes / best / 1e9


def transformers_speed(prompt, new_tokens):
    import torch
    from transformers import AutoModelForCausalLM
    model = AutoModelForCausalLM.from_pretrained(str(default_gguf_path().parent), gguf_file=GGUF_NAME,
                                                 torch_dtype=torch.float32)
    ids = torch.tensor([prompt])
    run = lambda n: model.generate(ids, attention_mask=torch.ones_like(ids), max_new_tokens=n,  # noqa: E731
                                   min_new_tokens=n, do_sample=False)
    with torch.no_grad():
        run(2)
        prefill, total = timed(lambda: run(1)), timed(lambda: run(new_tokens))
    return {"prefill_s": prefill, "total_s": total, "decode_tokens_per_s": (new_tokens - 1) / (total - prefill),
            "weight_bytes_per_token": sum(p.numel() * p.element_size() for n, p in model.named_parameters()
                                          if "embed_tokens" not in n)}


def llama_cpp_build(folder):
    """(llama-bench, {row name: GGUF}) for the variants present in a tools/build_llama_cpp.sh folder; None
    without llama-bench."""
    folder = Path(folder)
    if not (folder / LLAMA_BENCH).is_file():
        return None
    models = {name: folder / "models" / file for name, file in LLAMA_CPP_MODELS}
    return folder / LLAMA_BENCH, {name: path for name, path in models.items() if path.is_file()}


def llama_bench_row(records, prompt_tokens, new_tokens):
    """One model's row from llama-bench's JSON records (its pp and tg tests). As in our rows the fastest
    repetition counts; the weights read per token are all the file's tensors (SmolLM2's output matrix is its
    token table)."""
    def test(n_prompt, n_gen):
        found = [r for r in records if r["n_prompt"] == n_prompt and r["n_gen"] == n_gen]
        if len(found) != 1:
            raise ValueError(f"llama-bench output holds {len(found)} tests with n_prompt={n_prompt}, "
                             f"n_gen={n_gen}; expected one")
        return found[0]

    prefill, decode = test(prompt_tokens, 0), test(0, new_tokens)
    return {"prompt_tokens": prompt_tokens, "new_tokens": new_tokens, "prefill_s": min(prefill["samples_ns"]) / 1e9,
            "decode_tokens_per_s": max(decode["samples_ts"]), "weight_bytes_per_token": decode["model_size"],
            "threads": decode["n_threads"], "model_type": decode["model_type"],
            "llama_cpp_build": f"{decode['build_number']} ({decode['build_commit']})"}


def run_llama_bench(bench, gguf, prompt_tokens, new_tokens, threads):
    """Time one GGUF with llama-bench (batch 1: a `prompt_tokens` prefill, `new_tokens` decode steps)."""
    command = [str(bench), "-m", str(gguf), "-p", str(prompt_tokens), "-n", str(new_tokens), "-t", str(threads),
               "-o", "json"]
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode:
        raise RuntimeError(f"{' '.join(command)} failed ({result.returncode}): {result.stderr.strip()[-500:]}")
    return llama_bench_row(json.loads(result.stdout), prompt_tokens, new_tokens)


def llama_cpp_rows(folder, prompt_tokens, new_tokens, threads):
    """llama.cpp's rows, measured now; without a build (`folder` None), none and one line on how to get them."""
    build = llama_cpp_build(folder) if folder else None
    if build is None:
        print("no llama.cpp rows: `bash tools/build_llama_cpp.sh` builds llama-bench and the SmolLM2 GGUF "
              "variants into build/llama.cpp (or pass --llama_cpp DIR)")
        return {}
    bench, models = build
    return {name: run_llama_bench(bench, gguf, prompt_tokens, new_tokens, threads) for name, gguf in models.items()}


def add_ratios(rows, bandwidth):
    """Each row's decode against the first row and llama.cpp Q8_0 (if measured), and its bandwidth fraction."""
    base = next(iter(rows.values()))["decode_tokens_per_s"]
    reference = rows.get(LLAMA_CPP_REFERENCE, {}).get("decode_tokens_per_s")
    for row in rows.values():
        row["vs_first_row"] = row["decode_tokens_per_s"] / base
        if reference:
            row["vs_llama_cpp_q8_0"] = row["decode_tokens_per_s"] / reference
        row["bandwidth_fraction"] = row["decode_tokens_per_s"] * row["weight_bytes_per_token"] / (bandwidth * 1e9)


def print_table(rows):
    """The rows as a Markdown table of the COLUMNS that some row has."""
    columns = [column for column in COLUMNS if any(column[1] in row for row in rows.values())]
    print("| model | " + " | ".join(header for header, _, _ in columns) + " |")
    print("| --- |" + " --- |" * len(columns))
    for name, row in rows.items():
        cells = (text(row[field]) if field in row else "-" for _, field, text in columns)
        print(f"| {name} | " + " | ".join(cells) + " |", flush=True)


def run_worker(args, checkpoint):
    """Measure one checkpoint in a fresh process (its own compiled graphs and memory)."""
    with tempfile.TemporaryDirectory() as folder:
        output = os.path.join(folder, "row.json")
        command = [sys.executable, __file__, "--config", args.config, "--dataset_path", args.dataset_path,
                   "--prompt_tokens", str(args.prompt_tokens), "--new_tokens", str(args.new_tokens),
                   "--worker", checkpoint, "--output", output]
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        with open(output, encoding="utf-8") as file:
            return json.load(file)


def main(argv=None):
    args = parse_args(argv)
    if args.worker:
        result = measure_checkpoint(args)
        write_json_atomic(args.output, result)
        return result
    if args.output:
        check_outputs([args.output])
    checkpoints = dict(item.split("=", 1) for item in args.checkpoints) or {
        "fp32": MFParallelLlama2Helper(args.config).config.get("load_checkpoint")}
    threads = default_threads()  # what our kernels use in each worker; llama-bench and the bandwidth read too
    rows = {name: run_worker(args, path) for name, path in checkpoints.items()}
    if args.transformers:
        helper = MFParallelLlama2Helper(args.config)
        rows["transformers fp32"] = transformers_speed(prompt_ids(helper, args), args.new_tokens)
    rows.update(llama_cpp_rows(args.llama_cpp, args.prompt_tokens, args.new_tokens, threads))
    largest = max(row["weight_bytes_per_token"] for row in rows.values())
    bandwidth = memory_bandwidth_gbs(largest, threads)
    add_ratios(rows, bandwidth)
    print(f"read bandwidth {bandwidth:.1f} GB/s ({largest / 1e6:.0f} MB buffer, {threads} threads), "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    print_table(rows)
    if args.output:
        write_json_atomic(args.output, {"bandwidth_gbs": bandwidth, "threads": threads,
                                        "prompt_tokens": args.prompt_tokens, "new_tokens": args.new_tokens,
                                        "rows": rows})
    return rows


if __name__ == "__main__":
    main()
