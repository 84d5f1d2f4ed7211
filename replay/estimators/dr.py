"""Estimators that use a reward model: direct method and doubly robust variants.

Each needs the chunk's ``q_logged`` = q(x_i, a_i) and
``q_target`` = sum over a of pi(a | x_i) q(x_i, a). The reward model must not
have been fitted on the events it scores (cross-fitting), or DR loses its
guarantees.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bandit.errors import InvalidInputError
from replay.estimators.base import OffPolicyEstimator
from replay.estimators.input import EstimatorInput, FloatArray


def _q_arrays(chunk: EstimatorInput) -> tuple[FloatArray, FloatArray]:
    # OffPolicyEstimator.update has checked that the predictions are present.
    if chunk.q_logged is None or chunk.q_target is None:
        raise InvalidInputError(
            "q_logged", "is required; build the chunk with q_logged and q_target"
        )
    return chunk.q_logged, chunk.q_target


class DM(OffPolicyEstimator):
    """Direct method: the mean of q_target, the reward model's value of the candidate.

    NOTE: the intervals treat the reward model as fixed, so they leave out its
    own error and are usually much too narrow.
    """

    name = "dm"
    n_terms = 1
    needs_reward_model = True

    def _terms(self, chunk: EstimatorInput) -> FloatArray:
        _, q_target = _q_arrays(chunk)
        return q_target[:, None]

    def _value(self, means: FloatArray) -> FloatArray:
        value: FloatArray = means[..., 0]
        return value

    def _gradient(self, means: FloatArray) -> FloatArray:
        return np.ones(1)


class DR(OffPolicyEstimator):
    """Doubly robust: the mean of q_target + w_i (r_i - q_logged).

    Unbiased when either the propensities or the reward model are correct.
    """

    name = "dr"
    n_terms = 1
    needs_reward_model = True

    def _terms(self, chunk: EstimatorInput) -> FloatArray:
        q_logged, q_target = _q_arrays(chunk)
        correction = chunk.importance_weights() * (chunk.reward - q_logged)
        return (q_target + correction)[:, None]

    def _value(self, means: FloatArray) -> FloatArray:
        value: FloatArray = means[..., 0]
        return value

    def _gradient(self, means: FloatArray) -> FloatArray:
        return np.ones(1)


class SNDR(OffPolicyEstimator):
    """Self-normalised doubly robust estimator.

    The mean of q_target plus the sum of w_i (r_i - q_logged) divided by the sum
    of w_i. Undefined when every weight is 0.
    """

    name = "sndr"
    n_terms = 3
    needs_reward_model = True

    def _terms(self, chunk: EstimatorInput) -> FloatArray:
        q_logged, q_target = _q_arrays(chunk)
        weights = chunk.importance_weights()
        return np.column_stack([q_target, weights * (chunk.reward - q_logged), weights])

    def _value(self, means: FloatArray) -> FloatArray:
        with np.errstate(divide="ignore", invalid="ignore"):
            value: FloatArray = means[..., 0] + means[..., 1] / means[..., 2]
        return value

    def _gradient(self, means: FloatArray) -> FloatArray:
        _, correction, weight = means
        return np.array([1.0, 1 / weight, -correction / weight**2])

    def _undefined_reason(self) -> str:
        return (
            "sndr: the estimate is undefined because every importance weight is 0; "
            "the candidate never takes a logged action"
        )


class SwitchDR(OffPolicyEstimator):
    """Switch doubly robust: DR for events with w_i <= threshold, DM for the others.

    The mean of q_target + 1{w_i <= threshold} w_i (r_i - q_logged), as in
    Wang, Agarwal and Dudik (2017), "Optimal and Adaptive Off-policy Evaluation
    in Contextual Bandits". A threshold of infinity gives DR and 0 gives DM.
    """

    name = "switch-dr"
    n_terms = 1
    needs_reward_model = True

    def __init__(self, *, threshold: float, replicates: int = 200, seed: int = 0) -> None:
        if isinstance(threshold, bool) or not isinstance(threshold, int | float) or threshold < 0:
            raise InvalidInputError("threshold", f"must be a number >= 0, got {threshold!r}")
        super().__init__(replicates=replicates, seed=seed)
        self.threshold = threshold

    def _settings(self) -> dict[str, Any]:
        return {**super()._settings(), "threshold": self.threshold}

    def _terms(self, chunk: EstimatorInput) -> FloatArray:
        q_logged, q_target = _q_arrays(chunk)
        weights = chunk.importance_weights()
        switched_weights = np.where(weights <= self.threshold, weights, 0.0)
        return (q_target + switched_weights * (chunk.reward - q_logged))[:, None]

    def _value(self, means: FloatArray) -> FloatArray:
        value: FloatArray = means[..., 0]
        return value

    def _gradient(self, means: FloatArray) -> FloatArray:
        return np.ones(1)
