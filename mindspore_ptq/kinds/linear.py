"""The linear kind: how a linear is planned (weight-only, static or dynamic int8 activations), quantized by
round to nearest, rebuilt empty for DEPLOY, and described in the report."""
import numpy as np

from .. import quant_functions as qf
from ..cell_plan import CellPlan, kernel_backend_for, layer_override
from ..cells.linear import deployed_linear
from ..cells.linear_wrapper import LinearQuantWrapper
from ..config import ACTIVATION_OF, Granularity, LayerPrecision, RangeObserver
from ..distributed import tp_max, tp_min
from ..observers import RANGE_OBSERVERS
from .kind import CellKind


def plan(path, relative_path, config, foldable):
    pattern, precision = layer_override(path, config)
    if precision is LayerPrecision.FLOAT:
        return CellPlan(path, "linear", skip_reason=f"layer_overrides entry {pattern!r}: float")
    weights = config.weights
    # an override's precision (W8, A8W8) means int8 weights, one scale per row
    bits, group_size = (weights.bits, weights.group_size) if precision is None else (8, 0)
    activations = config.activations
    default = activations.granularity if activations.enabled else None
    activation = default if precision is None else ACTIVATION_OF[precision]
    smooth = activation is not None and config.outliers.smooths
    observer = activations.observer if activation is Granularity.PER_TENSOR else RangeObserver.MINMAX
    keep = (activation is not None and (bool(config.outliers.alpha_search) or observer is not RangeObserver.MINMAX)) \
        or (activation is None and config.outliers.awq)
    return CellPlan(path, "linear", activation, smooth_multiply=smooth and relative_path not in foldable,
                    range_observer=observer.value, clip_percentile=activations.clip_percentile,
                    range_mantissa_bits=config.calibration.range_mantissa_bits, keep_samples=keep,
                    kernel_backend=kernel_backend_for(config), weight_bits=bits, group_size=group_size,
                    hessian=config.recovery.gptq)


def weight_abs_max(wrapper, weight):
    """max |W| per output row, global over ranks for a row-parallel linear (its rows are split)."""
    abs_max = np.abs(weight).max(axis=1)
    return tp_max(abs_max) if wrapper.parallel_mode == "row" else abs_max


def static_input_range(wrapper, divisor):
    """(low, high) of the smoothed input x / s by the plan's range observer, global over ranks. Min-max uses the
    exact per-channel extremes; the other observers the row sample. Rounded as the plan says."""
    plan, observer = wrapper.plan, wrapper.observer
    if plan.range_observer == "minmax":
        low, high = (observer.minimum / divisor).min(), (observer.maximum / divisor).max()
    else:
        low, high = RANGE_OBSERVERS[plan.range_observer](wrapper.sample.rows / divisor,
                                                         percentile=plan.clip_percentile)
    return wrapper.planned_range(tp_min(low), tp_max(high))  # a row linear's input channels are split


def weight_grid(wrapper, weight):
    """(bits, group size, scales) of the plan's weight grid for `weight` (out, in): per-row scales from
    weight_abs_max (shape (out,) for int8, (out, 1) for int4), else one per group; narrowed by the wrapper's
    clip_ratios when it has them."""
    plan = wrapper.plan
    if plan.group_size:
        scales = qf.group_scales(weight, plan.weight_bits, plan.group_size)
    else:
        scales = qf.symmetric_scale(weight_abs_max(wrapper, weight), plan.weight_bits)
        scales = scales if plan.weight_bits == 8 else scales[:, None]
    if wrapper.clip_ratios is not None:
        scales = (scales * np.reshape(wrapper.clip_ratios, np.shape(scales))).astype(np.float32)
    return plan.weight_bits, plan.group_size or weight.shape[1], scales


def round_to_nearest(wrapper, weight):
    """(codes, scales) of `weight` on the plan's grid, each weight rounded to its nearest code."""
    bits, group_size, scales = weight_grid(wrapper, weight)
    codes, _ = qf.quantize_weight_grouped(weight, bits, group_size, np.reshape(scales, (weight.shape[0], -1)))
    return codes, scales


def quantize_linear(wrapper, weight_quantizer=round_to_nearest):
    """The deployed cell of `wrapper.plan`, with quantized weights (`weight_quantizer(wrapper, float weight)` ->
    (codes, scales)) and activation parameters; it runs from now on."""
    weight = wrapper.float_cell.weight.asnumpy()
    weight_q, weight_scale = weight_quantizer(wrapper, weight)
    params = dict(weight_q=weight_q, weight_scale=weight_scale)
    plan = wrapper.plan
    if plan.activation:
        wrapper.observer.check_seen()
        divisor = np.ones_like(wrapper.observer.minimum) if wrapper.smooth_factor is None else wrapper.smooth_factor
        if plan.static_activation:
            params["input_scale"], params["input_zero_point"] = qf.asymmetric_scale_zero_point(
                *static_input_range(wrapper, divisor))
        if plan.smooth_multiply:
            params["smooth_scale"] = (1.0 / divisor).astype(np.float32)
    cell = deployed_linear(wrapper.float_cell, plan)
    cell.set_quant_params(**params)
    return wrapper.set_quantized(cell)


def facts(cell):
    wrapper, notes = cell.wrapper, cell.notes
    facts = {"scheme": "float" if wrapper.quantized is wrapper.float_cell else wrapper.quantized.scheme,
             "fallback": notes.get("fallback"), "sensitivity": notes.get("sensitivity"),
             "smoothing": notes.get("smoothing", ""), "smooth_alpha": notes.get("smooth_alpha"),
             "alpha_errors": notes.get("alpha_errors"), "relative_output_mse": notes.get("relative_output_mse"),
             "gptq_damping": notes.get("gptq_damping"), "awq_alpha": notes.get("awq_alpha"),
             "awq_clip_mean": notes.get("awq_clip_mean")}
    observer = wrapper.observer
    if observer is not None and observer.minimum is not None:
        facts.update(act_min=float(observer.minimum.min()), act_max=float(observer.maximum.max()))
    if wrapper.smooth_factor is not None:
        facts.update(smooth_min=float(wrapper.smooth_factor.min()), smooth_max=float(wrapper.smooth_factor.max()))
    if wrapper.plan.static_activation:
        facts.update(range_observer=wrapper.plan.range_observer,
                     input_scale=float(wrapper.quantized.input_scale.asnumpy()[0]),
                     input_zero_point=float(wrapper.quantized.input_zero_point.asnumpy()[0]))
    return facts


def empty_cell(wrapper):
    return deployed_linear(wrapper.float_cell, wrapper.plan)


KIND = CellKind("linear", LinearQuantWrapper, enabled_by=("weights", "weight_quant_dtype"), plan=plan,
                quantize=quantize_linear, empty_cell=empty_cell, facts=facts)
