"""The calibrating stand-in for a float linear: observes its inputs, then runs its int8 form."""
from mindspore import Tensor

from ..observers import InputHessian, MinMaxObserver, RowSample, gram
from .linear import parallel_layout
from .wrapper import QuantWrapper


_LAST_GRAM = []  # [(input Tensor, its gram)]: the input is held, so `is` cannot match a recycled object


def shared_gram(x, values):
    """gram(values) of the input Tensor x, computed once for consecutive linears that read the same Tensor
    (q/k/v, w1/w3)."""
    if not (_LAST_GRAM and _LAST_GRAM[0][0] is x):
        _LAST_GRAM[:] = [(x, gram(values))]
    return _LAST_GRAM[0][1]


class LinearQuantWrapper(QuantWrapper):
    """Stands in for a float linear: observes its input (per-channel min/max, a row sample when the plan keeps
    one, the input Hessian when it asks for one), then runs its quantized form.

    smooth_factor: the SmoothQuant factor s of this linear's input (None: not smoothed); its float form, which
    holds W * s, then needs x / s when the deployed cell multiplies its input by 1/s itself. clip_ratios: the
    fraction of each (row, group)'s max |w| its weight grid spans (None: all of it; AWQ's clipping search).
    """
    kind = "linear"

    def __init__(self, name, float_cell, plan):
        super().__init__(name, float_cell, plan)
        self.observer = MinMaxObserver(name) if plan.activation else None
        self.sample = RowSample() if plan.keep_samples else None
        self.hessian = InputHessian(name) if plan.hessian else None
        self.smooth_factor = self.clip_ratios = None

    @property
    def parallel_mode(self):
        return parallel_layout(self.float_cell)["parallel_mode"]

    def construct(self, x):
        if self.quantized is None:
            watchers = [w for w in (self.observer, self.sample) if w is not None]
            values = x.asnumpy() if watchers or self.hessian is not None else None
            for watcher in watchers:
                watcher.update(values)
            if self.hessian is not None:
                self.hessian.add(*shared_gram(x, values))
            return self.float_cell(x)
        return self.run_quantized(x) if self.active else self.float_reference(x)

    def float_reference(self, x):
        """The float output for the input the quantized cell sees (undoing an input-multiply smoothing, whose
        factor the float weight already carries)."""
        if self.plan.smooth_multiply and self.smooth_factor is not None:
            x = x / Tensor(self.smooth_factor, x.dtype)
        return self.float_cell(x)

    def release_samples(self):
        self.sample = self.hessian = None
        _LAST_GRAM.clear()
