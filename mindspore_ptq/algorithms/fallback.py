"""Automatic fallback: the most sensitive activation-quantized linears run as W8 (or float) instead: a fixed
count, or the fewest that bring the KL divergence against float on held-out samples within a budget."""
import numpy as np

from ..evaluation.perplexity import log_softmax
from ..log import logger


def ranked_by_sensitivity(wrapped):
    """Activation-quantized linear wrappers, most sensitive first."""
    linears = [w for _, _, w in wrapped if w.kind == "linear" and w.plan.activation and w.sensitivity is not None]
    return sorted(linears, key=lambda w: -w.sensitivity)


def apply_fallbacks(ranked, count, precision):
    """The first `count` of `ranked` fall back to `precision`; the rest run their planned form."""
    for index, wrapper in enumerate(ranked):
        wrapper.set_fallback(precision if index < count else None)


class HeldOutKL:
    """Mean KL(float || network) of next-token distributions over held-out samples. The float distributions are
    taken at construction, before calibration changes the network."""

    def __init__(self, network, batches):
        self.batches = batches
        self.reference = [log_softmax(network(ids).asnumpy()).astype(np.float32) for ids in batches]

    def __call__(self, network):
        total, positions = 0.0, 0
        for ids, reference in zip(self.batches, self.reference):
            log_q = log_softmax(network(ids).asnumpy())
            total += float((np.exp(reference) * (reference - log_q)).sum())
            positions += reference.shape[0] * reference.shape[1]
        return total / positions


def search_fallbacks(network, ranked, precision, kl, budget, max_count):
    """The fewest most-sensitive fallbacks (at most `max_count`) with kl(network) <= budget, left applied.

    Doubles the count until the budget is met, then bisects. Returns (count, {count: KL measured})."""
    history = {}

    def passes(count):
        apply_fallbacks(ranked, count, precision)
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
    apply_fallbacks(ranked, passing, precision)
    return passing, history
