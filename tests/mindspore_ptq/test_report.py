"""Report and plot helpers on hand-made records."""
import numpy as np

from mindspore_ptq.plots import layer_error_matrix
from mindspore_ptq.report import format_report, layer_report


def record(name, error=None, quantized=True):
    return {"name": name, "kind": "linear", "quantized": quantized, "relative_output_mse": error}


def test_layer_error_matrix_places_each_linear_and_leaves_float_ones_empty():
    records = [record("model.layers.1.attention.wq", 1e-3), record("model.layers.0.attention.wq", 2e-3),
               record("model.layers.0.feed_forward.w2", quantized=False), record("lm_head", 5e-3)]
    matrix, columns = layer_error_matrix(records)
    assert columns == ["attention.wq", "feed_forward.w2"]
    np.testing.assert_array_equal(matrix, [[2e-3, np.nan], [1e-3, np.nan]])


def test_layer_report_orders_cells_as_the_network_does_and_counts_them():
    class Plan:
        path, kind, skip_reason = "model.layers.10.feed_forward.w2", "linear", "opname_blacklist entry 'w2'"

    class Wrapper:
        name, kind = "model.layers.9.attention.wq", "linear"

        @staticmethod
        def stats():
            return {"scheme": "W8", "relative_output_mse": 1e-4}

    records = layer_report([(None, None, Wrapper())], [Plan()])
    assert [r["name"] for r in records] == ["model.layers.9.attention.wq", "model.layers.10.feed_forward.w2"]
    text = format_report(records)
    assert "opname_blacklist entry 'w2'" in text and "1.00e-04" in text
    assert text.endswith("1 of 2 quantizable cells quantized")
