"""Process memory of a deployed network in GRAPH_MODE as prefill graphs of growing width are compiled.

On MindSpore's CPU backend each compiled graph keeps all its intermediates (the attention scores grow with width
squared), so a process that compiles one prefill graph per prompt width holds the sum of them. This is why
generation prefills in fixed-width chunks (one prefill graph and one decode graph, whatever the prompts): the
script shows what the one-shot prefill graphs of each width would cost.

    python example/bench_graph_memory.py [--load_checkpoint outputs/a16w8/a16w8.ckpt] [--output memory.json]
"""
import argparse

import numpy as np
import mindspore as ms

from mindspore_ptq.evaluation.resources import parameter_memory_mb, rss_mb
from mindspore_ptq.app.workflow import load_network
from network_helpers import MFParallelLlama2Helper
from ms_infra.files import write_json_atomic


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="example/configs/predict_smollm2_135m.yaml")
    parser.add_argument("--load_checkpoint", default=None, help="float or quantized checkpoint (default: YAML's)")
    parser.add_argument("--widths", type=int, nargs="+", default=[128, 256, 384, 512, 640])
    parser.add_argument("--output", default=None, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    helper = MFParallelLlama2Helper(args.config)
    helper.set_context(ms.GRAPH_MODE)
    network = load_network(helper, args.load_checkpoint)
    rows = [("loaded", parameter_memory_mb(network)["weights"], rss_mb())]
    for width in args.widths:
        network(ms.Tensor(np.ones((1, width), np.int32)), ms.Tensor([width], ms.int32))
        rows.append((f"+ prefill graph, {width} tokens", None, rss_mb()))
    network(ms.Tensor([[1]], ms.int32), ms.Tensor([args.widths[-1] + 1], ms.int32))
    rows.append(("+ decode graph", None, rss_mb()))
    print("| step | weights MB | process RSS MB |\n| --- | --- | --- |")
    for step, weights, rss in rows:
        print(f"| {step} | {'' if weights is None else f'{weights:.0f}'} | {rss:.0f} |")
    if args.output:
        write_json_atomic(args.output, [{"step": s, "weights_mb": w, "rss_mb": r} for s, w, r in rows])


if __name__ == "__main__":
    main()
