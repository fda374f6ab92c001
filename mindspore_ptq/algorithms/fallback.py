"""Automatic fallback: the most sensitive activation-quantized linears run as W8 (or float) instead: a fixed
count, or the fewest that bring the KL divergence against float on held-out samples within a budget.

The result is a plan, ((linear name, LayerPrecision), ...), that PTQ returns for the saved config.
"""
from dataclasses import replace

from mindspore import Tensor

from ..config import LayerPrecision
from ..divergence import kl_divergence_sum, log_softmax
from ..lifecycle import Step
from ..log import logger
from ..kinds.linear import quantize_linear


class HeldOutKL:
    """Mean KL(float || network) of next-token distributions over held-out samples. The float distributions are
    taken at construction, before calibration changes the network."""

    def __init__(self, network, batches):
        self.batches = batches
        self.reference = [log_softmax(network(ids).asnumpy()).astype("float32") for ids in batches]

    def __call__(self, network):
        total, positions = 0.0, 0
        for ids, reference in zip(self.batches, self.reference):
            total += kl_divergence_sum(reference, log_softmax(network(ids).asnumpy()))
            positions += reference.shape[0] * reference.shape[1]
        return total / positions


class Fallbacks:
    """Which linears run a fallback precision instead of their planned form, and how to undo it."""

    def __init__(self):
        self._primary = {}    # linear name -> (plan, quantized cell, smoothed weight or None) before the fallback
        self._precision = {}  # linear name -> the LayerPrecision it runs as

    def set(self, cell, precision):
        """Run `cell` as `precision` (LayerPrecision.W8 or FLOAT) instead of its planned form; None restores it.

        A linear whose smoothing was an input multiply gets its unsmoothed weight back (nothing divides its input
        any more); a folded one keeps W*s, since the feeding cell already divides its input by s."""
        wrapper = cell.wrapper
        if precision is self._precision.get(cell.wrapper.name):
            return
        if cell.wrapper.name in self._primary:  # undo the previous fallback first
            plan, quantized, smoothed_weight = self._primary.pop(cell.wrapper.name)
            if smoothed_weight is not None:
                wrapper.float_cell.weight.set_data(Tensor(smoothed_weight, wrapper.float_cell.weight.dtype))
            wrapper.plan = plan
            wrapper.set_quantized(quantized)
            del self._precision[cell.wrapper.name]
        if precision is None:
            return
        smoothed_weight = None
        if wrapper.plan.smooth_multiply:
            smoothed_weight = wrapper.float_cell.weight.asnumpy()
            wrapper.float_cell.weight.set_data(Tensor(smoothed_weight / wrapper.smooth_factor[None, :],
                                                      wrapper.float_cell.weight.dtype))
        self._primary[cell.wrapper.name] = (wrapper.plan, wrapper.quantized, smoothed_weight)
        wrapper.plan = replace(wrapper.plan, activation=None, smooth_multiply=False)
        self._precision[cell.wrapper.name] = precision
        if precision is LayerPrecision.FLOAT:
            wrapper.set_quantized(wrapper.float_cell)
        else:
            quantize_linear(wrapper)

    def apply(self, ranked, count, precision):
        """The first `count` of `ranked` fall back to `precision`; the rest run their planned form."""
        for index, cell in enumerate(ranked):
            self.set(cell, precision if index < count else None)

    def was_smoothed_by_multiply(self, cell):
        return cell.wrapper.name in self._primary and self._primary[cell.wrapper.name][0].smooth_multiply


def ranked_by_sensitivity(cells):
    """Activation-quantized linears with a measured sensitivity, most sensitive first."""
    linears = [c for c in cells if c.kind == "linear" and c.wrapper.plan.activation and "sensitivity" in c.notes]
    return sorted(linears, key=lambda c: -c.notes["sensitivity"])


def search_fallbacks(fallbacks, network, ranked, precision, kl, budget, max_count):
    """The fewest most-sensitive fallbacks (at most `max_count`) with kl(network) <= budget, left applied.

    Doubles the count until the budget is met, then bisects. Returns (count, {count: KL measured})."""
    history = {}

    def passes(count):
        fallbacks.apply(ranked, count, precision)
        history[count] = kl(network)
        logger.info("fallback search: %d linears -> KL %.5f (budget %.5f)", count, history[count], budget)
        return history[count] <= budget

    if passes(0):
        return 0, history
    if max_count < 1:
        logger.warning("fallback search: KL %.5f misses the budget %.5f and no fallback is allowed",
                       history[0], budget)
        return 0, history
    failing, passing, count = 0, None, 1
    while passing is None:
        count = min(count, max_count)
        if passes(count):
            passing = count
        elif count == max_count:
            logger.warning("fallback search: KL %.5f with the %d allowed fallbacks misses the budget %.5f",
                           history[count], count, budget)
            return count, history
        else:
            failing, count = count, 2 * count
    while passing - failing > 1:
        middle = (failing + passing) // 2
        if passes(middle):
            passing = middle
        else:
            failing = middle
    fallbacks.apply(ranked, passing, precision)
    return passing, history


class Fallback(Step):
    """Holds out samples for the KL budget (if one is set) before calibration; afterwards chooses the fallbacks,
    applies them and returns the plan. `summary` says how it was chosen."""
    name = "fallback"

    def __init__(self, options):
        self.options, self.held_out, self.summary = options, None, {}

    def before_calibration(self, network, layout, batches):
        if not self.options.searching:
            return batches
        count = self.options.holdout_samples
        if len(batches) <= count:
            raise ValueError(f"fallback_kl_budget holds out {count} calibration samples; give more than {count}")
        self.held_out = HeldOutKL(network, batches[-count:])
        return batches[:-count]

    def after_calibration(self, network, cells):
        options, fallbacks = self.options, Fallbacks()
        ranked = ranked_by_sensitivity(cells)
        if self.held_out is not None:
            max_count = int(options.max_fraction * len(ranked))
            count, history = search_fallbacks(fallbacks, network, ranked, options.precision, self.held_out,
                                              options.kl_budget, max_count)
            self.summary = {"count": count, "of": len(ranked), "kl_by_count": history, "budget": options.kl_budget,
                            "met": history[count] <= options.kl_budget}
        else:
            count = min(options.layers, len(ranked))
            fallbacks.apply(ranked, count, options.precision)
            self.summary = {"count": count, "of": len(ranked)}
        for cell in ranked[:count]:
            cell.notes.update(fallback=options.precision.value, relative_output_mse=None)
            if fallbacks.was_smoothed_by_multiply(cell):
                cell.notes["smoothing"] = "removed (fallback)"
        plan = tuple((cell.wrapper.name, options.precision) for cell in ranked[:count])
        self.summary["layers"] = [name for name, _ in plan]
        return plan
