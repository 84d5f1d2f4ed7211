"""Load the service's own decision log for replay, validated chunk by chunk.

Each chunk of joined decisions is checked with the generic logged-bandit
schema (propensity in (0, 1], logged action inside the eligible set,
distribution summing to 1 and matching the propensity, finite reward,
parseable time) before any row is used. Invalid rows are rejected or
quarantined as the caller chooses, and counted either way.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd  # type: ignore[import-untyped]  # pandas-stubs is not a dev dependency

from bandit.store.event_store import JoinedEvent, joined_event_from_row
from bandit.store.reader import iter_joined_rows
from replay.schemas import InvalidRowsReport, OnInvalid, logged_bandit_schema, validate_log

_SCHEMA = logged_bandit_schema(action_set="count", distribution=True)


@dataclasses.dataclass(frozen=True)
class LogChunk:
    """The valid events of one chunk, and what was set aside."""

    events: list[JoinedEvent]
    report: InvalidRowsReport
    quarantined: pd.DataFrame


def _parse_list(text: Any) -> list[Any] | None:
    try:
        value = json.loads(text)
    except (TypeError, ValueError):
        return None
    return value if isinstance(value, list) else None


def _frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    records = []
    for row in rows:
        probabilities = _parse_list(row["probabilities_json"])
        actions = _parse_list(row["actions_json"])
        decided_at = row["decided_at"]
        records.append(
            {
                "event_id": row["event_id"],
                "timestamp": (
                    datetime.fromtimestamp(decided_at, tz=UTC).isoformat()
                    if isinstance(decided_at, int | float)
                    else decided_at
                ),
                "action": row["chosen_index"],
                "n_actions": len(actions) if actions is not None else None,
                "propensity": row["probability"],
                "probabilities": probabilities,
                "reward": row["reward"],
            }
        )
    return pd.DataFrame.from_records(records)


def iter_store_log(
    path: str | Path,
    *,
    chunk_size: int = 5000,
    on_invalid: OnInvalid = "raise",
    decided_from: float | None = None,
    decided_before: float | None = None,
) -> Iterator[LogChunk]:
    """Yield validated chunks of the joined decisions of a store, in decision order."""
    for rows in iter_joined_rows(
        path, batch_size=chunk_size, decided_from=decided_from, decided_before=decided_before
    ):
        validated = validate_log(_frame(rows), _SCHEMA, on_invalid=on_invalid, source=str(path))
        events = [joined_event_from_row(row) for row, keep in zip(rows, validated.valid_mask, strict=True) if keep]
        yield LogChunk(events=events, report=validated.report, quarantined=validated.quarantined)
