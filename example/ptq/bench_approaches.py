"""Float and every approach side by side (accuracy, size, memory, speed, plots): `mindspore-ptq bench` as a script.

    python example/ptq/bench_approaches.py --n_samples 200 --ppl_windows 64 --calib_samples 32
"""
import sys

from mindspore_ptq.app.cli import main as cli_main


def main(argv=None):
    return cli_main(["bench"] + list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
