"""Perplexity over fixed dev windows, and KL divergence / top-1 agreement against a reference network."""
import time

import numpy as np

from ..divergence import kl_divergence_sum, log_softmax
from ..log import progress
from .reference import next_token_logits

WINDOW_TOKENS = 512  # the perplexity protocol's window length


def perplexity_window(seq_length, requested=None):
    """Tokens per perplexity window: `requested`, else WINDOW_TOKENS cut to the model's `seq_length`. A window
    longer than seq_length is refused: the network has no position beyond it."""
    if requested is None:
        return min(WINDOW_TOKENS, seq_length)
    if requested > seq_length:
        raise ValueError(f"perplexity windows of {requested} tokens do not fit the model's seq_length {seq_length} "
                         f"(model.model_config.seq_length); use at most {seq_length}")
    return requested


def evaluate_perplexity(network, windows, reference=None, record=None):
    """PPL = exp(mean next-token NLL) over all windows; with `reference` (a NetworkReference or StoredReference),
    also the mean KL(reference || network) of next-token distributions and the top-1 agreement in percent.
    `record(index, logits)`, if given, receives the network's logits of each window (`logits_writer`)."""
    nll = kl = 0.0
    agree = count = 0
    start = time.perf_counter()
    for index, window in enumerate(progress(windows, desc="perplexity", unit="window")):
        logits, targets = next_token_logits(network, window), window[1:]
        if record is not None:
            record(index, logits)
        logp = log_softmax(logits)
        nll -= logp[np.arange(len(targets)), targets].sum()
        count += len(targets)
        if reference is not None:
            ref_logp = log_softmax(reference.logits(index, window))
            kl += kl_divergence_sum(ref_logp, logp)
            agree += int((ref_logp.argmax(-1) == logp.argmax(-1)).sum())
    result = {"ppl": float(np.exp(nll / count)), "tokens": count, "seconds": time.perf_counter() - start}
    if reference is not None:
        result.update(kl=float(kl / count), top1=100.0 * agree / count)
    return result
