"""Log-probabilities and the KL divergence of next-token distributions (numpy, float64)."""
import numpy as np


def log_softmax(logits):
    """Log-probabilities over the last axis, in float64."""
    logits = np.asarray(logits, np.float64)
    shifted = logits - logits.max(-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(-1, keepdims=True))


def kl_divergence_sum(log_p, log_q):
    """sum over positions of KL(p || q) = sum_v p (log p - log q), for log-probabilities over the last axis."""
    return float((np.exp(log_p) * (log_p - log_q)).sum())
