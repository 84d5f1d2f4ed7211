"""Off-policy evaluation of candidate policies on the service's own log.

Two passes over the store, chunk by chunk, so memory does not grow with the
log. The first fits the cross-fitted reward model. The second gets every
candidate's distribution over each event's eligible triples and feeds the
estimator accumulators. Every candidate sees the same events with the same
bootstrap seed and row numbers, so their bootstrap replicates are paired and a
difference between two candidates has a proper paired interval.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bandit.errors import InvalidInputError
from bandit.policy_api import Policy
from replay.estimators import DM, DR, IPS, SNDR, SNIPS, EstimatorInput, OffPolicyEstimator, update_all
from replay.intervals import Estimate, percentile_interval
from replay.reward_model import DEFAULT_INTERACTIONS, CrossFitRewardModel
from replay.schemas import InvalidRowsReport, OnInvalid
from replay.service_log import iter_store_log

ESTIMATORS: dict[str, Callable[..., OffPolicyEstimator]] = {
    "ips": IPS,
    "snips": SNIPS,
    "dm": DM,
    "dr": DR,
    "sndr": SNDR,
}

WEIGHT_SAMPLE_SIZE = 100_000
"""Importance weights kept per policy for the weight histogram of the report.

NOTE: these are the first weights of the log, not a random sample of it.
"""


@dataclasses.dataclass
class PolicyEvaluation:
    """The accumulators of one candidate policy."""

    name: str
    version: str
    accumulators: dict[str, OffPolicyEstimator]
    weight_sample: list[npt.NDArray[np.float64]] = dataclasses.field(default_factory=list)
    _sampled: int = 0

    def estimate(self, estimator: str, method: str = "bootstrap", level: float = 0.95) -> Estimate:
        """Return one estimator's value with its interval and diagnostics."""
        return self.accumulators[estimator].interval(method, level)  # type: ignore[arg-type]

    def record_weights(self, weights: npt.NDArray[np.float64], limit: int) -> None:
        """Keep importance weights for the report, up to ``limit`` in all (the first ones seen)."""
        if self._sampled < limit:
            kept = weights[: limit - self._sampled]
            self.weight_sample.append(kept)
            self._sampled += len(kept)

    def weights(self) -> npt.NDArray[np.float64]:
        """Return the kept importance weights."""
        if not self.weight_sample:
            return np.zeros(0)
        return np.concatenate(self.weight_sample)


@dataclasses.dataclass(frozen=True)
class Lift:
    """Estimated value of a candidate minus an incumbent on the same events."""

    candidate: str
    incumbent: str
    estimator: str
    value: float
    ci_low: float
    ci_high: float
    level: float

    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict."""
        return dataclasses.asdict(self)


@dataclasses.dataclass
class Evaluation:
    """The result of replaying several policies on one log."""

    source: str
    n_events: int
    n_invalid: int
    invalid_reasons: dict[str, int]
    logged_value: float
    """Mean reward of the logged decisions: the on-policy value of the logging policy."""
    policies: dict[str, PolicyEvaluation]
    level: float

    def lift(self, candidate: str, incumbent: str, estimator: str = "dr") -> Lift:
        """Return the paired bootstrap estimate of candidate minus incumbent."""
        first = self.policies[candidate].accumulators[estimator]
        second = self.policies[incumbent].accumulators[estimator]
        value = first.estimate() - second.estimate()
        differences = first.replicate_estimates() - second.replicate_estimates()
        low, high = percentile_interval(differences, self.level)
        return Lift(candidate, incumbent, estimator, value, low, high, self.level)

    def to_dict(self) -> dict[str, Any]:
        """Return estimates with bootstrap and normal intervals and diagnostics, JSON-ready."""
        policies: dict[str, Any] = {}
        for name, evaluation in self.policies.items():
            estimates: dict[str, Any] = {}
            for estimator in evaluation.accumulators:
                bootstrap = evaluation.estimate(estimator, "bootstrap", self.level)
                normal = evaluation.estimate(estimator, "normal", self.level)
                estimates[estimator] = {
                    "value": bootstrap.value,
                    "ci_low": bootstrap.ci_low,
                    "ci_high": bootstrap.ci_high,
                    "normal_ci_low": normal.ci_low,
                    "normal_ci_high": normal.ci_high,
                }
            diagnostics = next(iter(evaluation.accumulators.values())).diagnostics()
            policies[name] = {
                "version": evaluation.version,
                "estimates": estimates,
                "diagnostics": diagnostics.to_dict(),
            }
        return {
            "source": self.source,
            "n_events": self.n_events,
            "n_invalid": self.n_invalid,
            "invalid_reasons": self.invalid_reasons,
            "logged_value": self.logged_value,
            "level": self.level,
            "policies": policies,
        }


class Tally:
    """Accumulators of several policies fed chunk by chunk, with the counts of the log.

    Every policy's chunk gets the same first row number, so the bootstrap
    replicates of all policies resample the same events and are paired.
    """

    def __init__(self, versions: Mapping[str, str], estimators: Sequence[str], replicates: int, seed: int) -> None:
        unknown = [name for name in estimators if name not in ESTIMATORS]
        if unknown:
            raise InvalidInputError("estimators", f"{unknown} unknown; use some of {sorted(ESTIMATORS)}")
        if not versions:
            raise InvalidInputError("policies", "is empty; give at least one policy to evaluate")
        self.results = {
            name: PolicyEvaluation(
                name=name,
                version=version,
                accumulators={
                    estimator: ESTIMATORS[estimator](replicates=replicates, seed=seed) for estimator in estimators
                },
            )
            for name, version in versions.items()
        }
        self.n_events = 0
        self.n_invalid = 0
        self.reasons: dict[str, int] = {}
        self.reward_sum = 0.0

    def add_report(self, report: InvalidRowsReport) -> None:
        """Count the invalid rows of one chunk by reason."""
        self.n_invalid += report.n_invalid
        for reason, count in report.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count

    def add(
        self,
        *,
        rewards: npt.NDArray[np.float64],
        logged: npt.NDArray[np.float64],
        q_logged: npt.NDArray[np.float64],
        targets: Mapping[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]],
    ) -> None:
        """Feed one chunk; ``targets`` maps each policy to (pi of the logged action, expected q under pi)."""
        for name, (target, q_target) in targets.items():
            inputs = EstimatorInput(rewards, logged, target, q_logged, q_target)
            evaluation = self.results[name]
            update_all(list(evaluation.accumulators.values()), inputs, first_row=self.n_events)
            evaluation.record_weights(inputs.importance_weights(), WEIGHT_SAMPLE_SIZE)
        self.n_events += len(rewards)
        self.reward_sum += float(rewards.sum())

    def finish(self, source: str, level: float, empty_message: str) -> Evaluation:
        """Return the evaluation; raise ``InvalidInputError`` with ``empty_message`` when no event was valid."""
        if self.n_events == 0:
            raise InvalidInputError(source, empty_message)
        return Evaluation(
            source=source,
            n_events=self.n_events,
            n_invalid=self.n_invalid,
            invalid_reasons=self.reasons,
            logged_value=self.reward_sum / self.n_events,
            policies=self.results,
            level=level,
        )


def evaluate_store(
    path: str | Path,
    policies: Mapping[str, Policy],
    *,
    estimators: Sequence[str] = ("ips", "snips", "dm", "dr", "sndr"),
    folds: int = 2,
    replicates: int = 500,
    seed: int = 0,
    level: float = 0.95,
    chunk_size: int = 5000,
    on_invalid: OnInvalid = "raise",
    decided_from: float | None = None,
    decided_before: float | None = None,
    interactions: Sequence[str] = DEFAULT_INTERACTIONS,
) -> Evaluation:
    """Estimate the value of each policy on the joined decisions of a store."""
    window = {"decided_from": decided_from, "decided_before": decided_before}

    reward_model = CrossFitRewardModel(folds=folds, interactions=interactions)
    for chunk in iter_store_log(path, chunk_size=chunk_size, on_invalid=on_invalid, **window):
        reward_model.fit(chunk.events)

    tally = Tally({name: policy.version for name, policy in policies.items()}, estimators, replicates, seed)
    for chunk in iter_store_log(path, chunk_size=chunk_size, on_invalid=on_invalid, **window):
        tally.add_report(chunk.report)
        if not chunk.events:
            continue

        size = len(chunk.events)
        predictions = [reward_model.predict(event) for event in chunk.events]
        targets: dict[str, tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]] = {}
        for name, policy in policies.items():
            target = np.empty(size)
            q_target = np.empty(size)
            for row, (event, q) in enumerate(zip(chunk.events, predictions, strict=True)):
                distribution = policy.distribution(event.request, event.actions)
                target[row] = distribution[event.chosen_index]
                q_target[row] = float(np.dot(distribution, q))
            targets[name] = (target, q_target)

        tally.add(
            rewards=np.array([event.reward for event in chunk.events]),
            logged=np.array([event.probability for event in chunk.events]),
            q_logged=np.array([q[event.chosen_index] for q, event in zip(predictions, chunk.events, strict=True)]),
            targets=targets,
        )

    return tally.finish(
        str(path), level, "has no valid joined decisions to replay; let reward windows close or check --since"
    )
