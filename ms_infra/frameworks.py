"""The frameworks' own log lines (MindSpore, MindFormers, transformers, jieba): kept out of a command's output
unless it is asked for them (`--log_level DEBUG`)."""
import importlib
import importlib.util
import logging
import os
import sys

QUIET_LEVEL = logging.ERROR  # what still shows from a quiet framework
QUIET_GLOG = "3"  # MindSpore's GLOG_v for errors only (0 debug, 1 info, 2 warning, 3 error)


def mindformers_installed():
    """Whether MindFormers is installed (the `mindformers` extra): what uses it falls back or skips without it."""
    return importlib.util.find_spec("mindformers") is not None


def import_quietly(name):
    """Import module `name` with records below WARNING dropped while it imports: MindFormers logs notes at import
    time (e.g. that ENABLE_LAZY_INLINE will be deprecated) to whoever imports it."""
    previous = logging.root.manager.disable
    logging.disable(max(previous, logging.INFO))
    try:
        return importlib.import_module(name)
    finally:
        logging.disable(previous)


class _QuietFilter(logging.Filter):
    """Drops records below QUIET_LEVEL; a filter, because jieba resets its logger's level when it is imported."""

    def filter(self, record):
        return record.levelno >= QUIET_LEVEL


_QUIET = _QuietFilter()


# transformers' settings, read when it is imported (it is, lazily, by the tokenizer): errors only, and no advice
# such as "None of PyTorch, TensorFlow >= 2.0, or Flax have been found" (torch is a test oracle here)
QUIET_TRANSFORMERS = {"TRANSFORMERS_VERBOSITY": "error", "TRANSFORMERS_NO_ADVISORY_WARNINGS": "1"}


def quiet_frameworks():
    """Show only errors from MindSpore, MindFormers, transformers and jieba, in this process and the ones it
    starts. A GLOG_v or transformers setting the user made is kept."""
    for name, value in QUIET_TRANSFORMERS.items():
        os.environ.setdefault(name, value)
    if "GLOG_v" not in os.environ:
        os.environ["GLOG_v"] = QUIET_GLOG  # read by MindSpore when it is imported (child processes)
        ms_log = sys.modules.get("mindspore.log")
        if ms_log is not None and ms_log.GLOBAL_LOGGER is not None:  # this process imported it already
            ms_log.GLOBAL_LOGGER.setLevel(QUIET_LEVEL)
    if mindformers_installed():
        import_quietly("mindformers.tools.logger").get_logger().setLevel(QUIET_LEVEL)
    logging.getLogger("jieba").addFilter(_QUIET)
