"""Decode speed at batch 1, side by side in one run: a ~200-token prompt and 128 new tokens, each checkpoint
deployed in GRAPH_MODE in its own process, optionally Hugging Face transformers on the same GGUF, and the
memory-bandwidth limit measured in the same run (a timed read of a buffer as large as the fp32 weights).
Decode tokens/s excludes the prefill; "of limit" is weight bytes read per token x tokens/s / measured GB/s.

    python example/bench_decode.py --checkpoints fp32=artifacts/smollm2-135m/smollm2_135m_fp32.ckpt \\
        a16w8=outputs/a16w8/a16w8.ckpt [--transformers] [--output outputs/decode.json]

A path written `fused:PATH` (a float checkpoint) runs the float network's decode steps through the same
one-call-per-layer kernel the deployed quantized networks use (its linears as fp32 GEMVs): the float peer of
that runtime, so that the speed-up of the weights alone shows.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import mindspore as ms

from mindspore_ptq.app.workflow import load_network
from mindspore_ptq.cells.decode_layer import fuse_decode_layers
from mindspore_ptq.datasets import load_squad
from mindspore_ptq.evaluation.speed import generation_speed, timed
from ms_infra.checkpoint import is_runtime_state
from ms_infra.files import check_outputs, write_json_atomic
from network_helpers import MFParallelLlama2Helper
from network_helpers.smollm2 import GGUF_NAME, default_gguf_path


FUSED = "fused:"


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
    parser.add_argument("--output", default=None, help="write the results as JSON here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)  # one checkpoint, in this process
    return parser.parse_args(argv)


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
    rows = {name: run_worker(args, path) for name, path in checkpoints.items()}
    if args.transformers:
        helper = MFParallelLlama2Helper(args.config)
        rows["transformers fp32"] = transformers_speed(prompt_ids(helper, args), args.new_tokens)
    largest = max(row["weight_bytes_per_token"] for row in rows.values())
    bandwidth = memory_bandwidth_gbs(largest)
    base = next(iter(rows.values()))["decode_tokens_per_s"]
    print(f"read bandwidth {bandwidth:.1f} GB/s ({largest / 1e6:.0f} MB buffer, 2 threads), "
          f"{time.strftime('%Y-%m-%d %H:%M')}")
    print("| model | prefill s | decode tok/s | × first row | weights MB/token | of bandwidth limit |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, row in rows.items():
        limit = bandwidth * 1e9 / row["weight_bytes_per_token"]
        row["bandwidth_fraction"] = row["decode_tokens_per_s"] / limit
        print(f"| {name} | {row['prefill_s']:.3f} | {row['decode_tokens_per_s']:.1f} | "
              f"{row['decode_tokens_per_s'] / base:.2f} | {row['weight_bytes_per_token'] / 1e6:.0f} | "
              f"{100 * row['bandwidth_fraction']:.0f}% |", flush=True)
    if args.output:
        write_json_atomic(args.output, {"bandwidth_gbs": bandwidth, "prompt_tokens": args.prompt_tokens,
                                        "new_tokens": args.new_tokens, "rows": rows})
    return rows


if __name__ == "__main__":
    main()
