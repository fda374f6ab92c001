"""Algorithm modules: each processes one calibrated decoder layer through `process(container, wrappers)`."""
from .pipeline import build_pipeline

__all__ = ["build_pipeline"]
