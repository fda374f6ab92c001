"""Quantize a network with PTQ (PyNative calibration on SQuAD train) and save the quantized checkpoint.

    python example/ptq/quant_ckpt.py --approach a8w8c8 --n_samples 64 --output_dir outputs/a8w8c8
"""
import argparse
import json
import os
import time
from pathlib import Path

import mindspore as ms

from mindspore_ptq import PTQ
from mindspore_ptq.checkpoint import save_quantized
from mindspore_ptq.datasets import get_datasets
from mindspore_ptq.presets import APPROACHES, approach_config
from network_helpers import MFParallelLlama2Helper

DEFAULT_SQUAD_DIR = os.environ.get("SQUAD_DIR", "../shared/data/squad1.1")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="example/configs/predict_smollm2_135m.yaml", help="MindFormers YAML")
    parser.add_argument("--approach", default="a8w8c8", choices=sorted(APPROACHES), help="quantization approach")
    parser.add_argument("--opname_blacklist", nargs="*", default=None,
                        help="cells whose name contains any of these stay float (default: the approach's)")
    parser.add_argument("--dataset_path", default=f"{DEFAULT_SQUAD_DIR}/train-v1.1.json",
                        help="calibration data: SQuAD train file")
    parser.add_argument("--n_samples", type=int, default=64, help="calibration samples")
    parser.add_argument("--template", default="squad_3shot", help="prompt template of the calibration samples")
    parser.add_argument("--output_dir", default=None, help="where to write <approach>.ckpt (default outputs/<approach>)")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    # 1. Float network in PyNative (calibration runs eagerly, layer by layer).
    helper = MFParallelLlama2Helper(args.config)
    helper.set_context(ms.PYNATIVE_MODE)
    network = helper.create_network()
    tokenizer = helper.create_tokenizer()
    # 2. Calibration set: prompt + gold answer for the first n_samples train questions.
    dataset = get_datasets("squad1.1", args.dataset_path, "train", 1, helper.get_spec("seq_length"), 0, tokenizer,
                           helper.get_spec("ignore_token_id"), 1, False, n_samples=args.n_samples,
                           template=args.template)
    # 3. Calibrate and quantize, then swap in the int8 cells.
    overrides = {} if args.opname_blacklist is None else {"opname_blacklist": tuple(args.opname_blacklist)}
    config = approach_config(args.approach, **overrides)
    start = time.perf_counter()
    ptq = PTQ(config)
    ptq.apply(network, helper, dataset)
    ptq.convert(network)
    seconds = time.perf_counter() - start
    # 4. Save the quantized checkpoint with its config beside it.
    output_dir = Path(args.output_dir or f"outputs/{args.approach}")
    checkpoint = save_quantized(network, output_dir / f"{args.approach}.ckpt", config,
                                source_checkpoint=helper.config.get("load_checkpoint"))
    summary = {"approach": args.approach, "checkpoint": str(checkpoint), "calibration_seconds": seconds,
               "n_samples": args.n_samples, "size_mb": checkpoint.stat().st_size / 2 ** 20}
    (output_dir / "quantize.json").write_text(json.dumps(summary, indent=2))
    print(f"{args.approach}: calibrated on {args.n_samples} samples in {seconds:.0f} s -> {checkpoint} "
          f"({summary['size_mb']:.1f} MB)")
    return summary


if __name__ == "__main__":
    main()
