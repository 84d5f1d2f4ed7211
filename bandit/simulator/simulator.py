"""The seeded loyalty-program simulator: members, requests, true rewards and outcomes."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta

import numpy as np
import numpy.typing as npt

from bandit.config import DEFAULT_CHANNELS, DEFAULT_SLOTS, SlotSpec
from bandit.domain import DecisionRequest, Exclusion, Features, JointAction, Offer
from bandit.errors import InvalidInputError, NoEligibleActionError, NotFoundError
from bandit.policy_api import Policy
from bandit.simulator.catalog import (
    BIRTHDAY_REWARD,
    CATALOG,
    DISCOUNT_20,
    DISCOUNT_20_AVAILABILITY,
    SERVICE_RECOVERY,
)
from bandit.simulator.eligibility import eligible_actions
from bandit.simulator.history import HISTORY_DAYS, MemberHistory
from bandit.simulator.members import (
    CONSENT_CHANNELS,
    OPEN_CHANNELS,
    Member,
    generate_members,
    rfm_segment,
)
from bandit.simulator.response import ActionResponse, Outcome, ResponseModel
from bandit.timing import zone_of

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
DEFAULT_START = datetime(2024, 3, 25, 6, 0, tzinfo=UTC)
"""A Monday; Europe's clocks go forward on the following Sunday."""
BIRTHDAY_LEAD_DAYS = 14
"""The birthday reward is a candidate from this many days before the birthday to the day itself."""

FREQUENCY_CAP = "frequency_cap"
"""Exclusion reason: the member had a contact on the channel within ``frequency_cap_hours``."""
WEEKLY_CAP = "weekly_cap"
"""Exclusion reason: the member had ``weekly_cap`` contacts on the channel in the past 7 days."""
OPEN_SERVICE_TICKET = "open_service_ticket"
"""Exclusion reason of every marketing offer while the member has a service ticket open."""

_PROBABILITY_TOLERANCE = 1e-6
_MAX_MEMBER_DRAWS = 20
"""Maximum member draws per request while looking for one whose local hour is 07 to 22.

The last draw is kept either way.
"""


def daypart(hour: int) -> str:
    """Return the part of the day of a local ``hour``: morning, afternoon, evening or night."""
    if 6 <= hour < 12:
        return "morning"
    if 12 <= hour < 17:
        return "afternoon"
    if 17 <= hour < 22:
        return "evening"
    return "night"


class Simulator:
    """A seeded population of loyalty members that makes decision requests.

    Requests come from a simulated clock that starts at ``start`` and advances
    by exponential gaps, ``requests_per_day`` on average. Half of them come
    from members in proportion to how often they buy (app and POS sessions),
    the other half from any member alike (scheduled campaign runs). Members
    are mostly awake when they make requests: a member whose local hour is
    outside 07 to 22 is redrawn with probability 0.85, up to 20 draws.

    The same ``seed`` and the same calls give the same members, requests and
    outcomes. ``time_scale`` multiplies outcome delays, so ``1 / 86400``
    makes a simulated day last one second.
    """

    def __init__(
        self,
        seed: int = 0,
        n_members: int = 2000,
        *,
        start: datetime = DEFAULT_START,
        requests_per_day: float = 500.0,
        time_scale: float = 1.0,
        channels: Sequence[str] = DEFAULT_CHANNELS,
        slots: Sequence[SlotSpec] = DEFAULT_SLOTS,
        catalog: Sequence[Offer] = CATALOG,
        frequency_cap_hours: float = 24.0,
        weekly_cap: int = 3,
        response: ResponseModel | None = None,
    ) -> None:
        if n_members < 1:
            raise InvalidInputError("n_members", f"is {n_members}; use 1 or more")
        if start.tzinfo is None:
            raise InvalidInputError("start", f"{start.isoformat()} has no time zone; give an aware datetime")
        if not requests_per_day > 0:
            raise InvalidInputError("requests_per_day", f"is {requests_per_day}; use a positive number")
        if not time_scale > 0:
            raise InvalidInputError("time_scale", f"is {time_scale}; use a positive number")
        if frequency_cap_hours < 0:
            raise InvalidInputError("frequency_cap_hours", f"is {frequency_cap_hours}; use 0 or more")
        if weekly_cap < 1:
            raise InvalidInputError("weekly_cap", f"is {weekly_cap}; use 1 or more")
        if not channels or not slots or not catalog:
            raise InvalidInputError("channels, slots, catalog", "one is empty; give at least one of each")
        unknown_channels = sorted(set(channels) - set(CONSENT_CHANNELS) - set(OPEN_CHANNELS))
        if unknown_channels:
            raise InvalidInputError(
                "channels",
                f"contains {unknown_channels}; the simulator models only {list(CONSENT_CHANNELS + OPEN_CHANNELS)}",
            )

        self.seed = seed
        self.time_scale = time_scale
        self.channels = tuple(channels)
        self.slots = {slot.name: slot for slot in slots}
        self.catalog = tuple(catalog)
        self.frequency_cap_hours = frequency_cap_hours
        self.weekly_cap = weekly_cap
        self.response = response if response is not None else ResponseModel()
        self.requests_per_day = requests_per_day
        self.clock = start

        population_seed, request_seed = np.random.SeedSequence(seed).spawn(2)
        population_rng = np.random.default_rng(population_seed)
        self._rng = np.random.default_rng(request_seed)

        self.members = tuple(generate_members(n_members, population_rng))
        self._members = {member.member_id: member for member in self.members}
        self._histories = {
            member.member_id: MemberHistory.start(member, start, population_rng) for member in self.members
        }
        rates = np.array([member.purchase_rate_per_day for member in self.members])
        self._member_weights = 0.5 / n_members + 0.5 * rates / rates.sum()
        self._request_count = 0

    def member(self, member_id: str) -> Member:
        """Return the member with this id. Raises NotFoundError when absent."""
        try:
            return self._members[member_id]
        except KeyError:
            raise NotFoundError(f"member {member_id!r} is not in the simulated population") from None

    def requests(self, n: int) -> Iterator[DecisionRequest]:
        """Yield the next ``n`` requests."""
        for _ in range(n):
            yield self.next_request()

    def next_request(self) -> DecisionRequest:
        """Advance the clock and return the next member's decision request."""
        gap_days = float(self._rng.exponential(1.0 / self.requests_per_day))
        self.clock += timedelta(days=gap_days)
        member = self._draw_member()

        history = self._histories[member.member_id]
        history.advance(self.clock, self._rng)
        open_ticket = bool(self._rng.random() < member.ticket_probability)
        offers = self._candidate_offers(member, open_ticket)

        channels = tuple(channel for channel in self.channels if channel in OPEN_CHANNELS or channel in member.consents)
        exclusions = self._contact_exclusions(history, channels)
        if open_ticket:
            exclusions += tuple(
                Exclusion(offer_id=offer.id, reason=OPEN_SERVICE_TICKET)
                for offer in offers
                if offer.id != SERVICE_RECOVERY
            )

        request_id = f"sim{self.seed}-{self._request_count:07d}"
        self._request_count += 1
        return DecisionRequest(
            request_id=request_id,
            member_id=member.member_id,
            context=self._context(member, history, open_ticket),
            offers=offers,
            channels=channels,
            slots=tuple(self.slots),
            exclusions=exclusions,
            time_zone=member.time_zone,
            request_time=self.clock,
        )

    def record_decision(self, request: DecisionRequest, action: JointAction) -> None:
        """Count a served decision as a contact of the member at its send time.

        Later requests of the member then show it in their contact features,
        frequency caps and fatigue. Decisions on in-app and POS receipt count
        toward ``contacts.last_7d`` only.
        """
        response = self.responses(request, [action])[0]
        sent_at = request.request_time + timedelta(seconds=response.send_delay_seconds)
        self._histories[request.member_id].record_contact(sent_at, action.channel)

    def eligible_actions(self, request: DecisionRequest) -> list[JointAction]:
        """Return the request's eligible triples, as ``bandit.simulator.eligibility`` defines them."""
        return eligible_actions(request)

    def responses(self, request: DecisionRequest, actions: Sequence[JointAction]) -> list[ActionResponse]:
        """Return the true response distribution of each action for this request.

        Raises InvalidInputError when the request's RFM frequency or monetary
        figure differs from the member's: a sign that another simulator, or one
        with another seed, made the request.
        """
        member = self.member(request.member_id)
        rfm = request.context.get("rfm", {})
        if rfm.get("frequency") != member.frequency or rfm.get("monetary") != member.monetary:
            raise InvalidInputError(
                "context.rfm",
                f"request {request.request_id} gives member {member.member_id} frequency "
                f"{rfm.get('frequency')!r} and monetary {rfm.get('monetary')!r}, but this "
                f"simulator (seed {self.seed}) has {member.frequency!r} and {member.monetary!r}; "
                "evaluate a request with the simulator that made it",
            )
        return self.response.responses(request, actions, member, self.slots)

    def expected_reward(self, request: DecisionRequest, action: JointAction) -> float:
        """Return the true mean reward of ``action`` for ``request``."""
        return self.responses(request, [action])[0].expected_reward

    def expected_rewards(self, request: DecisionRequest, actions: Sequence[JointAction]) -> npt.NDArray[np.float64]:
        """Return the true mean reward of each action, in order."""
        responses = self.responses(request, actions)
        return np.array([response.expected_reward for response in responses], dtype=np.float64)

    def sample_outcome(self, request: DecisionRequest, action: JointAction, rng: np.random.Generator) -> Outcome:
        """Draw the outcome of serving ``action``, with its delay scaled by ``time_scale``."""
        response = self.responses(request, [action])[0]
        outcome = self.response.sample(response, self.member(request.member_id), rng)
        return Outcome(outcome.reward, outcome.outcome, outcome.delay_seconds * self.time_scale)

    def policy_value(self, policy: Policy, requests: Sequence[DecisionRequest]) -> float:
        """Return the true value of ``policy``: the mean over requests of sum_a pi(a|x) E[r|x,a].

        The policy gets the actions of ``eligible_actions``. Raises
        InvalidInputError when its distribution has the wrong length, a
        negative entry or does not sum to 1, and NoEligibleActionError when a
        request has no eligible action.
        """
        if not requests:
            raise InvalidInputError("requests", "is empty; give at least one request")
        total = 0.0
        for request in requests:
            actions = self._eligible_or_raise(request)
            probabilities = np.asarray(policy.distribution(request, actions), dtype=np.float64)
            _check_distribution(policy, request, probabilities, len(actions))
            total += float(probabilities @ self.expected_rewards(request, actions))
        return total / len(requests)

    def oracle_value(self, requests: Sequence[DecisionRequest]) -> float:
        """Return the mean over requests of the best eligible action's expected reward.

        No policy can have a higher value on these requests.
        """
        if not requests:
            raise InvalidInputError("requests", "is empty; give at least one request")
        total = 0.0
        for request in requests:
            actions = self._eligible_or_raise(request)
            total += float(self.expected_rewards(request, actions).max())
        return total / len(requests)

    def best_fixed_action(self, requests: Sequence[DecisionRequest]) -> tuple[JointAction, float]:
        """Return the triple whose fixed policy has the highest value, and that value.

        Every catalog offer x channel x slot is tried. Where the triple is not
        eligible, the fixed policy falls back to uniform over the eligible
        actions, like ``replay.policies.FixedActionPolicy`` by default.
        """
        if not requests:
            raise InvalidInputError("requests", "is empty; give at least one request")
        candidates = [
            JointAction(offer.id, channel, slot)
            for offer in self.catalog
            for channel in self.channels
            for slot in self.slots
        ]
        totals = dict.fromkeys(candidates, 0.0)
        for request in requests:
            actions = self._eligible_or_raise(request)
            rewards = self.expected_rewards(request, actions)
            by_action = dict(zip(actions, rewards.tolist(), strict=True))
            uniform = float(rewards.mean())
            for candidate in candidates:
                totals[candidate] += by_action.get(candidate, uniform)

        best = max(candidates, key=lambda candidate: totals[candidate])
        return best, totals[best] / len(requests)

    def _eligible_or_raise(self, request: DecisionRequest) -> list[JointAction]:
        actions = eligible_actions(request)
        if not actions:
            raise NoEligibleActionError(f"request {request.request_id} has no eligible action")
        return actions

    def _draw_member(self) -> Member:
        member = self.members[0]
        for _ in range(_MAX_MEMBER_DRAWS):
            index = int(self._rng.choice(len(self.members), p=self._member_weights))
            member = self.members[index]
            local_hour = self.clock.astimezone(zone_of(member.time_zone)).hour
            if 7 <= local_hour <= 22 or self._rng.random() < 0.15:
                break
        return member

    def _candidate_offers(self, member: Member, open_ticket: bool) -> tuple[Offer, ...]:
        local_date = self.clock.astimezone(zone_of(member.time_zone)).date()
        birthday_soon = _days_to_birthday(member, local_date) <= BIRTHDAY_LEAD_DAYS
        discount_20_available = bool(self._rng.random() < DISCOUNT_20_AVAILABILITY)

        offers = []
        for offer in self.catalog:
            if offer.id == SERVICE_RECOVERY and not open_ticket:
                continue
            if offer.id == BIRTHDAY_REWARD and not birthday_soon:
                continue
            if offer.id == DISCOUNT_20 and not discount_20_available:
                continue
            offers.append(offer)
        return tuple(offers)

    def _contact_exclusions(self, history: MemberHistory, channels: Sequence[str]) -> tuple[Exclusion, ...]:
        exclusions = []
        week_ago = self.clock - timedelta(days=HISTORY_DAYS)
        for channel in channels:
            if channel not in CONSENT_CHANNELS:
                continue
            last = history.last_contact(self.clock, channel)
            if last is not None and self.clock - last < timedelta(hours=self.frequency_cap_hours):
                exclusions.append(Exclusion(channel=channel, reason=FREQUENCY_CAP))
                continue
            if history.contacts_since(week_ago, self.clock, channel) >= self.weekly_cap:
                exclusions.append(Exclusion(channel=channel, reason=WEEKLY_CAP))
        return tuple(exclusions)

    def _context(self, member: Member, history: MemberHistory, open_ticket: bool) -> dict[str, Features]:
        now = self.clock
        local = now.astimezone(zone_of(member.time_zone))
        recency = history.recency_days(now)
        week_ago = now - timedelta(days=HISTORY_DAYS)

        last_contact = history.last_contact(now)
        days_since_contact = HISTORY_DAYS
        if last_contact is not None:
            days_since_contact = min(HISTORY_DAYS, (now - last_contact) / timedelta(days=1))

        contacts: dict[str, float | str] = {
            "last_7d": float(history.contacts_since(week_ago, now)),
            "days_since_last": round(days_since_contact, 2),
        }
        for channel in CONSENT_CHANNELS:
            contacts[f"{channel}_last_7d"] = float(history.contacts_since(week_ago, now, channel))

        birthday_soon = _days_to_birthday(member, local.date()) <= BIRTHDAY_LEAD_DAYS
        return {
            "profile": {
                "tier": member.tier,
                "points_balance": float(member.points_balance),
                "churn_risk": round(member.churn_risk(recency), 3),
                "device": member.device,
                "birthday_soon": "yes" if birthday_soon else "no",
            },
            "rfm": {
                "recency_days": round(recency, 1),
                "frequency": member.frequency,
                "monetary": member.monetary,
                "segment": rfm_segment(recency, member.frequency, member.monetary),
            },
            "time": {
                "local_hour": round(local.hour + local.minute / 60.0, 2),
                "weekday": WEEKDAYS[local.weekday()],
                "daypart": daypart(local.hour),
            },
            "service": {"open_ticket": "yes" if open_ticket else "no"},
            "contacts": contacts,
        }


def _days_to_birthday(member: Member, today: date) -> int:
    # Birthdays are drawn on days 1 to 28, so the date exists in every year.
    month, day = member.birthday
    birthday = date(today.year, month, day)
    if birthday < today:
        birthday = date(today.year + 1, month, day)
    return (birthday - today).days


def _check_distribution(
    policy: Policy, request: DecisionRequest, probabilities: npt.NDArray[np.float64], n_actions: int
) -> None:
    where = f"policy {policy.name!r} on request {request.request_id}"
    if probabilities.shape != (n_actions,):
        raise InvalidInputError(
            "distribution", f"{where} returned shape {probabilities.shape}; expected ({n_actions},)"
        )
    if not np.all(np.isfinite(probabilities)) or np.any(probabilities < 0):
        raise InvalidInputError("distribution", f"{where} returned a negative or non-finite probability")
    total = float(probabilities.sum())
    if not math.isclose(total, 1.0, abs_tol=_PROBABILITY_TOLERANCE):
        raise InvalidInputError("distribution", f"{where} returned probabilities summing to {total}")
