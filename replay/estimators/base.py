"""The mergeable accumulator that every off-policy estimator here builds on.

Each estimator is a smooth function f of the means of a few per-event terms
(for SNIPS the terms are w_i r_i and w_i). An accumulator keeps, streaming and
mergeable, everything needed for the point estimate and both intervals:

- the count, the mean vector and the co-moment matrix of the terms, combined
  with Chan's parallel update, for the estimate and the delta-method standard
  error;
- for each Poisson bootstrap replicate, the sum of the counts and the
  count-weighted sums of the terms;
- a weight sketch for the diagnostics.

Memory is O(replicates * terms) and does not grow with the number of events.
"""

from __future__ import annotations

import abc
import copy
import math
from collections.abc import Sequence
from typing import Any, ClassVar, Literal, Self

import numpy as np

from bandit.errors import BanditError, InvalidInputError
from replay.diagnostics import Diagnostics, WeightDiagnostics
from replay.estimators.input import EstimatorInput, FloatArray
from replay.estimators.resampling import poisson_weights
from replay.intervals import Estimate, normal_interval, percentile_interval

IntervalMethod = Literal["bootstrap", "normal"]

_BLOCK_ROWS = 4096
"""Rows per block when accumulating bootstrap replicates, which bounds the (rows, replicates) array."""


class EstimationError(BanditError):
    """An estimate or interval is undefined for the events accumulated so far."""


class OffPolicyEstimator(abc.ABC):
    """Base class of the streaming, mergeable off-policy estimators.

    Parameters
    ----------
    replicates
        Number of Poisson bootstrap replicates kept for the percentile
        interval; 0 keeps none, and then only the normal interval is available.
    seed
        Seed of the bootstrap counts. Accumulators with the same seed resample
        the same events, so their replicates are paired.
    """

    name: ClassVar[str]
    n_terms: ClassVar[int]
    needs_reward_model: ClassVar[bool] = False

    def __init__(self, *, replicates: int = 200, seed: int = 0) -> None:
        if isinstance(replicates, bool) or not isinstance(replicates, int) or replicates < 0:
            raise InvalidInputError("replicates", f"must be an integer >= 0, got {replicates!r}")
        if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**64:
            raise InvalidInputError("seed", f"must be an integer in [0, 2**64), got {seed!r}")

        self.replicates = replicates
        self.seed = seed
        self._count = 0
        self._mean = np.zeros(self.n_terms)
        self._comoment = np.zeros((self.n_terms, self.n_terms))
        self._replicate_counts = np.zeros(replicates)
        self._replicate_sums = np.zeros((replicates, self.n_terms))
        self._row_ranges: list[tuple[int, int]] = []
        self._weights = WeightDiagnostics()

    # Each subclass defines its terms and the function of their means.

    @abc.abstractmethod
    def _terms(self, chunk: EstimatorInput) -> FloatArray:
        """Return the per-event terms, shape (n, n_terms)."""

    @abc.abstractmethod
    def _value(self, means: FloatArray) -> FloatArray:
        """Return f of the term means, given with shape (..., n_terms)."""

    @abc.abstractmethod
    def _gradient(self, means: FloatArray) -> FloatArray:
        """Return the gradient of f at ``means``, shape (n_terms,)."""

    def _settings(self) -> dict[str, Any]:
        """Return the options that two accumulators must share to be merged."""
        return {"replicates": self.replicates, "seed": self.seed}

    # Accumulation.

    @property
    def n(self) -> int:
        """Number of events accumulated."""
        return self._count

    def update(self, chunk: EstimatorInput, *, first_row: int | None = None) -> None:
        """Add the events of ``chunk``.

        ``first_row`` is the index of the chunk's first event in the whole log;
        it selects the bootstrap counts of those events. By default the chunk
        follows the highest row added so far. Give it explicitly when chunks
        are accumulated in separate accumulators that are merged later.
        """
        update_all([self], chunk, first_row=first_row)

    def _start_row(self, chunk: EstimatorInput, first_row: int | None) -> int:
        """Return the row index of the chunk's first event, or raise if the chunk cannot be added."""
        if self.needs_reward_model and not chunk.has_reward_model:
            raise InvalidInputError(
                "q_logged",
                f"is required by {self.name}; build the chunk with q_logged and q_target",
            )
        start = self._next_row() if first_row is None else first_row
        if isinstance(start, bool) or not isinstance(start, int) or start < 0:
            raise InvalidInputError("first_row", f"must be an integer >= 0, got {start!r}")
        if len(chunk):
            _add_range(self._row_ranges, (start, start + len(chunk)))
        return start

    def _add_chunk(self, chunk: EstimatorInput, start: int) -> FloatArray:
        """Add the chunk's rows, moments and weights, and return its terms for the replicates."""
        self._row_ranges = _add_range(self._row_ranges, (start, start + len(chunk)))
        terms = self._terms(chunk)
        self._add_moments(terms)
        self._weights.update(chunk.importance_weights())
        return terms

    def merge(self, other: Self) -> Self:
        """Return a new accumulator with the events of both, leaving both unchanged."""
        if type(other) is not type(self):
            raise InvalidInputError(
                "other", f"cannot merge {type(other).__name__} into {type(self).__name__}"
            )
        if other._settings() != self._settings():
            raise InvalidInputError(
                "other",
                f"settings differ: {self._settings()} here, {other._settings()} in the other",
            )

        merged = copy.deepcopy(self)
        for row_range in other._row_ranges:
            merged._row_ranges = _add_range(merged._row_ranges, row_range)
        merged._combine_moments(other._count, other._mean, other._comoment)
        merged._replicate_counts = self._replicate_counts + other._replicate_counts
        merged._replicate_sums = self._replicate_sums + other._replicate_sums
        merged._weights = self._weights.merge(other._weights)
        return merged

    def _next_row(self) -> int:
        return self._row_ranges[-1][1] if self._row_ranges else 0

    def _add_moments(self, terms: FloatArray) -> None:
        chunk_mean = terms.mean(axis=0)
        centered = terms - chunk_mean
        self._combine_moments(terms.shape[0], chunk_mean, centered.T @ centered)

    def _combine_moments(self, count: int, mean: FloatArray, comoment: FloatArray) -> None:
        # Chan, Golub and LeVeque's pairwise update of the mean and co-moment.
        if count == 0:
            return
        total = self._count + count
        delta = mean - self._mean
        self._comoment = (
            self._comoment + comoment + np.outer(delta, delta) * (self._count * count / total)
        )
        self._mean = self._mean + delta * (count / total)
        self._count = total

    def _add_replicate_block(
        self, counts: FloatArray, count_sums: FloatArray, block: FloatArray
    ) -> None:
        self._replicate_counts += count_sums
        # (terms, rows) @ (rows, replicates) multiplies C-contiguous counts, and
        # OpenBLAS ran it faster than counts.T @ block in local timing.
        self._replicate_sums += (block.T @ counts).T

    # Results.

    def estimate(self) -> float:
        """Return the point estimate of the candidate policy's value per event."""
        self._require_events(1)
        value = float(self._value(self._mean))
        if not math.isfinite(value):
            raise EstimationError(self._undefined_reason())
        return value

    def standard_error(self) -> float:
        """Return the delta-method standard error of the estimate."""
        self._require_events(2)
        covariance = self._comoment / (self._count - 1)
        gradient = self._gradient(self._mean)
        variance = float(gradient @ covariance @ gradient) / self._count
        return math.sqrt(max(variance, 0.0))

    def replicate_estimates(self) -> FloatArray:
        """Return the estimate of each bootstrap replicate, NaN where it is undefined."""
        means = np.full_like(self._replicate_sums, np.nan)
        filled = self._replicate_counts > 0
        means[filled] = self._replicate_sums[filled] / self._replicate_counts[filled, None]
        with np.errstate(divide="ignore", invalid="ignore"):
            values: FloatArray = self._value(means)
        return values

    def interval(self, method: IntervalMethod = "bootstrap", level: float = 0.95) -> Estimate:
        """Return the estimate with a two-sided confidence interval.

        ``bootstrap`` takes the percentile interval of the replicates that are
        defined; ``normal`` uses the delta-method standard error.
        """
        value = self.estimate()
        if method == "bootstrap":
            if self.replicates == 0:
                raise EstimationError(
                    f"{self.name}: no bootstrap replicates are kept (replicates=0); "
                    "use the normal interval or create the estimator with replicates > 0"
                )
            low, high = percentile_interval(self.replicate_estimates(), level)
        elif method == "normal":
            low, high = normal_interval(value, self.standard_error(), level)
        else:
            raise InvalidInputError("method", f"must be 'bootstrap' or 'normal', got {method!r}")
        return Estimate(
            estimator=self.name,
            value=value,
            ci_low=low,
            ci_high=high,
            method=method,
            level=level,
            diagnostics=self.diagnostics(),
        )

    def diagnostics(self) -> Diagnostics:
        """Return the importance-weight diagnostics of the accumulated events."""
        return self._weights.result()

    def _require_events(self, minimum: int) -> None:
        if self._count < minimum:
            noun = "event" if minimum == 1 else "events"
            raise EstimationError(
                f"{self.name}: needs at least {minimum} {noun}, got {self._count}"
            )

    def _undefined_reason(self) -> str:
        return f"{self.name}: the estimate is undefined for the events accumulated"

    def __repr__(self) -> str:
        settings = ", ".join(f"{key}={value!r}" for key, value in self._settings().items())
        return f"{type(self).__name__}({settings}) with {self._count} events"


def update_all(
    estimators: Sequence[OffPolicyEstimator],
    chunk: EstimatorInput,
    *,
    first_row: int | None = None,
) -> None:
    """Add ``chunk`` to every estimator, as ``update`` does for each one.

    The bootstrap counts dominate the cost of an update, so they are drawn once
    per block of rows for all estimators that share the seed, the number of
    replicates and the first row. Every estimator is checked before any is
    changed, so an error leaves them all as they were.
    """
    if len({id(estimator) for estimator in estimators}) != len(estimators):
        raise InvalidInputError("estimators", "contains the same estimator more than once")
    starts = [estimator._start_row(chunk, first_row) for estimator in estimators]
    if len(chunk) == 0:
        return
    terms = [
        estimator._add_chunk(chunk, start)
        for estimator, start in zip(estimators, starts, strict=True)
    ]

    for offset in range(0, len(chunk), _BLOCK_ROWS):
        stop = min(offset + _BLOCK_ROWS, len(chunk))
        counts_by_key: dict[tuple[int, int, int], tuple[FloatArray, FloatArray]] = {}
        for estimator, start, estimator_terms in zip(estimators, starts, terms, strict=True):
            if estimator.replicates == 0:
                continue
            key = (estimator.seed, estimator.replicates, start + offset)
            if key not in counts_by_key:
                counts = poisson_weights(
                    estimator.seed, start + offset, stop - offset, estimator.replicates
                )
                counts_by_key[key] = (counts, counts.sum(axis=0))
            counts, count_sums = counts_by_key[key]
            estimator._add_replicate_block(counts, count_sums, estimator_terms[offset:stop])


def _add_range(ranges: list[tuple[int, int]], new: tuple[int, int]) -> list[tuple[int, int]]:
    """Return the sorted, coalesced union of ``ranges`` and ``new``, or raise if they overlap."""
    start, stop = new
    for existing_start, existing_stop in ranges:
        if start < existing_stop and existing_start < stop:
            raise InvalidInputError(
                "first_row",
                f"rows {max(start, existing_start)}..{min(stop, existing_stop) - 1} were "
                "already added; give each chunk its own first_row so that bootstrap "
                "counts are not reused",
            )

    merged: list[tuple[int, int]] = []
    for current in sorted([*ranges, new]):
        if merged and merged[-1][1] == current[0]:
            merged[-1] = (merged[-1][0], current[1])
        else:
            merged.append(current)
    return merged

