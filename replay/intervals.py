"""Confidence intervals of off-policy estimates and the result type that carries them."""

from __future__ import annotations

import dataclasses
import math
from statistics import NormalDist
from typing import Any

import numpy as np
import numpy.typing as npt

from bandit.errors import BanditError, InvalidInputError
from replay.diagnostics import Diagnostics


@dataclasses.dataclass(frozen=True)
class Estimate:
    """An estimate of a policy's value per event with its confidence interval."""

    estimator: str
    value: float
    ci_low: float
    ci_high: float
    method: str
    """Interval method: ``bootstrap`` (percentile) or ``normal`` (delta method)."""
    level: float
    """Nominal coverage of the interval, such as 0.95."""
    diagnostics: Diagnostics | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict; diagnostics appear under ``diagnostics`` when present."""
        result: dict[str, Any] = {
            "value": self.value,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "method": self.method,
            "level": self.level,
        }
        if self.diagnostics is not None:
            result["diagnostics"] = self.diagnostics.to_dict()
        return result


class IntervalError(BanditError):
    """A confidence interval cannot be computed from the data given."""


def check_level(level: float) -> None:
    """Raise InvalidInputError unless 0 < level < 1."""
    if isinstance(level, bool) or not isinstance(level, int | float) or not 0 < level < 1:
        raise InvalidInputError("level", f"must be a number in (0, 1), got {level!r}")


def normal_interval(value: float, standard_error: float, level: float) -> tuple[float, float]:
    """Return value -/+ z * standard_error, with z the normal quantile of (1 + level) / 2."""
    check_level(level)
    if not math.isfinite(standard_error) or standard_error < 0:
        raise IntervalError(f"standard error must be finite and >= 0, got {standard_error!r}")

    z = NormalDist().inv_cdf((1 + level) / 2)
    return value - z * standard_error, value + z * standard_error


def percentile_interval(
    replicates: npt.ArrayLike, level: float, *, min_defined: int = 10
) -> tuple[float, float]:
    """Return the (1 - level) / 2 and (1 + level) / 2 quantiles of the bootstrap replicates.

    Replicates that are NaN (an estimate undefined on that resample, such as a
    self-normalised estimate whose resample has no positive weight) are left
    out. At least ``min_defined`` replicates must remain.
    """
    check_level(level)
    values = np.asarray(replicates, dtype=np.float64)
    defined = values[np.isfinite(values)]
    if defined.size < min_defined:
        raise IntervalError(
            f"only {defined.size} of {values.size} bootstrap replicates are defined; "
            f"need at least {min_defined}"
        )

    alpha = 1 - level
    low, high = np.quantile(defined, [alpha / 2, 1 - alpha / 2])
    return float(low), float(high)
