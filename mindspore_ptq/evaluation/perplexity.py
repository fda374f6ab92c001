"""Perplexity over fixed dev windows, and KL divergence / top-1 agreement against a reference network."""
import time

import numpy as np
import mindspore as ms
from tqdm import tqdm

from ..datasets import load_squad


def context_windows(dev_path, tokenizer, window=512, n_windows=64):
    """The unique dev contexts in file order, joined with blank lines, tokenized without special tokens and cut
    into the first `n_windows` consecutive non-overlapping windows of `window` tokens: (n_windows, window)."""
    contexts = list(dict.fromkeys(example.context for example in load_squad(dev_path)))
    ids = np.asarray(tokenizer("\n\n".join(contexts), add_special_tokens=False)["input_ids"], np.int32)
    available = len(ids) // window
    if available < n_windows:
        raise ValueError(f"{dev_path} gives {available} windows of {window} tokens, fewer than {n_windows}")
    return ids[: n_windows * window].reshape(n_windows, window)


def _log_softmax(logits):
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


class _Accumulator:
    """Running NLL, KL(reference || network) and top-1 agreement of one network."""

    def __init__(self):
        self.nll = self.kl = 0.0
        self.agree = self.count = 0

    def add(self, logp, targets, ref_logp):
        self.nll -= logp[np.arange(len(targets)), targets].sum()
        self.count += len(targets)
        if ref_logp is not None:
            self.kl += (np.exp(ref_logp) * (ref_logp - logp)).sum()
            self.agree += int((ref_logp.argmax(-1) == logp.argmax(-1)).sum())

    def result(self, with_reference):
        result = {"ppl": float(np.exp(self.nll / self.count)), "tokens": self.count}
        if with_reference:
            result.update(kl=float(self.kl / self.count), top1=100.0 * self.agree / self.count)
        return result


def _next_token_logp(network, window):
    return _log_softmax(network(ms.Tensor(window[None], ms.int32)).asnumpy()[0, :-1].astype(np.float64))


def evaluate_perplexity_many(networks, windows, reference=None, progress=True):
    """{name: result} for several networks over the same windows, the reference run once per window.

    result: PPL = exp(mean next-token NLL); with `reference`, also the mean KL(reference || network) of the
    next-token distributions and the top-1 agreement in percent.
    """
    totals = {name: _Accumulator() for name in networks}
    start = time.perf_counter()
    for window in tqdm(windows, desc="perplexity", unit="window", disable=not progress):
        ref_logp = None if reference is None else _next_token_logp(reference, window)
        for name, network in networks.items():
            totals[name].add(_next_token_logp(network, window), window[1:], ref_logp)
    seconds = time.perf_counter() - start
    return {name: {**total.result(reference is not None), "seconds": seconds} for name, total in totals.items()}


def evaluate_perplexity(network, windows, reference=None, progress=True):
    """Perplexity of one network (and KL / top-1 against `reference` if given)."""
    return evaluate_perplexity_many({"network": network}, windows, reference, progress)["network"]
