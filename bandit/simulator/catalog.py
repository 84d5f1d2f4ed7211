"""The simulated program's offer catalog.

``cost`` is what one redemption costs the program (points liability or
discount) and ``value`` the incremental spend it brings from a member with
an average basket, both in currency units.
"""

from __future__ import annotations

from bandit.domain import FeatureValue, Offer

SERVICE_RECOVERY = "service_recovery"
"""The goodwill offer: a candidate only while the member has a service ticket open."""
BIRTHDAY_REWARD = "birthday_reward"
"""A candidate only in the two weeks before the member's birthday."""
DISCOUNT_20 = "discount_20"
"""A candidate only while the campaign budget lasts: on ``DISCOUNT_20_AVAILABILITY`` of requests."""
DISCOUNT_20_AVAILABILITY = 0.6


def _offer(
    offer_id: str,
    category: str,
    cost: float,
    value: float,
    discount_depth: float = 0.0,
    points_multiplier: float = 1.0,
    channels: tuple[str, ...] = (),
) -> Offer:
    features: dict[str, FeatureValue] = {
        "category": category,
        "discount_depth": discount_depth,
        "points_multiplier": points_multiplier,
        "cost": cost,
    }
    return Offer(id=offer_id, features=features, cost=cost, value=value, channels=channels)


CATALOG: tuple[Offer, ...] = (
    _offer("double_points", "points", cost=3.0, value=18.0, points_multiplier=2.0),
    _offer("discount_10", "discount", cost=4.0, value=16.0, discount_depth=0.10),
    _offer(DISCOUNT_20, "discount", cost=8.0, value=24.0, discount_depth=0.20),
    _offer(
        "free_item",
        "free_item",
        cost=3.5,
        value=12.0,
        channels=("email", "push", "in_app", "pos_receipt"),
    ),
    _offer("early_access", "experience", cost=0.5, value=22.0, channels=("email", "push", "in_app")),
    _offer(BIRTHDAY_REWARD, "reward", cost=5.0, value=20.0),
    _offer(
        "winback_bonus",
        "points",
        cost=6.0,
        value=30.0,
        points_multiplier=3.0,
        channels=("email", "sms", "push"),
    ),
    _offer(SERVICE_RECOVERY, "service", cost=4.0, value=15.0, channels=("email", "sms", "in_app")),
)

MARKETING_OFFER_IDS = tuple(offer.id for offer in CATALOG if offer.id != SERVICE_RECOVERY)
"""Offers an open service ticket excludes: every offer but the service-recovery one."""
