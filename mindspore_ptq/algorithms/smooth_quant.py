"""SmoothQuant: divide activations by s and multiply weights by s, s = max|X|^a / max|W|^(1-a) per channel.

Where a cell feeds the linears (a norm, or w3 feeding w2 through the gated product), 1/s is folded into its
output channels exactly; otherwise the deployed linear multiplies its input by 1/s. With candidate alphas, each
group takes the alpha whose simulated int8 output error on the group's calibration inputs is least. With
`power_of_two`, each factor is rounded to the nearest power of two, so the int8 weights do not move with float
noise in the statistics (e.g. a tensor-parallel run's reassociated sums).
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


SEARCH_ROWS = 2048  # calibration tokens (evenly spaced) on which candidate alphas are compared


class SmoothQuant:
    """Computes and applies smoothing factors for the activation-quantized linears of one container.

    alpha_candidates: if given, each group's alpha is searched among them (None: no smoothing) and `alpha`.
    """

    def __init__(self, alpha, smooth_groups, alpha_candidates=(), power_of_two=False):
        self.alpha, self.smooth_groups, self.power_of_two = alpha, smooth_groups, power_of_two
        self.candidates = list(dict.fromkeys([alpha, *alpha_candidates]))  # the default first: it wins ties

    def _factors(self, observed, linears, alpha):
        if alpha is None:
            return np.ones_like(observed.observer.abs_max)
        weight_max = np.max([np.abs(_float_cell(c).weight.asnumpy()).max(0) for c in linears], axis=0)
        if parallel_layout(_float_cell(linears[0]))["parallel_mode"] == "column":
            weight_max = tp_max(weight_max)  # each rank holds some of the output rows
        factors = smooth_scales(observed.observer.abs_max, weight_max, alpha)
        return np.exp2(np.round(np.log2(factors))).astype(factors.dtype) if self.power_of_two else factors

    def _choose(self, quantized, linears):
        """(alpha, factors): the fixed alpha, or the candidate with the least summed relative output error of the
        group's activation-quantized linears; each wrapper records every candidate's error."""
        if len(self.candidates) == 1:
            return self.alpha, self._factors(quantized[0], linears, self.alpha)
        rows = quantized[0].sample.rows
        rows = rows[np.unique(np.linspace(0, len(rows) - 1, min(len(rows), SEARCH_ROWS)).astype(int))]
        errors = {}
        for alpha in self.candidates:
            factors = self._factors(quantized[0], linears, alpha)
            errors[alpha] = sum(error / max(norm, 1e-30) for error, norm in
                                (w.simulate_error(rows, factors) for w in quantized))
        best = min(self.candidates, key=lambda a: errors[a])
        for wrapper in quantized:
            wrapper.alpha_errors = {str(a): float(e) for a, e in errors.items()}
        return best, self._factors(quantized[0], linears, best)

    def process(self, container, wrappers):
        grouped = set()
        for feeder, linear_paths in self.smooth_groups:
            quantized = [wrappers[p] for p in linear_paths if p in wrappers and wrappers[p].plan.activation]
            if not quantized:
                continue
            linears = [get_cell(container, p) for p in linear_paths]
            alpha, factors = self._choose(quantized, linears)
            _fold_into_output(get_cell(container, feeder), factors)
            for linear in linears:
                _scale_weight(linear, factors)
            for wrapper in quantized:
                wrapper.input_divisor, wrapper.smooth_alpha = factors, alpha
                wrapper.smoothing = f"folded into {feeder}" if alpha is not None else "none (searched)"
            grouped.update(linear_paths)
        for path, wrapper in wrappers.items():
            if path not in grouped and getattr(wrapper.plan, "smooth_multiply", False):
                alpha, factors = self._choose([wrapper], [wrapper])
                _scale_weight(wrapper, factors)
                wrapper.input_divisor, wrapper.smooth_alpha = factors, alpha
                wrapper.smoothing = "input multiply" if alpha is not None else "none (searched)"
