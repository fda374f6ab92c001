"""One logger for the package, quiet by default; progress bars show when it is set to INFO or below."""
import logging

from tqdm import tqdm

logger = logging.getLogger("mindspore_ptq")
logger.addHandler(logging.NullHandler())

_PACKAGES = ("mindspore_ptq", "network_helpers")


def progress(iterable=None, **kwargs):
    """A tqdm bar (with ETA) that library users see only after `configure_logging('INFO')`."""
    return tqdm(iterable, disable=not logger.isEnabledFor(logging.INFO), **kwargs)


def configure_logging(level="INFO"):
    """Send this package's log records (and the network helpers') to stderr at `level`."""
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))
    for name in _PACKAGES:
        package_logger = logging.getLogger(name)
        package_logger.setLevel(level.upper() if isinstance(level, str) else level)
        if not any(isinstance(h, logging.StreamHandler) and not isinstance(h, logging.NullHandler)
                   for h in package_logger.handlers):
            package_logger.addHandler(handler)
