"""The PTQ algorithm, under Golden Stick 0.6's `mindspore_gs.ptq` names (`mindspore_gs` -> `mindspore_ptq`)."""
from network_helpers.network_helper import NetworkHelper

from ..config import OutliersSuppressionType, PTQConfig, PTQMode
from .named import RoundToNearest, SmoothQuant
from .ptq import PTQ

__all__ = ["PTQ", "PTQConfig", "PTQMode", "OutliersSuppressionType", "RoundToNearest", "SmoothQuant",
           "NetworkHelper"]
