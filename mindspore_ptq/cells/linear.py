"""Deployed quantized linears: weight-only int8 (A16W8), grouped or int4 weight-only (A16W4, packed two codes per
byte), static per-tensor activations (A8W8), dynamic per-token activations (A8W8 per token) and dynamic per-token
activations with grouped int4 weights (A8W4).

Deployed weights are real int8 Parameters (out, in) with float32 per-output-channel scales. On the portable
backend the integer GEMM runs as a float32 MatMul on integer-valued operands (exact while partial sums stay
below 2^24): the portable reference. Deployed with a backend (plan.kernel_backend), a cell runs the kernel that
kernels.select picks for it instead, on the same parameters.
`DEPLOYED_LINEARS` (`GROUPED_LINEARS` for grouped weights) picks the cell for a plan's activation granularity; each
has a `from_float` constructor.
"""
import numpy as np
import mindspore as ms
from mindspore import Parameter, Tensor, nn, ops

from ms_infra.ops import linear
from ms_infra.parallel import all_gather_last_dim, all_reduce_sum

from .. import quant_functions as qf
from ..config import Granularity
from ..kernels.reference import dequantize_grouped, pack_int4, unpack_int4
from ..kernels.select import linear_kernel


def _zeros(shape, dtype):
    return Tensor(np.zeros(shape), dtype)


class WeightQuantLinear(nn.Cell):
    """A16W8: y = (x @ Wq^T) * weight_scale, Wq int8 (out, in), weight_scale (out,).

    Sizes are this rank's shard; `parallel_mode` ('column' or 'row') says how the float linear was split.
    """
    scheme = "W8 per-channel symmetric (weight-only)"
    decode_scheme = "w8"

    def __init__(self, input_size, output_size, compute_dtype=ms.float32, parallel_mode="column", tp_size=1,
                 gather_output=False, kernel=None):
        super().__init__()
        self.compute_dtype, self.parallel_mode, self.tp_size = compute_dtype, parallel_mode, tp_size
        self.gather_output, self.kernel = gather_output, kernel
        self.weight = Parameter(_zeros((output_size, input_size), ms.int8), name="weight", requires_grad=False)
        self.weight_scale = Parameter(_zeros((output_size,), ms.float32), name="weight_scale",
                                      requires_grad=False)

    @classmethod
    def from_float(cls, float_cell, **options):
        """The deployed cell for `float_cell` (same shard sizes and split), parameters zero until loaded."""
        out_features, in_features = float_cell.weight.shape
        return cls(in_features, out_features, compute_dtype=float_cell.compute_dtype, **parallel_layout(float_cell),
                   **options)

    def shard_axes(self):
        """{local parameter name: axis split across tensor-parallel ranks}."""
        return {"weight": 0, "weight_scale": 0} if self.parallel_mode == "column" else {"weight": 1}

    def _collect(self, out):
        if self.tp_size > 1 and self.parallel_mode == "row":
            return all_reduce_sum(out)
        if self.tp_size > 1 and self.gather_output:
            return all_gather_last_dim(out, self.tp_size)
        return out

    def decode_operands(self):
        """What a decode-layer kernel reads (kernels/decode_layer.cpp), in the format `decode_scheme` names."""
        return self.weight, self.weight_scale

    def run_kernel(self, x, *params):
        """The kernel on x flattened to (tokens, in) in float32, reshaped back to (..., out)."""
        out = self.kernel(x.astype(ms.float32).reshape(-1, x.shape[-1]), *params)
        return out.reshape(x.shape[:-1] + (self.weight.shape[0],)).astype(self.compute_dtype)

    def construct(self, x):
        if self.kernel is not None:
            return self._collect(self.run_kernel(x, self.weight, self.weight_scale))
        out = linear(x, self.weight, self.compute_dtype) * self.weight_scale.astype(self.compute_dtype)
        return self._collect(out)

    def set_quant_params(self, weight_q, weight_scale, **_):
        self.weight.set_data(Tensor(weight_q, ms.int8))
        self.weight_scale.set_data(Tensor(weight_scale, ms.float32))


class GroupedWeights:
    """Mixin of the cells whose weight has one scale per (row, group of `group_size` inputs): int4 codes (bits 4)
    packed two per byte along `in` (low nibble = even input), weight uint8 (out, in/2); int8 codes stay int8
    (out, in). weight_scale is (out, in / group_size); group_size = in: one scale per row."""

    def init_grouped_weight(self, input_size, output_size, bits, group_size):
        self.bits, self.group_size = bits, group_size or input_size
        if input_size % self.group_size or (bits == 4 and input_size % 2):
            raise ValueError(f"a {bits}-bit weight of {input_size} inputs cannot be split in groups of "
                             f"{self.group_size}" + (" (int4 packs an even number of inputs)" if bits == 4 else ""))
        shape = (output_size, input_size // 2) if bits == 4 else (output_size, input_size)
        self.weight = Parameter(_zeros(shape, ms.uint8 if bits == 4 else ms.int8), name="weight", requires_grad=False)
        self.weight_scale = Parameter(_zeros((output_size, input_size // self.group_size), ms.float32),
                                      name="weight_scale", requires_grad=False)
        per = "per-channel" if self.group_size == input_size else f"per-group g{self.group_size}"
        self.weight_scheme = f"W{bits} {per} symmetric"

    def grouped_shard_axes(self):
        axis = 0 if self.parallel_mode == "column" else 1  # a row linear's groups follow its split inputs
        return {"weight": axis, "weight_scale": axis}

    def float_weight(self):
        """The float32 weight (out, in) the codes and group scales stand for (the portable path)."""
        codes = unpack_int4(self.weight) if self.bits == 4 else self.weight
        return dequantize_grouped(codes, self.weight_scale)

    def set_grouped_weight(self, weight_q, weight_scale):
        codes = pack_int4(weight_q) if self.bits == 4 else weight_q
        self.weight.set_data(Tensor(codes, self.weight.dtype))
        self.weight_scale.set_data(Tensor(np.reshape(weight_scale, self.weight_scale.shape), ms.float32))


class GroupedWeightLinear(GroupedWeights, WeightQuantLinear):
    """Weight-only with grouped (or int4) weights (GroupedWeights): y = x @ (codes * group scale)^T."""

    def __init__(self, input_size, output_size, compute_dtype=ms.float32, parallel_mode="column", tp_size=1,
                 gather_output=False, kernel=None, bits=4, group_size=0):
        super().__init__(input_size, output_size, compute_dtype, parallel_mode, tp_size, gather_output, kernel)
        self.init_grouped_weight(input_size, output_size, bits, group_size)
        self.scheme = f"{self.weight_scheme} (weight-only)"
        self.decode_scheme = "w4" if bits == 4 else f"w{bits}_grouped"

    def shard_axes(self):
        return self.grouped_shard_axes()

    def construct(self, x):
        if self.kernel is not None:
            return self._collect(self.run_kernel(x, self.weight, self.weight_scale))
        return self._collect(linear(x, self.float_weight(), self.compute_dtype))

    def set_quant_params(self, weight_q, weight_scale, **_):
        self.set_grouped_weight(weight_q, weight_scale)


class SmoothedInputLinear(WeightQuantLinear):
    """Base of the A8W8 cells: the input is cast to float32 and, with `smooth`, multiplied by `smooth_scale` (1/s,
    the SmoothQuant factor no preceding cell could absorb) before it is quantized."""

    def __init__(self, input_size, output_size, compute_dtype=ms.float32, parallel_mode="column", tp_size=1,
                 gather_output=False, kernel=None, smooth=False):
        super().__init__(input_size, output_size, compute_dtype, parallel_mode, tp_size, gather_output, kernel)
        self.smooth = smooth
        if smooth:
            self.smooth_scale = Parameter(_zeros((input_size,), ms.float32), name="smooth_scale",
                                          requires_grad=False)

    def shard_axes(self):
        axes = super().shard_axes()
        if self.smooth and self.parallel_mode == "row":  # the input channels are this rank's shard
            axes["smooth_scale"] = 0
        return axes

    @property
    def decode_scheme(self):
        return self.activation_scheme + ("_smooth" if self.smooth else "")

    def smoothed_input(self, x):
        x = x.astype(ms.float32)
        return x * self.smooth_scale if self.smooth else x

    def set_quant_params(self, weight_q, weight_scale, smooth_scale=None, **_):
        super().set_quant_params(weight_q, weight_scale)
        if self.smooth:
            self.smooth_scale.set_data(Tensor(smooth_scale, ms.float32))


class ActWeightQuantLinear(SmoothedInputLinear):
    """A8W8: x -> int8 with a static per-tensor scale/zero point (after an optional smoothing multiply), then
    y = ((xq - zp) @ Wq^T) * (input_scale * weight_scale)."""
    scheme = "A8 static per-tensor asymmetric, W8 per-channel symmetric"
    activation_scheme = "a8w8_static"

    def __init__(self, input_size, output_size, compute_dtype=ms.float32, parallel_mode="column", tp_size=1,
                 gather_output=False, kernel=None, smooth=False):
        super().__init__(input_size, output_size, compute_dtype, parallel_mode, tp_size, gather_output, kernel, smooth)
        self.input_scale = Parameter(_zeros((1,), ms.float32), name="input_scale", requires_grad=False)
        self.input_zero_point = Parameter(_zeros((1,), ms.float32), name="input_zero_point", requires_grad=False)

    def decode_operands(self):
        smooth = (self.smooth_scale,) if self.smooth else ()
        return smooth + (self.input_scale, self.input_zero_point, self.weight, self.weight_scale)

    def centred_input(self, x):
        """The int8 codes of x minus the zero point, kept in float32 (integers, exact): the matmul runs in float32,
        so no int8 round trip. Scalar clip bounds: tensor bounds take a broadcasting kernel ~8x slower on CPU."""
        codes = ops.clip_by_value(ops.round(self.smoothed_input(x) / self.input_scale) + self.input_zero_point,
                                  qf.QMIN, qf.QMAX)
        return codes - self.input_zero_point

    def construct(self, x):
        if self.kernel is not None:
            return self._collect(self.run_kernel(self.smoothed_input(x), self.input_scale, self.input_zero_point,
                                                 self.weight, self.weight_scale))
        accumulated = linear(self.centred_input(x), self.weight, ms.float32)
        out = (accumulated * (self.input_scale * self.weight_scale)).astype(self.compute_dtype)
        return self._collect(out)

    def set_quant_params(self, weight_q, weight_scale, input_scale=None, input_zero_point=None, smooth_scale=None):
        super().set_quant_params(weight_q, weight_scale, smooth_scale)
        self.input_scale.set_data(Tensor(np.reshape(input_scale, (1,)), ms.float32))
        self.input_zero_point.set_data(Tensor(np.reshape(input_zero_point, (1,)), ms.float32))


class DynamicActWeightQuantLinear(SmoothedInputLinear):
    """A8W8 per token: each token's row of x (after an optional smoothing multiply) gets a symmetric int8 scale at
    run time, s_t = max|x_t| / 127; y = ((x / s_t) rounded @ Wq^T) * s_t * weight_scale."""
    scheme = "A8 dynamic per-token symmetric, W8 per-channel symmetric"
    activation_scheme = "a8w8_dynamic"

    def decode_operands(self):
        return ((self.smooth_scale,) if self.smooth else ()) + (self.weight, self.weight_scale)

    def token_scale(self, x):
        abs_max = ops.amax(ops.abs(x), -1, keepdims=True)
        if self.tp_size > 1 and self.parallel_mode == "row":  # each rank holds part of every token's channels
            abs_max = ops.amax(all_gather_last_dim(abs_max, self.tp_size), -1, keepdims=True)
        return ops.where(abs_max > 0, abs_max / qf.SYM_MAX, ops.ones_like(abs_max))

    def scaled_matmul(self, q, scale):
        """The output for token codes q (integers in float32) with token scales `scale`."""
        return linear(q, self.weight, ms.float32) * scale * self.weight_scale

    def construct(self, x):
        x = self.smoothed_input(x)
        if self.kernel is not None:
            return self._collect(self.run_kernel(x, self.weight, self.weight_scale))
        scale = self.token_scale(x)
        q = ops.clip_by_value(ops.round(x / scale), -qf.SYM_MAX, qf.SYM_MAX)
        return self._collect(self.scaled_matmul(q, scale).astype(self.compute_dtype))


class DynamicActGroupedWeightLinear(GroupedWeights, DynamicActWeightQuantLinear):
    """A8W4: int8 per-token activations (as DynamicActWeightQuantLinear) with grouped int4 (or int8) weights
    (GroupedWeights): y = ((x / s_t) rounded @ (codes * group scale)^T) * s_t."""
    activation_scheme = "a8w4_dynamic"

    def __init__(self, input_size, output_size, compute_dtype=ms.float32, parallel_mode="column", tp_size=1,
                 gather_output=False, kernel=None, smooth=False, bits=4, group_size=0):
        super().__init__(input_size, output_size, compute_dtype, parallel_mode, tp_size, gather_output, kernel, smooth)
        self.init_grouped_weight(input_size, output_size, bits, group_size)
        self.scheme = f"A8 dynamic per-token symmetric, {self.weight_scheme}"

    def shard_axes(self):
        return {**super().shard_axes(), **self.grouped_shard_axes()}

    def scaled_matmul(self, q, scale):
        return linear(q, self.float_weight(), ms.float32) * scale

    def set_quant_params(self, weight_q, weight_scale, smooth_scale=None, **_):
        self.set_grouped_weight(weight_q, weight_scale)
        if self.smooth:
            self.smooth_scale.set_data(Tensor(smooth_scale, ms.float32))


# The deployed linear of each activation granularity (None: weight-only); options: what from_float takes.
DEPLOYED_LINEARS = {None: WeightQuantLinear, Granularity.PER_TENSOR: ActWeightQuantLinear,
                    Granularity.PER_TOKEN: DynamicActWeightQuantLinear}
# The same for grouped (or int4) weights: weight-only, or A8W4 with per-token activations.
GROUPED_LINEARS = {None: GroupedWeightLinear, Granularity.PER_TOKEN: DynamicActGroupedWeightLinear}


def deployed_linear(float_cell, plan):
    """The empty deployed cell that `plan` calls for in place of `float_cell`, running the kernel of the plan's
    backend (none while calibrating)."""
    if plan.grouped_weight:
        cls = GROUPED_LINEARS[plan.activation]
        options = dict(bits=plan.weight_bits, group_size=plan.group_size)
        if plan.activation is not None:
            options["smooth"] = plan.smooth_multiply
        weight_format = "w4" if plan.weight_bits == 4 else "w8_grouped"
    else:
        cls, weight_format = DEPLOYED_LINEARS[plan.activation], "w8"
        options = {} if plan.activation is None else {"smooth": plan.smooth_multiply}
    layout = parallel_layout(float_cell)
    if plan.kernel_backend is not None:
        split_tokens = layout["parallel_mode"] == "row" and layout["tp_size"] > 1
        options["kernel"] = linear_kernel(plan.activation, plan.kernel_backend, split_tokens, weight_format)
    return cls.from_float(float_cell, **options)


def parallel_layout(float_cell):
    """How the float linear is split: our cells say so; MindFormers' row linears have `input_is_parallel`."""
    default = "row" if hasattr(float_cell, "input_is_parallel") else "column"
    return dict(parallel_mode=getattr(float_cell, "parallel_mode", default),
                tp_size=getattr(float_cell, "tp_size", 1), gather_output=getattr(float_cell, "gather_output", False))
