"""How well GPTQ's rounding carries from its calibration inputs to other text, linear by linear.

Captures the float network's inputs of a few linears (forward pre-hooks, PyNative) on SQuAD 3-shot train
prompts, plain-text train windows and held-out dev windows, then rounds each weight to int4 per group by RTN and
by GPTQ with its Hessian from the prompts or from the text windows, at two dampings, and prints each one's
relative output error ||X W_q^T - X W^T||^2 / ||X W^T||^2 on the dev windows (the text KL is measured on).

    python example/ptq/probe_gptq_calibration.py --layers 2 15 27 --samples 4
"""
import argparse

import numpy as np
import mindspore as ms

from mindspore_ptq import quant_functions as qf
from mindspore_ptq.algorithms.gptq import gptq
from mindspore_ptq.app.cli.common import DEFAULT_SQUAD_DIR, add_config_argument
from mindspore_ptq.app.workflow import calibration_samples
from mindspore_ptq.datasets import context_windows
from network_helpers import MFParallelLlama2Helper

LINEARS = ("attention.wq", "attention.wo", "feed_forward.w1", "feed_forward.w2")


def capture(network, paths, sources):
    """{source: {path: (rows, in) float64}}: each linear's inputs over each source's batches (ids (1, S))."""
    rows = {}
    for path, cell in paths.items():
        cell.register_forward_pre_hook(
            lambda _, inputs, path=path: rows[path].append(inputs[0].asnumpy().reshape(-1, inputs[0].shape[-1])))
    captured = {}
    for source, batches in sources.items():
        rows.update({path: [] for path in paths})
        for ids in batches:
            network(ms.Tensor(ids, ms.int32))
        captured[source] = {path: np.concatenate(parts).astype(np.float64) for path, parts in rows.items()}
    return captured


def relative_error(weight, quantized, inputs):
    reference = inputs @ weight.T
    return float(((inputs @ quantized.T - reference) ** 2).sum() / (reference ** 2).sum())


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_argument(parser)
    parser.add_argument("--squad_dir", default=DEFAULT_SQUAD_DIR)
    parser.add_argument("--layers", type=int, nargs="+", default=[2, 15, 27])
    parser.add_argument("--samples", type=int, default=4, help="prompts, and train text windows, for the Hessian")
    parser.add_argument("--held_out", type=int, default=3, help="dev text windows the error is measured on")
    parser.add_argument("--group_size", type=int, default=64)
    parser.add_argument("--dampings", type=float, nargs="+", default=[0.01, 0.1])
    args = parser.parse_args(argv)
    ms.set_context(mode=ms.PYNATIVE_MODE)
    helper = MFParallelLlama2Helper(args.config)
    network, tokenizer = helper.create_network(), helper.create_tokenizer()
    train, dev = f"{args.squad_dir}/train-v1.1.json", f"{args.squad_dir}/dev-v1.1.json"
    sources = {"prompts": calibration_samples(helper, train, args.samples),
               "text": [w[None] for w in context_windows(train, tokenizer, 512, args.samples)],
               "dev": [w[None] for w in context_windows(dev, tokenizer, 512, args.held_out)]}
    paths = {f"{i}.{name}": cell for i in args.layers for name, cell in network.model.layers[i].cells_and_names()
             if name in LINEARS}
    inputs = capture(network, paths, sources)
    print("| linear | RTN | " + " | ".join(f"GPTQ {s} d{d}" for s in ("prompts", "text") for d in args.dampings)
          + " |")
    for path, cell in paths.items():
        weight, held = cell.weight.asnumpy().astype(np.float64), inputs["dev"][path]
        codes, scales = qf.quantize_weight_grouped(weight, 4, args.group_size)
        errors = [relative_error(weight, qf.dequantize_grouped(codes, scales), held)]
        for source in ("prompts", "text"):
            x = inputs[source][path]
            for damping in args.dampings:
                codes, scales, _ = gptq(weight, 2 * x.T @ x / len(x), 4, args.group_size, damp_percent=damping)
                errors.append(relative_error(weight, qf.dequantize_grouped(codes, scales), held))
        print(f"| {path} | " + " | ".join(f"{e:.4g}" for e in errors) + " |", flush=True)


if __name__ == "__main__":
    main()
