"""The calibrating stand-in for a float linear: observes its inputs, then builds and runs its int8 form."""
from dataclasses import replace

import numpy as np
import mindspore as ms
from mindspore import Tensor, ops

from network_helpers.llama.layers import ColumnParallelLinear, RowParallelLinear

from .. import quant_functions as qf
from ..config import Granularity, LayerPrecision
from ..distributed import tp_max, tp_min, tp_sum
from ..observers import RANGE_OBSERVERS, MinMaxObserver, RowSample
from .linear import ActWeightQuantLinear, DynamicActWeightQuantLinear, WeightQuantLinear, parallel_layout
from .registry import register
from .wrapper import QuantWrapper

_SCHEMES = {None: "W8 per-channel symmetric (weight-only)",
            Granularity.PER_TENSOR: "A8 static per-tensor asymmetric, W8 per-channel symmetric",
            Granularity.PER_TOKEN: "A8 dynamic per-token symmetric, W8 per-channel symmetric"}


@register(ColumnParallelLinear, RowParallelLinear)
class LinearQuantWrapper(QuantWrapper):
    """Stands in for a float linear: observes its input, then runs (and measures) its quantized form."""
    kind = "linear"

    def __init__(self, name, float_cell, plan):
        super().__init__(name, float_cell, plan)
        self.observer = MinMaxObserver(name) if plan.activation else None
        self.sample = RowSample() if plan.keep_samples else None
        self.input_divisor = None  # SmoothQuant factor s: the deployed cell sees x / s
        self.smoothing = ""        # where s went: the feeding cell it was folded into, or "input multiply"
        self.smooth_alpha = None   # the alpha that chose s (None with no smoothing)
        self.alpha_errors = None   # {candidate alpha: simulated output error} when alpha was searched
        self._search_reference = None  # (rows, float output) during the alpha search
        self._error = None         # [sum of squared output error, sum of squared float output] while tracking
        self.relative_error = None
        self.sensitivity = None    # relative output MSE of the decoder layer when only this linear is quantized
        self.fallback = None       # LayerPrecision this linear fell back to
        self._primary = None       # (plan, quantized cell) before a fallback

    @property
    def parallel_mode(self):
        return parallel_layout(self.float_cell)["parallel_mode"]

    def construct(self, x):
        if self.quantized is not None:
            if not self.active:
                return self._float_reference(x)
            out = self.quantized(x)
            if self._error is not None:
                self._accumulate_error(x, out)
            return out
        if self.observer is not None:
            values = x.asnumpy()
            self.observer.update(values)
            if self.sample is not None:
                self.sample.update(values)
        return self.float_cell(x)

    def _float_reference(self, x):
        """The float output for the input the quantized cell sees (undoing an input-multiply smoothing, whose
        factor the float weight already carries)."""
        if self.plan.smooth_multiply and self.input_divisor is not None:
            x = x / Tensor(self.input_divisor, x.dtype)
        return self.float_cell(x)

    def _accumulate_error(self, x, out):
        reference = self._float_reference(x).astype(ms.float32)
        sums = ops.stack([ops.reduce_sum(ops.square(out.astype(ms.float32) - reference)),
                          ops.reduce_sum(ops.square(reference))])
        self._error += sums.asnumpy()  # one host sync per call

    def track_error(self, on):
        """Start (True) or stop (False) measuring ||y_q - y||^2 / ||y||^2 over the inputs that pass through."""
        if on:
            self._error = np.zeros(2)
            return
        if self._error is not None and self._error[1] > 0:
            self.relative_error = self._error[0] / self._error[1]
        self._error = None

    def set_fallback(self, precision):
        """Run as `precision` (LayerPrecision.W8 or FLOAT) instead of the planned int8 form; None restores it.

        A linear whose smoothing was an input multiply gets its unsmoothed weight back (nothing divides its input
        any more); a folded one keeps W*s, since the feeding cell already divides its input by s."""
        if precision is self.fallback:
            return
        if self._primary is not None:  # undo the previous fallback first
            plan, quantized, smoothed_weight = self._primary
            if smoothed_weight is not None:
                self.float_cell.weight.set_data(Tensor(smoothed_weight, self.float_cell.weight.dtype))
            self.plan, self.fallback, self._primary = plan, None, None
            object.__setattr__(self, "quantized", quantized)
        if precision is None:
            return
        smoothed_weight = None
        if self.plan.smooth_multiply:
            smoothed_weight = self.float_cell.weight.asnumpy()
            self.float_cell.weight.set_data(Tensor(smoothed_weight / self.input_divisor[None, :],
                                                   self.float_cell.weight.dtype))
        self._primary = (self.plan, self.quantized, smoothed_weight)
        self.plan, self.fallback = replace(self.plan, activation=None, smooth_multiply=False), precision
        if precision is LayerPrecision.FLOAT:
            object.__setattr__(self, "quantized", self.float_cell)
        else:
            self.quantize()

    def stats(self):
        """Calibration facts for the per-layer report (plain data)."""
        fell_back = self.fallback is not None
        stats = {"scheme": _SCHEMES[self.plan.activation] if self.fallback is not LayerPrecision.FLOAT else "float",
                 "fallback": self.fallback.value if fell_back else None, "sensitivity": self.sensitivity,
                 "smoothing": "removed (fallback)" if fell_back and self._primary[0].smooth_multiply
                 else self.smoothing,
                 "smooth_alpha": self.smooth_alpha, "alpha_errors": self.alpha_errors,
                 "relative_output_mse": None if fell_back else self.relative_error}
        if self.observer is not None and self.observer.minimum is not None:
            stats.update(act_min=float(self.observer.minimum.min()), act_max=float(self.observer.maximum.max()))
        if self.input_divisor is not None:
            stats.update(smooth_min=float(self.input_divisor.min()), smooth_max=float(self.input_divisor.max()))
        if isinstance(self.quantized, ActWeightQuantLinear):
            stats.update(range_observer=self.plan.range_observer,
                         input_scale=float(self.quantized.input_scale.asnumpy()[0]),
                         input_zero_point=float(self.quantized.input_zero_point.asnumpy()[0]))
        return stats

    def build_empty(self):
        """The deployed cell with zero parameters: its structure depends on the plan alone."""
        out_features, in_features = self.float_cell.weight.shape
        common = dict(compute_dtype=self.float_cell.compute_dtype, **parallel_layout(self.float_cell))
        if self.plan.activation is Granularity.PER_TENSOR:
            cell = ActWeightQuantLinear(in_features, out_features, smooth=self.plan.smooth_multiply, **common)
        elif self.plan.activation is Granularity.PER_TOKEN:
            cell = DynamicActWeightQuantLinear(in_features, out_features, smooth=self.plan.smooth_multiply, **common)
        else:
            cell = WeightQuantLinear(in_features, out_features, **common)
        object.__setattr__(self, "quantized", cell)
        return cell

    def _weight_abs_max(self, weight):
        abs_max = np.abs(weight).max(axis=1)
        return tp_max(abs_max) if self.parallel_mode == "row" else abs_max  # rows are split across ranks

    def static_range(self, divisor):
        """(low, high) of the smoothed input x / s by the plan's range observer, global over ranks. Min-max
        uses the exact per-channel extremes; the other observers the row sample. Rounded as the plan says."""
        if self.plan.range_observer == "minmax":
            low, high = (self.observer.minimum / divisor).min(), (self.observer.maximum / divisor).max()
        else:
            low, high = RANGE_OBSERVERS[self.plan.range_observer](self.sample.rows / divisor,
                                                                  percentile=self.plan.clip_percentile)
        return self.planned_range(tp_min(low), tp_max(high))  # a row linear's input channels are split

    def simulate_error(self, rows, divisor):
        """(||y_q - y||^2, ||y||^2) of this linear's output on `rows` if smoothed by `divisor`, by numpy
        fake-quant with the activation range the deployed cell would get; over the full output under TP."""
        weight = self.float_cell.weight.asnumpy().astype(np.float32)
        row_parallel = self.parallel_mode == "row"
        smoothed_weight = weight * divisor[None, :]
        weight_q, weight_scale = qf.quantize_weight_per_channel(smoothed_weight,
                                                                self._weight_abs_max(smoothed_weight))
        x = rows / divisor
        if self.plan.activation is Granularity.PER_TOKEN:
            abs_max = np.abs(x).max(-1, keepdims=True)
            scale = qf.symmetric_scale(tp_max(abs_max) if row_parallel else abs_max)
            x = qf.fake_quantize(x, scale, 0.0, -qf.SYM_MAX, qf.SYM_MAX)
        else:
            scale, zero_point = qf.asymmetric_scale_zero_point(*self.static_range(divisor))
            x = qf.fake_quantize(x, scale, zero_point)
        out = x @ qf.dequantize(weight_q, weight_scale[:, None]).T
        if row_parallel:  # partial sums: the output is their sum over ranks
            out = tp_sum(out)
        reference = self._float_output(rows, weight, row_parallel)
        sums = np.array([((out - reference) ** 2).sum(), (reference ** 2).sum()])
        return sums if row_parallel else tp_sum(sums)  # column shards hold disjoint outputs

    def _float_output(self, rows, weight, row_parallel):
        """rows @ W^T (summed over ranks for a row linear), cached for the candidates compared on the same rows."""
        if self._search_reference is None or self._search_reference[0] is not rows:
            reference = rows @ weight.T
            self._search_reference = (rows, tp_sum(reference) if row_parallel else reference)
        return self._search_reference[1]

    def release_samples(self):
        """Drop the input sample once the layer is quantized (fallbacks to W8 or float do not need it)."""
        self.sample = self._search_reference = None

    def quantize(self):
        """Compute int8 weights and activation parameters from the (smoothed) float weight and observations."""
        weight = self.float_cell.weight.asnumpy()
        weight_q, weight_scale = qf.quantize_weight_per_channel(weight, self._weight_abs_max(weight))
        params = dict(weight_q=weight_q, weight_scale=weight_scale)
        if self.plan.activation:
            self.observer.check_seen()
            divisor = np.ones_like(self.observer.minimum) if self.input_divisor is None else self.input_divisor
            if self.plan.activation is Granularity.PER_TENSOR:
                params["input_scale"], params["input_zero_point"] = qf.asymmetric_scale_zero_point(
                    *self.static_range(divisor))
            if self.plan.smooth_multiply:
                params["smooth_scale"] = (1.0 / divisor).astype(np.float32)
        cell = self.build_empty()
        cell.set_quant_params(**params)
        return cell
