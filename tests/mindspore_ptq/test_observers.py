"""Range observers on known distributions give the known clips."""
import numpy as np
import pytest

from mindspore_ptq.observers import RowSample, histogram_mse_range, minmax_range, percentile_range

RNG = np.random.default_rng(0)


def test_minmax_is_the_observed_extremes():
    x = RNG.standard_normal(1000)
    assert minmax_range(x) == (x.min(), x.max())


def test_percentile_clips_each_tail_at_its_quantile():
    x = RNG.uniform(-1, 3, 1_000_000)
    low, high = percentile_range(x, percentile=99)
    assert low == pytest.approx(-1 + 0.01 * 4, abs=0.01) and high == pytest.approx(3 - 0.01 * 4, abs=0.01)


def test_histogram_mse_keeps_a_uniform_range_whole():
    low, high = histogram_mse_range(RNG.uniform(-1, 1, 1_000_000))
    assert low == pytest.approx(-1, abs=0.03) and high == pytest.approx(1, abs=0.03)


def test_histogram_mse_clips_laplace_where_the_theory_puts_the_optimum():
    # MSE-optimal 8-bit clip of a Laplace(b) is about 9.89 b (Banner et al., ACIQ), well inside its extremes.
    x = RNG.laplace(0, 1.0, 1_000_000)
    low, high = histogram_mse_range(x)
    assert -low == pytest.approx(9.89, rel=0.06) and high == pytest.approx(9.89, rel=0.06)
    assert high < 0.85 * x.max()


def test_histogram_mse_clips_a_lone_far_outlier():
    x = np.append(RNG.uniform(-1, 1, 1_000_000), 100.0)
    low, high = histogram_mse_range(x)
    assert low == pytest.approx(-1, abs=0.03) and high < 60


def test_row_sample_keeps_evenly_spaced_rows_of_each_batch():
    sample = RowSample(rows_per_batch=4)
    sample.update(np.arange(20, dtype=np.float32).reshape(1, 10, 2))
    sample.update(np.ones((3, 2), np.float32))
    np.testing.assert_array_equal(sample.rows[:, 0], [0, 6, 12, 18, 1, 1, 1])
