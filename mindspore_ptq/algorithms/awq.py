"""AWQ (Lin et al., 2023) for weight-only quantization: the input channels that carry large activations get
their weights scaled up before rounding, so that those weights lose less, and the activations scaled down by the
same factor where the cell feeding the linears absorbs it exactly (a norm, or w3 for w2).

For each smoothing group the factor is s = m^a / sqrt(max(m^a) min(m^a)), m the mean |x| of each input channel
on calibration tokens, and `a` the grid point in [0, 1] whose rounded weights give the least summed relative
output error of the group's linears on those tokens; a = 0 (no scaling) is on the grid, so the chosen factors
never do worse than none on them. A linear without a cell to fold into (wo) is left as it is.
"""
import numpy as np

from .. import quant_functions as qf
from ..cells.tree import get_cell
from ..kinds.linear import round_to_nearest
from ..lifecycle import Step
from .smooth_quant import SEARCH_ROWS, float_output, fold_into_output, scale_weight

GRID = tuple(np.linspace(0.0, 1.0, 21))


def dequantized(codes, scales):
    """The float weight (out, in) of codes on a per-row (scales (out,)) or per-group grid."""
    return qf.dequantize_grouped(codes, np.reshape(scales, (codes.shape[0], -1)))


def relative_error(wrapper, rows, factors, reference):
    """||y_q - y||^2 / ||y||^2 of a linear on `rows` with its weight scaled by `factors` and rounded to its grid."""
    scaled = wrapper.float_cell.weight.asnumpy().astype(np.float32) * factors[None, :]
    out = (rows / factors) @ dequantized(*round_to_nearest(wrapper, scaled)).T
    return float(((out - reference) ** 2).sum() / max(float((reference ** 2).sum()), 1e-30))


def awq_factors(magnitude, alpha):
    factors = np.maximum(magnitude, 1e-8) ** alpha
    return (factors / np.sqrt(factors.max() * factors.min())).astype(np.float32)


class AWQ(Step):
    """Searches and folds the activation-aware weight factors of each weight-only smoothing group."""
    name = "awq"

    def __init__(self, smooth_groups):
        self.smooth_groups = smooth_groups

    def on_layer(self, cells, layer, inputs):
        by_path = {cell.path: cell for cell in cells if cell.kind == "linear" and cell.wrapper.plan.activation is None}
        for feeder, linear_paths in self.smooth_groups:
            group = [by_path[p] for p in linear_paths if p in by_path]
            if len(group) != len(linear_paths):  # a linear of the group stays float or quantizes activations
                continue
            rows = group[0].wrapper.sample.rows
            rows = rows[np.unique(np.linspace(0, len(rows) - 1, min(len(rows), SEARCH_ROWS)).astype(int))]
            magnitude = np.abs(rows).mean(axis=0)
            references = [float_output(cell.wrapper, rows) for cell in group]
            errors = {alpha: sum(relative_error(cell.wrapper, rows, awq_factors(magnitude, alpha), reference)
                                 for cell, reference in zip(group, references)) for alpha in GRID}
            best = min(GRID, key=lambda a: errors[a])
            factors = awq_factors(magnitude, best)
            fold_into_output(get_cell(layer, feeder), factors)
            for cell in group:
                scale_weight(cell.wrapper, factors)
                cell.wrapper.smooth_factor = factors
                cell.notes.update(smoothing=f"AWQ, folded into {feeder}", awq_alpha=float(best),
                                  awq_errors={f"{a:.2f}": float(e) for a, e in errors.items()})
