"""Eligibility: expand a request into the (offer, channel, slot) triples it allows.

This step runs before the policy, so the policy's distribution, and the
probability logged with each decision, is over exactly the triples that
survive every rule. Each removed triple is counted under a reason code, which
explains a decision and shows which rule removes the most.
"""

from __future__ import annotations

import dataclasses
from collections import Counter

from bandit.domain import DecisionRequest, JointAction
from bandit.errors import NoEligibleActionError

REASON_OFFER_CHANNEL = "offer_channel_not_allowed"
"""The offer lists channels and this channel is not one of them."""


@dataclasses.dataclass(frozen=True)
class Eligibility:
    """The eligible triples of a request, and how many triples each rule removed."""

    actions: tuple[JointAction, ...]
    removed: dict[str, int]


def eligible_actions(request: DecisionRequest) -> Eligibility:
    """Expand offers × channels × slots and drop the triples the request rules out.

    The order is offers, then channels, then slots, as given in the request, so
    the same request always gives the same action order. Raises
    ``NoEligibleActionError`` when no triple is left.
    """
    removed: Counter[str] = Counter()
    actions: list[JointAction] = []

    for offer in request.offers:
        allowed_channels = set(offer.channels) if offer.channels else None
        offer_rules = [rule for rule in request.exclusions if not rule.offer_id or rule.offer_id == offer.id]
        for channel in request.channels:
            if allowed_channels is not None and channel not in allowed_channels:
                removed[REASON_OFFER_CHANNEL] += len(request.slots)
                continue

            # Narrowing the rules per offer and channel first keeps the common case,
            # no rule left, to one list extension.
            rules = [rule for rule in offer_rules if not rule.channel or rule.channel == channel]
            if not rules:
                actions.extend(JointAction(offer.id, channel, slot) for slot in request.slots)
                continue
            for slot in request.slots:
                exclusion = next((rule for rule in rules if not rule.slot or rule.slot == slot), None)
                if exclusion is not None:
                    removed[exclusion.reason or "excluded"] += 1
                    continue
                actions.append(JointAction(offer.id, channel, slot))

    if not actions:
        reasons = ", ".join(f"{reason}: {count}" for reason, count in sorted(removed.items()))
        raise NoEligibleActionError(
            f"every (offer, channel, slot) triple was removed by the request's rules ({reasons}); "
            "send more offers, channels or slots, or fewer exclusions"
        )
    return Eligibility(actions=tuple(actions), removed=dict(removed))
