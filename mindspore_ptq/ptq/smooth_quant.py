"""Golden Stick 0.6's import path of SmoothQuant (`mindspore_gs.ptq.smooth_quant`)."""
from .named import SmoothQuant

__all__ = ["SmoothQuant"]
