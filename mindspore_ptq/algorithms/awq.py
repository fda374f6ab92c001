"""AWQ (Lin et al., 2023) for weight-only quantization: the input channels that carry large activations get
their weights scaled up before rounding, so that those weights lose less, and the activations scaled down by the
same factor where the cell feeding the linears absorbs it exactly (a norm, or w3 for w2).

For each smoothing group the factor is s = m^a / sqrt(max(m^a) min(m^a)), m the mean |x| of each input channel
on calibration tokens, and `a` the grid point in [0, 1] whose rounded weights give the least summed relative
output error of the group's linears on those tokens; a = 0 (no scaling) is on the grid, so the chosen factors
never do worse than none on them. A linear without a cell to fold into (wo) is left as it is.

Then the clipping search: for each (row, group) of every weight-only linear of the layer (wo included), the
fraction of its max |w| that its grid spans is the one of CLIP_GRID whose rounded weights give the least squared
output error of that row on CLIP_ROWS calibration tokens: outlier weights are clipped when the others gain more
than they lose. 1.0 (no clipping) is on the grid. The ratios shape the grid of whichever rounding follows
(`weight_grid`; GPTQ's per-group scales too).
"""
import numpy as np

from .. import quant_functions as qf
from ..cells.tree import get_cell
from ..kinds.linear import round_to_nearest
from ..lifecycle import Step
from .smooth_quant import even_rows, float_output, fold_into_output, scale_weight

GRID = tuple(np.linspace(0.0, 1.0, 21))
CLIP_GRID = tuple(np.linspace(1.0, 0.5, 11))
SEARCH_ROWS = 2048  # calibration tokens (evenly spaced) on which each group's candidate exponents are compared
CLIP_ROWS = 512  # calibration tokens (evenly spaced) on which each (row, group)'s clipping is chosen


def dequantized(codes, scales):
    """The float weight (out, in) of codes on a per-row (scales (out,)) or per-group grid."""
    return qf.dequantize_grouped(codes, np.reshape(scales, (codes.shape[0], -1)))


def relative_error(wrapper, rows, factors, reference):
    """||y_q - y||^2 / ||y||^2 of a linear on `rows` with its weight scaled by `factors` and rounded to its grid."""
    scaled = wrapper.float_cell.weight.asnumpy().astype(np.float32) * factors[None, :]
    out = (rows / factors) @ dequantized(*round_to_nearest(wrapper, scaled)).T
    return float(((out - reference) ** 2).sum() / max(float((reference ** 2).sum()), 1e-30))


def clip_ratios(weight, rows, bits, group_size):
    """(out, in / group_size) fractions of CLIP_GRID: for each (row, group) of `weight` (out, in), the span of its
    symmetric grid (as a fraction of its max |w|) that least changes that row's output on `rows` (n, in)."""
    out_features, in_features = weight.shape
    groups = in_features // group_size
    grouped = weight.reshape(out_features, groups, group_size).astype(np.float32)
    inputs = rows.reshape(len(rows), groups, group_size).transpose(1, 0, 2).astype(np.float32)  # (G, n, g)
    abs_max, limit = np.abs(grouped).max(axis=2, keepdims=True), qf.symmetric_max(bits)
    errors = []
    for ratio in CLIP_GRID:
        scale = np.where(abs_max > 0, abs_max * ratio / limit, 1.0)
        change = np.clip(np.round(grouped / scale), -limit, limit) * scale - grouped  # (out, G, g)
        out_change = inputs @ change.transpose(1, 2, 0)  # (G, n, out): each group's share of each output
        errors.append((out_change ** 2).sum(axis=1).T)  # (out, G)
    return np.asarray(CLIP_GRID, np.float32)[np.argmin(np.stack(errors), axis=0)]


def awq_factors(magnitude, alpha):
    factors = np.maximum(magnitude, 1e-8) ** alpha
    return (factors / np.sqrt(factors.max() * factors.min())).astype(np.float32)


class AWQ(Step):
    """Searches and folds the activation-aware weight factors of each weight-only smoothing group, then searches
    each weight-only linear's clipping."""
    name = "awq"

    def __init__(self, smooth_groups):
        self.smooth_groups = smooth_groups

    def on_layer(self, cells, layer, inputs):
        by_path = {cell.path: cell for cell in cells if cell.kind == "linear" and cell.wrapper.plan.activation is None}
        for feeder, linear_paths in self.smooth_groups:
            group = [by_path[p] for p in linear_paths if p in by_path]
            if len(group) != len(linear_paths):  # a linear of the group stays float or quantizes activations
                continue
            rows = even_rows(group[0].wrapper.sample.rows, SEARCH_ROWS)
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
        for cell in by_path.values():
            self.search_clipping(cell)

    @staticmethod
    def search_clipping(cell):
        wrapper = cell.wrapper
        rows = even_rows(wrapper.sample.rows, CLIP_ROWS)
        if wrapper.smooth_factor is not None:  # the float cell holds W * s and sees x / s
            rows = rows / wrapper.smooth_factor
        weight = wrapper.float_cell.weight.asnumpy()
        wrapper.clip_ratios = clip_ratios(weight, rows, wrapper.plan.weight_bits,
                                          wrapper.plan.group_size or weight.shape[1])
        cell.notes["awq_clip_mean"] = float(wrapper.clip_ratios.mean())
