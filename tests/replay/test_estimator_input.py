"""EstimatorInput validation: every bad array is rejected with a message naming it."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from bandit.errors import InvalidInputError
from replay.estimators import DM, EstimatorInput

GOOD: dict[str, Any] = {
    "reward": [1.0, 0.0, 1.0],
    "logged_propensity": [0.5, 0.25, 1.0],
    "target_propensity": [1.0, 0.0, 0.5],
    "q_logged": [0.4, 0.1, 0.9],
    "q_target": [0.3, 0.2, 0.8],
}

BAD_INPUTS = [
    ("reward", [1.0, 0.0, math.nan], "reward: must be finite; index 2 is nan"),
    ("reward", [1.0, math.inf, 0.0], "reward: must be finite; index 1 is inf"),
    ("reward", [[1.0, 0.0, 1.0]], "reward: expected a 1-D array, got shape (1, 3)"),
    (
        "reward",
        ["a", 0.0, 1.0],
        "reward: expected an array of numbers: could not convert string to float: 'a'",
    ),
    (
        "logged_propensity",
        [0.5, 0.0, 1.0],
        "logged_propensity: must be in (0, 1]; index 1 is 0.0",
    ),
    (
        "logged_propensity",
        [0.5, 0.25, 1.5],
        "logged_propensity: must be in (0, 1]; index 2 is 1.5",
    ),
    (
        "logged_propensity",
        [math.nan, 0.25, 1.0],
        "logged_propensity: must be in (0, 1]; index 0 is nan",
    ),
    (
        "logged_propensity",
        [0.5, 0.25],
        "logged_propensity: expected 3 values like reward, got 2",
    ),
    (
        "target_propensity",
        [-0.1, 0.0, 0.5],
        "target_propensity: must be in [0, 1]; index 0 is -0.1",
    ),
    (
        "target_propensity",
        [1.0, 0.0, 1.0000001],
        "target_propensity: must be in [0, 1]; index 2 is 1.0000001",
    ),
    ("q_logged", [0.4, math.nan, 0.9], "q_logged: must be finite; index 1 is nan"),
    ("q_target", [0.3, 0.2, -math.inf], "q_target: must be finite; index 2 is -inf"),
    ("q_target", [0.3, 0.2, 0.1, 0.0], "q_target: expected 3 values like reward, got 4"),
    ("q_target", None, "q_target: is missing; give q_logged and q_target together, or neither"),
    ("q_logged", None, "q_logged: is missing; give q_logged and q_target together, or neither"),
]


@pytest.mark.parametrize(("field", "value", "message"), BAD_INPUTS)
def test_bad_array_rejected(field: str, value: Any, message: str) -> None:
    arrays = {**GOOD, field: value}

    with pytest.raises(InvalidInputError) as caught:
        EstimatorInput(**arrays)

    assert str(caught.value) == message
    assert caught.value.field == field


def test_boundary_values_accepted() -> None:
    chunk = EstimatorInput(
        reward=[-5.0, 0.0, 7.5],
        logged_propensity=[1e-6, 1.0, 1.0],
        target_propensity=[0.0, 1.0, 0.0],
    )

    assert len(chunk) == 3
    assert not chunk.has_reward_model
    np.testing.assert_array_equal(chunk.importance_weights(), [0.0, 1.0, 0.0])


def test_empty_chunk_accepted() -> None:
    chunk = EstimatorInput(reward=[], logged_propensity=[], target_propensity=[])

    assert len(chunk) == 0


def test_arrays_copied_and_read_only() -> None:
    reward = np.array([1.0, 0.0])
    chunk = EstimatorInput(
        reward=reward, logged_propensity=np.array([0.5, 0.5]), target_propensity=[1.0, 0.0]
    )

    reward[0] = 99.0

    assert chunk.reward[0] == 1.0
    with pytest.raises(ValueError, match="read-only"):
        chunk.reward[0] = 2.0


def test_reward_model_estimator_needs_predictions() -> None:
    chunk = EstimatorInput(reward=[1.0], logged_propensity=[0.5], target_propensity=[1.0])

    with pytest.raises(InvalidInputError) as caught:
        DM().update(chunk)

    assert str(caught.value) == (
        "q_logged: is required by dm; build the chunk with q_logged and q_target"
    )
