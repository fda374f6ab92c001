"""GPTQ (Frantar et al., 2022) as a precision-recovery step: each linear's weights are rounded one input column
at a time, and each column's rounding error is spread over the columns not yet rounded, weighted by the inverse
Hessian of the layer's squared output error, H = 2 X^T X / n over its calibration inputs X.

Columns go in blocks (lazy batch updates: the error of a block reaches the later columns in one matrix product),
optionally in order of decreasing H diagonal (act_order: the most active inputs first). A per-group grid takes each
group's scale from the weights as they are when the group's first column comes up (with act_order: from the
original weights, as the column order no longer follows the groups); a per-row grid is fixed up front. The
damping (a fraction of the mean H diagonal) grows tenfold, with a log line, until H is positive definite.
"""
import functools

import numpy as np

from .. import quant_functions as qf
from ..kinds.linear import quantize_linear, weight_grid
from ..lifecycle import Step
from ..log import logger

MAX_DAMPING_TRIES = 6


def inverse_hessian_factor(hessian, damp_percent, name=""):
    """(U, damping): the upper Cholesky factor of (H + damping * mean(diag H) * I)^-1, with the smallest damping of
    damp_percent * 10^k that makes H positive definite."""
    n = hessian.shape[0]
    mean_diagonal = float(np.mean(np.diag(hessian))) or 1.0
    damping = damp_percent
    for _ in range(MAX_DAMPING_TRIES):
        try:
            lower = np.linalg.cholesky(hessian + damping * mean_diagonal * np.eye(n))
        except np.linalg.LinAlgError:
            logger.info("GPTQ %s: the Hessian is not positive definite with damping %g; trying %g", name, damping,
                        damping * 10)
            damping *= 10
            continue
        inverse_lower = np.linalg.inv(lower)
        return np.linalg.cholesky(inverse_lower.T @ inverse_lower).T, damping
    raise ValueError(f"GPTQ {name}: the Hessian stays singular up to damping {damping / 10:g}")


def gptq(weight, hessian, bits, group_size, row_scales=None, damp_percent=0.01, block_size=128, act_order=False,
         name="", clip_ratios=None):
    """GPTQ-rounded symmetric codes of `weight` (out, in) for the Hessian (in, in) of its inputs.

    group_size: inputs per scale (in: one per row, then `row_scales` (out,) are the grid). clip_ratios (out,
    in / group_size): the fraction of each group's max |w| its grid spans. Returns (codes int8 (out, in), scales
    (out, in / group_size), the damping used).
    """
    weight = np.asarray(weight, np.float64)
    out_features, in_features = weight.shape
    hessian = np.array(hessian, np.float64)
    dead = np.diag(hessian) == 0  # inputs never active: their weights cannot matter
    hessian[dead, dead] = 1.0
    work = np.where(dead[None, :], 0.0, weight)
    order = np.argsort(-np.diag(hessian), kind="stable") if act_order else np.arange(in_features)
    fixed_grid = row_scales is not None or act_order
    clip = np.ones((out_features, in_features // group_size)) if clip_ratios is None else \
        np.reshape(clip_ratios, (out_features, -1)).astype(np.float64)
    if row_scales is not None:
        scales = np.asarray(row_scales, np.float64).reshape(out_features, 1)
    else:
        scales = qf.group_scales(work, bits, group_size).astype(np.float64) * clip
    work, hessian = work[:, order], hessian[order][:, order]
    upper, damping = inverse_hessian_factor(hessian, damp_percent, name)
    limit = qf.symmetric_max(bits)
    codes = np.zeros((out_features, in_features), np.int8)
    for start in range(0, in_features, block_size):
        end = min(start + block_size, in_features)
        block, errors = work[:, start:end].copy(), np.zeros((out_features, end - start))
        for i in range(end - start):
            column = order[start + i]
            group = column // group_size
            if not fixed_grid and column % group_size == 0:  # the group's scale from its weights as they are now
                ahead = np.concatenate([block[:, i:], work[:, end:]], axis=1)[:, :group_size]
                scales[:, group] = qf.symmetric_scale(np.abs(ahead).max(axis=1), bits) * clip[:, group]
            scale = scales[:, group]
            q = np.clip(np.round(block[:, i] / scale), -limit, limit)
            codes[:, start + i] = q
            error = (block[:, i] - q * scale) / upper[start + i, start + i]
            block[:, i:] -= np.outer(error, upper[start + i, start + i:end])
            errors[:, i] = error
        work[:, end:] -= errors @ upper[start:end, end:]
    return codes[:, np.argsort(order)], scales.astype(np.float32), damping


def gptq_weights(wrapper, weight, recovery, notes):
    """quantize_linear's weight quantizer: GPTQ on the plan's grid with the wrapper's input Hessian."""
    bits, group_size, scales = weight_grid(wrapper, weight)
    hessian = wrapper.hessian.matrix
    if wrapper.smooth_factor is not None:  # smoothed (folded or multiplied, SmoothQuant or AWQ): the cell sees x / s
        inverse = 1.0 / wrapper.smooth_factor.astype(np.float64)
        hessian = hessian * np.outer(inverse, inverse)
    codes, grid, damping = gptq(weight, hessian, bits, group_size, None if wrapper.plan.group_size else scales,
                                recovery.damp_percent, recovery.block_size, recovery.act_order, wrapper.name,
                                wrapper.clip_ratios)
    notes["gptq_damping"] = damping
    return codes, grid.reshape(np.shape(scales)) if not wrapper.plan.group_size else grid


class GPTQ(Step):
    """Rounds every linear that collected its input Hessian by GPTQ (the other cells: round to nearest)."""
    name = "gptq"

    def __init__(self, recovery):
        self.recovery = recovery

    def on_layer(self, cells, layer, inputs):
        for cell in cells:
            if cell.kind == "linear" and cell.wrapper.hessian is not None:
                quantize_linear(cell.wrapper, functools.partial(gptq_weights, recovery=self.recovery,
                                                                notes=cell.notes))

    on_head = on_layer
