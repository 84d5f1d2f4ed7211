"""Read-only access to the joined decisions of a store, for replay and exports.

Rows come back as plain dicts so that a caller can validate them before
trusting their JSON columns.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import closing
from pathlib import Path
from typing import Any

from bandit.errors import NotFoundError, StoreError
from bandit.store.schema import STATE_JOINED

JOINED_COLUMNS = (
    "event_id, decided_at, request_json, actions_json, probabilities_json, chosen_index, "
    "probability, reward, reward_count, policy, model_version, join_seq"
)


def open_read_only(path: str | Path) -> sqlite3.Connection:
    """Open a store for reading; raise ``NotFoundError`` when the file does not exist."""
    if not Path(path).exists():
        raise NotFoundError(f"store {str(path)!r} not found; pass the path of a loyalty-bandit SQLite store")
    try:
        connection = sqlite3.connect(f"file:{Path(path).resolve()}?mode=ro", uri=True, timeout=30.0)
    except sqlite3.Error as error:
        raise StoreError(f"failed to open the store {str(path)!r}: {error}") from error
    connection.row_factory = sqlite3.Row
    return connection


def count_joined(path: str | Path) -> int:
    """Return the number of joined decisions in the store."""
    with closing(open_read_only(path)) as connection:
        row = connection.execute("SELECT COUNT(*) FROM decisions WHERE state = ?", (STATE_JOINED,)).fetchone()
    return int(row[0])


def iter_joined_rows(
    path: str | Path,
    *,
    batch_size: int = 5000,
    decided_from: float | None = None,
    decided_before: float | None = None,
) -> Iterator[list[dict[str, Any]]]:
    """Yield joined decisions in batches, in decision time order.

    ``decided_from`` and ``decided_before`` bound ``decided_at`` (Unix
    seconds, from inclusive, before exclusive), which is how a time split
    keeps training and evaluation events apart.
    """
    connection = open_read_only(path)
    try:
        low = float("-inf") if decided_from is None else decided_from
        high = float("inf") if decided_before is None else decided_before
        cursor = connection.execute(
            f"SELECT {JOINED_COLUMNS} FROM decisions WHERE state = ? AND decided_at >= ? "
            "AND decided_at < ? ORDER BY decided_at, event_id",
            (STATE_JOINED, low, high),
        )
        while True:
            rows = cursor.fetchmany(batch_size)
            if not rows:
                return
            yield [dict(row) for row in rows]
    except sqlite3.Error as error:
        raise StoreError(f"failed to read the store {str(path)!r}: {error}") from error
    finally:
        connection.close()


def split_time(path: str | Path, fraction: float) -> float:
    """Return the ``decided_at`` before which ``fraction`` of the joined decisions lie."""
    total = count_joined(path)
    if total < 2:
        raise NotFoundError(f"store {str(path)!r} has {total} joined decisions; a time split needs at least 2")
    offset = min(max(int(total * fraction), 1), total - 1)
    with closing(open_read_only(path)) as connection:
        row = connection.execute(
            "SELECT decided_at FROM decisions WHERE state = ? ORDER BY decided_at, event_id LIMIT 1 OFFSET ?",
            (STATE_JOINED, offset),
        ).fetchone()
    return float(row[0])


def max_join_seq(path: str | Path) -> int:
    """Return the newest join sequence number of the store, 0 when nothing is joined."""
    with closing(open_read_only(path)) as connection:
        row = connection.execute("SELECT COALESCE(MAX(join_seq), 0) FROM decisions").fetchone()
    return int(row[0])
