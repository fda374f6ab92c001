"""Perplexity over fixed dev windows, and KL divergence / top-1 agreement against a reference network."""
import time

import numpy as np
import mindspore as ms

from ..divergence import kl_divergence_sum, log_softmax
from ..log import progress

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


def _next_token_logp(network, window):
    return log_softmax(network(ms.Tensor(window[None], ms.int32)).asnumpy()[0, :-1])


def evaluate_perplexity(network, windows, reference=None):
    """PPL = exp(mean next-token NLL) over all windows; with `reference` (a network), also the mean
    KL(reference || network) of next-token distributions and the top-1 agreement in percent."""
    nll = kl = 0.0
    agree = count = 0
    start = time.perf_counter()
    for window in progress(windows, desc="perplexity", unit="window"):
        logp, targets = _next_token_logp(network, window), window[1:]
        nll -= logp[np.arange(len(targets)), targets].sum()
        count += len(targets)
        if reference is not None:
            ref_logp = _next_token_logp(reference, window)
            kl += kl_divergence_sum(ref_logp, logp)
            agree += int((ref_logp.argmax(-1) == logp.argmax(-1)).sum())
    result = {"ppl": float(np.exp(nll / count)), "tokens": count, "seconds": time.perf_counter() - start}
    if reference is not None:
        result.update(kl=float(kl / count), top1=100.0 * agree / count)
    return result
