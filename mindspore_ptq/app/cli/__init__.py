"""`mindspore-ptq quantize | eval | bench | merge`: the command line over the same code as the example scripts."""
import argparse
import sys

from ...log import configure_logging
from . import bench, evaluate, merge, quantize

COMMANDS = {"quantize": quantize, "eval": evaluate, "bench": bench, "merge": merge}


def build_parser():
    parser = argparse.ArgumentParser(prog="mindspore-ptq", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    for name, module in COMMANDS.items():
        command = commands.add_parser(name, help=module.__doc__.splitlines()[0], description=module.__doc__,
                                      formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        command.add_argument("--log_level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                             help="INFO shows progress bars and the per-layer report; WARNING is quiet")
        command.set_defaults(run=module.run)
    return parser


def main(argv=None):
    """Parse `argv` (default: sys.argv[1:]) and run the command; returns its result."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    configure_logging(args.log_level)
    return args.run(args)


# Errors that mean bad input: reported in one line naming the culprit, exit status 2 (argparse's for usage).
INPUT_ERRORS = (ValueError, KeyError, FileNotFoundError, FileExistsError, PermissionError, TypeError)


def console_main(argv=None):
    """The `mindspore-ptq` console script: exit status 0 on success, 2 with a one-line error for bad input."""
    try:
        main(argv)
    except INPUT_ERRORS as err:
        message = err.args[0] if isinstance(err, KeyError) and err.args else err
        print(f"mindspore-ptq: error: {message}", file=sys.stderr)
        return 2
    return 0
