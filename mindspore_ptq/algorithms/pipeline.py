"""The algorithm modules a config calls for, in the order they process a layer."""
from .smooth_quant import SmoothQuant
from ..config import OutliersSuppressionType


class WrapperQuantizer:
    """Turns each calibrated wrapper of one kind ('linear', 'kv_cache') into its deployed int8 cell."""

    def __init__(self, kind):
        self.kind = kind

    def process(self, container, wrappers):
        for wrapper in wrappers.values():
            if wrapper.kind == self.kind:
                wrapper.quantize()


# (does the config need it, how to build it from (config, layout)), in processing order.
STEPS = (
    (lambda c: c.outliers_suppression is OutliersSuppressionType.SMOOTH,
     lambda c, layout: SmoothQuant(c.smooth_alpha, layout.smooth_groups, c.smooth_alpha_search,
                                   c.smooth_power_of_two)),
    (lambda c: c.weight_quant_dtype is not None, lambda c, layout: WrapperQuantizer("linear")),
    (lambda c: c.kvcache_quant_dtype is not None, lambda c, layout: WrapperQuantizer("kv_cache")),
)


def build_pipeline(config, layout):
    """The algorithm modules for `config`, chosen by data."""
    return [build(config, layout) for needed, build in STEPS if needed(config)]
