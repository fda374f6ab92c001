"""Defaults shared by the commands (paths are relative to the repository root, where the examples run)."""
import os

DEFAULT_CONFIG = "example/configs/predict_smollm2_135m.yaml"
DEFAULT_SQUAD_DIR = os.environ.get("SQUAD_DIR", "../shared/data/squad1.1")


def add_config_argument(parser):
    parser.add_argument("--config", default=DEFAULT_CONFIG,
                        help=f"MindFormers YAML of the network (default: {DEFAULT_CONFIG}, SmolLM2-135M)")
