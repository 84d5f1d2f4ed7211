"""Seeded Poisson bootstrap weights that depend only on the row index.

The Poisson bootstrap gives each logged event an independent Poisson(1) count
per replicate instead of drawing n rows with replacement, so a replicate can be
accumulated one chunk at a time without knowing n in advance. Here the count of
row i in replicate b is a pure function of (seed, i, b): a SplitMix64 hash of
the counter i * replicates + b turned into a uniform number and mapped through
the Poisson(1) inverse CDF. Chunks can therefore be processed in any order, in
any number of processes, and merged, with the same replicates as one pass over
the whole log, provided every chunk is given its true row indexes.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt

_GOLDEN_GAMMA = np.uint64(0x9E3779B97F4A7C15)
_MIX_1 = np.uint64(0xBF58476D1CE4E5B9)
_MIX_2 = np.uint64(0x94D049BB133111EB)
_MAX_POISSON_COUNT = 20
"""Cap on a count. Under Poisson(1), counts above 20 have probability below 1e-19."""

_POISSON_CDF = np.cumsum(
    [math.exp(-1.0) / math.factorial(k) for k in range(_MAX_POISSON_COUNT)]
)


def _mix64(values: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """Apply the SplitMix64 output function (Steele, Lea and Flood, 2014)."""
    with np.errstate(over="ignore"):
        z = values
        z = (z ^ (z >> np.uint64(30))) * _MIX_1
        z = (z ^ (z >> np.uint64(27))) * _MIX_2
        mixed: npt.NDArray[np.uint64] = z ^ (z >> np.uint64(31))
    return mixed


def row_hashes(seed: int, rows: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """Return a 64-bit hash of each counter value in ``rows``: the SplitMix64 stream of ``seed``."""
    seed_state = _mix64(np.array([seed], dtype=np.uint64))[0]
    with np.errstate(over="ignore"):
        states = seed_state + (rows + np.uint64(1)) * _GOLDEN_GAMMA
    return _mix64(states)


def poisson_weights(
    seed: int, first_row: int, n_rows: int, replicates: int
) -> npt.NDArray[np.float64]:
    """Return the Poisson(1) counts of rows first_row .. first_row + n_rows - 1.

    The result has shape (n_rows, replicates). Element [j, b] is the number of
    times row first_row + j appears in bootstrap replicate b.
    """
    rows = np.arange(first_row, first_row + n_rows, dtype=np.uint64)
    columns = np.arange(replicates, dtype=np.uint64)
    with np.errstate(over="ignore"):
        counters = rows[:, None] * np.uint64(replicates) + columns[None, :]
    bits = row_hashes(seed, counters)

    uniforms = (bits >> np.uint64(11)).astype(np.float64) * (1.0 / 2.0**53)
    counts = np.searchsorted(_POISSON_CDF, uniforms, side="right")
    return counts.astype(np.float64)
