"""The model registry: versioned model files, promotions and rollbacks.

Models form lineages. Lineage 0 starts with the service. Every promotion or
rollback opens a new lineage whose first model is the promoted one, and the
online learner keeps appending snapshots to the newest lineage. The service
serves the newest model of the newest lineage, so a promotion recorded by
another process (``loyalty-bandit replay promote``) is picked up by polling
``active_lineage`` without a restart.

Each write is one short ``BEGIN IMMEDIATE`` transaction, which SQLite
serialises across the service and command-line processes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from bandit.errors import ModelError, NotFoundError, StoreError
from bandit.store.schema import connect, create_tables

SOURCE_ONLINE = "online"
SOURCE_PROMOTION = "promotion"
SOURCE_IMPORT = "import"


@dataclasses.dataclass(frozen=True)
class ModelRecord:
    """A stored model version."""

    version: str
    number: int
    parent: str
    lineage: int
    source: str
    created_at: float
    path: str
    sha256: str
    join_seq_mark: int
    """Every event with a join sequence number up to this one is in the model."""
    events_learned: int
    vw_args: tuple[str, ...]


@dataclasses.dataclass(frozen=True)
class Promotion:
    """A recorded promotion or rollback."""

    id: int
    action: str
    version: str
    previous_version: str
    at: float
    report: dict[str, Any]


def _model_from_row(row: sqlite3.Row) -> ModelRecord:
    return ModelRecord(
        version=row["version"],
        number=int(row["number"]),
        parent=row["parent"] or "",
        lineage=int(row["lineage"]),
        source=row["source"],
        created_at=float(row["created_at"]),
        path=row["path"],
        sha256=row["sha256"],
        join_seq_mark=int(row["join_seq_mark"] or 0),
        events_learned=int(row["events_learned"] or 0),
        vw_args=tuple(json.loads(row["vw_args"] or "[]")),
    )


class ModelRegistry:
    """Model versions and promotions in the store's SQLite file, model bytes in files."""

    def __init__(self, db_path: str, model_dir: str | Path | None = None) -> None:
        self.db_path = db_path
        self.model_dir = Path(model_dir) if model_dir else Path(db_path).resolve().parent / "models"
        self.model_dir.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        try:
            self._connection = connect(db_path)
            self._connection.row_factory = sqlite3.Row
            create_tables(self._connection)
        except sqlite3.Error as error:
            raise StoreError(f"failed to open the model registry at {db_path!r}: {error}") from error

    def close(self) -> None:
        """Close the registry's connection."""
        with self._lock:
            self._connection.close()

    def _write_model(
        self,
        connection: sqlite3.Connection,
        model_bytes: bytes,
        *,
        parent: str,
        lineage: int,
        source: str,
        join_seq_mark: int,
        events_learned: int,
        vw_args: tuple[str, ...],
    ) -> ModelRecord:
        number = int(connection.execute("SELECT COALESCE(MAX(number), 0) + 1 FROM models").fetchone()[0])
        version = f"v{number}"
        path = self.model_dir / f"{version}.vw"
        temporary = path.with_suffix(".tmp")
        with open(temporary, "wb") as handle:
            handle.write(model_bytes)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)

        record = ModelRecord(
            version=version,
            number=number,
            parent=parent,
            lineage=lineage,
            source=source,
            created_at=time.time(),
            path=str(path),
            sha256=hashlib.sha256(model_bytes).hexdigest(),
            join_seq_mark=join_seq_mark,
            events_learned=events_learned,
            vw_args=vw_args,
        )
        connection.execute(
            "INSERT INTO models (version, number, parent, lineage, source, created_at, path, "
            "sha256, join_seq_mark, events_learned, vw_args) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (record.version, record.number, record.parent, record.lineage, record.source,
             record.created_at, record.path, record.sha256, record.join_seq_mark,
             record.events_learned, json.dumps(list(record.vw_args))),
        )
        return record

    def publish(
        self,
        model_bytes: bytes,
        *,
        parent: str,
        lineage: int,
        source: str = SOURCE_ONLINE,
        join_seq_mark: int = 0,
        events_learned: int = 0,
        vw_args: tuple[str, ...] = (),
    ) -> ModelRecord:
        """Store a new model version in ``lineage`` and return its record."""
        with self._lock:
            connection = self._connection
            try:
                connection.execute("BEGIN IMMEDIATE")
                record = self._write_model(
                    connection, model_bytes, parent=parent, lineage=lineage, source=source,
                    join_seq_mark=join_seq_mark, events_learned=events_learned, vw_args=vw_args,
                )
                connection.execute("COMMIT")
            except (sqlite3.Error, OSError) as error:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise StoreError(f"failed to publish a model: {error}") from error
        return record

    def get(self, version: str) -> ModelRecord:
        """Return the record of a version; raise ``NotFoundError`` when unknown."""
        with self._lock:
            row = self._connection.execute("SELECT * FROM models WHERE version = ?", (version,)).fetchone()
        if row is None:
            raise NotFoundError(
                f"model version {version!r} not found; list versions with 'loyalty-bandit models'"
            )
        return _model_from_row(row)

    def load_bytes(self, record: ModelRecord) -> bytes:
        """Read a model file and check it against its recorded SHA-256."""
        try:
            data = Path(record.path).read_bytes()
        except OSError as error:
            raise ModelError(f"model file {record.path!r} of version {record.version} unreadable: {error}") from error
        if hashlib.sha256(data).hexdigest() != record.sha256:
            raise ModelError(
                f"model file {record.path!r} does not match the SHA-256 recorded for {record.version}"
            )
        return data

    def list_models(self) -> list[ModelRecord]:
        """Return every model version, oldest first."""
        with self._lock:
            rows = self._connection.execute("SELECT * FROM models ORDER BY number").fetchall()
        return [_model_from_row(row) for row in rows]

    def active_lineage(self) -> int:
        """Return the id of the newest promotion or rollback, 0 when there is none."""
        with self._lock:
            row = self._connection.execute("SELECT COALESCE(MAX(id), 0) FROM promotions").fetchone()
        return int(row[0])

    def head(self, lineage: int | None = None) -> ModelRecord | None:
        """Return the newest model of ``lineage`` (default: the active one), or None."""
        if lineage is None:
            lineage = self.active_lineage()
        with self._lock:
            row = self._connection.execute(
                "SELECT * FROM models WHERE lineage = ? ORDER BY number DESC LIMIT 1", (lineage,)
            ).fetchone()
        return None if row is None else _model_from_row(row)

    def promotions(self) -> list[Promotion]:
        """Return every promotion and rollback, oldest first."""
        with self._lock:
            rows = self._connection.execute("SELECT * FROM promotions ORDER BY id").fetchall()
        return [
            Promotion(
                id=int(row["id"]),
                action=row["action"],
                version=row["version"],
                previous_version=row["previous_version"] or "",
                at=float(row["at"]),
                report=json.loads(row["report_json"] or "{}"),
            )
            for row in rows
        ]

    def _switch(self, action: str, version: str, report: dict[str, Any], join_seq_mark: int) -> Promotion:
        # An empty version opens a lineage with no model: the cold-start policy again.
        source = self.get(version) if version else None
        model_bytes = self.load_bytes(source) if source is not None else b""
        with self._lock:
            connection = self._connection
            try:
                connection.execute("BEGIN IMMEDIATE")
                lineage = int(connection.execute("SELECT COALESCE(MAX(id), 0) FROM promotions").fetchone()[0])
                row = connection.execute(
                    "SELECT version FROM models WHERE lineage = ? ORDER BY number DESC LIMIT 1", (lineage,)
                ).fetchone()
                previous = row["version"] if row is not None else ""
                now = time.time()
                cursor = connection.execute(
                    "INSERT INTO promotions (action, version, previous_version, at, report_json) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (action, version, previous, now, json.dumps(report)),
                )
                promotion_id = int(cursor.lastrowid or 0)
                if source is not None:
                    self._write_model(
                        connection, model_bytes, parent=version, lineage=promotion_id,
                        source=SOURCE_PROMOTION, join_seq_mark=join_seq_mark,
                        events_learned=source.events_learned, vw_args=source.vw_args,
                    )
                connection.execute("COMMIT")
            except (sqlite3.Error, OSError) as error:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                raise StoreError(f"failed to record the {action} of {version}: {error}") from error
        return Promotion(promotion_id, action, version, previous, now, report)

    def promote(self, version: str, report: dict[str, Any], join_seq_mark: int) -> Promotion:
        """Make ``version`` the served model, recording the gate's report.

        ``join_seq_mark`` is the newest joined event at promotion time; the
        online learner continues from the promoted model with later events.
        """
        return self._switch("promote", version, report, join_seq_mark)

    def rollback(self, join_seq_mark: int) -> Promotion:
        """Serve again the model that was served before the newest promotion.

        When that promotion replaced the cold-start policy, the cold-start
        policy is served again and learning starts over from a fresh model.
        """
        history = [p for p in self.promotions() if p.action == "promote"]
        if not history:
            raise NotFoundError("no promotion to roll back; 'loyalty-bandit replay promote' records one")
        last = history[-1]
        report = {"rolled_back_promotion": last.id, "rolled_back_version": last.version}
        return self._switch("rollback", last.previous_version, report, join_seq_mark)
