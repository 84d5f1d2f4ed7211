"""pandera schemas of logged-bandit frames, and validation that never drops rows silently.

``validate_log`` checks every row with pandera's lazy validation, so all
failures are collected in one pass. Invalid rows are either rejected (raise
``InvalidLogError`` with a report) or quarantined (returned separately with
the reason), as the caller chooses. Problems of the frame itself, such as a
missing column, always raise because no row can be kept or set aside for them.

The checks coerce values themselves instead of relying on column dtypes, so a
stray string in a numeric column is reported as an invalid row rather than as
a failure of the whole column.
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter
from collections.abc import Callable, Sequence
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]  # pandas-stubs is not a dev dependency
import pandera.pandas as pa
from pandera.errors import SchemaErrors

from bandit.errors import InvalidInputError

OnInvalid = Literal["raise", "quarantine"]

REASON_COLUMN = "invalid_reason"
"""Column added to quarantined rows: the failed checks, joined by "; "."""

DEFAULT_TOLERANCE = 1e-6
"""Allowed gap between a distribution's sum and 1, and between the logged propensity
and the distribution's probability of the logged action."""


@dataclasses.dataclass(frozen=True)
class LogSchema:
    """A pandera schema plus, for each row-level check over several columns, those columns.

    The columns name the values that a report shows for a failed row.
    """

    schema: pa.DataFrameSchema
    check_columns: dict[str, tuple[str, ...]]


@dataclasses.dataclass(frozen=True)
class RowFailure:
    """One failed check on one row."""

    row: Any
    """Index label of the row in the frame given."""
    reason: str
    values: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class InvalidRowsReport:
    """Failures found in a frame: the count per reason and the first few failed rows."""

    source: str
    n_rows: int
    n_invalid: int
    reasons: dict[str, int]
    """Failed check to the number of rows that failed it."""
    examples: tuple[RowFailure, ...]

    def summary(self) -> str:
        """Return a one-paragraph description for error messages and logs."""
        if self.n_invalid == 0:
            return f"all {self.n_rows} rows are valid"
        counts = "; ".join(
            f"{reason} ({count} {'row' if count == 1 else 'rows'})"
            for reason, count in self.reasons.items()
        )
        examples = "; ".join(
            f"row {failure.row}: {_format_values(failure.values)} ({failure.reason})"
            for failure in self.examples
        )
        return f"{self.n_invalid} of {self.n_rows} rows are invalid: {counts}. Examples: {examples}"


@dataclasses.dataclass(frozen=True)
class ValidatedLog:
    """Result of ``validate_log``: the valid rows, the quarantined rows and the report."""

    valid: pd.DataFrame
    quarantined: pd.DataFrame
    """Invalid rows, unchanged, plus the ``invalid_reason`` column. Empty when rejecting."""
    report: InvalidRowsReport
    valid_mask: npt.NDArray[np.bool_]
    """True at the position of each row of the frame given that passed every check."""


class InvalidLogError(InvalidInputError):
    """A logged-bandit frame has invalid rows or lacks a required column."""

    def __init__(self, source: str, message: str, report: InvalidRowsReport | None = None):
        super().__init__(source, message)
        self.report = report


def validate_log(
    frame: pd.DataFrame,
    schema: LogSchema,
    *,
    on_invalid: OnInvalid = "raise",
    source: str = "log",
    max_examples: int = 5,
) -> ValidatedLog:
    """Validate every row of ``frame`` against ``schema``.

    With ``on_invalid="raise"`` any invalid row raises ``InvalidLogError``;
    with ``"quarantine"`` the invalid rows are returned in ``quarantined``.
    ``source`` names the frame in messages, such as a file path. The frame
    itself is not modified.
    """
    if on_invalid not in ("raise", "quarantine"):
        raise InvalidInputError(
            "on_invalid", f"must be 'raise' or 'quarantine', got {on_invalid!r}"
        )

    positional = frame.reset_index(drop=True)
    try:
        schema.schema.validate(positional, lazy=True)
        failures = pd.DataFrame()
    except SchemaErrors as errors:
        failures = errors.failure_cases

    frame_problems, row_reasons = _split_failures(failures)
    if frame_problems:
        raise InvalidLogError(source, "invalid frame: " + "; ".join(frame_problems))

    report = _build_report(frame, schema, row_reasons, source, max_examples)
    if report.n_invalid and on_invalid == "raise":
        raise InvalidLogError(source, report.summary(), report)

    invalid_positions = sorted(row_reasons)
    is_invalid = np.zeros(len(frame), dtype=bool)
    is_invalid[invalid_positions] = True
    quarantined = frame.iloc[invalid_positions].copy()
    reasons = ["; ".join(row_reasons[position]) for position in invalid_positions]
    quarantined[REASON_COLUMN] = reasons
    return ValidatedLog(
        valid=frame.iloc[~is_invalid],
        quarantined=quarantined,
        report=report,
        valid_mask=~is_invalid,
    )


def _split_failures(failures: pd.DataFrame) -> tuple[list[str], dict[int, list[str]]]:
    """Return the frame-level problems, and the failed checks of each row position."""
    frame_problems: list[str] = []
    row_reasons: dict[int, list[str]] = {}
    for failure in failures.itertuples(index=False):
        reason = str(failure.check)
        if failure.index is None or pd.isna(failure.index):
            if reason == "column_in_dataframe":
                problem = f"column {failure.failure_case!r} is missing"
            else:
                problem = f"column {failure.column!r}: {reason} ({failure.failure_case})"
            if problem not in frame_problems:
                frame_problems.append(problem)
            continue

        reasons = row_reasons.setdefault(int(failure.index), [])
        if reason not in reasons:
            reasons.append(reason)
    return frame_problems, row_reasons


def _build_report(
    frame: pd.DataFrame,
    schema: LogSchema,
    row_reasons: dict[int, list[str]],
    source: str,
    max_examples: int,
) -> InvalidRowsReport:
    reason_counts: Counter[str] = Counter()
    for reasons in row_reasons.values():
        reason_counts.update(reasons)

    examples: list[RowFailure] = []
    for position in sorted(row_reasons)[:max_examples]:
        reason = row_reasons[position][0]
        columns = schema.check_columns.get(reason, ())
        values = {column: frame[column].iloc[position] for column in columns}
        examples.append(RowFailure(row=frame.index[position], reason=reason, values=values))

    return InvalidRowsReport(
        source=source,
        n_rows=len(frame),
        n_invalid=len(row_reasons),
        reasons=dict(sorted(reason_counts.items(), key=lambda item: (-item[1], item[0]))),
        examples=tuple(examples),
    )


def _format_values(values: dict[str, Any]) -> str:
    parts = []
    for column, value in values.items():
        plain = value.item() if isinstance(value, np.generic) else value
        parts.append(f"{column}={plain!r}")
    return ", ".join(parts)


# Schema builders.


class _SchemaBuilder:
    """Collects columns and checks, and the columns each check reads."""

    def __init__(self) -> None:
        self.columns: dict[str, pa.Column] = {}
        self.frame_checks: list[pa.Check] = []
        self.check_columns: dict[str, tuple[str, ...]] = {}

    def column(
        self, name: str, reason: str, valid: Callable[[pd.Series[Any]], pd.Series[bool]]
    ) -> None:
        check = pa.Check(valid, error=reason, ignore_na=False)
        self.columns[name] = pa.Column(checks=check, nullable=True, required=True)
        self.check_columns[reason] = (name,)

    def frame_check(
        self,
        columns: Sequence[str],
        reason: str,
        valid: Callable[[pd.DataFrame], pd.Series[bool]],
    ) -> None:
        required = tuple(columns)

        def guarded(frame: pd.DataFrame) -> pd.Series[bool]:
            # A missing column is reported on its own, so this check has nothing to test.
            if any(column not in frame.columns for column in required):
                return pd.Series(True, index=frame.index)
            return valid(frame)

        self.frame_checks.append(pa.Check(guarded, error=reason, ignore_na=False))
        self.check_columns[reason] = required

    def build(self) -> LogSchema:
        schema = pa.DataFrameSchema(self.columns, checks=self.frame_checks, strict=False)
        return LogSchema(schema=schema, check_columns=self.check_columns)


def _numbers(series: pd.Series[Any]) -> pd.Series[float]:
    return pd.to_numeric(series, errors="coerce").astype("float64")


def _is_probability(series: pd.Series[Any]) -> pd.Series[bool]:
    values = _numbers(series)
    return (values > 0) & (values <= 1)


def _is_finite(series: pd.Series[Any]) -> pd.Series[bool]:
    return pd.Series(np.isfinite(_numbers(series)), index=series.index)


def _is_timestamp(series: pd.Series[Any]) -> pd.Series[bool]:
    if pd.api.types.is_datetime64_any_dtype(series):
        return series.notna()
    parsed = pd.to_datetime(series, errors="coerce", utc=True, format="ISO8601")
    return parsed.notna()


def _is_integer_in(low: int, high: int | None) -> Callable[[pd.Series[Any]], pd.Series[bool]]:
    def check(series: pd.Series[Any]) -> pd.Series[bool]:
        values = _numbers(series)
        valid = (values == np.floor(values)) & (values >= low)
        if high is not None:
            valid &= values <= high
        return valid

    return check


def _sequence(value: object) -> list[Any] | None:
    if isinstance(value, list | tuple | np.ndarray):
        return list(value)
    return None


def _action_in_list(frame: pd.DataFrame) -> pd.Series[bool]:
    results = []
    for action, actions in zip(frame["action"], frame["actions"], strict=True):
        listed = _sequence(actions)
        results.append(listed is not None and action in listed)
    return pd.Series(results, index=frame.index, dtype=bool)


def _distribution_matches(
    frame: pd.DataFrame, action_set: Literal["count", "list"], tolerance: float
) -> pd.Series[bool]:
    results = []
    for row in frame.itertuples(index=False):
        results.append(_row_distribution_matches(row, action_set, tolerance))
    return pd.Series(results, index=frame.index, dtype=bool)


def _row_distribution_matches(
    row: Any, action_set: Literal["count", "list"], tolerance: float
) -> bool:
    probabilities = _sequence(row.probabilities)
    if probabilities is None:
        return False
    try:
        values = np.asarray(probabilities, dtype=np.float64)
    except (TypeError, ValueError):
        return False
    if not bool(np.all(np.isfinite(values) & (values >= 0) & (values <= 1))):
        return False
    if abs(float(values.sum()) - 1.0) > tolerance:
        return False

    if action_set == "count":
        expected_length = _numbers(pd.Series([row.n_actions])).iloc[0]
        position = _numbers(pd.Series([row.action])).iloc[0]
    else:
        actions = _sequence(row.actions) or []
        expected_length = len(actions)
        position = actions.index(row.action) if row.action in actions else math.nan
    if values.size != expected_length or not 0 <= position < values.size:
        return False

    propensity = _numbers(pd.Series([row.propensity])).iloc[0]
    return bool(abs(values[int(position)] - propensity) <= tolerance)


def logged_bandit_schema(
    *,
    action_set: Literal["count", "list"] = "count",
    distribution: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
) -> LogSchema:
    """Return the schema of a generic logged-bandit frame, one row per decision.

    Required columns: ``timestamp`` (ISO 8601 or datetime), ``action``,
    ``propensity`` in (0, 1] and a finite ``reward``. With
    ``action_set="count"`` the frame has ``n_actions`` and ``action`` is an
    integer in [0, n_actions); with ``"list"`` it has ``actions``, a list that
    contains ``action``. With ``distribution=True`` the frame also has
    ``probabilities``: one probability per action, in the order of the action
    set, summing to 1 within ``tolerance``, whose entry for the logged action
    equals ``propensity`` within ``tolerance``.
    """
    if action_set not in ("count", "list"):
        raise InvalidInputError("action_set", f"must be 'count' or 'list', got {action_set!r}")

    builder = _SchemaBuilder()
    builder.column("timestamp", "timestamp must be an ISO 8601 date and time", _is_timestamp)
    builder.column("propensity", "propensity must be in (0, 1]", _is_probability)
    builder.column("reward", "reward must be a finite number", _is_finite)

    if action_set == "count":
        builder.column("n_actions", "n_actions must be an integer >= 1", _is_integer_in(1, None))
        builder.column("action", "action must be an integer >= 0", _is_integer_in(0, None))
        builder.frame_check(
            ("action", "n_actions"),
            "action must be less than n_actions",
            lambda frame: _numbers(frame["action"]) < _numbers(frame["n_actions"]),
        )
    else:
        builder.columns["action"] = pa.Column(nullable=True, required=True)
        builder.columns["actions"] = pa.Column(nullable=True, required=True)
        builder.frame_check(
            ("action", "actions"), "action must be one of actions", _action_in_list
        )

    if distribution:
        set_column = "n_actions" if action_set == "count" else "actions"
        builder.columns["probabilities"] = pa.Column(nullable=True, required=True)
        builder.frame_check(
            ("probabilities", "propensity", "action", set_column),
            "probabilities must cover the action set, sum to 1 and match propensity",
            lambda frame: _distribution_matches(frame, action_set, tolerance),
        )
    return builder.build()


OBD_USER_FEATURES = ("user_feature_0", "user_feature_1", "user_feature_2", "user_feature_3")
"""Hashed categorical user features of the Open Bandit Dataset."""


def obd_affinity_column(item: int) -> str:
    """Return the name of the Open Bandit Dataset column of the user's affinity to ``item``."""
    return f"user-item_affinity_{item}"


def obd_schema(n_items: int, len_list: int = 3) -> LogSchema:
    """Return the schema of an Open Bandit Dataset log with ``n_items`` items.

    Each row is one impression: ``item_id`` in [0, n_items), ``position`` in
    [1, len_list], ``click`` 0 or 1, ``propensity_score`` in (0, 1], an ISO 8601
    ``timestamp``, the user features and one finite affinity per item.
    """
    builder = _SchemaBuilder()
    builder.column("timestamp", "timestamp must be an ISO 8601 date and time", _is_timestamp)
    builder.column(
        "item_id",
        f"item_id must be an integer in [0, {n_items - 1}]",
        _is_integer_in(0, n_items - 1),
    )
    builder.column(
        "position",
        f"position must be an integer in [1, {len_list}]",
        _is_integer_in(1, len_list),
    )
    builder.column("click", "click must be 0 or 1", _is_integer_in(0, 1))
    builder.column("propensity_score", "propensity_score must be in (0, 1]", _is_probability)
    for name in OBD_USER_FEATURES:
        builder.column(name, f"{name} must not be empty", lambda series: series.notna())
    for item in range(n_items):
        name = obd_affinity_column(item)
        builder.column(name, f"{name} must be a finite number", _is_finite)
    return builder.build()
