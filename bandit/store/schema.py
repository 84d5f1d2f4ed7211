"""Tables of the SQLite store, created with sqlite-utils.

Times are Unix seconds (REAL) in UTC. A decision moves from state ``pending``
to ``joined`` when its reward window closes. ``join_seq`` numbers joined
decisions in join order, and a model snapshot records the last number it
has learned.
"""

from __future__ import annotations

import sqlite3

import sqlite_utils

SCHEMA_VERSION = 1

STATE_PENDING = "pending"
STATE_JOINED = "joined"


def connect(path: str, *, timeout_seconds: float = 30.0) -> sqlite3.Connection:
    """Open a connection in WAL mode with full fsync on commit.

    ``synchronous=FULL`` makes a committed transaction survive a power loss,
    which is what "acknowledged only after durable" needs.
    """
    connection = sqlite3.connect(
        path, timeout=timeout_seconds, isolation_level=None, check_same_thread=False
    )
    connection.execute("PRAGMA journal_mode=WAL")
    connection.execute("PRAGMA synchronous=FULL")
    connection.execute(f"PRAGMA busy_timeout={int(timeout_seconds * 1000)}")
    connection.execute("PRAGMA foreign_keys=ON")
    return connection


def create_tables(connection: sqlite3.Connection) -> None:
    """Create every table and index that does not exist yet."""
    db = sqlite_utils.Database(connection)

    db.table("decisions").create(
        {
            "event_id": str,
            "request_id": str,
            "request_hash": str,
            "member_id": str,
            "decided_at": float,
            "window_closes_at": float,
            "request_json": str,
            "actions_json": str,
            "probabilities_json": str,
            "chosen_index": int,
            "offer_id": str,
            "channel": str,
            "slot": str,
            "probability": float,
            "draw": float,
            "policy": str,
            "model_version": str,
            "exploratory": int,
            "send_at": str,
            "state": str,
            "reward": float,
            "reward_count": int,
            "joined_at": float,
            "join_seq": int,
        },
        pk="event_id",
        not_null={
            "request_id",
            "request_hash",
            "decided_at",
            "window_closes_at",
            "request_json",
            "actions_json",
            "probabilities_json",
            "chosen_index",
            "probability",
            "state",
        },
        if_not_exists=True,
    )
    db.table("decisions").create_index(["request_id"], unique=True, if_not_exists=True)
    db.table("decisions").create_index(["state", "window_closes_at"], if_not_exists=True)
    db.table("decisions").create_index(["join_seq"], if_not_exists=True)

    db.table("rewards").create(
        {
            "reward_id": str,
            "event_id": str,
            "value": float,
            "outcome": str,
            "occurred_at": float,
            "received_at": float,
            "status": str,
        },
        pk="reward_id",
        foreign_keys=[("event_id", "decisions", "event_id")],
        not_null={"event_id", "value", "occurred_at", "received_at", "status"},
        if_not_exists=True,
    )
    db.table("rewards").create_index(["event_id"], if_not_exists=True)

    db.table("models").create(
        {
            "version": str,
            "number": int,
            "parent": str,
            "lineage": int,
            "source": str,
            "created_at": float,
            "path": str,
            "sha256": str,
            "join_seq_mark": int,
            "events_learned": int,
            "vw_args": str,
        },
        pk="version",
        not_null={"number", "lineage", "source", "created_at", "path", "sha256"},
        if_not_exists=True,
    )
    db.table("models").create_index(["lineage", "number"], if_not_exists=True)

    db.table("promotions").create(
        {
            "id": int,
            "action": str,
            "version": str,
            "previous_version": str,
            "at": float,
            "report_json": str,
        },
        pk="id",
        not_null={"action", "version", "at"},
        if_not_exists=True,
    )

    db.table("meta").create({"key": str, "value": str}, pk="key", if_not_exists=True)
    db.table("meta").upsert({"key": "schema_version", "value": str(SCHEMA_VERSION)}, pk="key")
