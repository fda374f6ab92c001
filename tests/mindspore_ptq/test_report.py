"""Report and plot helpers on hand-made records."""
import numpy as np

from mindspore_ptq.app.plots import layer_error_matrix
from mindspore_ptq.kinds.linear import quantize_linear
from mindspore_ptq.cells.linear_wrapper import LinearQuantWrapper
from mindspore_ptq.cell_plan import CellPlan
from mindspore_ptq.lifecycle import CalibratedCell
from mindspore_ptq.report import format_report, layer_report
from network_helpers.llama.layers import ColumnParallelLinear


def record(name, error=None, quantized=True):
    position = {"layer": int(name.split(".")[2]), "cell": name.split(".", 3)[3]} if name.startswith("model.") else {}
    return {"name": name, "kind": "linear", "quantized": quantized, "relative_output_mse": error, **position}


def test_layer_error_matrix_places_each_linear_and_leaves_float_ones_empty():
    records = [record("model.layers.1.attention.wq", 1e-3), record("model.layers.0.attention.wq", 2e-3),
               record("model.layers.0.feed_forward.w2", quantized=False), record("lm_head", 5e-3)]
    matrix, columns = layer_error_matrix(records)
    assert columns == ["attention.wq", "feed_forward.w2"]
    np.testing.assert_array_equal(matrix, [[2e-3, np.nan], [1e-3, np.nan]])


def test_layer_report_orders_cells_as_the_network_does_and_counts_them():
    class Plan:
        path, kind, skip_reason = "model.layers.10.feed_forward.w2", "linear", "opname_blacklist entry 'w2'"

    float_cell = ColumnParallelLinear(8, 4)
    wrapper = LinearQuantWrapper("model.layers.9.attention.wq", float_cell,
                                 CellPlan("model.layers.9.attention.wq", "linear"))
    quantize_linear(wrapper)
    cell = CalibratedCell(None, "attention.wq", wrapper, notes={"relative_output_mse": 1e-4})

    records = layer_report([cell], [Plan()], "model.layers")
    assert [r["name"] for r in records] == ["model.layers.9.attention.wq", "model.layers.10.feed_forward.w2"]
    text = format_report(records)
    assert "opname_blacklist entry 'w2'" in text and "1.00e-04" in text
    assert text.endswith("1 of 2 quantizable cells quantized")
