"""Range observers: running per-channel statistics of calibration activations."""
import numpy as np


class MinMaxObserver:
    """Running min and max of each channel along `axis` (default: the last axis)."""

    def __init__(self, name, axis=-1):
        self.name, self.axis = name, axis
        self.minimum = self.maximum = None
        self.batches = 0

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
        self.batches += 1

    def check_seen(self):
        if self.minimum is None:
            raise ValueError(f"{self.name} saw no calibration data")

    @property
    def abs_max(self):
        self.check_seen()
        return np.maximum(np.abs(self.minimum), np.abs(self.maximum))
