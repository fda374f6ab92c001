"""Each quantized linear's relative output error, measured by a probe while the quantized layer runs."""
import numpy as np
from mindspore import Tensor

from mindspore_ptq.algorithms.output_error import measure_output_errors
from mindspore_ptq.kinds.linear import quantize_linear
from mindspore_ptq.cells.linear_wrapper import LinearQuantWrapper
from mindspore_ptq.config import Granularity
from mindspore_ptq.cell_plan import CellPlan
from mindspore_ptq.lifecycle import CalibratedCell
from mindspore_ptq.report import layer_report
from network_helpers.llama.layers import ColumnParallelLinear

RNG = np.random.default_rng(0)
X = RNG.standard_normal((2, 5, 32)).astype(np.float32) * 2
W = RNG.standard_normal((24, 32)).astype(np.float32) / 5


def test_probe_measures_the_relative_output_error_of_the_quantized_form():
    float_cell = ColumnParallelLinear(32, 24)
    float_cell.weight.set_data(Tensor(W))
    wrapper = LinearQuantWrapper("probe", float_cell, CellPlan("probe", "linear", activation=Granularity.PER_TENSOR))
    wrapper(Tensor(X))  # observe
    quantized = quantize_linear(wrapper)
    cell = CalibratedCell(None, "probe", wrapper)
    halves = (X[:1], X[1:])
    outputs = measure_output_errors([cell], lambda: [wrapper(Tensor(x)).asnumpy() for x in halves])
    expected = sum(((out - x @ W.T) ** 2).sum() for out, x in zip(outputs, halves)) / ((X @ W.T) ** 2).sum()
    np.testing.assert_allclose(cell.notes["relative_output_mse"], expected, rtol=1e-4)
    np.testing.assert_array_equal(outputs[0], quantized(Tensor(halves[0])).asnumpy())
    assert not wrapper.probes  # detached afterwards
    stats = layer_report([cell], [], "model.layers")[0]
    assert stats["act_min"] == X.min() and stats["act_max"] == X.max()
    assert stats["relative_output_mse"] == cell.notes["relative_output_mse"]
