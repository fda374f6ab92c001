"""Golden Stick 0.6's import path of RoundToNearest (`mindspore_gs.ptq.round_to_nearest`)."""
from .named import RoundToNearest

__all__ = ["RoundToNearest"]
