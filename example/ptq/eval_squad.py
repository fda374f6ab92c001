"""Deploy and evaluate in GRAPH_MODE (SQuAD F1/EM, perplexity, KL/top-1, speed): `mindspore-ptq eval` as a script.

    python example/ptq/eval_squad.py --load_checkpoint outputs/a8w8c8/a8w8c8.ckpt --n_samples 200
    python example/ptq/eval_squad.py -c CONFIG.yaml -s dev-v1.1.json  # Golden Stick 0.6's flags: the YAML's checkpoint
"""
import sys

from mindspore_ptq.app.cli import main as cli_main


def main(argv=None):
    return cli_main(["eval"] + list(sys.argv[1:] if argv is None else argv))


if __name__ == "__main__":
    main()
