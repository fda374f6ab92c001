"""Defaults shared by the commands (paths are relative to the repository root, where the examples run)."""
import os

DEFAULT_CONFIG = "example/configs/predict_smollm2_135m.yaml"
DEFAULT_SQUAD_DIR = os.environ.get("SQUAD_DIR", "../shared/data/squad1.1")


def add_dev_window_arguments(parser, windows=2):
    """--dataset_path (the SQuAD dev file) and --windows: the 512-token dev windows a script runs on."""
    parser.add_argument("--dataset_path", default=f"{DEFAULT_SQUAD_DIR}/dev-v1.1.json", help="SQuAD v1.1 dev file")
    parser.add_argument("--windows", type=int, default=windows, help="512-token dev windows")


def add_config_argument(parser):
    parser.add_argument("--config", default=DEFAULT_CONFIG,
                        help=f"MindFormers YAML of the network (default: {DEFAULT_CONFIG}, SmolLM2-135M)")
