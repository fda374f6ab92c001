"""Orthonormal Hadamard matrices of order 2^k * 12^m (Sylvester and Paley constructions), exact by construction."""
import numpy as np

PALEY_PRIME = 11  # Paley's first construction with q = 11 (q = 3 mod 4) gives order q + 1 = 12


def _sylvester(order):
    matrix = np.ones((1, 1))
    while matrix.shape[0] < order:
        matrix = np.block([[matrix, matrix], [matrix, -matrix]])
    return matrix


def _paley12():
    q = PALEY_PRIME
    residues = {(i * i) % q for i in range(1, q)}
    character = np.array([0] + [1 if d in residues else -1 for d in range(1, q)])
    jacobsthal = character[(np.arange(q)[None, :] - np.arange(q)[:, None]) % q]
    skew = np.zeros((q + 1, q + 1))
    skew[0, 1:], skew[1:, 0], skew[1:, 1:] = 1, -1, jacobsthal
    return np.eye(q + 1) + skew


def hadamard_factors(order):
    """(left, right): orthonormal Hadamard matrices whose Kronecker product has the given order; right is the
    largest power-of-two factor (Sylvester), left a Kronecker power of the order-12 Paley matrix."""
    twos = order & -order if order > 0 else 0
    rest = order // twos if twos else 0
    twelves = 0
    while rest > 1 and rest % 3 == 0 and twos % 4 == 0:
        rest, twos, twelves = rest // 3, twos // 4, twelves + 1
    if rest != 1:
        raise ValueError(f"no Hadamard matrix of order {order} is built here: orders are 2^k * 12^m "
                         f"(e.g. 64, 96, 576, 1536)")
    left = np.ones((1, 1))
    for _ in range(twelves):
        left = np.kron(left, _paley12())
    right = _sylvester(twos)
    return left / np.sqrt(len(left)), right / np.sqrt(len(right))


def hadamard(order):
    """The orthonormal Hadamard matrix H (H @ H.T = I, entries +-1/sqrt(order)) of the given order."""
    return np.kron(*hadamard_factors(order))


def randomized_hadamard(order, seed=0):
    """diag(random signs) @ H: orthonormal, and it spreads any one channel evenly over all of them."""
    signs = np.random.default_rng(seed).choice([-1.0, 1.0], order)
    return signs[:, None] * hadamard(order)
