"""Defaults and option types shared by the commands (paths are relative to the repository root, where the examples
run)."""
import argparse
import os

from ms_infra.files import check_inputs

from ...datasets import shots_file_for

DEFAULT_CONFIG = "example/configs/predict_smollm2_135m.yaml"
DEFAULT_SQUAD_DIR = os.environ.get("SQUAD_DIR", "../shared/data/squad1.1")


def count(minimum, zero_means=None):
    """An argparse type for a count of at least `minimum` (0 allowed when `zero_means` says what it does): a bad
    value is a usage error that says the rule, before anything is loaded."""
    rule = f">= {minimum}" + (f" (0 {zero_means})" if zero_means else "")

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer {rule}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be {rule}, got {value}")
        return value

    return parse


POSITIVE = count(1)


def add_dev_window_arguments(parser, windows=2):
    """--dataset_path (the SQuAD dev file), --windows and --window_length: the dev windows a script runs on."""
    parser.add_argument("--dataset_path", default=f"{DEFAULT_SQUAD_DIR}/dev-v1.1.json", help="SQuAD v1.1 dev file")
    parser.add_argument("--windows", type=POSITIVE, default=windows, help="dev windows of plain text")
    add_window_length_argument(parser, "--window_length")


def add_window_length_argument(parser, flag):
    parser.add_argument(flag, type=POSITIVE, default=None,
                        help="tokens per dev window (default 512, or the model's seq_length if that is shorter; "
                             "longer than seq_length is refused)")


def add_config_argument(parser):
    parser.add_argument("--config", "--config_path", "-c", dest="config", default=DEFAULT_CONFIG,
                        help=f"MindFormers YAML of the network (default: {DEFAULT_CONFIG}, SmolLM2-135M)")


def add_shots_argument(parser):
    parser.add_argument("--shots_path", default=None,
                        help="SQuAD v1.1 file holding a few-shot template's worked examples (default: "
                             "train-v1.1.json beside --dataset_path)")


def check_prompt_inputs(dataset_path, template, shots_path):
    """Before any long work: the SQuAD file exists, the template is known, and so is the file of its worked
    examples (which --shots_path names, or which is looked up beside --dataset_path)."""
    check_inputs({"--dataset_path": dataset_path})
    shots = shots_file_for(template, dataset_path, shots_path)
    if shots is not None and not shots.is_file():
        source = "--shots_path" if shots_path else "looked up beside --dataset_path"
        raise FileNotFoundError(f"template {template!r} takes its worked examples from {shots} ({source}), which "
                                "does not exist; pass --shots_path with the SQuAD v1.1 train file")


def parse_window_script(description, argv, checkpoint_help, output_help, checkpoint_required=False,
                        output_required=False):
    """The command line of the scripts that run on dev windows (--config, --load_checkpoint, --dataset_path,
    --windows, --window_length, --output); returns the parsed arguments."""
    parser = argparse.ArgumentParser(description=description, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_config_argument(parser)
    parser.add_argument("--load_checkpoint", required=checkpoint_required, default=None,
                        help=checkpoint_help)
    add_dev_window_arguments(parser)
    parser.add_argument("--output", required=output_required, default=None, help=output_help)
    return parser.parse_args(argv)
