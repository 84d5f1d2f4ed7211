"""The durable decision and reward log, written with group commit.

All writes go through one writer thread. It takes every operation waiting in
its queue (up to ``max_batch``), runs each inside its own savepoint of one
transaction, commits once with a full fsync, and only then completes the
callers' futures. One failing operation rolls back its savepoint and fails
its own future; the others in the batch still commit. Because the joiner's
work runs on the same thread, a reward and the closing of its decision's
window can never interleave.

Reads (lookups by request id or event id, exports) use a separate connection
per thread, which WAL allows alongside the writer.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import Future
from datetime import UTC, datetime
from typing import Any

from bandit.domain import Decision, DecisionRequest, JointAction, action_keys
from bandit.errors import ConflictError, NotFoundError, StoreClosedError, StoreError
from bandit.store.schema import STATE_JOINED, STATE_PENDING, connect, create_tables

logger = logging.getLogger(__name__)


class RewardStatus(enum.Enum):
    """Outcome of storing a reward."""

    RECORDED = "recorded"
    DUPLICATE = "duplicate"
    LATE = "late"


@dataclasses.dataclass(frozen=True)
class RewardRecord:
    """One outcome of a decision, as sent by the caller."""

    event_id: str
    value: float
    outcome: str
    occurred_at: float
    reward_id: str = ""

    def key(self) -> str:
        """Return ``reward_id``, or a hash of the content when the caller sent none."""
        if self.reward_id:
            return self.reward_id
        content = f"{self.event_id}\x1f{self.value!r}\x1f{self.outcome}\x1f{self.occurred_at!r}"
        return "auto-" + hashlib.sha256(content.encode()).hexdigest()[:32]


@dataclasses.dataclass(frozen=True)
class JoinedEvent:
    """A decision whose reward window has closed, with its combined reward."""

    event_id: str
    request: DecisionRequest
    actions: tuple[JointAction, ...]
    probabilities: tuple[float, ...]
    chosen_index: int
    probability: float
    reward: float
    reward_count: int
    policy: str
    model_version: str
    decided_at: float
    join_seq: int


def request_hash(request: DecisionRequest) -> str:
    """Return a hash of the request content, excluding the server-filled request time."""
    record = request.to_record()
    record.pop("request_time")
    return hashlib.sha256(json.dumps(record, sort_keys=True).encode()).hexdigest()


def _combine(values: list[float], rule: str) -> float:
    if rule == "sum":
        return float(sum(values))
    if rule == "first":
        return values[0]
    if rule == "last":
        return values[-1]
    return max(values)


Operation = Callable[[sqlite3.Connection], Any]


class EventStore:
    """The decision log, reward table and join state in one SQLite file."""

    def __init__(
        self,
        path: str,
        *,
        window_seconds: float,
        default_reward: float,
        aggregation: str,
        max_batch: int = 256,
        max_delay_ms: float = 0.0,
    ) -> None:
        self.path = path
        self.window_seconds = window_seconds
        self.default_reward = default_reward
        self.aggregation = aggregation
        self._max_batch = max_batch
        self._max_delay = max_delay_ms / 1000.0
        self._local = threading.local()

        try:
            self._writer_connection = connect(path)
            create_tables(self._writer_connection)
        except sqlite3.Error as error:
            raise StoreError(f"failed to open the store at {path!r}: {error}") from error

        self._queue: queue.Queue[tuple[Operation, Future[Any]] | None] = queue.Queue()
        self._closed = threading.Event()
        self._writer = threading.Thread(target=self._write_loop, name="store-writer", daemon=True)
        self._writer.start()

    # Writer side.

    def _submit(self, operation: Operation) -> Future[Any]:
        if self._closed.is_set():
            raise StoreClosedError("the store is closed; the service is shutting down")
        future: Future[Any] = Future()
        self._queue.put((operation, future))
        return future

    def _write_loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            deadline = time.monotonic() + self._max_delay
            stop = False
            while len(batch) < self._max_batch:
                try:
                    remaining = deadline - time.monotonic()
                    more = self._queue.get(timeout=remaining) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stop = True
                    break
                batch.append(more)
            self._commit_batch(batch)
            if stop:
                return

    def _commit_batch(self, batch: list[tuple[Operation, Future[Any]]]) -> None:
        connection = self._writer_connection
        outcomes: list[tuple[Future[Any], bool, Any]] = []
        try:
            connection.execute("BEGIN IMMEDIATE")
            for operation, future in batch:
                connection.execute("SAVEPOINT op")
                try:
                    result = operation(connection)
                except Exception as error:  # Fails this operation only; see the module doc.
                    connection.execute("ROLLBACK TO op")
                    connection.execute("RELEASE op")
                    outcomes.append((future, False, error))
                else:
                    connection.execute("RELEASE op")
                    outcomes.append((future, True, result))
            connection.execute("COMMIT")
        except sqlite3.Error as error:
            logger.error("store commit of %d operations failed: %s", len(batch), error)
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            for _, future in batch:
                future.set_exception(StoreError(f"failed to commit to the store: {error}"))
            return

        for future, succeeded, value in outcomes:
            if succeeded:
                future.set_result(value)
            else:
                future.set_exception(value)

    def close(self) -> None:
        """Commit what is queued, then stop the writer and close the connection."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._queue.put(None)
        self._writer.join()
        self._writer_connection.close()

    # Decisions.

    def append_decision(self, decision: Decision) -> Future[None]:
        """Queue a decision for durable storage; the future completes after commit.

        The future fails with ``ConflictError`` when the request id is stored
        already, with other content.
        """
        request = decision.request
        row = (
            decision.event_id,
            request.request_id,
            request_hash(request),
            request.member_id,
            decision.decided_at.timestamp(),
            decision.decided_at.timestamp() + self.window_seconds,
            json.dumps(request.to_record()),
            json.dumps(action_keys(decision.actions)),
            json.dumps(list(decision.probabilities)),
            decision.chosen_index,
            decision.chosen.offer_id,
            decision.chosen.channel,
            decision.chosen.slot,
            decision.probability,
            decision.draw,
            decision.policy,
            decision.model_version,
            int(decision.exploratory),
            decision.send_at.isoformat(),
            STATE_PENDING,
        )

        def insert(connection: sqlite3.Connection) -> None:
            try:
                connection.execute(
                    "INSERT INTO decisions (event_id, request_id, request_hash, member_id, "
                    "decided_at, window_closes_at, request_json, actions_json, probabilities_json, "
                    "chosen_index, offer_id, channel, slot, probability, draw, policy, "
                    "model_version, exploratory, send_at, state, reward_count) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 0)",
                    row,
                )
            except sqlite3.IntegrityError as error:
                raise ConflictError(
                    f"request_id {request.request_id!r} is stored already: {error}"
                ) from error

        return self._submit(insert)

    def _reader(self) -> sqlite3.Connection:
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = connect(self.path)
            connection.row_factory = sqlite3.Row
            self._local.connection = connection
        return connection

    def find_by_request_id(self, request_id: str) -> Decision | None:
        """Return the stored decision of this request id, or None."""
        row = self._reader().execute(
            "SELECT * FROM decisions WHERE request_id = ?", (request_id,)
        ).fetchone()
        return None if row is None else decision_from_row(row)

    def stored_request_hash(self, request_id: str) -> str | None:
        """Return the content hash stored with this request id, or None."""
        row = self._reader().execute(
            "SELECT request_hash FROM decisions WHERE request_id = ?", (request_id,)
        ).fetchone()
        return None if row is None else str(row[0])

    def get_decision(self, event_id: str) -> Decision:
        """Return the stored decision; raise ``NotFoundError`` when absent."""
        row = self._reader().execute(
            "SELECT * FROM decisions WHERE event_id = ?", (event_id,)
        ).fetchone()
        if row is None:
            raise NotFoundError(f"event_id {event_id!r} not found")
        return decision_from_row(row)

    def count(self, table: str) -> int:
        """Return the number of rows of ``decisions``, ``rewards`` or ``models``."""
        if table not in ("decisions", "rewards", "models", "promotions"):
            raise ValueError(f"unknown table {table!r}")
        return int(self._reader().execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])

    # Rewards.

    def append_reward(self, reward: RewardRecord, received_at: float) -> Future[RewardStatus]:
        """Queue a reward; the future gives its status after commit.

        Fails with ``NotFoundError`` when the event id is unknown, and with
        ``ConflictError`` when the reward id is stored with other content.
        """
        key = reward.key()

        def insert(connection: sqlite3.Connection) -> RewardStatus:
            decision = connection.execute(
                "SELECT state, window_closes_at FROM decisions WHERE event_id = ?",
                (reward.event_id,),
            ).fetchone()
            if decision is None:
                raise NotFoundError(
                    f"event_id {reward.event_id!r} not found; send the event_id of a DecideResponse"
                )
            existing = connection.execute(
                "SELECT event_id, value, outcome FROM rewards WHERE reward_id = ?", (key,)
            ).fetchone()
            if existing is not None:
                if tuple(existing) != (reward.event_id, reward.value, reward.outcome):
                    raise ConflictError(
                        f"reward_id {key!r} was stored with event_id {existing[0]!r}, value {existing[1]!r} "
                        f"and outcome {existing[2]!r}; send a new reward_id for a different reward"
                    )
                return RewardStatus.DUPLICATE

            state, closes_at = decision
            on_time = state == STATE_PENDING and reward.occurred_at <= closes_at
            status = RewardStatus.RECORDED if on_time else RewardStatus.LATE
            connection.execute(
                "INSERT INTO rewards (reward_id, event_id, value, outcome, occurred_at, "
                "received_at, status) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (key, reward.event_id, reward.value, reward.outcome, reward.occurred_at,
                 received_at, status.value),
            )
            return status

        return self._submit(insert)

    # Joining.

    def join_closed(self, now: float, limit: int = 1000) -> Future[list[JoinedEvent]]:
        """Close the windows that ended by ``now`` and return the joined events.

        A decision with no reward in its window gets the default reward;
        several rewards combine by the aggregation rule, in order of occurrence.
        """

        def join(connection: sqlite3.Connection) -> list[JoinedEvent]:
            connection.row_factory = sqlite3.Row
            try:
                rows = connection.execute(
                    "SELECT * FROM decisions WHERE state = ? AND window_closes_at <= ? "
                    "ORDER BY window_closes_at LIMIT ?",
                    (STATE_PENDING, now, limit),
                ).fetchall()
                next_seq = int(
                    connection.execute("SELECT COALESCE(MAX(join_seq), 0) FROM decisions").fetchone()[0]
                )
                joined: list[JoinedEvent] = []
                for row in rows:
                    values = [
                        float(value)
                        for (value,) in connection.execute(
                            "SELECT value FROM rewards WHERE event_id = ? AND status = ? "
                            "ORDER BY occurred_at, received_at",
                            (row["event_id"], RewardStatus.RECORDED.value),
                        )
                    ]
                    reward = _combine(values, self.aggregation) if values else self.default_reward
                    next_seq += 1
                    connection.execute(
                        "UPDATE decisions SET state = ?, reward = ?, reward_count = ?, "
                        "joined_at = ?, join_seq = ? WHERE event_id = ?",
                        (STATE_JOINED, reward, len(values), now, next_seq, row["event_id"]),
                    )
                    joined.append(
                        joined_event_from_row(row, reward=reward, reward_count=len(values), join_seq=next_seq)
                    )
                return joined
            finally:
                connection.row_factory = None

        return self._submit(join)

    def joined_since(self, join_seq: int, limit: int = 10_000) -> list[JoinedEvent]:
        """Return joined events with ``join_seq`` above the given mark, in join order."""
        rows = self._reader().execute(
            "SELECT * FROM decisions WHERE state = ? AND join_seq > ? ORDER BY join_seq LIMIT ?",
            (STATE_JOINED, join_seq, limit),
        ).fetchall()
        return [joined_event_from_row(row) for row in rows]

    def max_join_seq(self) -> int:
        """Return the highest join sequence number so far, 0 when nothing is joined."""
        row = self._reader().execute("SELECT COALESCE(MAX(join_seq), 0) FROM decisions").fetchone()
        return int(row[0])

    def iter_joined(self, batch_size: int = 5000) -> Iterator[JoinedEvent]:
        """Yield every joined event in join order, reading ``batch_size`` rows at a time."""
        mark = 0
        while True:
            events = self.joined_since(mark, batch_size)
            if not events:
                return
            yield from events
            mark = events[-1].join_seq


def decision_from_row(row: sqlite3.Row) -> Decision:
    """Rebuild a logged decision from its ``decisions`` row."""
    return Decision(
        event_id=row["event_id"],
        request=DecisionRequest.from_record(json.loads(row["request_json"])),
        actions=tuple(JointAction(*key) for key in json.loads(row["actions_json"])),
        probabilities=tuple(json.loads(row["probabilities_json"])),
        chosen_index=int(row["chosen_index"]),
        draw=float(row["draw"]),
        policy=row["policy"],
        model_version=row["model_version"] or "",
        exploratory=bool(row["exploratory"]),
        send_at=datetime.fromisoformat(row["send_at"]),
        decided_at=datetime.fromtimestamp(row["decided_at"], tz=UTC),
    )


def joined_event_from_row(
    row: sqlite3.Row | Mapping[str, Any],
    *,
    reward: float | None = None,
    reward_count: int | None = None,
    join_seq: int | None = None,
) -> JoinedEvent:
    """Rebuild a joined event from its ``decisions`` row.

    The keyword values replace the row's own, for a row read before its join was written.
    """
    return JoinedEvent(
        event_id=row["event_id"],
        request=DecisionRequest.from_record(json.loads(row["request_json"])),
        actions=tuple(JointAction(*key) for key in json.loads(row["actions_json"])),
        probabilities=tuple(float(p) for p in json.loads(row["probabilities_json"])),
        chosen_index=int(row["chosen_index"]),
        probability=float(row["probability"]),
        reward=float(row["reward"]) if reward is None else reward,
        reward_count=int(row["reward_count"] or 0) if reward_count is None else reward_count,
        policy=row["policy"] or "",
        model_version=row["model_version"] or "",
        decided_at=float(row["decided_at"]),
        join_seq=int(row["join_seq"] or 0) if join_seq is None else join_seq,
    )
