"""Diagnostics of the importance weights behind an off-policy estimate.

The weights w_i = pi(a_i | x_i) / mu(a_i | x_i) decide how well a log can
estimate a candidate policy's value. A low effective sample size or a few huge
weights mean a wide or unreliable estimate. Events whose logged action the
candidate never takes (w_i = 0) carry no information for IPS.

Quantiles come from a logarithmic sketch in the manner of DDSketch (Masson,
Rim and Lee, 2019): positive weights are counted in bins whose bounds grow by a
factor gamma = (1 + a) / (1 - a) with a = 0.005, so a reported quantile is
within 0.5% (relative) of the exact sample quantile while memory stays fixed
and two sketches merge by adding their counts.
"""

from __future__ import annotations

import copy
import dataclasses
import math
from typing import Any

import numpy as np
import numpy.typing as npt

RELATIVE_ACCURACY = 0.005
"""Maximum relative error of a reported weight quantile."""

QUANTILES = (0.5, 0.9, 0.99)
"""Weight quantiles reported by ``Diagnostics``."""

_GAMMA = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
_LOG_GAMMA = math.log(_GAMMA)
_MAX_INDEX = math.ceil(math.log(1e12) / _LOG_GAMMA)
"""Bins cover weights in [1e-12, 1e12]; weights outside fall in the end bins, and the
reported quantile is then clamped to the exact minimum and maximum positive weight."""


@dataclasses.dataclass(frozen=True)
class Diagnostics:
    """Summary of the importance weights of the events behind an estimate."""

    n: int
    """Number of events."""
    ess: float
    """Effective sample size (sum w)^2 / sum w^2, or 0 when every weight is 0."""
    max_weight: float
    weight_quantiles: dict[float, float]
    """Weight quantile for each level in ``QUANTILES``, each within 0.5% of the exact value."""
    unsupported_share: float
    """Share of events whose logged action the candidate never takes (pi(a_i | x_i) = 0)."""

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict with quantile keys ``q0.5``, ``q0.9`` and ``q0.99``."""
        quantiles = {f"q{level}": value for level, value in self.weight_quantiles.items()}
        return {
            "n": self.n,
            "ess": self.ess,
            "max_weight": self.max_weight,
            "weight_quantiles": quantiles,
            "unsupported_share": self.unsupported_share,
        }


class WeightDiagnostics:
    """Streaming, mergeable accumulator of importance-weight diagnostics."""

    def __init__(self) -> None:
        self.n = 0
        self.zero_count = 0
        self.sum_weights = 0.0
        self.sum_squared_weights = 0.0
        self.min_positive_weight = math.inf
        self.max_weight = 0.0
        self._bins = np.zeros(2 * _MAX_INDEX + 1, dtype=np.int64)

    def update(self, weights: npt.NDArray[np.float64]) -> None:
        """Add the importance weights of a chunk; each must be finite and >= 0."""
        if weights.size == 0:
            return
        self.n += int(weights.size)
        self.sum_weights += float(weights.sum())
        self.sum_squared_weights += float(np.square(weights).sum())
        self.max_weight = max(self.max_weight, float(weights.max()))

        positive = weights[weights > 0]
        self.zero_count += int(weights.size - positive.size)
        if positive.size:
            self.min_positive_weight = min(self.min_positive_weight, float(positive.min()))
            np.add.at(self._bins, _bin_indexes(positive), 1)

    def merge(self, other: WeightDiagnostics) -> WeightDiagnostics:
        """Return a new accumulator with the weights of both, leaving both unchanged."""
        merged = copy.deepcopy(self)
        merged.n += other.n
        merged.zero_count += other.zero_count
        merged.sum_weights += other.sum_weights
        merged.sum_squared_weights += other.sum_squared_weights
        merged.min_positive_weight = min(self.min_positive_weight, other.min_positive_weight)
        merged.max_weight = max(self.max_weight, other.max_weight)
        merged._bins = self._bins + other._bins
        return merged

    def quantile(self, level: float) -> float:
        """Return the weight at sorted position floor(level * (n - 1)), within 0.5%.

        That position is the one ``numpy.quantile(weights, level, method="lower")`` picks.
        Returns NaN when no weight was added.
        """
        if self.n == 0:
            return math.nan
        rank = math.floor(level * (self.n - 1))
        if rank < self.zero_count:
            return 0.0

        cumulative = np.cumsum(self._bins)
        position = int(np.searchsorted(cumulative, rank - self.zero_count, side="right"))
        index = position - _MAX_INDEX
        representative = 2 * _GAMMA**index / (_GAMMA + 1)
        return min(max(representative, self.min_positive_weight), self.max_weight)

    def result(self) -> Diagnostics:
        """Return the diagnostics of the weights added so far."""
        ess = 0.0
        if self.sum_squared_weights > 0:
            ess = self.sum_weights**2 / self.sum_squared_weights
        unsupported = self.zero_count / self.n if self.n else math.nan
        return Diagnostics(
            n=self.n,
            ess=ess,
            max_weight=self.max_weight if self.n else math.nan,
            weight_quantiles={level: self.quantile(level) for level in QUANTILES},
            unsupported_share=unsupported,
        )


def _bin_indexes(positive: npt.NDArray[np.float64]) -> npt.NDArray[np.intp]:
    # Bin i contains weights in (gamma^(i-1), gamma^i], at array offset i + _MAX_INDEX.
    indexes = np.ceil(np.log(positive) / _LOG_GAMMA).astype(np.intp)
    clipped: npt.NDArray[np.intp] = np.clip(indexes, -_MAX_INDEX, _MAX_INDEX) + _MAX_INDEX
    return clipped
