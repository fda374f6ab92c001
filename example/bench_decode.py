"""Decode speed, batch 1: a ~200-token prompt and 128 new tokens, in GRAPH_MODE, PyNative and (if torch is
installed) Hugging Face transformers on the same machine. Decode tokens/s excludes the prefill.

    python example/bench_decode.py [--load_checkpoint quantized.ckpt]
"""
import argparse
import os

import mindspore as ms

from mindspore_ptq.datasets import load_squad
from mindspore_ptq.evaluation.speed import generation_speed, timed
from mindspore_ptq.app.workflow import load_network
from network_helpers import MFParallelLlama2Helper
from ms_infra.files import write_json_atomic
from network_helpers.smollm2 import GGUF_NAME, default_gguf_path


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="example/configs/predict_smollm2_135m.yaml")
    parser.add_argument("--load_checkpoint", default=None, help="float or quantized checkpoint (default: YAML's)")
    parser.add_argument("--dataset_path", default=os.environ.get("SQUAD_DIR", "../shared/data/squad1.1")
                        + "/dev-v1.1.json", help="the prompt is the first dev passage, cut to --prompt_tokens")
    parser.add_argument("--prompt_tokens", type=int, default=200)
    parser.add_argument("--new_tokens", type=int, default=128)
    parser.add_argument("--modes", nargs="+", default=["graph", "pynative", "transformers"])
    parser.add_argument("--output", default=None, help="write the results as JSON here")
    return parser.parse_args(argv)


def mindspore_speed(helper, checkpoint, prompt, new_tokens, mode):
    ms.set_context(mode=mode)
    speed = generation_speed(load_network(helper, checkpoint), prompt, new_tokens)
    return speed["prefill_s"], speed["total_s"]


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
    return prefill, total


def main(argv=None):
    args = parse_args(argv)
    helper = MFParallelLlama2Helper(args.config)
    helper.set_context()
    tokenizer = helper.create_tokenizer()
    text = load_squad(args.dataset_path)[0].context
    prompt = tokenizer(text, add_special_tokens=False)["input_ids"][: args.prompt_tokens]
    runners = {"graph": lambda: mindspore_speed(helper, args.load_checkpoint, prompt, args.new_tokens, ms.GRAPH_MODE),
               "pynative": lambda: mindspore_speed(helper, args.load_checkpoint, prompt, args.new_tokens,
                                                   ms.PYNATIVE_MODE),
               "transformers": lambda: transformers_speed(prompt, args.new_tokens)}
    results = {}
    for mode in args.modes:
        prefill, total = runners[mode]()
        decode_tps = (args.new_tokens - 1) / (total - prefill)
        results[mode] = {"prefill_s": prefill, "total_s": total, "decode_tokens_per_s": decode_tps}
        print(f"{mode:>12}: prefill {prefill:.3f} s, {args.new_tokens} tokens in {total:.2f} s, "
              f"decode {decode_tps:.1f} tokens/s", flush=True)
    if args.output:
        write_json_atomic(args.output, {"prompt_tokens": len(prompt), "new_tokens": args.new_tokens, **results})
    return results


if __name__ == "__main__":
    main()
