"""The decide path: rules, policy, seeded draw, durable log.

``DecisionEngine.decide`` runs in the caller's thread, once per request, and
returns only after the decision is committed to the store. It takes no lock
that the learner holds: it reads the current policy from ``PolicyHolder``,
which the learner replaces by assigning a new snapshot. The two still share
Python's global interpreter lock, so a busy learner in the same process slows
Decide down (``loyalty-bandit learn`` runs it in a process of its own).
"""

from __future__ import annotations

import logging
import threading
import uuid
from concurrent.futures import Future
from datetime import UTC, datetime

import numpy as np

from bandit.config import Config
from bandit.domain import Decision, DecisionRequest
from bandit.eligibility import eligible_actions
from bandit.errors import BanditError, ConflictError, InvalidInputError, StoreError
from bandit.policy_api import Policy
from bandit.sampling import draw_for_event, sample_index
from bandit.store.event_store import EventStore, request_hash
from bandit.timing import send_time
from bandit.vw_policy import COLD_START_POLICY_NAME, UniformPolicy

logger = logging.getLogger(__name__)

STORE_TIMEOUT_SECONDS = 30.0
"""Maximum wait for the store to commit a decision before the call fails."""


class PolicyHolder:
    """The policy that Decide uses, replaced whole by the learner or a promotion.

    Reading and assigning one attribute are atomic in CPython, so a decision
    uses either the old or the new policy, never a mix.
    """

    def __init__(self, policy: Policy) -> None:
        self._policy = policy
        self.swaps = 0

    def current(self) -> Policy:
        """Return the policy to use for the next decision."""
        return self._policy

    def swap(self, policy: Policy) -> None:
        """Serve ``policy`` from the next decision on."""
        self._policy = policy
        self.swaps += 1


class DecisionEngine:
    """Turns validated requests into logged decisions."""

    def __init__(self, config: Config, store: EventStore, policies: PolicyHolder) -> None:
        self.config = config
        self.store = store
        self.policies = policies
        self.fallback = UniformPolicy()
        self.policy_failures = 0
        self._in_flight: dict[str, Future[Decision]] = {}
        self._in_flight_lock = threading.Lock()

    def decide(self, request: DecisionRequest) -> tuple[Decision, bool]:
        """Return the logged decision and whether it was replayed from an earlier call.

        A request id seen before returns the stored decision when the content
        matches, and raises ``ConflictError`` when it does not.
        """
        stored = self._stored(request)
        if stored is not None:
            return stored, True

        with self._in_flight_lock:
            running = self._in_flight.get(request.request_id)
            if running is None:
                own: Future[Decision] = Future()
                self._in_flight[request.request_id] = own
        if running is not None:
            decision = running.result(timeout=STORE_TIMEOUT_SECONDS)
            if request_hash(decision.request) != request_hash(request):
                raise _conflict(request.request_id)
            return decision, True

        try:
            decision = self._decide_new(request)
            own.set_result(decision)
            return decision, False
        except BaseException as error:
            own.set_exception(error)
            raise
        finally:
            with self._in_flight_lock:
                del self._in_flight[request.request_id]

    def _stored(self, request: DecisionRequest) -> Decision | None:
        stored_hash = self.store.stored_request_hash(request.request_id)
        if stored_hash is None:
            return None
        if stored_hash != request_hash(request):
            raise _conflict(request.request_id)
        return self.store.find_by_request_id(request.request_id)

    def _decide_new(self, request: DecisionRequest) -> Decision:
        eligibility = eligible_actions(request)
        actions = eligibility.actions
        limit = self.config.limits.max_actions
        if len(actions) > limit:
            raise InvalidInputError(
                "offers",
                f"the request expands to {len(actions)} eligible (offer, channel, slot) triples, "
                f"more than the limit of {limit}; send fewer offers, channels or slots",
            )

        policy = self.policies.current()
        try:
            probabilities = policy.distribution(request, actions)
        except BanditError as error:
            # NOTE: a failing model degrades to uniform, and the decision logs that policy.
            self.policy_failures += 1
            logger.error("policy %s %s failed, serving uniform: %s", policy.name, policy.version, error)
            policy = self.fallback
            probabilities = policy.distribution(request, actions)

        event_id = uuid.uuid4().hex
        draw = draw_for_event(event_id, self.config.policy.seed)
        index = sample_index(probabilities, draw)
        chosen = actions[index]
        if policy.name == COLD_START_POLICY_NAME:
            exploratory = True
        else:
            exploratory = bool(probabilities[index] < float(np.max(probabilities)))

        slot = self.config.catalog.slot(chosen.slot)
        decision = Decision(
            event_id=event_id,
            request=request,
            actions=actions,
            probabilities=tuple(float(p) for p in probabilities),
            chosen_index=index,
            draw=draw,
            policy=policy.name,
            model_version=policy.version,
            exploratory=exploratory,
            send_at=send_time(slot, request.request_time, request.time_zone),
            decided_at=datetime.now(UTC),
        )

        try:
            self.store.append_decision(decision).result(timeout=STORE_TIMEOUT_SECONDS)
        except TimeoutError as error:
            raise StoreError(
                f"the store did not commit event {event_id} within {STORE_TIMEOUT_SECONDS:.0f} s"
            ) from error
        return decision


def _conflict(request_id: str) -> ConflictError:
    return ConflictError(
        f"request_id {request_id!r} was used before with different content; "
        "send a new request_id for a new decision"
    )
