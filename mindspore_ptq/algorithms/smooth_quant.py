"""SmoothQuant: divide activations by s and multiply weights by s, s = max|X|^a / max|W|^(1-a) per channel.

Where a cell feeds the linears (a norm, or w3 feeding w2 through the gated product), 1/s is folded into its
output channels exactly; otherwise the deployed linear multiplies its input by 1/s. With candidate alphas, each
group takes the alpha whose simulated int8 output error on the group's calibration inputs is least. With
`power_of_two`, each factor is rounded to the nearest power of two, so the int8 weights do not move with float
noise in the statistics (e.g. a tensor-parallel run's reassociated sums).
"""
import numpy as np
from mindspore import Tensor

from .. import quant_functions as qf
from ..cells.linear import parallel_layout
from ..cells.tree import get_cell
from ..distributed import tp_max, tp_sum
from ..lifecycle import Step
from ..kinds.linear import static_input_range, weight_abs_max


def _float_cell(cell):
    return getattr(cell, "float_cell", cell)


def scale_weight(cell, factor):
    """weight (out, in) *= factor over input channels."""
    weight = _float_cell(cell).weight
    weight.set_data(Tensor(weight.asnumpy() * factor[None, :], weight.dtype))


def fold_into_output(cell, divisor):
    """Divide the output channels of a norm (weight (c,)) or a linear (weight (c, in)) by `divisor`."""
    weight = _float_cell(cell).weight
    values = weight.asnumpy()
    if values.shape[0] != divisor.shape[0]:
        raise ValueError(f"cannot fold smoothing of {divisor.shape[0]} channels into a weight of shape "
                         f"{values.shape}")
    values = values / (divisor if values.ndim == 1 else divisor[:, None])
    weight.set_data(Tensor(values, weight.dtype))


SEARCH_ROWS = 512  # calibration tokens (evenly spaced) on which candidate alphas are compared


def even_rows(rows, count):
    """At most `count` of `rows`, evenly spaced, first and last included."""
    return rows[np.unique(np.linspace(0, len(rows) - 1, min(len(rows), count)).astype(int))]


def simulated_error(wrapper, rows, divisor, reference):
    """(||y_q - y||^2, ||y||^2) of a linear's output on `rows` if smoothed by `divisor`, by numpy fake-quant with
    the activation range its deployed cell would get; `reference` is the float output rows @ W^T (summed over
    ranks for a row linear), over the full output under TP."""
    weight = wrapper.float_cell.weight.asnumpy().astype(np.float32)
    row_parallel = wrapper.parallel_mode == "row"
    smoothed_weight = weight * divisor[None, :]
    weight_q, weight_scale = qf.quantize_weight_per_channel(smoothed_weight, weight_abs_max(wrapper, smoothed_weight))
    x = rows / divisor
    if wrapper.plan.static_activation:
        scale, zero_point = qf.asymmetric_scale_zero_point(*static_input_range(wrapper, divisor))
        codes = qf.quantize(x, scale, zero_point).astype(np.float32) - zero_point
    else:
        abs_max = np.abs(x).max(-1, keepdims=True)
        scale = qf.symmetric_scale(tp_max(abs_max) if row_parallel else abs_max)
        codes = qf.quantize(x, scale, 0.0, -qf.SYM_MAX, qf.SYM_MAX).astype(np.float32)
    # the integer product, then both scales (as the deployed cell does): no dequantized copies of x and W
    out = (codes @ weight_q.astype(np.float32).T) * (scale * weight_scale[None, :])
    if row_parallel:  # partial sums: the output is their sum over ranks
        out = tp_sum(out)
    sums = np.array([((out - reference) ** 2).sum(), (reference ** 2).sum()])
    return sums if row_parallel else tp_sum(sums)  # column shards hold disjoint outputs


def float_output(wrapper, rows):
    """rows @ W^T of a linear's float weight, summed over ranks for a row-parallel linear."""
    reference = rows @ wrapper.float_cell.weight.asnumpy().astype(np.float32).T
    return tp_sum(reference) if wrapper.parallel_mode == "row" else reference


class SmoothQuant(Step):
    """Computes and applies smoothing factors for the activation-quantized linears of each layer.

    options: the config's OutlierSuppression part (alpha, alpha_search, power_of_two); each group's alpha is
    searched among alpha_search (None: no smoothing) and alpha, if any candidates are given.
    """

    def __init__(self, options, smooth_groups):
        self.alpha, self.smooth_groups, self.power_of_two = options.alpha, smooth_groups, options.power_of_two
        self.candidates = list(dict.fromkeys([options.alpha, *options.alpha_search]))  # the default first: wins ties

    def _factors(self, observed, linears, alpha):
        if alpha is None:
            return np.ones_like(observed.observer.abs_max)
        weight_max = np.max([np.abs(_float_cell(c).weight.asnumpy()).max(0) for c in linears], axis=0)
        if parallel_layout(_float_cell(linears[0]))["parallel_mode"] == "column":
            weight_max = tp_max(weight_max)  # each rank holds some of the output rows
        factors = qf.smooth_scales(observed.observer.abs_max, weight_max, alpha)
        return np.exp2(np.round(np.log2(factors))).astype(factors.dtype) if self.power_of_two else factors

    def _choose(self, quantized, linears):
        """(alpha, factors, {candidate: error} or None): the fixed alpha, or the candidate with the least summed
        relative output error of the group's activation-quantized linears."""
        if len(self.candidates) == 1:
            return self.alpha, self._factors(quantized[0].wrapper, linears, self.alpha), None
        rows = even_rows(quantized[0].wrapper.sample.rows, SEARCH_ROWS)
        references = [float_output(cell.wrapper, rows) for cell in quantized]
        errors = {}
        for alpha in self.candidates:
            factors = self._factors(quantized[0].wrapper, linears, alpha)
            errors[alpha] = sum(error / max(norm, 1e-30) for error, norm in
                                (simulated_error(cell.wrapper, rows, factors, reference)
                                 for cell, reference in zip(quantized, references)))
        best = min(self.candidates, key=lambda a: errors[a])
        return best, self._factors(quantized[0].wrapper, linears, best), {str(a): float(e) for a, e in errors.items()}

    @staticmethod
    def _record(cells, factors, alpha, errors, where):
        for cell in cells:
            cell.wrapper.smooth_factor = factors
            cell.notes.update(smoothing=where if alpha is not None else "none (searched)", smooth_alpha=alpha)
            if errors is not None:
                cell.notes["alpha_errors"] = errors

    def on_layer(self, cells, layer, inputs):
        by_path = {cell.path: cell for cell in cells if cell.kind == "linear"}
        grouped = set()
        for feeder, linear_paths in self.smooth_groups:
            quantized = [by_path[p] for p in linear_paths if p in by_path and by_path[p].wrapper.plan.activation]
            if not quantized:
                continue
            linears = [get_cell(layer, p) for p in linear_paths]
            alpha, factors, errors = self._choose(quantized, linears)
            fold_into_output(get_cell(layer, feeder), factors)
            for linear in linears:
                scale_weight(linear, factors)
            self._record(quantized, factors, alpha, errors, f"folded into {feeder}")
            grouped.update(linear_paths)
        for path, cell in by_path.items():
            if path not in grouped and cell.wrapper.plan.smooth_multiply:
                alpha, factors, errors = self._choose([cell], [cell.wrapper])
                scale_weight(cell.wrapper, factors)
                self._record([cell], factors, alpha, errors, "input multiply")

    on_head = on_layer
