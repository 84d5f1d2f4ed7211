"""Plain data types of a decision, independent of gRPC and of the store.

The service converts protobuf messages to these types at its boundary; the
core, the store, the learner and the replay harness only see these. Each type
converts to and from a JSON-ready dict, which is how the store keeps the full
request context of every decision.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

FeatureValue = float | str
"""A numeric feature, or a categorical one given as a string."""

Features = Mapping[str, FeatureValue]
"""Feature name to value."""

Context = Mapping[str, Features]
"""Namespace name to its features, such as {"rfm": {"recency_days": 12.0}}."""


@dataclasses.dataclass(frozen=True)
class Offer:
    """A candidate offer of one request."""

    id: str
    features: Features = dataclasses.field(default_factory=dict)
    cost: float | None = None
    value: float | None = None
    channels: tuple[str, ...] = ()
    """Channels the offer may go out on; empty means every channel of the request."""


@dataclasses.dataclass(frozen=True)
class Exclusion:
    """A rule that removes the triples matching all of its non-empty fields."""

    offer_id: str = ""
    channel: str = ""
    slot: str = ""
    reason: str = ""

    def matches(self, offer_id: str, channel: str, slot: str) -> bool:
        """Return True when the triple matches every field that is set."""
        if self.offer_id and self.offer_id != offer_id:
            return False
        if self.channel and self.channel != channel:
            return False
        return not (self.slot and self.slot != slot)


@dataclasses.dataclass(frozen=True, order=True)
class JointAction:
    """One (offer, channel, timing slot) triple: the unit the policy chooses."""

    offer_id: str
    channel: str
    slot: str

    def key(self) -> str:
        """Return a printable id of the triple, such as ``double_points/email/now``."""
        return f"{self.offer_id}/{self.channel}/{self.slot}"


@dataclasses.dataclass(frozen=True)
class DecisionRequest:
    """A validated Decide request with the configured defaults filled in."""

    request_id: str
    member_id: str
    context: Context
    offers: tuple[Offer, ...]
    channels: tuple[str, ...]
    slots: tuple[str, ...]
    exclusions: tuple[Exclusion, ...] = ()
    time_zone: str = "UTC"
    request_time: datetime = dataclasses.field(
        default_factory=lambda: datetime.now(UTC)
    )

    def offer(self, offer_id: str) -> Offer:
        """Return the offer with this id; raise KeyError when absent."""
        for offer in self.offers:
            if offer.id == offer_id:
                return offer
        raise KeyError(offer_id)

    def to_record(self) -> dict[str, Any]:
        """Return a JSON-ready dict from which ``from_record`` rebuilds the request."""
        return {
            "request_id": self.request_id,
            "member_id": self.member_id,
            "context": {ns: dict(features) for ns, features in self.context.items()},
            "offers": [
                {
                    "id": offer.id,
                    "features": dict(offer.features),
                    "cost": offer.cost,
                    "value": offer.value,
                    "channels": list(offer.channels),
                }
                for offer in self.offers
            ],
            "channels": list(self.channels),
            "slots": list(self.slots),
            "exclusions": [dataclasses.asdict(exclusion) for exclusion in self.exclusions],
            "time_zone": self.time_zone,
            "request_time": self.request_time.isoformat(),
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> DecisionRequest:
        """Rebuild a request stored by ``to_record``."""
        return cls(
            request_id=record["request_id"],
            member_id=record["member_id"],
            context={ns: dict(features) for ns, features in record["context"].items()},
            offers=tuple(
                Offer(
                    id=offer["id"],
                    features=dict(offer["features"]),
                    cost=offer.get("cost"),
                    value=offer.get("value"),
                    channels=tuple(offer.get("channels", ())),
                )
                for offer in record["offers"]
            ),
            channels=tuple(record["channels"]),
            slots=tuple(record["slots"]),
            exclusions=tuple(Exclusion(**exclusion) for exclusion in record["exclusions"]),
            time_zone=record["time_zone"],
            request_time=datetime.fromisoformat(record["request_time"]),
        )


@dataclasses.dataclass(frozen=True)
class Decision:
    """A served decision as logged: enough to reproduce it and to evaluate off-policy."""

    event_id: str
    request: DecisionRequest
    actions: tuple[JointAction, ...]
    """The eligible triples after every rule, in the order the policy scored them."""
    probabilities: tuple[float, ...]
    """The policy's distribution over ``actions``; sums to 1."""
    chosen_index: int
    draw: float
    """The uniform number in [0, 1) that picked ``chosen_index`` from the distribution."""
    policy: str
    model_version: str
    exploratory: bool
    send_at: datetime
    decided_at: datetime

    @property
    def chosen(self) -> JointAction:
        """The triple served."""
        return self.actions[self.chosen_index]

    @property
    def probability(self) -> float:
        """The probability of the triple served."""
        return self.probabilities[self.chosen_index]


def is_finite_number(value: object) -> bool:
    """Return True for an int or float that is neither NaN nor infinite."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def action_keys(actions: Sequence[JointAction]) -> list[list[str]]:
    """Return the triples as ``[offer_id, channel, slot]`` lists for JSON."""
    return [[action.offer_id, action.channel, action.slot] for action in actions]
