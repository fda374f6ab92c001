"""mindspore-ptq: post-training quantization for LLMs on MindSpore (a Golden Stick-style algorithm plugin)."""
from . import kinds  # noqa: F401  (registers the quantizable float cells)
from .comp_algo import CompAlgo
from .config import (BackendTarget, CalibrationInputs, Granularity, LayerPrecision, OutliersSuppressionType,
                     PrecisionRecovery, PTQConfig, PTQMode, RangeObserver)
from .ptq import PTQ

__all__ = ["CompAlgo", "PTQ", "PTQConfig", "PTQMode", "BackendTarget", "OutliersSuppressionType", "Granularity",
           "RangeObserver", "LayerPrecision", "CalibrationInputs", "PrecisionRecovery"]
