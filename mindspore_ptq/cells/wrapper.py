"""What every calibrating wrapper shares: it stands in for a float cell during `apply()`, observes, then runs
its quantized form.

The float cell and the quantized cell are held as plain attributes (not sub-cells), so wrapping renames no
parameter; `convert()` puts `quantized` in the network in the wrapper's place.
"""
from mindspore import nn

from .. import quant_functions as qf


class QuantWrapper(nn.Cell):
    """Base of the wrappers registered in `cells.registry`; `kind` names what the layer policy plans for."""
    kind = None

    def __init__(self, name, float_cell, plan):
        super().__init__()
        object.__setattr__(self, "float_cell", float_cell)
        object.__setattr__(self, "quantized", None)
        self.name, self.plan = name, plan
        self.active = True  # False: run the float form (for sensitivity measurements)

    def track_error(self, on):
        """Start (True) or stop (False) measuring the output error; wrappers that do not measure ignore it."""

    def release_samples(self):
        """Drop calibration data kept beyond running statistics, once the layer is quantized."""

    def planned_range(self, minimum, maximum):
        """A calibrated (minimum, maximum), rounded outward as the plan's range_mantissa_bits says."""
        bits = self.plan.range_mantissa_bits
        return (minimum, maximum) if bits is None else qf.round_range_outward(minimum, maximum, bits)
