"""Quantize with PTQ and save the checkpoint: `mindspore-ptq quantize` as a script (same code, same options).

    python example/ptq/quant_ckpt.py --approach a8w8c8 --n_samples 64 --output_dir outputs/a8w8c8
    python example/ptq/quant_ckpt.py -c CONFIG.yaml -q smooth_quant -t squad1.1 -s train-v1.1.json  # Golden Stick 0.6
"""
import sys

from mindspore_ptq.app.cli import main as cli_main


def main(argv=None):
    return cli_main(["quantize"] + list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
