"""What every calibrating wrapper shares: it stands in for a float cell during `apply()`, observes its inputs,
then runs its quantized form (or, while inactive, its float form).

The float cell and the quantized cell are held as plain attributes (not sub-cells), so wrapping renames no
parameter; `convert()` puts `quantized` in the network in the wrapper's place. What the algorithm steps learn
about a cell lives with the steps (lifecycle.CalibratedCell), not here.
"""
from mindspore import nn

from .. import quant_functions as qf


class QuantWrapper(nn.Cell):
    """Base of the wrappers registered in `cells.registry`; `kind` names what the layer policy plans for.

    probes: callables (wrapper, inputs, output) that see every quantized call, e.g. an output-error meter.
    """
    kind = None

    def __init__(self, name, float_cell, plan):
        super().__init__()
        object.__setattr__(self, "float_cell", float_cell)
        object.__setattr__(self, "quantized", None)
        self.name, self.plan = name, plan
        self.active = True  # False: run the float form (for sensitivity measurements)
        self.probes = []

    def set_quantized(self, cell):
        """Run `cell` from now on (a deployed cell, or the float cell itself for a float fallback)."""
        object.__setattr__(self, "quantized", cell)
        return cell

    def run_quantized(self, *inputs):
        out = self.quantized(*inputs)
        for probe in self.probes:
            probe(self, inputs, out)
        return out

    def release_samples(self):
        """Drop calibration data kept beyond running statistics, once the layer is quantized."""

    def planned_range(self, minimum, maximum):
        """A calibrated (minimum, maximum), rounded outward as the plan's range_mantissa_bits says."""
        bits = self.plan.range_mantissa_bits
        return (minimum, maximum) if bits is None else qf.round_range_outward(minimum, maximum, bits)
