"""Golden Stick 0.6's `mindspore_gs.common` names: BackendTarget, and `logger` (the package's `mindspore_ptq`
logger, silent until `mindspore_ptq.log.configure_logging`)."""
from .config import BackendTarget
from .log import logger

__all__ = ["BackendTarget", "logger"]
