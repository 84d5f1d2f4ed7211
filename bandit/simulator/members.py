"""Simulated loyalty-program members and their RFM segments."""

from __future__ import annotations

import dataclasses
import math

import numpy as np

TIERS = ("bronze", "silver", "gold", "platinum")
TIER_MIN_SPEND = (0.0, 300.0, 800.0, 2000.0)
"""Spend over the last 12 months at which each tier of ``TIERS`` starts."""

SEGMENTS = ("champions", "loyal", "new", "potential", "at_risk", "hibernating")
"""RFM segments in the order ``rfm_segment`` tests them. The last is the default."""

DEVICES = ("ios", "android", "web")
TIME_ZONES = ("Europe/Paris", "America/New_York", "Asia/Tokyo", "UTC")

CONSENT_CHANNELS = ("email", "sms", "push")
"""Channels that need the member's consent. In-app messages and POS receipts need none."""
OPEN_CHANNELS = ("in_app", "pos_receipt")


@dataclasses.dataclass(frozen=True)
class Member:
    """One member's fixed traits. Recency, contacts and tickets change with the clock."""

    member_id: str
    tier: str
    frequency: float
    """Purchases in the last 12 months."""
    monetary: float
    """Spend in the last 12 months, in currency units."""
    initial_recency_days: float
    """Days since the last purchase when the simulation starts."""
    purchase_rate_per_day: float
    """Rate of the Poisson process of future purchases, which resets recency."""
    points_balance: float
    churn_noise: float
    """Member-specific part of the churn score's log-odds. See ``churn_risk``."""
    device: str
    time_zone: str
    consents: frozenset[str]
    """Channels of ``CONSENT_CHANNELS`` this member accepts."""
    birthday: tuple[int, int]
    """Month and day."""
    ticket_probability: float
    """Probability that a request of this member finds a service ticket open."""
    responsiveness: float
    """Hidden shift of the member's redemption log-odds: what no feature shows."""

    def churn_risk(self, recency_days: float) -> float:
        """Return the churn score in [0, 1] that a churn model gives at this recency."""
        return churn_risk_for(recency_days, self.frequency, self.churn_noise)

    @property
    def basket(self) -> float:
        """Average spend per purchase over the last 12 months."""
        return self.monetary / max(self.frequency, 1.0)


def rfm_segment(recency_days: float, frequency: float, monetary: float) -> str:
    """Return the RFM segment of the figures: the first rule of ``SEGMENTS`` that matches.

    The thresholds match those of the default rules file ``bandit/data/rfm_rules.toml``.
    """
    if recency_days <= 30 and frequency >= 12 and monetary >= 600:
        return "champions"
    if recency_days <= 60 and frequency >= 6:
        return "loyal"
    if recency_days <= 45 and frequency <= 2:
        return "new"
    if recency_days <= 60:
        return "potential"
    if recency_days <= 150:
        return "at_risk"
    return "hibernating"


def tier_for(monetary: float) -> str:
    """Return the tier that a 12-month spend of ``monetary`` earns."""
    tier = TIERS[0]
    for name, threshold in zip(TIERS, TIER_MIN_SPEND, strict=True):
        if monetary >= threshold:
            tier = name
    return tier


def churn_risk_for(recency_days: float, frequency: float, noise: float) -> float:
    """Return a churn score in [0, 1] that rises with recency and falls with frequency."""
    log_odds = -1.5 + 0.025 * recency_days - 0.12 * frequency + noise
    return 1.0 / (1.0 + math.exp(-log_odds))


def generate_members(n_members: int, rng: np.random.Generator) -> list[Member]:
    """Draw ``n_members`` members with ids ``m000000``, ``m000001``, ...

    Members fall into four archetypes. 8 % joined in the last 40 days and
    made one or two purchases. 10 % have lapsed: 90 to 400 days since their
    last purchase, and buying at a fifth of their past rate. 25 % are lapsing
    and buy at 30 % of their past rate from now on. The rest are active.
    """
    members = []
    for index in range(n_members):
        frequency = float(min(60, round(rng.lognormal(math.log(5.0), 0.9))))
        basket = float(rng.lognormal(math.log(35.0), 0.4))
        past_rate = max(frequency, 0.5) / 365.0

        archetype = rng.random()
        if archetype < 0.08:
            frequency = float(rng.integers(1, 3))
            rate = 8.0 / 365.0
            recency = float(rng.uniform(0.0, 40.0))
        elif archetype < 0.18:
            rate = past_rate * 0.2
            recency = float(rng.uniform(90.0, 400.0))
        elif archetype < 0.43:
            rate = past_rate * 0.3
            recency = float(min(400.0, rng.exponential(1.0 / past_rate)))
        else:
            rate = past_rate
            recency = float(min(400.0, rng.exponential(1.0 / past_rate)))
        monetary = round(frequency * basket * float(rng.uniform(0.85, 1.15)), 2)

        device = DEVICES[int(rng.choice(len(DEVICES), p=[0.4, 0.35, 0.25]))]
        consents = set()
        if rng.random() < 0.85:
            consents.add("email")
        if rng.random() < 0.45:
            consents.add("sms")
        if device != "web" and rng.random() < 0.65:
            consents.add("push")

        members.append(
            Member(
                member_id=f"m{index:06d}",
                tier=tier_for(monetary),
                frequency=frequency,
                monetary=monetary,
                initial_recency_days=round(recency, 2),
                purchase_rate_per_day=rate,
                points_balance=round(monetary * 10.0 * float(rng.uniform(0.1, 0.9))),
                churn_noise=float(rng.normal(0.0, 0.5)),
                device=device,
                time_zone=TIME_ZONES[int(rng.choice(len(TIME_ZONES), p=[0.35, 0.3, 0.2, 0.15]))],
                consents=frozenset(consents),
                birthday=(int(rng.integers(1, 13)), int(rng.integers(1, 29))),
                ticket_probability=float(rng.choice([0.01, 0.03, 0.12], p=[0.6, 0.3, 0.1])),
                responsiveness=float(rng.normal(0.0, 0.5)),
            )
        )
    return members
