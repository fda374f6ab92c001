"""Range observers: running per-channel statistics of calibration activations, row samples, and the ways a
static per-tensor range is chosen from them."""
import numpy as np

from . import quant_functions as qf


class MinMaxObserver:
    """Running min and max of each channel along `axis` (default: the last axis)."""

    def __init__(self, name, axis=-1):
        self.name, self.axis = name, axis
        self.minimum = self.maximum = None

    def update(self, x):
        x = np.asarray(x, np.float32)
        if not np.isfinite(x).all():
            raise ValueError(f"calibration activation at {self.name} contains NaN or Inf "
                             f"(in {np.size(x) - np.isfinite(x).sum()} of {np.size(x)} values)")
        moved = np.moveaxis(x, self.axis, -1).reshape(-1, x.shape[self.axis])
        low, high = moved.min(0), moved.max(0)
        if self.minimum is None:
            self.minimum, self.maximum = low, high
        else:
            self.minimum, self.maximum = np.minimum(self.minimum, low), np.maximum(self.maximum, high)

    def check_seen(self):
        if self.minimum is None:
            raise ValueError(f"{self.name} saw no calibration data")

    @property
    def abs_max(self):
        self.check_seen()
        return np.maximum(np.abs(self.minimum), np.abs(self.maximum))


def gram(x):
    """(X^T X, rows) of the rows (tokens) of x (..., in), multiplied in float32 (BLAS)."""
    rows = np.asarray(x, np.float32).reshape(-1, np.shape(x)[-1])
    return rows.T @ rows, rows.shape[0]


class InputHessian:
    """H = 2 X^T X / n over the n observed rows x (tokens) of the inputs (..., in): the Hessian of a linear's
    squared output error with respect to its weights' rows (GPTQ); batches are summed in float64."""

    def __init__(self, name):
        self.name, self.sum, self.rows = name, None, 0

    def update(self, x):
        self.add(*gram(x))

    def add(self, product, rows):
        """Add one batch's (X^T X, rows), e.g. computed once for the linears that read the same input."""
        product = np.asarray(product, np.float64)
        self.sum = product if self.sum is None else self.sum + product
        self.rows += rows

    @property
    def matrix(self):
        if self.sum is None:
            raise ValueError(f"{self.name} saw no calibration data (GPTQ needs its inputs)")
        return 2.0 * self.sum / self.rows


class RowSample:
    """Up to `rows_per_batch` evenly spaced rows (tokens) of each observed batch, for statistics that need the
    data itself (percentile and histogram ranges, the smoothing search)."""

    def __init__(self, rows_per_batch=256):
        self.rows_per_batch, self.parts = rows_per_batch, []

    def update(self, x):
        rows = np.asarray(x, np.float32).reshape(-1, np.shape(x)[-1])
        step = max(1, -(-len(rows) // self.rows_per_batch))
        self.parts.append(rows[::step])

    @property
    def rows(self):
        return np.concatenate(self.parts)


def minmax_range(x, **_):
    """The observed extremes."""
    return float(np.min(x)), float(np.max(x))


def percentile_range(x, percentile=99.99, **_):
    """Clip each tail at the given percentile (of the values, so the range stays asymmetric)."""
    return float(np.percentile(x, 100 - percentile)), float(np.percentile(x, percentile))


def histogram_mse_range(x, bins=2048, grid=33, **_):
    """The clip range (low, high) that minimises the int8 quantization MSE of a histogram of x.

    Candidates shrink each end independently to a fraction in [0.2, 1] of the observed extreme; each candidate's
    error is that of quantizing the bin centres (clipping included), weighted by the bin counts.
    """
    low, high = min(float(np.min(x)), 0.0), max(float(np.max(x)), 0.0)
    if high == low:
        return low, high
    counts, edges = np.histogram(x, bins=bins, range=(low, high))
    centres = (edges[:-1] + edges[1:]) / 2
    fractions = np.linspace(0.2, 1.0, grid)
    lows, highs = np.meshgrid(low * fractions, high * fractions, indexing="ij")
    scale, zero_point = qf.asymmetric_scale_zero_point(lows.ravel(), highs.ravel())
    restored = qf.dequantize(qf.quantize(centres[None, :], scale[:, None], zero_point[:, None]), scale[:, None],
                             zero_point[:, None])
    errors = ((restored - centres[None, :]) ** 2 * counts[None, :]).sum(1)
    best = int(np.argmin(errors))
    return float(lows.ravel()[best]), float(highs.ravel()[best])


RANGE_OBSERVERS = {"minmax": minmax_range, "percentile": percentile_range, "histogram_mse": histogram_mse_range}
