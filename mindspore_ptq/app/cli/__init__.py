"""`mindspore-ptq quantize | eval | bench | merge`: the command line over the same code as the example scripts."""
import argparse
import sys

from ms_infra.frameworks import quiet_frameworks

from ...log import configure_logging
from . import bench, evaluate, merge, quantize

COMMANDS = {"quantize": quantize, "eval": evaluate, "bench": bench, "merge": merge}
LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]


def build_parser():
    parser = argparse.ArgumentParser(prog="mindspore-ptq", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True, metavar="{" + ",".join(COMMANDS) + "}")
    for name, module in COMMANDS.items():
        command = commands.add_parser(name, help=module.__doc__.splitlines()[0], description=module.__doc__,
                                      formatter_class=argparse.RawDescriptionHelpFormatter)
        module.add_arguments(command)
        command.add_argument("--log_level", default="INFO", choices=LOG_LEVELS,
                             help="INFO shows progress bars and the per-layer report; WARNING is quiet; DEBUG also "
                                  "shows MindSpore's and MindFormers' own log lines")
        command.set_defaults(run=module.run)
    return parser


def main(argv=None):
    """Parse `argv` (default: sys.argv[1:]) and run the command; returns its result."""
    args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
    if args.log_level != "DEBUG":
        quiet_frameworks()
    configure_logging(args.log_level)
    return args.run(args)


# Errors that mean bad input: reported in one line naming the culprit, exit status 2 (argparse's for usage).
INPUT_ERRORS = (ValueError, KeyError, TypeError, FileNotFoundError, FileExistsError, IsADirectoryError,
                NotADirectoryError, PermissionError)


def _fail(message, status):
    print(f"mindspore-ptq: error: {message}", file=sys.stderr)
    return status


def console_main(argv=None):
    """The `mindspore-ptq` console script: exit status 0 on success, 2 with a one-line error for bad input, 1 when
    a bench step failed in its own process (which reported its error)."""
    try:
        main(argv)
    except INPUT_ERRORS as err:
        return _fail(err.args[0] if isinstance(err, KeyError) and err.args else err, 2)
    except ChildProcessError as err:
        return _fail(err, 1)
    return 0
