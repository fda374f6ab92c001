"""PTQConfig and its vocabulary."""
from .enums import (ACTIVATION_OF, BackendTarget, CalibrationInputs, Granularity, LayerPrecision,
                    OutliersSuppressionType, PrecisionRecovery, PTQMode, RangeObserver)
from .ptq_config import PTQConfig

__all__ = ["ACTIVATION_OF", "BackendTarget", "CalibrationInputs", "Granularity", "LayerPrecision",
           "OutliersSuppressionType", "PrecisionRecovery", "PTQConfig", "PTQMode", "RangeObserver"]
