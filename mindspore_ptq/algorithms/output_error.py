"""Each quantized linear's relative output error against its float form, ||y_q - y||^2 / ||y||^2, over the
inputs that pass while it is measured (a probe on the wrapper)."""
import numpy as np
import mindspore as ms


class OutputError:
    """A wrapper probe: accumulates the squared error of the quantized output and the squared float output."""

    def __init__(self):
        self.sums = np.zeros(2)

    def __call__(self, wrapper, inputs, out):
        # in numpy: MindSpore's CPU element-wise ops and reductions in PyNative cost some 10x more
        reference = wrapper.float_reference(*inputs).astype(ms.float32).asnumpy().ravel()
        error = out.astype(ms.float32).asnumpy().ravel() - reference
        self.sums += [np.dot(error, error), np.dot(reference, reference)]

    @property
    def relative(self):
        return self.sums[0] / self.sums[1] if self.sums[1] > 0 else None


def measure_output_errors(cells, run):
    """Call `run()` with an OutputError probe on every linear of `cells`; note each one's relative error.
    Returns run()'s result."""
    probes = {cell.path: OutputError() for cell in cells if cell.kind == "linear"}
    for cell in cells:
        if cell.path in probes:
            cell.wrapper.probes.append(probes[cell.path])
    try:
        result = run()
    finally:
        for cell in cells:
            if cell.path in probes:
                cell.wrapper.probes.remove(probes[cell.path])
    for cell in cells:
        if cell.path in probes and probes[cell.path].relative is not None:
            cell.notes["relative_output_mse"] = probes[cell.path].relative
    return result
