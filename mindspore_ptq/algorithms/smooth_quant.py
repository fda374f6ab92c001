"""SmoothQuant: divide activations by s and multiply weights by s, s = max|X|^a / max|W|^(1-a) per channel.

Where a cell feeds the linears (a norm, or w3 feeding w2 through the gated product), 1/s is folded into its
output channels exactly; otherwise the deployed linear multiplies its input by 1/s.
"""
import numpy as np
from mindspore import Tensor

from ..cells.linear import parallel_layout
from ..cells.tree import get_cell
from ..distributed import tp_max
from ..quant_functions import smooth_scales


def _float_cell(cell):
    return getattr(cell, "float_cell", cell)


def _scale_weight(cell, factor):
    """weight (out, in) *= factor over input channels."""
    weight = _float_cell(cell).weight
    weight.set_data(Tensor(weight.asnumpy() * factor[None, :], weight.dtype))


def _fold_into_output(cell, divisor):
    """Divide the output channels of a norm (weight (c,)) or a linear (weight (c, in)) by `divisor`."""
    weight = _float_cell(cell).weight
    values = weight.asnumpy()
    if values.shape[0] != divisor.shape[0]:
        raise ValueError(f"cannot fold smoothing of {divisor.shape[0]} channels into a weight of shape "
                         f"{values.shape}")
    values = values / (divisor if values.ndim == 1 else divisor[:, None])
    weight.set_data(Tensor(values, weight.dtype))


class SmoothQuant:
    """Computes and applies smoothing factors for the activation-quantized linears of one container."""

    def __init__(self, alpha, smooth_groups):
        self.alpha, self.smooth_groups = alpha, smooth_groups

    def _factors(self, observed, linears):
        weight_max = np.max([np.abs(_float_cell(c).weight.asnumpy()).max(0) for c in linears], axis=0)
        if parallel_layout(_float_cell(linears[0]))["parallel_mode"] == "column":
            weight_max = tp_max(weight_max)  # each rank holds some of the output rows
        return smooth_scales(observed.observer.abs_max, weight_max, self.alpha)

    def process(self, container, wrappers):
        grouped = set()
        for feeder, linear_paths in self.smooth_groups:
            quantized = [wrappers[p] for p in linear_paths if p in wrappers and wrappers[p].plan.activation]
            if not quantized:
                continue
            linears = [get_cell(container, p) for p in linear_paths]
            factors = self._factors(quantized[0], linears)
            _fold_into_output(get_cell(container, feeder), factors)
            for linear in linears:
                _scale_weight(linear, factors)
            for wrapper in quantized:
                wrapper.input_divisor, wrapper.smoothing = factors, f"folded into {feeder}"
            grouped.update(linear_paths)
        for path, wrapper in wrappers.items():
            if path not in grouped and getattr(wrapper.plan, "smooth_multiply", False):
                factors = self._factors(wrapper, [wrapper])
                _scale_weight(wrapper, factors)
                wrapper.input_divisor, wrapper.smoothing = factors, "input multiply"
