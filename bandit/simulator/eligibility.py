"""The eligible (offer, channel, slot) triples of a simulated request.

NOTE: this is the simulator's own minimal rule: expand offers x channels x
slots, keep an offer's own channel list, drop what an exclusion matches.
The service applies its contact policy in its own eligibility module, which
may remove more (quiet hours, caps it tracks itself).
"""

from __future__ import annotations

from bandit.domain import DecisionRequest, JointAction


def eligible_actions(request: DecisionRequest) -> list[JointAction]:
    """Return the request's eligible triples in offer, channel, slot order."""
    actions = []
    for offer in request.offers:
        channels = request.channels
        if offer.channels:
            channels = tuple(channel for channel in request.channels if channel in offer.channels)

        for channel in channels:
            for slot in request.slots:
                excluded = any(exclusion.matches(offer.id, channel, slot) for exclusion in request.exclusions)
                if not excluded:
                    actions.append(JointAction(offer.id, channel, slot))
    return actions
