"""Algorithm steps, one module each, all following the hooks of `mindspore_ptq.lifecycle.Step`."""
from .awq import AWQ
from .fallback import Fallback
from .gptq import GPTQ
from .quantizers import RoundToNearest
from .rotation import Rotation
from .sensitivity import Sensitivity
from .smooth_quant import SmoothQuant

# (is the step needed for this config, how to build it from (config, layout)), in calling order.
STEPS = (
    (lambda c: c.outliers.rotates, lambda c, layout: Rotation()),
    (lambda c: c.outliers.smooths, lambda c, layout: SmoothQuant(c.outliers, layout.smooth_groups)),
    (lambda c: c.outliers.awq, lambda c, layout: AWQ(layout.smooth_groups)),
    (lambda c: c.recovery.gptq, lambda c, layout: GPTQ(c.recovery)),
    (lambda c: True, lambda c, layout: RoundToNearest()),
    (lambda c: c.calibration.sensitivity_samples > 0, lambda c, layout: Sensitivity(c.calibration.sensitivity_samples)),
    (lambda c: c.fallback.enabled, lambda c, layout: Fallback(c.fallback)),
)


def build_steps(config, layout):
    """The steps `config` calls for, in calling order: chosen by data, not by branches."""
    return [build(config, layout) for needed, build in STEPS if needed(config)]


__all__ = ["STEPS", "build_steps", "AWQ", "Fallback", "GPTQ", "RoundToNearest", "Rotation", "Sensitivity", "SmoothQuant"]
