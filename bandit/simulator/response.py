"""The simulator's ground truth: how a member responds to an (offer, channel, slot).

A decision is redeemed, ignored or makes the member unsubscribe. Redemption
follows a logistic model whose log-odds add up:

- a base rate and the member's hidden responsiveness;
- offer x RFM segment effects (the win-back bonus works on lapsing members
  and hurts with champions, early access works on champions);
- offer x channel effects (early access works by push and in-app, poorly by
  email; a free item works on the POS receipt);
- the reach of each channel (in-app needs an active app user, the POS
  receipt a frequent visitor);
- the local hour and weekday of the send time, per channel (email in the
  morning, SMS in the early evening, push at lunch or in the evening, and
  night sends are bad);
- fatigue: every contact in the past week lowers the odds, more so on the
  same channel.

The reward of a redemption is the incremental spend, drawn from a gamma
distribution whose mean scales with the member's basket, minus the offer's
cost. An unsubscribe costs ``unsubscribe_penalty``; an ignored offer gives 0.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from datetime import datetime

import numpy as np

from bandit.config import SlotSpec
from bandit.domain import DecisionRequest, FeatureValue, JointAction, Offer
from bandit.errors import InvalidInputError
from bandit.simulator.catalog import BIRTHDAY_REWARD, SERVICE_RECOVERY
from bandit.simulator.members import Member
from bandit.timing import send_time, zone_of

OUTCOMES = ("redeemed", "ignored", "unsubscribed")

BASE_LOG_ODDS = -2.4

OFFER_SEGMENT_EFFECTS: Mapping[str, Mapping[str, float]] = {
    "double_points": {
        "champions": 0.3,
        "loyal": 1.0,
        "new": 0.1,
        "potential": 0.6,
        "at_risk": -0.2,
        "hibernating": -0.8,
    },
    "discount_10": {
        "champions": -0.6,
        "loyal": 0.0,
        "new": 0.4,
        "potential": 0.5,
        "at_risk": 0.4,
        "hibernating": 0.1,
    },
    "discount_20": {
        "champions": -0.7,
        "loyal": -0.2,
        "new": 0.5,
        "potential": 0.5,
        "at_risk": 0.8,
        "hibernating": 0.9,
    },
    "free_item": {
        "champions": 0.0,
        "loyal": 0.2,
        "new": 1.2,
        "potential": 0.5,
        "at_risk": 0.1,
        "hibernating": -0.4,
    },
    "early_access": {
        "champions": 1.5,
        "loyal": 0.6,
        "new": -0.6,
        "potential": 0.0,
        "at_risk": -1.0,
        "hibernating": -1.5,
    },
    "birthday_reward": {
        "champions": 0.8,
        "loyal": 0.8,
        "new": 0.8,
        "potential": 0.8,
        "at_risk": 0.6,
        "hibernating": 0.4,
    },
    "winback_bonus": {
        "champions": -1.5,
        "loyal": -0.9,
        "new": -0.6,
        "potential": -0.3,
        "at_risk": 1.3,
        "hibernating": 1.2,
    },
    "service_recovery": {},
}
"""Log-odds effect of each offer in each RFM segment. A missing pair is 0."""

OFFER_CHANNEL_EFFECTS: Mapping[tuple[str, str], float] = {
    ("early_access", "push"): 0.9,
    ("early_access", "in_app"): 0.6,
    ("early_access", "email"): -0.7,
    ("free_item", "pos_receipt"): 1.0,
    ("free_item", "push"): 0.3,
    ("free_item", "email"): -0.5,
    ("winback_bonus", "email"): 0.5,
    ("winback_bonus", "sms"): 0.4,
    ("winback_bonus", "push"): -1.2,
    ("double_points", "in_app"): 0.5,
    ("double_points", "email"): 0.2,
    ("discount_10", "sms"): 0.3,
    ("discount_20", "sms"): 0.4,
    ("birthday_reward", "email"): 0.5,
    ("birthday_reward", "sms"): 0.2,
    ("service_recovery", "sms"): 0.4,
    ("service_recovery", "email"): 0.2,
}
"""Log-odds effect of an offer on a channel. A missing pair is 0."""

CHANNEL_BASE_EFFECTS: Mapping[str, float] = {
    "email": -0.3,
    "sms": 0.2,
    "push": 0.0,
    "in_app": 0.0,
    "pos_receipt": 0.0,
}

NIGHT_HOURS = frozenset({22, 23, 0, 1, 2, 3, 4, 5, 6})
"""Local send hours that count as night."""

MARKETING_CHANNELS = ("email", "sms", "push")
"""Channels that fatigue members and from which they can unsubscribe."""


def hour_effect(channel: str, hour: int) -> float:
    """Return the log-odds effect of sending on ``channel`` at local ``hour`` (0 to 23)."""
    if channel in ("in_app", "pos_receipt"):
        # The member sees these when opening the app or paying, whatever the send time.
        return 0.0
    if channel == "email":
        if 7 <= hour <= 10:
            return 0.6
        if hour in NIGHT_HOURS:
            return -0.8
        return -0.2 if hour >= 17 else 0.0
    if channel == "sms":
        if 17 <= hour <= 20:
            return 0.7
        if hour in NIGHT_HOURS:
            return -1.5
        return -0.2 if hour <= 9 else 0.1
    if channel == "push":
        if 11 <= hour <= 13:
            return 0.5
        if 18 <= hour <= 21:
            return 0.6
        if hour in NIGHT_HOURS:
            return -1.2
        return 0.0
    return 0.0


def weekend_effect(offer: Offer, channel: str) -> float:
    """Return the log-odds effect of a Saturday or Sunday send."""
    effect = 0.0
    if offer.features.get("category") in ("free_item", "discount"):
        effect += 0.4
    if channel == "email":
        effect -= 0.3
    return effect


def reach_effect(channel: str, recency_days: float, frequency: float, device: str) -> float:
    """Return the log-odds effect of how likely the member is to see the channel at all."""
    if channel == "in_app":
        # Only members who open the app or the website see in-app messages, and web users rarely do.
        effect = -0.8 if device == "web" else 0.0
        if recency_days <= 14:
            return effect + 0.3
        return effect + (-0.3 if recency_days <= 60 else -1.5)
    if channel == "pos_receipt":
        if frequency >= 12:
            return 0.8
        return 0.0 if frequency >= 4 else -1.5
    return CHANNEL_BASE_EFFECTS.get(channel, 0.0)


@dataclasses.dataclass(frozen=True)
class Outcome:
    """The sampled result of one decision."""

    reward: float
    outcome: str
    """One of ``OUTCOMES``."""
    delay_seconds: float
    """Time from the decision to the outcome event. An ignored offer's delay runs to its expiry."""


@dataclasses.dataclass(frozen=True)
class ActionResponse:
    """The true response distribution of one triple for one request."""

    action: JointAction
    redemption_probability: float
    unsubscribe_probability: float
    mean_spend: float
    """Mean incremental spend of a redemption."""
    cost: float
    unsubscribe_penalty: float
    send_delay_seconds: float
    """Time from the request to the send time of the triple's slot."""

    @property
    def expected_reward(self) -> float:
        """The mean reward: spend minus cost when redeemed, minus the penalty when unsubscribed."""
        redeemed = self.redemption_probability * (self.mean_spend - self.cost)
        return redeemed - self.unsubscribe_probability * self.unsubscribe_penalty


@dataclasses.dataclass(frozen=True)
class ResponseModel:
    """Ground-truth response model of members, built from the effect tables of this module.

    Delays are in real seconds, and the simulator scales them by its ``time_scale``.
    """

    unsubscribe_penalty: float = 3.0
    spend_shape: float = 2.0
    """Shape of the gamma distribution of a redemption's spend. Smaller is noisier."""
    reference_basket: float = 35.0
    """Basket at which an offer brings exactly its catalog ``value``."""
    offer_validity_days: float = 14.0
    """Time a sent offer can be redeemed, which is also the longest redemption delay."""

    def __post_init__(self) -> None:
        if self.unsubscribe_penalty < 0:
            raise InvalidInputError("unsubscribe_penalty", f"is {self.unsubscribe_penalty}; use 0 or more")
        if self.spend_shape <= 0:
            raise InvalidInputError("spend_shape", f"is {self.spend_shape}; use a positive number")
        if self.reference_basket <= 0:
            raise InvalidInputError("reference_basket", f"is {self.reference_basket}; use a positive number")
        if self.offer_validity_days <= 0:
            raise InvalidInputError("offer_validity_days", f"is {self.offer_validity_days}; use a positive number")

    def responses(
        self,
        request: DecisionRequest,
        actions: Sequence[JointAction],
        member: Member,
        slots: Mapping[str, SlotSpec],
    ) -> list[ActionResponse]:
        """Return the true response distribution of each action, in order.

        Raises InvalidInputError when the request lacks a context feature the
        model reads, or names an offer or slot it does not have.
        """
        segment = str(_feature(request, "rfm", "segment"))
        recency = float(_feature(request, "rfm", "recency_days"))
        frequency = float(_feature(request, "rfm", "frequency"))
        device = str(_feature(request, "profile", "device"))
        churn_risk = float(_feature(request, "profile", "churn_risk"))
        open_ticket = _feature(request, "service", "open_ticket") == "yes"
        contacts_7d = float(_feature(request, "contacts", "last_7d"))

        send_times = self._send_times(request, {action.slot for action in actions}, slots)
        offers = {offer.id: offer for offer in request.offers}

        responses = []
        for action in actions:
            offer = offers.get(action.offer_id)
            if offer is None:
                raise InvalidInputError(
                    "action.offer_id",
                    f"{action.offer_id!r} is not an offer of request {request.request_id}",
                )
            sent_at = send_times[action.slot]

            log_odds = BASE_LOG_ODDS + member.responsiveness
            log_odds += OFFER_SEGMENT_EFFECTS.get(offer.id, {}).get(segment, 0.0)
            log_odds += OFFER_CHANNEL_EFFECTS.get((offer.id, action.channel), 0.0)
            log_odds += reach_effect(action.channel, recency, frequency, device)
            log_odds += hour_effect(action.channel, sent_at.hour)
            if sent_at.weekday() >= 5:
                log_odds += weekend_effect(offer, action.channel)
            log_odds += self._offer_context_effect(offer.id, member.tier, churn_risk, open_ticket)

            same_channel = 0.0
            if action.channel in MARKETING_CHANNELS:
                same_channel = float(_feature(request, "contacts", f"{action.channel}_last_7d"))
                log_odds -= 0.25 * contacts_7d + 0.45 * same_channel
            redemption = 1.0 / (1.0 + math.exp(-log_odds))

            unsubscribe = self._unsubscribe_probability(action.channel, sent_at.hour, contacts_7d, same_channel)
            responses.append(
                ActionResponse(
                    action=action,
                    redemption_probability=(1.0 - unsubscribe) * redemption,
                    unsubscribe_probability=unsubscribe,
                    mean_spend=self._mean_spend(offer, member),
                    cost=offer.cost or 0.0,
                    unsubscribe_penalty=self.unsubscribe_penalty,
                    send_delay_seconds=(sent_at - request.request_time).total_seconds(),
                )
            )
        return responses

    def sample(self, response: ActionResponse, member: Member, rng: np.random.Generator) -> Outcome:
        """Draw the outcome of one decision from its true response distribution."""
        validity_seconds = self.offer_validity_days * 86400.0
        draw = float(rng.random())

        if draw < response.unsubscribe_probability:
            delay = response.send_delay_seconds + float(rng.exponential(2 * 3600.0))
            return Outcome(-self.unsubscribe_penalty, "unsubscribed", delay)

        if draw < response.unsubscribe_probability + response.redemption_probability:
            scale = response.mean_spend / self.spend_shape
            spend = float(rng.gamma(self.spend_shape, scale))
            if response.action.channel == "pos_receipt":
                # Redeemed on the next visit, which comes at the member's past purchase rate.
                lag = float(rng.exponential(365.0 / max(member.frequency, 1.0) * 86400.0))
            else:
                lag = float(rng.lognormal(math.log(18 * 3600.0), 1.0))
            delay = response.send_delay_seconds + min(lag, validity_seconds)
            return Outcome(spend - response.cost, "redeemed", delay)

        return Outcome(0.0, "ignored", response.send_delay_seconds + validity_seconds)

    def _mean_spend(self, offer: Offer, member: Member) -> float:
        value = offer.value or 0.0
        if offer.id == SERVICE_RECOVERY:
            # Goodwill keeps the member: its value does not scale with the basket.
            return value
        basket_ratio = min(2.5, max(0.5, member.basket / self.reference_basket))
        return value * math.sqrt(basket_ratio)

    @staticmethod
    def _offer_context_effect(offer_id: str, tier: str, churn_risk: float, open_ticket: bool) -> float:
        effect = 0.0
        if offer_id in ("early_access", "double_points") and tier in ("gold", "platinum"):
            effect += 0.3
        if offer_id == "winback_bonus":
            effect += 1.2 * (churn_risk - 0.5)
        if offer_id == BIRTHDAY_REWARD:
            effect += 0.5
        if offer_id == SERVICE_RECOVERY:
            effect += 1.5 if open_ticket else -1.0
        return effect

    @staticmethod
    def _unsubscribe_probability(channel: str, hour: int, contacts_7d: float, same_channel: float) -> float:
        if channel not in MARKETING_CHANNELS:
            return 0.0
        probability = 0.002 * (1.0 + contacts_7d + 2.0 * same_channel)
        if channel in ("sms", "push") and hour in NIGHT_HOURS:
            probability *= 4.0
        return min(probability, 0.05)

    @staticmethod
    def _send_times(
        request: DecisionRequest, slot_names: set[str], slots: Mapping[str, SlotSpec]
    ) -> dict[str, datetime]:
        zone = zone_of(request.time_zone)
        times = {}
        for name in slot_names:
            spec = slots.get(name)
            if spec is None:
                raise InvalidInputError(
                    "action.slot",
                    f"{name!r} is not a simulator slot; known slots are {sorted(slots)}",
                )
            times[name] = send_time(spec, request.request_time, zone)
        return times


def _feature(request: DecisionRequest, namespace: str, name: str) -> FeatureValue:
    try:
        return request.context[namespace][name]
    except KeyError as error:
        raise InvalidInputError(
            f"context.{namespace}.{name}",
            f"missing from request {request.request_id}; the simulator's response model reads it",
        ) from error
