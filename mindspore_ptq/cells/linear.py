"""Quantized linears: the calibrating wrapper and the deployed int8 cells it builds.

Deployed weights are real int8 Parameters (out, in) with float32 per-output-channel scales. On the portable
backend the integer GEMM runs as a float32 MatMul on integer-valued operands (exact while partial sums stay
below 2^24), the fastest kernel MindSpore's CPU offers; Ascend int8 kernels are not wired in yet.
"""
import numpy as np
import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops

from network_helpers.llama.layers import ColumnParallelLinear, RowParallelLinear, linear
from network_helpers.llama.parallel import all_gather_last_dim, all_reduce_sum

from .. import quant_functions as qf
from ..distributed import tp_max, tp_min
from ..observers import MinMaxObserver
from .registry import register


def _zeros(shape, dtype):
    return Tensor(np.zeros(shape), dtype)


class WeightQuantLinear(nn.Cell):
    """A16W8: y = (x @ Wq^T) * weight_scale, Wq int8 (out, in), weight_scale (out,).

    Sizes are this rank's shard; `parallel_mode` ('column' or 'row') says how the float linear was split.
    """

    def __init__(self, input_size, output_size, compute_dtype=ms.float32, parallel_mode="column", tp_size=1,
                 gather_output=False):
        super().__init__()
        self.compute_dtype, self.parallel_mode, self.tp_size = compute_dtype, parallel_mode, tp_size
        self.gather_output = gather_output
        self.weight = Parameter(_zeros((output_size, input_size), ms.int8), name="weight", requires_grad=False)
        self.weight_scale = Parameter(_zeros((output_size,), ms.float32), name="weight_scale",
                                      requires_grad=False)

    def shard_axes(self):
        """{local parameter name: axis split across tensor-parallel ranks}."""
        return {"weight": 0, "weight_scale": 0} if self.parallel_mode == "column" else {"weight": 1}

    def _collect(self, out):
        if self.tp_size > 1 and self.parallel_mode == "row":
            return all_reduce_sum(out)
        if self.tp_size > 1 and self.gather_output:
            return all_gather_last_dim(out, self.tp_size)
        return out

    def construct(self, x):
        out = linear(x, self.weight, self.compute_dtype) * self.weight_scale.astype(self.compute_dtype)
        return self._collect(out)

    def set_quant_params(self, weight_q, weight_scale, **_):
        self.weight.set_data(Tensor(weight_q, ms.int8))
        self.weight_scale.set_data(Tensor(weight_scale, ms.float32))


class ActWeightQuantLinear(WeightQuantLinear):
    """A8W8: x -> int8 with a static per-tensor scale/zero point (after an optional smoothing multiply), then
    y = ((xq - zp) @ Wq^T) * (input_scale * weight_scale)."""

    def __init__(self, input_size, output_size, compute_dtype=ms.float32, parallel_mode="column", tp_size=1,
                 gather_output=False, smooth=False):
        super().__init__(input_size, output_size, compute_dtype, parallel_mode, tp_size, gather_output)
        self.input_scale = Parameter(_zeros((1,), ms.float32), name="input_scale", requires_grad=False)
        self.input_zero_point = Parameter(_zeros((1,), ms.float32), name="input_zero_point", requires_grad=False)
        self.smooth = smooth
        if smooth:
            self.smooth_scale = Parameter(_zeros((input_size,), ms.float32), name="smooth_scale",
                                          requires_grad=False)

    def shard_axes(self):
        axes = super().shard_axes()
        if self.smooth and self.parallel_mode == "row":  # the input channels are this rank's shard
            axes["smooth_scale"] = 0
        return axes

    def quantize_input(self, x):
        x = x.astype(ms.float32)
        if self.smooth:
            x = x * self.smooth_scale
        q = ops.clip_by_value(ops.round(x / self.input_scale) + self.input_zero_point, qf.QMIN, qf.QMAX)
        return q.astype(ms.int8)

    def construct(self, x):
        shifted = self.quantize_input(x).astype(ms.float32) - self.input_zero_point
        accumulated = linear(shifted, self.weight, ms.float32)
        out = (accumulated * (self.input_scale * self.weight_scale)).astype(self.compute_dtype)
        return self._collect(out)

    def set_quant_params(self, weight_q, weight_scale, input_scale=None, input_zero_point=None, smooth_scale=None):
        super().set_quant_params(weight_q, weight_scale)
        self.input_scale.set_data(Tensor(np.reshape(input_scale, (1,)), ms.float32))
        self.input_zero_point.set_data(Tensor(np.reshape(input_zero_point, (1,)), ms.float32))
        if self.smooth:
            self.smooth_scale.set_data(Tensor(smooth_scale, ms.float32))


def parallel_layout(float_cell):
    """How the float linear is split: our cells say so; MindFormers' row linears have `input_is_parallel`."""
    default = "row" if hasattr(float_cell, "input_is_parallel") else "column"
    return dict(parallel_mode=getattr(float_cell, "parallel_mode", default),
                tp_size=getattr(float_cell, "tp_size", 1), gather_output=getattr(float_cell, "gather_output", False))


@register(ColumnParallelLinear, RowParallelLinear)
class LinearQuantWrapper(nn.Cell):
    """Stands in for a float linear during `apply()`: observes its input, then runs its quantized form.

    The float cell and the quantized cell are held as plain attributes (not sub-cells), so wrapping renames
    no parameter; `convert()` puts `quantized` in the network in the wrapper's place.
    """
    kind = "linear"

    def __init__(self, name, float_cell, plan):
        super().__init__()
        object.__setattr__(self, "float_cell", float_cell)
        object.__setattr__(self, "quantized", None)
        self.name, self.plan = name, plan
        self.observer = MinMaxObserver(name) if plan.activation else None
        self.input_divisor = None  # SmoothQuant factor s: the deployed cell sees x / s
        self.smoothing = ""        # where s went: the feeding cell it was folded into, or "input multiply"
        self._error = None         # [sum of squared output error, sum of squared float output] while tracking
        self.relative_error = None

    @property
    def weight(self):
        return self.float_cell.weight

    @property
    def parallel_mode(self):
        return parallel_layout(self.float_cell)["parallel_mode"]

    def construct(self, x):
        if self.quantized is not None:
            out = self.quantized(x)
            if self._error is not None:
                self._accumulate_error(x, out)
            return out
        if self.observer is not None:
            self.observer.update(x.asnumpy())
        return self.float_cell(x)

    def _float_reference(self, x):
        """The float output for the input the quantized cell sees (undoing an input-multiply smoothing, whose
        factor the float weight already carries)."""
        if self.plan.smooth_multiply and self.input_divisor is not None:
            x = x / Tensor(self.input_divisor, x.dtype)
        return self.float_cell(x)

    def _accumulate_error(self, x, out):
        reference = self._float_reference(x).astype(ms.float32)
        self._error[0] += float(ops.reduce_sum(ops.square(out.astype(ms.float32) - reference)).asnumpy())
        self._error[1] += float(ops.reduce_sum(ops.square(reference)).asnumpy())

    def track_error(self, on):
        """Start (True) or stop (False) measuring ||y_q - y||^2 / ||y||^2 over the inputs that pass through."""
        if on:
            self._error = [0.0, 0.0]
            return
        if self._error is not None and self._error[1] > 0:
            self.relative_error = self._error[0] / self._error[1]
        self._error = None

    def stats(self):
        """Calibration facts for the per-layer report (plain data)."""
        stats = {"scheme": "A8 static per-tensor asymmetric, W8 per-channel symmetric" if self.plan.activation
                 else "W8 per-channel symmetric (weight-only)", "smoothing": self.smoothing,
                 "relative_output_mse": self.relative_error}
        if self.observer is not None and self.observer.minimum is not None:
            stats.update(act_min=float(self.observer.minimum.min()), act_max=float(self.observer.maximum.max()))
        if self.input_divisor is not None:
            stats.update(smooth_min=float(self.input_divisor.min()), smooth_max=float(self.input_divisor.max()))
        if isinstance(self.quantized, ActWeightQuantLinear):
            stats.update(input_scale=float(self.quantized.input_scale.asnumpy()[0]),
                         input_zero_point=float(self.quantized.input_zero_point.asnumpy()[0]))
        return stats

    def build_empty(self):
        """The deployed cell with zero parameters: its structure depends on the plan alone."""
        out_features, in_features = self.float_cell.weight.shape
        common = dict(compute_dtype=self.float_cell.compute_dtype, **parallel_layout(self.float_cell))
        if self.plan.activation:
            cell = ActWeightQuantLinear(in_features, out_features, smooth=self.plan.smooth_multiply, **common)
        else:
            cell = WeightQuantLinear(in_features, out_features, **common)
        object.__setattr__(self, "quantized", cell)
        return cell

    def quantize(self):
        """Compute int8 weights and activation parameters from the (smoothed) float weight and observations."""
        weight = self.float_cell.weight.asnumpy()
        abs_max = np.abs(weight).max(axis=1)
        if self.parallel_mode == "row":  # each rank holds part of every output row
            abs_max = tp_max(abs_max)
        weight_q, weight_scale = qf.quantize_weight_per_channel(weight, abs_max)
        params = dict(weight_q=weight_q, weight_scale=weight_scale)
        if self.plan.activation:
            self.observer.check_seen()
            divisor = np.ones_like(self.observer.minimum) if self.input_divisor is None else self.input_divisor
            low = tp_min((self.observer.minimum / divisor).min())  # a row linear's input channels are split
            high = tp_max((self.observer.maximum / divisor).max())
            params["input_scale"], params["input_zero_point"] = qf.asymmetric_scale_zero_point(low, high)
            if self.plan.smooth_multiply:
                params["smooth_scale"] = (1.0 / divisor).astype(np.float32)
        cell = self.build_empty()
        cell.set_quant_params(**params)
        return cell
