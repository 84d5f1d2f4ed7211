"""The synthetic workload of the benchmarks: realistic requests and joined events."""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence

import numpy as np

from bandit.config import DEFAULT_CHANNELS, DEFAULT_SLOTS, Config
from bandit.domain import DecisionRequest
from bandit.eligibility import eligible_actions
from bandit.proto import decision_pb2 as pb
from bandit.service.convert import request_from_proto
from bandit.store.event_store import JoinedEvent

TIERS = ("basic", "silver", "gold", "platinum")
STORES = tuple(f"store_{index:02d}" for index in range(20))
CATEGORIES = ("grocery", "bakery", "coffee", "fuel", "pharmacy", "household")
OFFER_KINDS = ("points_multiplier", "discount", "free_item", "bonus_points")


def realistic_request(
    member: int,
    rng: np.random.Generator,
    *,
    offers: int = 16,
    channels: int = 4,
    slots: int = 6,
) -> pb.DecideRequest:
    """Build a DecideRequest shaped like production traffic.

    The context has 30 features in five namespaces, each offer has four
    features, and the channels and slots are names from the default catalog,
    so the request expands to ``offers * channels * slots`` triples (384 with
    the defaults). ``request_id`` is left empty for the caller to set.
    """
    if not 1 <= channels <= len(DEFAULT_CHANNELS):
        raise ValueError(f"channels is {channels}; use 1 to {len(DEFAULT_CHANNELS)}")
    if not 1 <= slots <= len(DEFAULT_SLOTS):
        raise ValueError(f"slots is {slots}; use 1 to {len(DEFAULT_SLOTS)}")

    message = pb.DecideRequest(
        member_id=f"member-{member:06d}",
        channels=list(DEFAULT_CHANNELS[:channels]),
        slots=[slot.name for slot in DEFAULT_SLOTS[:slots]],
        time_zone="Europe/Paris",
    )

    profile = message.context.add(name="profile")
    profile.features.add(name="tier", category=str(rng.choice(TIERS)))
    profile.features.add(name="home_store", category=str(rng.choice(STORES)))
    profile.features.add(name="points_balance", number=float(rng.integers(0, 20_000)))
    profile.features.add(name="tenure_days", number=float(rng.integers(1, 3_000)))
    profile.features.add(name="age_band", category=str(rng.choice(("18_24", "25_34", "35_49", "50_64", "65_up"))))
    profile.features.add(name="app_user", number=float(rng.integers(0, 2)))
    profile.features.add(name="email_opt_in", number=float(rng.integers(0, 2)))
    profile.features.add(name="sms_opt_in", number=float(rng.integers(0, 2)))

    rfm = message.context.add(name="rfm")
    rfm.features.add(name="recency_days", number=float(rng.integers(0, 365)))
    rfm.features.add(name="frequency_90d", number=float(rng.integers(0, 60)))
    rfm.features.add(name="monetary_90d", number=float(rng.gamma(2.0, 150.0)))
    rfm.features.add(name="avg_basket", number=float(rng.gamma(3.0, 12.0)))
    rfm.features.add(name="visits_30d", number=float(rng.integers(0, 20)))
    rfm.features.add(name="segment", category=str(rng.choice(("champion", "loyal", "at_risk", "new", "lapsed"))))
    rfm.features.add(name="redemptions_90d", number=float(rng.integers(0, 10)))

    behaviour = message.context.add(name="behaviour")
    behaviour.features.add(name="top_category", category=str(rng.choice(CATEGORIES)))
    behaviour.features.add(name="second_category", category=str(rng.choice(CATEGORIES)))
    behaviour.features.add(name="discount_affinity", number=float(rng.random()))
    behaviour.features.add(name="email_open_rate", number=float(rng.random()))
    behaviour.features.add(name="push_open_rate", number=float(rng.random()))
    behaviour.features.add(name="sms_click_rate", number=float(rng.random()))
    behaviour.features.add(name="days_since_last_offer", number=float(rng.integers(0, 60)))

    moment = message.context.add(name="time")
    moment.features.add(name="hour", number=float(rng.integers(0, 24)))
    moment.features.add(name="weekday", category=str(rng.integers(0, 7)))
    moment.features.add(name="holiday", number=float(rng.integers(0, 2)))
    moment.features.add(name="days_to_payday", number=float(rng.integers(0, 31)))

    device = message.context.add(name="device")
    device.features.add(name="platform", category=str(rng.choice(("ios", "android", "web"))))
    device.features.add(name="push_enabled", number=float(rng.integers(0, 2)))
    device.features.add(name="app_version", category=str(rng.choice(("5.1", "5.2", "6.0"))))
    device.features.add(name="locale", category=str(rng.choice(("fr_FR", "en_GB", "de_DE"))))

    # Offers are the same for every member, as in a campaign catalogue.
    for index in range(offers):
        offer = message.offers.add(id=f"offer_{index:02d}", cost=1.0 + index % 5, value=5.0 + index % 7)
        offer.features.add(name="kind", category=OFFER_KINDS[index % len(OFFER_KINDS)])
        offer.features.add(name="category", category=CATEGORIES[index % len(CATEGORIES)])
        offer.features.add(name="points", number=float(100 * (1 + index % 8)))
        offer.features.add(name="discount_pct", number=float(5 * (index % 4)))
    return message


def context_feature_count(message: pb.DecideRequest) -> int:
    """Return the number of context features of a request."""
    return sum(len(namespace.features) for namespace in message.context)


def constant_response(message: pb.DecideRequest) -> pb.DecideResponse:
    """Build a DecideResponse of the size the service returns for ``message``.

    It lists every (offer, channel, slot) triple of the request in the
    distribution, as the service does when no rule removes any.
    """
    response = pb.DecideResponse(
        event_id=uuid.uuid4().hex,
        request_id=f"req-{0:012d}",
        policy="vw-cb",
        model_version="v1",
    )
    triples = [(offer.id, channel, slot) for offer in message.offers for channel in message.channels
               for slot in message.slots]
    for offer_id, channel, slot in triples:
        response.distribution.add(offer_id=offer_id, channel=channel, slot=slot, probability=1.0 / len(triples))
    response.offer_id, response.channel, response.slot = triples[0]
    response.probability = 1.0 / len(triples)
    response.send_at.GetCurrentTime()
    return response


def joined_events(
    messages: Sequence[pb.DecideRequest], count: int, config: Config, rng: np.random.Generator
) -> list[JoinedEvent]:
    """Build ``count`` joined events from the requests, cycling through them.

    Each event chooses a triple uniformly at random, and its reward is 1 with
    a probability that depends on the offer and the channel, so the data
    contain a signal to learn.
    """
    requests: list[DecisionRequest] = []
    for index, message in enumerate(messages):
        with_id = pb.DecideRequest()
        with_id.CopyFrom(message)
        with_id.request_id = f"synthetic-{index}"
        requests.append(request_from_proto(with_id, config))
    actions_of = [eligible_actions(request).actions for request in requests]

    events: list[JoinedEvent] = []
    for index in range(count):
        request = requests[index % len(requests)]
        actions = actions_of[index % len(requests)]
        chosen = int(rng.integers(0, len(actions)))
        action = actions[chosen]
        offer_number = int(action.offer_id.rsplit("_", 1)[1])
        success = 0.05 + 0.1 * (offer_number % 4) + (0.1 if action.channel == "push" else 0.0)
        probability = 1.0 / len(actions)
        events.append(
            JoinedEvent(
                event_id=uuid.uuid4().hex,
                request=request,
                actions=actions,
                probabilities=tuple([probability] * len(actions)),
                chosen_index=chosen,
                probability=probability,
                reward=float(rng.random() < success),
                reward_count=1,
                policy="cold-start-uniform",
                model_version="",
                decided_at=time.time(),
                join_seq=index + 1,
            )
        )
    return events
