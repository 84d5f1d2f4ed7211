"""Eligibility against a plain reference: every triple checked against every rule."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from bandit.domain import DecisionRequest, Exclusion, Offer
from bandit.eligibility import eligible_actions
from bandit.errors import NoEligibleActionError

OFFERS = ("a", "b", "c")
CHANNELS = ("email", "sms", "push")
SLOTS = ("now", "this_evening", "weekend")


def reference(request):
    kept = []
    for offer in request.offers:
        for channel, slot in itertools.product(request.channels, request.slots):
            if offer.channels and channel not in offer.channels:
                continue
            if any(rule.matches(offer.id, channel, slot) for rule in request.exclusions):
                continue
            kept.append((offer.id, channel, slot))
    return kept


@pytest.mark.parametrize("seed", range(40))
def test_eligibility_matches_reference(seed):
    rng = np.random.default_rng(seed)
    exclusions = tuple(
        Exclusion(
            offer_id=str(rng.choice(("", *OFFERS))),
            channel=str(rng.choice(("", *CHANNELS))),
            slot=str(rng.choice(("", *SLOTS))),
            reason=f"rule{index}",
        )
        for index in range(int(rng.integers(0, 4)))
        if rng.random() < 0.9
    )
    offers = tuple(
        Offer(id=offer_id, channels=tuple(c for c in CHANNELS if rng.random() < 0.5) if rng.random() < 0.3 else ())
        for offer_id in OFFERS
    )
    request = DecisionRequest("r", "m", {}, offers, CHANNELS, SLOTS, exclusions)
    expected = reference(request)

    if not expected:
        with pytest.raises(NoEligibleActionError):
            eligible_actions(request)
        return
    result = eligible_actions(request)

    assert [(a.offer_id, a.channel, a.slot) for a in result.actions] == expected
    assert sum(result.removed.values()) == len(OFFERS) * len(CHANNELS) * len(SLOTS) - len(expected)
