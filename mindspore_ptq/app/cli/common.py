"""Defaults shared by the commands (paths are relative to the repository root, where the examples run)."""
import argparse
import os

DEFAULT_CONFIG = "example/configs/predict_smollm2_135m.yaml"
DEFAULT_SQUAD_DIR = os.environ.get("SQUAD_DIR", "../shared/data/squad1.1")


def add_dev_window_arguments(parser, windows=2):
    """--dataset_path (the SQuAD dev file) and --windows: the 512-token dev windows a script runs on."""
    parser.add_argument("--dataset_path", default=f"{DEFAULT_SQUAD_DIR}/dev-v1.1.json", help="SQuAD v1.1 dev file")
    parser.add_argument("--windows", type=int, default=windows, help="512-token dev windows")


def add_config_argument(parser):
    parser.add_argument("--config", "--config_path", "-c", dest="config", default=DEFAULT_CONFIG,
                        help=f"MindFormers YAML of the network (default: {DEFAULT_CONFIG}, SmolLM2-135M)")


def parse_window_script(description, argv, checkpoint_help, output_help, checkpoint_required=False,
                        output_required=False):
    """The command line of the scripts that run on dev windows (--config, --load_checkpoint, --dataset_path,
    --windows, --output); returns the parsed arguments."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_argument(parser)
    parser.add_argument("--load_checkpoint", required=checkpoint_required, default=None,
                        help=checkpoint_help)
    add_dev_window_arguments(parser)
    parser.add_argument("--output", required=output_required, default=None, help=output_help)
    return parser.parse_args(argv)
