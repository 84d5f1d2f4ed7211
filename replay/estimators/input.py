"""The rows of one chunk of a logged-bandit log, as estimators consume them."""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from bandit.errors import InvalidInputError

FloatArray = npt.NDArray[np.float64]


@dataclasses.dataclass(frozen=True, eq=False)
class EstimatorInput:
    """One chunk of n logged events, validated on construction.

    Every array has shape (n,). The arrays are copied to read-only float64
    arrays, so later changes to the caller's arrays do not reach the chunk.

    Parameters
    ----------
    reward
        Observed reward r_i of the logged action; finite.
    logged_propensity
        mu(a_i | x_i): probability with which the logging policy chose the
        logged action; in (0, 1].
    target_propensity
        pi(a_i | x_i): probability that the candidate policy chooses the logged
        action; in [0, 1].
    q_logged
        Reward model prediction q(x_i, a_i) for the logged action; finite.
        Needed by DM, DR, SNDR and Switch-DR, together with ``q_target``.
    q_target
        Expected reward model prediction under the candidate,
        sum over a of pi(a | x_i) q(x_i, a); finite.
    """

    reward: FloatArray
    logged_propensity: FloatArray
    target_propensity: FloatArray
    q_logged: FloatArray | None = None
    q_target: FloatArray | None = None

    def __post_init__(self) -> None:
        reward = _as_vector("reward", self.reward)
        n = reward.shape[0]
        _require_finite("reward", reward)
        object.__setattr__(self, "reward", reward)

        logged = _as_vector("logged_propensity", self.logged_propensity, n)
        logged_valid = (logged > 0) & (logged <= 1)
        _require_valid("logged_propensity", logged, "must be in (0, 1]", logged_valid)
        object.__setattr__(self, "logged_propensity", logged)

        target = _as_vector("target_propensity", self.target_propensity, n)
        target_valid = (target >= 0) & (target <= 1)
        _require_valid("target_propensity", target, "must be in [0, 1]", target_valid)
        object.__setattr__(self, "target_propensity", target)

        if (self.q_logged is None) != (self.q_target is None):
            missing = "q_target" if self.q_target is None else "q_logged"
            raise InvalidInputError(
                missing, "is missing; give q_logged and q_target together, or neither"
            )
        for name in ("q_logged", "q_target"):
            value = getattr(self, name)
            if value is not None:
                prediction = _as_vector(name, value, n)
                _require_finite(name, prediction)
                object.__setattr__(self, name, prediction)

    def __len__(self) -> int:
        return int(self.reward.shape[0])

    @property
    def has_reward_model(self) -> bool:
        """Whether the chunk carries reward model predictions."""
        return self.q_logged is not None

    def importance_weights(self) -> FloatArray:
        """Return w_i = pi(a_i | x_i) / mu(a_i | x_i) for every event."""
        weights: FloatArray = self.target_propensity / self.logged_propensity
        return weights


def _as_vector(name: str, value: object, expected_length: int | None = None) -> FloatArray:
    try:
        array = np.array(value, dtype=np.float64, copy=True)
    except (TypeError, ValueError) as exc:
        raise InvalidInputError(name, f"expected an array of numbers: {exc}") from exc

    if array.ndim != 1:
        raise InvalidInputError(name, f"expected a 1-D array, got shape {array.shape}")
    if expected_length is not None and array.shape[0] != expected_length:
        raise InvalidInputError(
            name, f"expected {expected_length} values like reward, got {array.shape[0]}"
        )

    array.setflags(write=False)
    return array


def _require_finite(name: str, array: FloatArray) -> None:
    _require_valid(name, array, "must be finite", np.isfinite(array))


def _require_valid(
    name: str, array: FloatArray, requirement: str, valid: npt.NDArray[np.bool_]
) -> None:
    if bool(valid.all()):
        return
    index = int(np.flatnonzero(~valid)[0])
    raise InvalidInputError(name, f"{requirement}; index {index} is {float(array[index])!r}")
