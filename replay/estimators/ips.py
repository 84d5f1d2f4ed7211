"""Inverse propensity scoring and its self-normalised form."""

from __future__ import annotations

from typing import Any

import numpy as np

from bandit.errors import InvalidInputError
from replay.estimators.base import OffPolicyEstimator
from replay.estimators.input import EstimatorInput, FloatArray


class IPS(OffPolicyEstimator):
    """Inverse propensity scoring: the mean of w_i r_i.

    Unbiased when the logging policy gives every action the candidate takes a
    positive probability. With ``max_weight`` set, each weight is clipped to
    ``min(w_i, max_weight)``, which lowers the variance and biases the estimate
    downwards for non-negative rewards.
    """

    name = "ips"
    n_terms = 1

    def __init__(
        self, *, max_weight: float | None = None, replicates: int = 200, seed: int = 0
    ) -> None:
        if max_weight is not None and (
            isinstance(max_weight, bool)
            or not isinstance(max_weight, int | float)
            or not max_weight > 0
        ):
            raise InvalidInputError("max_weight", f"must be a number > 0, got {max_weight!r}")
        super().__init__(replicates=replicates, seed=seed)
        self.max_weight = max_weight

    def _settings(self) -> dict[str, Any]:
        return {**super()._settings(), "max_weight": self.max_weight}

    def _terms(self, chunk: EstimatorInput) -> FloatArray:
        weights = chunk.importance_weights()
        if self.max_weight is not None:
            weights = np.minimum(weights, self.max_weight)
        return (weights * chunk.reward)[:, None]

    def _value(self, means: FloatArray) -> FloatArray:
        value: FloatArray = means[..., 0]
        return value

    def _gradient(self, means: FloatArray) -> FloatArray:
        return np.ones(1)


class SNIPS(OffPolicyEstimator):
    """Self-normalised IPS: sum of w_i r_i divided by sum of w_i.

    Consistent, slightly biased, and bounded by the range of the rewards.
    Undefined when every weight is 0.
    """

    name = "snips"
    n_terms = 2

    def _terms(self, chunk: EstimatorInput) -> FloatArray:
        weights = chunk.importance_weights()
        return np.column_stack([weights * chunk.reward, weights])

    def _value(self, means: FloatArray) -> FloatArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            value: FloatArray = means[..., 0] / means[..., 1]
        return value

    def _gradient(self, means: FloatArray) -> FloatArray:
        weighted_reward, weight = means
        return np.array([1 / weight, -weighted_reward / weight**2])

    def _undefined_reason(self) -> str:
        return (
            "snips: the estimate is undefined because every importance weight is 0; "
            "the candidate never takes a logged action"
        )
