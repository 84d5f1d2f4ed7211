"""pandera validation of logged-bandit frames: reject or quarantine, never drop silently."""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
import pytest

from bandit.errors import InvalidInputError
from replay.schemas import (
    REASON_COLUMN,
    InvalidLogError,
    logged_bandit_schema,
    obd_affinity_column,
    obd_schema,
    validate_log,
)


def count_frame(rows: int = 4) -> pd.DataFrame:
    """Return a valid frame of the "count" action-set layout with a distribution."""
    distribution = [0.5, 0.25, 0.25]
    actions = [index % 3 for index in range(rows)]
    return pd.DataFrame(
        {
            "timestamp": ["2024-03-01T10:00:00+00:00"] * rows,
            "action": actions,
            "n_actions": [3] * rows,
            "propensity": [distribution[action] for action in actions],
            "reward": [float(index % 4) - 1.0 for index in range(rows)],
            "probabilities": [distribution] * rows,
        },
        index=[f"e{index}" for index in range(rows)],
    )


def list_frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "timestamp": pd.to_datetime(["2024-03-01 10:00", "2024-03-01 11:00"], utc=True),
            "action": ["coffee/email", "tea/push"],
            "actions": [["coffee/email", "tea/push"], ["coffee/email", "tea/push"]],
            "propensity": [0.8, 0.2],
            "reward": [0.0, 1.0],
            "probabilities": [[0.8, 0.2], [0.8, 0.2]],
        }
    )


def test_valid_frame_passes() -> None:
    frame = count_frame()

    result = validate_log(frame, logged_bandit_schema(distribution=True))

    assert result.report.n_invalid == 0
    assert result.report.summary() == "all 4 rows are valid"
    assert len(result.valid) == 4
    assert result.quarantined.empty


def test_action_list_layout_passes() -> None:
    result = validate_log(list_frame(), logged_bandit_schema(action_set="list", distribution=True))

    assert len(result.valid) == 2


BAD_CELLS: list[tuple[str, Any, str]] = [
    ("propensity", 0.0, "propensity must be in (0, 1]"),
    ("propensity", 1.2, "propensity must be in (0, 1]"),
    ("propensity", math.nan, "propensity must be in (0, 1]"),
    ("propensity", "high", "propensity must be in (0, 1]"),
    ("reward", math.inf, "reward must be a finite number"),
    ("reward", None, "reward must be a finite number"),
    ("timestamp", "yesterday", "timestamp must be an ISO 8601 date and time"),
    ("timestamp", None, "timestamp must be an ISO 8601 date and time"),
    ("action", 3, "action must be less than n_actions"),
    ("action", -1, "action must be an integer >= 0"),
    ("action", 1.5, "action must be an integer >= 0"),
    ("n_actions", 0, "n_actions must be an integer >= 1"),
    (
        "probabilities",
        [0.5, 0.25, 0.2],
        "probabilities must cover the action set, sum to 1 and match propensity",
    ),
    (
        "probabilities",
        [0.5, 0.5],
        "probabilities must cover the action set, sum to 1 and match propensity",
    ),
    (
        "probabilities",
        [0.25, 0.5, 0.25],
        "probabilities must cover the action set, sum to 1 and match propensity",
    ),
]


@pytest.mark.parametrize(("column", "value", "reason"), BAD_CELLS)
def test_bad_cell_quarantined(column: str, value: Any, reason: str) -> None:
    frame = count_frame()
    frame[column] = frame[column].astype(object)
    frame.at["e0", column] = value

    result = validate_log(
        frame, logged_bandit_schema(distribution=True), on_invalid="quarantine"
    )

    assert list(result.quarantined.index) == ["e0"]
    assert reason in result.quarantined.at["e0", REASON_COLUMN].split("; ")
    assert list(result.valid.index) == ["e1", "e2", "e3"]
    assert result.report.n_invalid == 1
    assert result.report.reasons[reason] == 1


def test_action_not_in_list_quarantined() -> None:
    frame = list_frame()
    frame.at[1, "action"] = "cake/sms"

    result = validate_log(frame, logged_bandit_schema(action_set="list"), on_invalid="quarantine")

    assert result.quarantined[REASON_COLUMN].tolist() == ["action must be one of actions"]


def test_rejection_message_pinned() -> None:
    frame = count_frame()
    frame.at["e1", "propensity"] = 0.0
    frame.at["e3", "reward"] = math.inf
    frame.at["e3", "propensity"] = 1.5

    with pytest.raises(InvalidLogError) as caught:
        validate_log(frame, logged_bandit_schema(), source="events.parquet")

    assert str(caught.value) == (
        "events.parquet: 2 of 4 rows are invalid: propensity must be in (0, 1] (2 rows); "
        "reward must be a finite number (1 row). Examples: row e1: propensity=0.0 "
        "(propensity must be in (0, 1]); row e3: propensity=1.5 (propensity must be in (0, 1])"
    )
    assert caught.value.report is not None
    assert caught.value.report.n_invalid == 2
    assert isinstance(caught.value, InvalidInputError)


def test_quarantine_keeps_every_row() -> None:
    frame = count_frame(12)
    frame.loc[["e2", "e5", "e11"], "propensity"] = 0.0

    result = validate_log(frame, logged_bandit_schema(), on_invalid="quarantine")

    assert len(result.valid) + len(result.quarantined) == len(frame)
    assert list(result.quarantined.index) == ["e2", "e5", "e11"]
    assert result.valid_mask.tolist() == [index not in (2, 5, 11) for index in range(12)]
    assert "invalid_reason" not in frame.columns


def test_examples_limited() -> None:
    frame = count_frame(12)
    frame["reward"] = math.nan

    result = validate_log(frame, logged_bandit_schema(), on_invalid="quarantine", max_examples=3)

    assert len(result.report.examples) == 3
    assert result.report.n_invalid == 12


def test_missing_column_always_raises() -> None:
    frame = count_frame().drop(columns=["reward", "n_actions"])

    with pytest.raises(InvalidLogError) as caught:
        validate_log(frame, logged_bandit_schema(), on_invalid="quarantine")

    assert str(caught.value) == (
        "log: invalid frame: column 'reward' is missing; column 'n_actions' is missing"
    )


def test_duplicate_index_labels_handled() -> None:
    frame = count_frame()
    frame.index = ["same"] * 4
    frame.iloc[2, frame.columns.get_loc("propensity")] = 0.0

    result = validate_log(frame, logged_bandit_schema(), on_invalid="quarantine")

    assert len(result.valid) == 3
    assert len(result.quarantined) == 1


def test_unknown_mode_rejected() -> None:
    with pytest.raises(InvalidInputError) as caught:
        validate_log(count_frame(), logged_bandit_schema(), on_invalid="drop")  # type: ignore[arg-type]

    assert str(caught.value) == "on_invalid: must be 'raise' or 'quarantine', got 'drop'"


def obd_frame(n_items: int = 3) -> pd.DataFrame:
    data: dict[str, Any] = {
        "timestamp": ["2019-11-24 00:00:34.762830+00:00", "2019-11-24 00:00:53+00:00"],
        "item_id": [0, 2],
        "position": [1, 3],
        "click": [0, 1],
        "propensity_score": [0.0125, 0.0125],
        "user_feature_0": ["a", "b"],
        "user_feature_1": ["c", "d"],
        "user_feature_2": ["e", "f"],
        "user_feature_3": ["g", "h"],
    }
    for item in range(n_items):
        data[obd_affinity_column(item)] = [0.0, 1.0]
    return pd.DataFrame(data)


BAD_OBD_CELLS: list[tuple[str, Any, str]] = [
    ("item_id", 3, "item_id must be an integer in [0, 2]"),
    ("position", 4, "position must be an integer in [1, 3]"),
    ("position", 0, "position must be an integer in [1, 3]"),
    ("click", 2, "click must be 0 or 1"),
    ("propensity_score", 0.0, "propensity_score must be in (0, 1]"),
    ("user_feature_2", None, "user_feature_2 must not be empty"),
    ("user-item_affinity_1", math.inf, "user-item_affinity_1 must be a finite number"),
    ("timestamp", "2019-13-45", "timestamp must be an ISO 8601 date and time"),
]


@pytest.mark.parametrize(("column", "value", "reason"), BAD_OBD_CELLS)
def test_bad_obd_cell_rejected(column: str, value: Any, reason: str) -> None:
    frame = obd_frame()
    frame[column] = frame[column].astype(object)
    frame.at[1, column] = value

    with pytest.raises(InvalidLogError) as caught:
        validate_log(frame, obd_schema(3), source="all.csv")

    assert caught.value.report is not None
    assert list(caught.value.report.reasons) == [reason]


def test_obd_missing_affinity_column() -> None:
    frame = obd_frame(n_items=2)

    with pytest.raises(InvalidLogError) as caught:
        validate_log(frame, obd_schema(3), source="all.csv")

    assert str(caught.value) == (
        "all.csv: invalid frame: column 'user-item_affinity_2' is missing"
    )
