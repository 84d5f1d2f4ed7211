"""The background joiner and online learner.

One thread per service closes reward windows, trains a private VW workspace
on the joined events, and publishes snapshots: it stores each one in the
registry, then swaps a fresh read-only ``VWPolicy`` into the ``PolicyHolder``.
Decide never touches the training workspace.

Learning is exactly-once relative to the stored models: a snapshot records the
join sequence number of the last event in it, and after a restart the learner
loads the newest snapshot and learns the events joined after that mark.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import vowpal_wabbit_next as vw

from bandit.config import Config
from bandit.engine import PolicyHolder
from bandit.errors import BanditError
from bandit.features import labelled_lines
from bandit.store.event_store import EventStore, JoinedEvent
from bandit.store.registry import ModelRecord, ModelRegistry
from bandit.vw_policy import ExampleCache, UniformPolicy, VWPolicy

logger = logging.getLogger(__name__)

JOIN_BATCH = 1000
"""Maximum number of reward windows closed per join step."""


class Learner:
    """Joins rewards, learns online and publishes model snapshots."""

    def __init__(
        self,
        config: Config,
        store: EventStore,
        registry: ModelRegistry,
        policies: PolicyHolder,
    ) -> None:
        self.config = config
        self.store = store
        self.registry = registry
        self.policies = policies
        self.vw_args = tuple(config.policy.vw_args())
        self.events_learned = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lineage = 0
        self._parent = ""
        self._mark = 0
        self._unpublished = 0
        self._last_publish = time.monotonic()
        self._use_workspace(vw.Workspace(list(self.vw_args)))

    def _use_workspace(self, workspace: vw.Workspace[Any]) -> None:
        self._workspace = workspace
        self._examples = ExampleCache(vw.TextFormatParser(workspace))

    def _start_fresh(self, mark: int) -> None:
        """Train a new model from the events joined after ``mark``."""
        self._use_workspace(vw.Workspace(list(self.vw_args)))
        self._parent = ""
        self._mark = mark
        self._unpublished = 0

    def restore(self) -> None:
        """Load the newest model of the active lineage and serve it, if there is one."""
        lineage = self.registry.active_lineage()
        head = self.registry.head(lineage)
        self._lineage = lineage
        if head is None:
            self._start_fresh(0 if lineage == 0 else self.store.max_join_seq())
            logger.info("no model in lineage %d: serving the cold-start policy", lineage)
        else:
            self._load(head)

    def _load(self, record: ModelRecord) -> None:
        model_bytes = self.registry.load_bytes(record)
        self._use_workspace(vw.Workspace(["--quiet"], model_data=model_bytes))
        self._parent = record.version
        self._mark = record.join_seq_mark
        self.events_learned = record.events_learned
        self._unpublished = 0
        self.policies.swap(VWPolicy(model_bytes, record.version))
        logger.info(
            "serving model %s (lineage %d, %d events learned)",
            record.version, record.lineage, record.events_learned,
        )

    def start(self) -> None:
        """Start the background thread; with learning disabled it only watches the registry."""
        self._thread = threading.Thread(target=self._run, name="learner", daemon=True)
        self._thread.start()

    @property
    def learned_through(self) -> int:
        """Join sequence number of the last event learned."""
        return self._mark

    @property
    def unpublished_events(self) -> int:
        """Events learned since the last published snapshot."""
        return self._unpublished

    def stop(self, publish: bool = True) -> None:
        """Stop the thread and, unless ``publish`` is False, publish what is not published yet.

        Calling it again does nothing. ``publish=False`` leaves the store as a
        crash would; the next start learns those events again from the log.
        """
        if self._stop.is_set():
            return
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
        if publish and self._unpublished:
            self.publish()

    def _run(self) -> None:
        poll = self.config.learner.registry_poll_seconds
        interval = self.config.learner.join_interval_seconds
        if not self.config.learner.enabled:
            interval = poll
        next_poll = time.monotonic()
        while not self._stop.is_set():
            try:
                if time.monotonic() >= next_poll:
                    self.check_registry()
                    next_poll = time.monotonic() + poll
                if self.config.learner.enabled:
                    self.step()
            except BanditError as error:
                self.errors += 1
                logger.error("learner step failed, retrying in %.1f s: %s", interval, error)
            self._stop.wait(interval)

    def check_registry(self) -> bool:
        """Follow the registry; return True when the served model changed.

        A promotion or rollback opens a new lineage, which every process
        follows. A process that does not learn itself also follows new
        snapshots of the current lineage, published by a learner running in
        another process (``loyalty-bandit learn``).
        """
        lineage = self.registry.active_lineage()
        if lineage == self._lineage:
            if self.config.learner.enabled:
                return False
            head = self.registry.head(lineage)
            if head is None or head.version == self._parent:
                return False
            self._load(head)
            return True
        head = self.registry.head(lineage)
        self._lineage = lineage
        if head is not None:
            self._load(head)
        else:
            self._start_fresh(self.store.max_join_seq())
            self.policies.swap(UniformPolicy())
        logger.info("registry changed: now lineage %d, model %s", lineage, head.version if head else "none")
        return True

    def step(self, now: float | None = None) -> int:
        """Close due windows, learn the newly joined events, publish if due; return the count learned."""
        self.store.join_closed(time.time() if now is None else now, JOIN_BATCH).result(timeout=60)

        learned = 0
        while True:
            events = self.store.joined_since(self._mark, JOIN_BATCH)
            if not events:
                break
            for event in events:
                self.learn(event)
                learned += 1
            self._mark = events[-1].join_seq

        due_by_count = self._unpublished >= self.config.learner.snapshot_every_events
        due_by_time = time.monotonic() - self._last_publish >= self.config.learner.snapshot_every_seconds
        if self._unpublished and (due_by_count or due_by_time):
            self.publish()
        return learned

    def learn(self, event: JoinedEvent) -> None:
        """Train the private workspace on one joined event."""
        lines = labelled_lines(
            event.request, event.actions, event.chosen_index, -event.reward, event.probability
        )
        self._workspace.learn_one(self._examples.labelled_event(lines, event.chosen_index))
        self.events_learned += 1
        self._unpublished += 1

    def publish(self) -> ModelRecord:
        """Store a snapshot of the training workspace and serve it."""
        model_bytes = self._workspace.serialize()
        record = self.registry.publish(
            model_bytes,
            parent=self._parent,
            lineage=self._lineage,
            join_seq_mark=self._mark,
            events_learned=self.events_learned,
            vw_args=self.vw_args,
        )
        self.policies.swap(VWPolicy(model_bytes, record.version))
        self._parent = record.version
        self._unpublished = 0
        self._last_publish = time.monotonic()
        logger.info("published model %s after %d events", record.version, self.events_learned)
        return record
