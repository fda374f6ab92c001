"""Sensitivity of each quantized linear: the relative output MSE of its decoder layer when only it is quantized."""
import numpy as np


def _relative_mse(outputs, references):
    error = sum(float(np.square(o.asnumpy() - r.asnumpy()).sum()) for o, r in zip(outputs, references))
    return error / max(sum(float(np.square(r.asnumpy()).sum()) for r in references), 1e-30)


def measure_sensitivity(layer, wrappers, inputs):
    """Set `sensitivity` on every linear wrapper of `layer` (already quantized) from the layer's `inputs`."""
    linears = [w for w in wrappers.values() if w.kind == "linear"]
    for wrapper in wrappers.values():
        wrapper.active = False
    references = [layer(*args) for args in inputs]
    for wrapper in linears:
        wrapper.active = True
        wrapper.sensitivity = _relative_mse([layer(*args) for args in inputs], references)
        wrapper.active = False
    for wrapper in wrappers.values():
        wrapper.active = True
