"""Sensitivity of each quantized linear: the relative output MSE of its decoder layer when only it is quantized."""
import numpy as np

from ..lifecycle import Step


def _relative_mse(outputs, references):
    error = sum(float(np.square(o.asnumpy() - r.asnumpy()).sum()) for o, r in zip(outputs, references))
    return error / max(sum(float(np.square(r.asnumpy()).sum()) for r in references), 1e-30)


def measure_sensitivity(layer, cells, inputs):
    """{path: sensitivity} of every linear of `layer` (already quantized) from the layer's `inputs`."""
    wrappers = [cell.wrapper for cell in cells]
    for wrapper in wrappers:
        wrapper.active = False
    references = [layer(*args) for args in inputs]
    sensitivity = {}
    for cell in cells:
        if cell.kind != "linear":
            continue
        cell.wrapper.active = True
        sensitivity[cell.path] = _relative_mse([layer(*args) for args in inputs], references)
        cell.wrapper.active = False
    for wrapper in wrappers:
        wrapper.active = True
    return sensitivity


class Sensitivity(Step):
    """Notes each linear's sensitivity on the first `samples` calibration inputs of its layer."""

    def __init__(self, samples):
        self.samples = samples

    def on_layer(self, cells, layer, inputs):
        sensitivity = measure_sensitivity(layer, cells, inputs[:self.samples])
        for cell in cells:
            if cell.path in sensitivity:
                cell.notes["sensitivity"] = sensitivity[cell.path]
