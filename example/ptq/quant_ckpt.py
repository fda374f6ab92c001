"""Quantize a network with PTQ (PyNative calibration on SQuAD train) and save the quantized checkpoint.

    python example/ptq/quant_ckpt.py --approach a8w8c8 --n_samples 64 --output_dir outputs/a8w8c8
"""
import argparse
import os
from pathlib import Path

import mindspore as ms

from mindspore_ptq.presets import APPROACHES, approach_config
from mindspore_ptq.workflow import quantize_to_checkpoint
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
    # 1. The helper reads the YAML; calibration runs in PyNative, layer by layer.
    helper = MFParallelLlama2Helper(args.config)
    helper.set_context(ms.PYNATIVE_MODE)
    # 2.-4. Calibrate on the first n_samples train questions (prompt + gold answer), convert, save with config.
    overrides = {} if args.opname_blacklist is None else {"opname_blacklist": tuple(args.opname_blacklist)}
    output_dir = Path(args.output_dir or f"outputs/{args.approach}")
    summary = quantize_to_checkpoint(helper, approach_config(args.approach, **overrides), args.dataset_path,
                                     args.n_samples, output_dir / f"{args.approach}.ckpt", args.template)
    print(f"{args.approach}: calibrated on {summary['n_samples']} samples in {summary['calibration_seconds']:.0f} s -> "
          f"{summary['checkpoint']} ({summary['size_mb']:.1f} MB)")
    return summary


if __name__ == "__main__":
    main()
