"""Golden Stick 0.6's algorithm classes, each a PTQ whose config is held to what the class's name means."""
import mindspore as ms

from ..config import OutliersSuppressionType, PTQConfig
from .ptq import PTQ


class _NamedPTQ(PTQ):
    """PTQ that takes `DEFAULT` when given no config and refuses a config whose `REQUIRED` fields differ."""
    DEFAULT = ()   # (field, value) pairs
    REQUIRED = ()  # (field, value) pairs

    def __init__(self, config=None):
        config = PTQConfig(**dict(self.DEFAULT)) if config is None else config
        if not isinstance(config, PTQConfig):
            raise TypeError(f"{type(self).__name__} needs a PTQConfig, got {type(config).__name__}")
        wrong = [f"{field}={getattr(config, field)}" for field, value in self.REQUIRED
                 if getattr(config, field) != value]
        if wrong:
            wanted = ", ".join(f"{field}={value}" for field, value in self.REQUIRED)
            raise ValueError(f"{type(self).__name__} needs {wanted}; got {', '.join(wrong)} (use PTQ for other "
                             f"combinations)")
        super().__init__(config)


class RoundToNearest(_NamedPTQ):
    """Round-to-nearest: int8 weights (A16W8) and/or the int8 KV cache (C8), float activations.
    Without a config: A16W8, Golden Stick's default."""
    DEFAULT = (("weight_quant_dtype", ms.int8),)
    REQUIRED = (("act_quant_dtype", None), ("outliers_suppression", OutliersSuppressionType.NONE))


class SmoothQuant(_NamedPTQ):
    """SmoothQuant A8W8: int8 weights and activations after smoothing (the KV cache may be int8 too).
    Without a config: A8W8 on every registered cell (the seed recipe adds opname_blacklist=['w2', 'lm_head'])."""
    DEFAULT = (("weight_quant_dtype", ms.int8), ("act_quant_dtype", ms.int8),
               ("outliers_suppression", OutliersSuppressionType.SMOOTH))
    REQUIRED = DEFAULT
