"""CellPlan: how one registered cell is quantized (or why it stays float), and the name rules that pick it."""
from dataclasses import dataclass
from typing import Optional

from .config import BackendTarget, Granularity, PTQMode, RangeObserver


@dataclass(frozen=True)
class CellPlan:
    """How one cell is quantized.

    activation: None (weight-only), PER_TENSOR (static) or PER_TOKEN (dynamic) int8 activations; for a KV cache,
    PER_CHANNEL (static) or PER_TOKEN (dynamic).
    smooth_multiply: the SmoothQuant factor is applied by a multiply in the deployed cell because no preceding
    cell can absorb it exactly. range_observer/clip_percentile: how a static range is chosen; range_mantissa_bits:
    its rounding (config.range_mantissa_bits); keep_samples: the wrapper keeps a sample of its inputs (for range
    observers and the smoothing search); kernel_backend: whose kernels the deployed cell runs (DEPLOY: the
    config's backend; None while calibrating, which always runs the portable ops, so the checkpoint does not
    depend on the machine). weight_bits/group_size: the weight grid (8 or 4 bits; 0: one scale per output
    row); hessian: the wrapper accumulates the Hessian of its inputs (for GPTQ).
    """
    path: str
    kind: str
    activation: Optional[Granularity] = None
    smooth_multiply: bool = False
    range_observer: str = RangeObserver.MINMAX.value
    clip_percentile: float = 99.99
    range_mantissa_bits: Optional[int] = None
    keep_samples: bool = False
    kernel_backend: Optional[BackendTarget] = None
    weight_bits: int = 8
    group_size: int = 0
    hessian: bool = False
    skip_reason: str = ""  # set when the cell stays float: why

    @property
    def quantized(self):
        return not self.skip_reason

    @property
    def static_activation(self):
        return self.activation is Granularity.PER_TENSOR

    @property
    def per_token(self):
        """Values get their scales per token at run time (activations or a KV cache)."""
        return self.activation is Granularity.PER_TOKEN

    @property
    def grouped_weight(self):
        """The weight has scales per (row, group): anything but int8 with one scale per row."""
        return self.weight_bits != 8 or self.group_size > 0


def blacklist_entry(path, blacklist):
    """The seed's fuzzy rule: a cell is skipped if a blacklist entry is a substring of its full name."""
    return next((entry for entry in blacklist if entry in path), None)


def layer_override(path, config):
    """(pattern, LayerPrecision) of the first layer_overrides entry contained in `path`, else (None, None)."""
    return next(((p, precision) for p, precision in config.layer_overrides if p in path), (None, None))


def kernel_backend_for(config):
    """The backend whose kernels deployed cells run: the config's in DEPLOY, none while calibrating."""
    return config.backend if config.mode is PTQMode.DEPLOY else None
