"""Tests of the loyalty-program simulator and of slot send times."""

from __future__ import annotations

import dataclasses
import math
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
import pytest

from bandit.config import DEFAULT_CHANNELS, DEFAULT_SLOTS, SlotSpec
from bandit.domain import DecisionRequest, Exclusion, JointAction, Offer
from bandit.errors import InvalidInputError, NoEligibleActionError, NotFoundError
from bandit.simulator import (
    CATALOG,
    OUTCOMES,
    SERVICE_RECOVERY,
    Simulator,
    eligible_actions,
)
from bandit.simulator.members import CONSENT_CHANNELS, OPEN_CHANNELS
from bandit.simulator.simulator import FREQUENCY_CAP, OPEN_SERVICE_TICKET
from bandit.timing import send_time
from replay.policies import FixedActionPolicy, RFMPolicy, UniformPolicy

PARIS = ZoneInfo("Europe/Paris")
NEW_YORK = ZoneInfo("America/New_York")
SLOTS = {slot.name: slot for slot in DEFAULT_SLOTS}


@pytest.fixture(scope="module")
def simulator() -> Simulator:
    return Simulator(seed=7, n_members=500)


@pytest.fixture(scope="module")
def requests(simulator: Simulator) -> list[DecisionRequest]:
    return list(simulator.requests(400))


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


# Send times ----------------------------------------------------------------


def test_send_time_offset_across_dst() -> None:
    # 01:30 in Paris on 31 March 2024; clocks jump from 02:00 to 03:00 that night.
    request_time = utc(2024, 3, 31, 0, 30)

    sent = send_time(SLOTS["in_2_hours"], request_time, "Europe/Paris")

    assert sent == request_time + timedelta(hours=2)
    assert (sent.hour, sent.minute) == (4, 30)
    assert sent.utcoffset() == timedelta(hours=2)


def test_send_time_in_dst_gap_moves_forward() -> None:
    slot = SlotSpec("night_batch", hour=2, minute=30)
    request_time = utc(2024, 3, 30, 22, 0)  # 23:00 in Paris, the evening before the gap

    sent = send_time(slot, request_time, PARIS)

    assert sent.date().isoformat() == "2024-03-31"
    assert (sent.hour, sent.minute) == (3, 30)
    assert sent.astimezone(UTC) == utc(2024, 3, 31, 1, 30)


def test_send_time_ambiguous_hour_takes_first() -> None:
    slot = SlotSpec("night_batch", hour=2, minute=30)
    request_time = utc(2024, 10, 26, 22, 0)  # Clocks go back from 03:00 to 02:00 on 27 October.

    sent = send_time(slot, request_time, PARIS)

    assert sent.astimezone(UTC) == utc(2024, 10, 27, 0, 30)
    assert sent.utcoffset() == timedelta(hours=2)


def test_send_time_next_day_across_dst() -> None:
    request_time = utc(2024, 3, 30, 11, 0)  # Saturday 12:00 in Paris, UTC+1

    sent = send_time(SLOTS["tomorrow_morning"], request_time, PARIS)

    assert sent.astimezone(UTC) == utc(2024, 3, 31, 7, 0)
    assert (sent.hour, sent.minute) == (9, 0)
    assert sent - request_time == timedelta(hours=20)


def test_send_time_new_york_spring_forward() -> None:
    request_time = utc(2024, 3, 9, 23, 0)  # 18:00 EST on Saturday 9 March

    sent = send_time(SLOTS["tomorrow_evening"], request_time, NEW_YORK)

    assert sent.astimezone(UTC) == utc(2024, 3, 10, 23, 0)
    assert sent.hour == 19
    assert sent.utcoffset() == timedelta(hours=-4)


@pytest.mark.parametrize(
    ("slot", "local_request", "expected_local"),
    [
        ("this_evening", datetime(2024, 5, 14, 10, 0), datetime(2024, 5, 14, 19, 0)),
        ("this_evening", datetime(2024, 5, 14, 19, 0), datetime(2024, 5, 14, 19, 0)),
        ("this_evening", datetime(2024, 5, 14, 19, 1), datetime(2024, 5, 15, 19, 0)),
        ("tomorrow_morning", datetime(2024, 5, 14, 23, 30), datetime(2024, 5, 15, 9, 0)),
        ("tomorrow_morning", datetime(2024, 5, 14, 0, 10), datetime(2024, 5, 15, 9, 0)),
        ("weekend", datetime(2024, 5, 13, 8, 0), datetime(2024, 5, 18, 10, 0)),
        ("weekend", datetime(2024, 5, 18, 9, 0), datetime(2024, 5, 18, 10, 0)),
        ("weekend", datetime(2024, 5, 18, 11, 0), datetime(2024, 5, 25, 10, 0)),
        ("now", datetime(2024, 5, 14, 3, 7), datetime(2024, 5, 14, 3, 7)),
    ],
)
def test_send_time_slot_rules(slot: str, local_request: datetime, expected_local: datetime) -> None:
    request_time = local_request.replace(tzinfo=PARIS).astimezone(UTC)

    sent = send_time(SLOTS[slot], request_time, "Europe/Paris")

    assert sent.replace(tzinfo=None) == expected_local
    assert sent >= request_time


def test_send_time_weekday_with_days_ahead() -> None:
    slot = SlotSpec("next_week_monday", hour=8, days_ahead=7, weekday=0)
    request_time = datetime(2024, 5, 13, 7, 0, tzinfo=PARIS)  # a Monday, before 08:00

    sent = send_time(slot, request_time, PARIS)

    assert sent.replace(tzinfo=None) == datetime(2024, 5, 20, 8, 0)


def test_send_time_tokyo_uses_local_date() -> None:
    request_time = utc(2024, 5, 14, 16, 0)  # already 01:00 on 15 May in Tokyo

    sent = send_time(SLOTS["tomorrow_morning"], request_time, "Asia/Tokyo")

    assert sent.replace(tzinfo=None) == datetime(2024, 5, 16, 9, 0)


def test_send_time_rejects_naive_time() -> None:
    with pytest.raises(InvalidInputError, match="request_time"):
        send_time(SLOTS["now"], datetime(2024, 5, 14, 10, 0), "UTC")


def test_send_time_rejects_unknown_zone() -> None:
    with pytest.raises(InvalidInputError, match="Mars/Olympus"):
        send_time(SLOTS["now"], utc(2024, 5, 14, 10, 0), "Mars/Olympus")


# Requests ------------------------------------------------------------------


def test_same_seed_same_requests_and_outcomes() -> None:
    first = Simulator(seed=3, n_members=200)
    second = Simulator(seed=3, n_members=200)

    first_requests = list(first.requests(60))
    second_requests = list(second.requests(60))
    assert [r.to_record() for r in first_requests] == [r.to_record() for r in second_requests]

    action_rng = np.random.default_rng(11)
    first_outcomes = []
    second_outcomes = []
    for first_request, second_request in zip(first_requests, second_requests, strict=True):
        actions = first.eligible_actions(first_request)
        action = actions[int(action_rng.integers(len(actions)))]
        first_outcomes.append(first.sample_outcome(first_request, action, np.random.default_rng(5)))
        second_outcomes.append(second.sample_outcome(second_request, action, np.random.default_rng(5)))
    assert first_outcomes == second_outcomes


def test_other_seed_gives_other_requests() -> None:
    first = [r.to_record() for r in Simulator(seed=3, n_members=200).requests(20)]
    second = [r.to_record() for r in Simulator(seed=4, n_members=200).requests(20)]

    assert first != second


def test_request_context_types(requests: list[DecisionRequest]) -> None:
    categorical = {
        ("profile", "tier"),
        ("profile", "device"),
        ("profile", "birthday_soon"),
        ("rfm", "segment"),
        ("time", "weekday"),
        ("time", "daypart"),
        ("service", "open_ticket"),
    }
    for request in requests:
        assert set(request.context) == {"profile", "rfm", "time", "service", "contacts"}
        for namespace, features in request.context.items():
            for name, value in features.items():
                if (namespace, name) in categorical:
                    assert isinstance(value, str), (namespace, name, value)
                else:
                    assert isinstance(value, float), (namespace, name, value)
        assert 0.0 <= float(request.context["profile"]["churn_risk"]) <= 1.0


def test_requests_follow_member_and_clock(simulator: Simulator, requests: list[DecisionRequest]) -> None:
    ids = [request.request_id for request in requests]
    assert len(set(ids)) == len(ids)

    times = [request.request_time for request in requests]
    assert times == sorted(times)
    assert times[-1] - times[0] > timedelta(hours=12)

    for request in requests:
        member = simulator.member(request.member_id)
        assert request.time_zone == member.time_zone
        assert request.slots == tuple(SLOTS)
        for channel in request.channels:
            assert channel in OPEN_CHANNELS or channel in member.consents


def test_some_members_lack_sms_or_push_consent(simulator: Simulator) -> None:
    without_sms = [m for m in simulator.members if "sms" not in m.consents]
    without_push = [m for m in simulator.members if "push" not in m.consents]

    assert len(without_sms) > 0.3 * len(simulator.members)
    assert len(without_push) > 0.3 * len(simulator.members)
    assert all("push" not in m.consents for m in simulator.members if m.device == "web")


def test_open_ticket_leaves_only_service_recovery(simulator: Simulator, requests: list[DecisionRequest]) -> None:
    with_ticket = [r for r in requests if r.context["service"]["open_ticket"] == "yes"]
    without_ticket = [r for r in requests if r.context["service"]["open_ticket"] == "no"]
    assert with_ticket, "no request with an open ticket among the fixture requests"

    for request in with_ticket:
        offers = {action.offer_id for action in simulator.eligible_actions(request)}
        assert offers == {SERVICE_RECOVERY}
        reasons = {exclusion.reason for exclusion in request.exclusions if exclusion.offer_id}
        assert reasons == {OPEN_SERVICE_TICKET}

    for request in without_ticket:
        assert SERVICE_RECOVERY not in {offer.id for offer in request.offers}


def test_eligibility_respects_exclusions_and_channels(
    requests: list[DecisionRequest],
) -> None:
    for request in requests:
        actions = eligible_actions(request)
        assert actions, request.request_id
        for action in actions:
            offer = request.offer(action.offer_id)
            assert action.channel in request.channels
            assert not offer.channels or action.channel in offer.channels
            for exclusion in request.exclusions:
                assert not exclusion.matches(action.offer_id, action.channel, action.slot)


def test_eligible_actions_on_hand_built_request() -> None:
    request = DecisionRequest(
        request_id="r1",
        member_id="m1",
        context={},
        offers=(Offer("a"), Offer("b", channels=("push", "email"))),
        channels=("email", "sms"),
        slots=("now", "weekend"),
        exclusions=(
            Exclusion(channel="sms", slot="weekend"),
            Exclusion(offer_id="b", slot="now"),
        ),
    )

    assert eligible_actions(request) == [
        JointAction("a", "email", "now"),
        JointAction("a", "email", "weekend"),
        JointAction("a", "sms", "now"),
        JointAction("b", "email", "weekend"),
    ]


def test_recorded_contact_triggers_frequency_cap() -> None:
    simulator = None
    for seed in range(50):
        candidate = Simulator(seed=seed, n_members=1, requests_per_day=200.0)
        if "sms" in candidate.members[0].consents:
            simulator = candidate
            break
    assert simulator is not None, "no single-member population with SMS consent in 50 seeds"

    first = simulator.next_request()
    action = JointAction("discount_10", "sms", "now")
    simulator.record_decision(first, action)
    second = simulator.next_request()

    assert second.request_time - first.request_time < timedelta(hours=24)
    assert Exclusion(channel="sms", reason=FREQUENCY_CAP) in second.exclusions
    assert "sms" not in {a.channel for a in simulator.eligible_actions(second)}
    first_count = float(first.context["contacts"]["sms_last_7d"])
    assert float(second.context["contacts"]["sms_last_7d"]) >= first_count + 1


@pytest.mark.parametrize(
    ("arguments", "field"),
    [
        ({"n_members": 0}, "n_members"),
        ({"requests_per_day": 0.0}, "requests_per_day"),
        ({"time_scale": -1.0}, "time_scale"),
        ({"frequency_cap_hours": -1.0}, "frequency_cap_hours"),
        ({"weekly_cap": 0}, "weekly_cap"),
        ({"start": datetime(2024, 1, 1)}, "start"),
        ({"channels": ()}, "channels"),
        ({"channels": ("email", "fax")}, "channels"),
    ],
)
def test_simulator_rejects_bad_arguments(arguments: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidInputError, match=field):
        Simulator(**{"seed": 0, "n_members": 5, **arguments})  # type: ignore[arg-type]


def test_unknown_member_raises(simulator: Simulator) -> None:
    with pytest.raises(NotFoundError, match="m999999"):
        simulator.member("m999999")


def test_request_from_other_seed_is_rejected(requests: list[DecisionRequest]) -> None:
    other = Simulator(seed=8, n_members=500)
    request = requests[0]

    with pytest.raises(InvalidInputError, match="seed 8"):
        other.expected_reward(request, other.eligible_actions(request)[0])


# Response model ------------------------------------------------------------


def with_contacts(request: DecisionRequest, **counts: float) -> DecisionRequest:
    context = {namespace: dict(features) for namespace, features in request.context.items()}
    context["contacts"].update(counts)
    return dataclasses.replace(request, context=context)


def requests_where(
    requests: list[DecisionRequest], simulator: Simulator, segments: set[str], *actions: JointAction
) -> list[DecisionRequest]:
    selected = []
    for request in requests:
        if request.context["rfm"]["segment"] not in segments:
            continue
        eligible = set(simulator.eligible_actions(request))
        if all(action in eligible for action in actions):
            selected.append(request)
    return selected


def test_offer_channel_interaction_reverses(simulator: Simulator, requests: list[DecisionRequest]) -> None:
    early_push = JointAction("early_access", "push", "this_evening")
    early_email = JointAction("early_access", "email", "this_evening")
    winback_push = JointAction("winback_bonus", "push", "this_evening")
    winback_email = JointAction("winback_bonus", "email", "this_evening")
    no_contacts = {"last_7d": 0.0, "email_last_7d": 0.0, "push_last_7d": 0.0}

    champions = requests_where(requests, simulator, {"champions", "loyal"}, early_push, early_email)
    lapsing = requests_where(requests, simulator, {"at_risk", "hibernating"}, winback_push, winback_email)
    assert len(champions) >= 5
    assert len(lapsing) >= 5

    for request in champions:
        rested = with_contacts(request, **no_contacts)
        push = simulator.expected_reward(rested, early_push)
        email = simulator.expected_reward(rested, early_email)
        assert push > email, request.request_id
    for request in lapsing:
        rested = with_contacts(request, **no_contacts)
        push = simulator.expected_reward(rested, winback_push)
        email = simulator.expected_reward(rested, winback_email)
        assert email > push, request.request_id


def test_offer_segment_effects(simulator: Simulator, requests: list[DecisionRequest]) -> None:
    winback = JointAction("winback_bonus", "email", "tomorrow_morning")
    early = JointAction("early_access", "email", "tomorrow_morning")

    def mean_reward(segment: str, action: JointAction) -> float:
        selected = requests_where(requests, simulator, {segment}, winback, early)
        assert selected, f"no {segment} request with both actions eligible"
        return float(np.mean([simulator.expected_reward(r, action) for r in selected]))

    assert mean_reward("hibernating", winback) > mean_reward("champions", winback)
    assert mean_reward("champions", early) > mean_reward("hibernating", early)
    assert mean_reward("champions", early) > mean_reward("champions", winback)
    assert mean_reward("hibernating", winback) > mean_reward("hibernating", early)


def test_night_sms_worse_than_evening(simulator: Simulator, requests: list[DecisionRequest]) -> None:
    night = [r for r in requests if r.context["time"]["daypart"] == "night"]
    checked = 0
    for request in night:
        now = JointAction("discount_10", "sms", "now")
        evening = JointAction("discount_10", "sms", "this_evening")
        if not {now, evening} <= set(simulator.eligible_actions(request)):
            continue
        now_response, evening_response = simulator.responses(request, [now, evening])
        assert now_response.unsubscribe_probability > evening_response.unsubscribe_probability
        assert now_response.expected_reward < evening_response.expected_reward
        checked += 1
    assert checked >= 1, "no night request with SMS eligible"


def test_fatigue_lowers_expected_reward(simulator: Simulator, requests: list[DecisionRequest]) -> None:
    action = JointAction("double_points", "email", "tomorrow_morning")
    selected = requests_where(requests, simulator, {"loyal", "potential", "champions"}, action)[:20]
    assert selected

    for request in selected:
        rested = with_contacts(request, last_7d=0.0, email_last_7d=0.0)
        tired = with_contacts(request, last_7d=5.0, email_last_7d=3.0)
        assert simulator.expected_reward(tired, action) < simulator.expected_reward(rested, action)


def test_expected_reward_is_spend_minus_cost(simulator: Simulator, requests: list[DecisionRequest]) -> None:
    request = requests[0]
    for response in simulator.responses(request, simulator.eligible_actions(request)):
        offer = request.offer(response.action.offer_id)
        assert response.cost == offer.cost
        expected = response.redemption_probability * (response.mean_spend - response.cost)
        expected -= response.unsubscribe_probability * response.unsubscribe_penalty
        assert math.isclose(response.expected_reward, expected)
        total = response.redemption_probability + response.unsubscribe_probability
        assert 0.0 <= total <= 1.0


def test_sample_outcome_delays_and_time_scale(requests: list[DecisionRequest]) -> None:
    real_time = Simulator(seed=7, n_members=500)
    compressed = Simulator(seed=7, n_members=500, time_scale=1 / 86400)
    request = requests[1]
    action = real_time.eligible_actions(request)[0]
    send_delay = real_time.responses(request, [action])[0].send_delay_seconds

    for draw in range(200):
        slow = real_time.sample_outcome(request, action, np.random.default_rng(draw))
        fast = compressed.sample_outcome(request, action, np.random.default_rng(draw))
        assert slow.outcome in OUTCOMES
        assert slow.outcome == fast.outcome
        assert slow.reward == fast.reward
        assert slow.delay_seconds >= send_delay
        assert math.isclose(fast.delay_seconds, slow.delay_seconds / 86400)


# Policy values -------------------------------------------------------------


def test_policy_value_matches_monte_carlo(simulator: Simulator, requests: list[DecisionRequest]) -> None:
    policy = UniformPolicy()
    sample = requests[:150]
    rng = np.random.default_rng(2024)
    draws_per_request = 40

    rewards = []
    for request in sample:
        actions = simulator.eligible_actions(request)
        probabilities = policy.distribution(request, actions)
        for _ in range(draws_per_request):
            action = actions[int(rng.choice(len(actions), p=probabilities))]
            rewards.append(simulator.sample_outcome(request, action, rng).reward)

    estimate = float(np.mean(rewards))
    standard_error = float(np.std(rewards)) / math.sqrt(len(rewards))
    exact = simulator.policy_value(policy, sample)
    assert abs(estimate - exact) < 4 * standard_error, (estimate, exact, standard_error)


def test_oracle_beats_fixed_and_rules(simulator: Simulator, requests: list[DecisionRequest]) -> None:
    uniform = simulator.policy_value(UniformPolicy(), requests)
    rules = simulator.policy_value(RFMPolicy.default(), requests)
    best_action, best_fixed = simulator.best_fixed_action(requests)
    oracle = simulator.oracle_value(requests)

    fixed_policy = FixedActionPolicy(best_action.offer_id, best_action.channel, best_action.slot)
    assert math.isclose(simulator.policy_value(fixed_policy, requests), best_fixed)
    assert rules > uniform
    assert best_fixed > uniform
    assert oracle > 1.25 * max(rules, best_fixed)


class _ConstantPolicy:
    name = "constant"
    version = "1"

    def __init__(self, probabilities: list[float] | None) -> None:
        self.probabilities = probabilities

    def distribution(self, request: DecisionRequest, actions: list[JointAction]) -> npt.NDArray[np.float64]:
        if self.probabilities is None:
            return np.full(len(actions), 1.0 / (len(actions) + 1))
        return np.array(self.probabilities, dtype=np.float64)


@pytest.mark.parametrize(
    ("probabilities", "message"),
    [
        ([1.0], "shape"),
        ([0.5] * 300, "shape"),
        (None, "summing to"),
    ],
)
def test_policy_value_rejects_bad_distribution(
    simulator: Simulator, requests: list[DecisionRequest], probabilities: list[float] | None, message: str
) -> None:
    request = next(r for r in requests if len(simulator.eligible_actions(r)) > 1)

    with pytest.raises(InvalidInputError, match=message):
        simulator.policy_value(_ConstantPolicy(probabilities), [request])


def test_policy_value_rejects_negative_probability(simulator: Simulator, requests: list[DecisionRequest]) -> None:
    request = next(r for r in requests if len(simulator.eligible_actions(r)) > 1)
    n_actions = len(simulator.eligible_actions(request))
    probabilities = [2.0, -1.0] + [0.0] * (n_actions - 2)

    with pytest.raises(InvalidInputError, match="negative"):
        simulator.policy_value(_ConstantPolicy(probabilities), [request])


def test_policy_value_no_eligible_action(simulator: Simulator, requests: list[DecisionRequest]) -> None:
    request = requests[0]
    blocked = dataclasses.replace(request, exclusions=(Exclusion(reason="everything"),))

    with pytest.raises(NoEligibleActionError, match=request.request_id):
        simulator.policy_value(UniformPolicy(), [blocked])


def test_catalog_offers_reach_consent_channels() -> None:
    for offer in CATALOG:
        channels = offer.channels or DEFAULT_CHANNELS
        assert set(channels) <= set(DEFAULT_CHANNELS), offer.id
        assert set(channels) & (set(CONSENT_CHANNELS) | set(OPEN_CHANNELS)), offer.id
