"""Row-keyed Poisson bootstrap counts: the right distribution, independent of chunking."""

from __future__ import annotations

import math

import numpy as np
import pytest

from replay.estimators.resampling import poisson_weights


def test_counts_follow_poisson_one() -> None:
    counts = poisson_weights(seed=7, first_row=0, n_rows=20_000, replicates=50)

    frequencies = np.bincount(counts.astype(int).ravel(), minlength=5) / counts.size
    for k in range(5):
        expected = math.exp(-1.0) / math.factorial(k)
        assert frequencies[k] == pytest.approx(expected, abs=0.003)
    assert counts.mean() == pytest.approx(1.0, abs=0.01)
    assert counts.var() == pytest.approx(1.0, abs=0.02)


def test_counts_depend_only_on_row() -> None:
    whole = poisson_weights(seed=3, first_row=0, n_rows=1000, replicates=20)

    middle = poisson_weights(seed=3, first_row=400, n_rows=100, replicates=20)

    np.testing.assert_array_equal(middle, whole[400:500])


def test_replicates_and_rows_uncorrelated() -> None:
    counts = poisson_weights(seed=11, first_row=0, n_rows=20_000, replicates=20)

    between_replicates = np.corrcoef(counts[:, 0], counts[:, 1])[0, 1]
    between_neighbours = np.corrcoef(counts[:-1, 0], counts[1:, 0])[0, 1]

    # The standard error of a correlation of 20,000 independent pairs is about 0.007.
    assert abs(between_replicates) < 0.03
    assert abs(between_neighbours) < 0.03


def test_seeds_give_different_counts() -> None:
    first = poisson_weights(seed=1, first_row=0, n_rows=500, replicates=10)
    second = poisson_weights(seed=2, first_row=0, n_rows=500, replicates=10)

    assert not np.array_equal(first, second)
