"""Quantize a network with PTQ and save the quantized checkpoint.

PyNative calibration on SQuAD train questions, convert, then save the checkpoint with its PTQ config
(<approach>.ptq.yaml) and per-layer report (<approach>.report.json) beside it.

    mindspore-ptq quantize --approach a8w8c8 --n_samples 64 --output_dir outputs/a8w8c8
"""
from pathlib import Path

import mindspore as ms

from ms_infra.files import check_inputs, check_outputs

from network_helpers import MFParallelLlama2Helper

from ...config import CalibrationInputs
from ...datasets import DATASETS
from ..workflow import check_float_checkpoint, output_files, quantize_to_checkpoint
from .approach import add_approach_arguments, resolve_approach
from .common import (DEFAULT_SQUAD_DIR, POSITIVE, add_config_argument, add_shots_argument, check_prompt_inputs,
                     count)


def add_arguments(parser):
    add_config_argument(parser)
    add_approach_arguments(parser, "a8w8c8",
                           "a16w8: int8 weights; a8w8: SmoothQuant int8 activations and weights (the seed's: w2 and "
                           "lm_head float); c8: int8 KV cache; a16w8c8, a8w8c8: both. Accuracy recovery (all decoder "
                           "linears): a8w8_all (seed recipe), a8w8_per_token, a8w8_percentile, a8w8_histogram, "
                           "a8w8_alpha_search, a8w8_auto / a8w8c8_auto (histogram ranges, alpha search, fallback "
                           "under a held-out KL budget of 0.02), a8w8c8_per_token (per-token activations with alpha "
                           "search, and C8), a8w8_rotated (Hadamard rotations, static min-max), a8w8c8_rotated_auto "
                           "(the same with the KL-budget fallback, and C8)")
    parser.add_argument("--calibration_inputs", choices=[c.value for c in CalibrationInputs], default=None,
                        help="what each decoder layer is calibrated on: the quantized layers' outputs (default) or "
                             "the float network's (one pass cheaper; the same checkpoint at any model_parallel)")
    parser.add_argument("--smooth_power_of_two", action="store_true",
                        help="round SmoothQuant factors to powers of two; with --calibration_inputs float a "
                             "tensor-parallel run then gives the single-process int8 weights exactly")
    parser.add_argument("--range_mantissa_bits", type=POSITIVE, default=None,
                        help="round calibrated activation and KV-cache ranges outward to this many significant bits "
                             "(N: at most 2^(1-N) wider); with the two options above and 5 bits, a tensor-parallel "
                             "run gave the single-process checkpoint bit for bit")
    parser.add_argument("--gptq_damp_percent", type=float, default=None,
                        help="GPTQ's damping as a fraction of the mean Hessian diagonal (the approach's: 0.01); "
                             "only for an approach with GPTQ")
    parser.add_argument("--dataset_type", "-t", default="squad1.1", type=str.lower, choices=sorted(DATASETS),
                        help="calibration data set")
    parser.add_argument("--dataset_path", "-s", default=f"{DEFAULT_SQUAD_DIR}/train-v1.1.json",
                        help="calibration data: SQuAD v1.1 train file")
    parser.add_argument("--n_samples", type=POSITIVE, default=64, help="calibration samples (question + answer each)")
    parser.add_argument("--template", default="squad_3shot", help="prompt template of the calibration samples")
    add_shots_argument(parser)
    parser.add_argument("--text_windows", type=count(0, "adds none"), default=0,
                        help="also calibrate on this many 512-token plain-text windows of the dataset file's "
                             "contexts, interleaved with the prompts (ranges then cover text that is not a prompt)")
    parser.add_argument("--output_dir", default=None,
                        help="where to write <approach>.ckpt (default outputs/<approach>)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing quantized checkpoint set")
    parser.add_argument("--time_float_forward", action="store_true",
                        help="also time one float forward pass over the calibration set (calibration cost yardstick)")


def run(args):
    # 1. The helper reads the YAML; everything the run reads or writes is checked before the network is built.
    helper = MFParallelLlama2Helper(args.config)
    overrides = {}
    if args.calibration_inputs is not None:
        overrides["calibration_inputs"] = CalibrationInputs(args.calibration_inputs)
    if args.smooth_power_of_two:
        overrides["smooth_power_of_two"] = True
    if args.range_mantissa_bits is not None:
        overrides["range_mantissa_bits"] = args.range_mantissa_bits
    if args.gptq_damp_percent is not None:
        overrides["gptq_damp_percent"] = args.gptq_damp_percent
    name, config = resolve_approach(args, **overrides)
    if args.gptq_damp_percent is not None and not config.recovery.gptq:
        raise ValueError(f"--gptq_damp_percent applies to an approach with GPTQ; {name} rounds to nearest")
    source = helper.config.get("load_checkpoint") or None  # none: random weights (the helper warns)
    check_inputs({f"{args.config}: load_checkpoint": source})
    check_float_checkpoint(source, f"{args.config}: load_checkpoint")
    if config.needs_calibration_data:
        check_prompt_inputs(args.dataset_path, args.template, args.shots_path)
    output_dir = Path(args.output_dir or f"outputs/{name}")
    checkpoint = output_dir / f"{name}.ckpt"
    check_outputs(output_files(checkpoint), args.overwrite, inputs=[source, args.config])
    # 2.-4. Calibrate in PyNative on the first n_samples train questions (prompt + gold answer), layer by layer;
    # convert, save with the config.
    helper.set_context(ms.PYNATIVE_MODE)
    summary = quantize_to_checkpoint(helper, config, args.dataset_path, args.n_samples, checkpoint, args.template,
                                     args.time_float_forward, args.text_windows, args.dataset_type, args.shots_path)
    print(f"{name}: calibrated on {summary['n_samples']} samples in {summary['calibration_seconds']:.0f} s -> "
          f"{summary['checkpoint']} ({summary['size_mb']:.1f} MB)")
    return summary
