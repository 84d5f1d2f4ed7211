"""The promotion gate: promote only a candidate that clearly beats the incumbent.

The gate passes when the lower bound of the paired confidence interval of
(candidate − incumbent) exceeds ``min_lift`` and the candidate's importance
weights have an effective sample size of at least ``min_ess``. A candidate
identical to the incumbent has a lift of exactly 0 on every replicate, so it
never passes with ``min_lift >= 0``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from bandit.errors import InvalidInputError
from replay.evaluate import ESTIMATORS, Evaluation, Lift


@dataclasses.dataclass(frozen=True)
class GateConfig:
    """Thresholds of the promotion gate."""

    estimator: str = "dr"
    min_lift: float = 0.0
    """Smallest lower confidence bound of the lift that passes, in reward units."""
    min_ess: float = 100.0
    """Smallest effective sample size of the candidate's importance weights."""

    def __post_init__(self) -> None:
        if self.estimator not in ESTIMATORS:
            raise InvalidInputError("estimator", f"{self.estimator!r} unknown; use one of {sorted(ESTIMATORS)}")
        if self.min_ess < 0:
            raise InvalidInputError("min_ess", f"is {self.min_ess}; use 0 or more")


@dataclasses.dataclass(frozen=True)
class GateResult:
    """The gate's verdict and the numbers behind it."""

    passed: bool
    lift: Lift
    ess: float
    reasons: tuple[str, ...]
    config: GateConfig

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return {
            "passed": self.passed,
            "lift": self.lift.to_dict(),
            "ess": self.ess,
            "reasons": list(self.reasons),
            "config": dataclasses.asdict(self.config),
        }


def check_gate(evaluation: Evaluation, candidate: str, incumbent: str, config: GateConfig) -> GateResult:
    """Return whether ``candidate`` may replace ``incumbent``, with the reasons when not."""
    lift = evaluation.lift(candidate, incumbent, config.estimator)
    ess = evaluation.policies[candidate].accumulators[config.estimator].diagnostics().ess

    reasons: list[str] = []
    if not lift.ci_low > config.min_lift:
        reasons.append(
            f"the lower {lift.level:.0%} bound of the {config.estimator} lift is {lift.ci_low:.4g}, "
            f"not above the minimum lift {config.min_lift:.4g}"
        )
    if ess < config.min_ess:
        reasons.append(f"the effective sample size is {ess:.1f}, below the minimum {config.min_ess:.1f}")
    return GateResult(passed=not reasons, lift=lift, ess=ess, reasons=tuple(reasons), config=config)
