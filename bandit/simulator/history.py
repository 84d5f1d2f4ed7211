"""Per-member purchase and contact history, simulated lazily as the clock advances.

Purchases follow a Poisson process at the member's purchase rate and reset
recency. Other campaigns contact members in the background (newsletters,
transactional messages), each consented channel at its own Poisson rate.
Contacts made by the policy under test can be added with ``record_contact``.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from datetime import datetime, timedelta

import numpy as np

from bandit.simulator.members import Member

BACKGROUND_CONTACTS_PER_DAY = {"email": 0.35, "sms": 0.08, "push": 0.25}
"""Rate of contacts by other campaigns on each consented channel."""

HISTORY_DAYS = 7.0
"""Contacts older than this are forgotten: every feature and cap looks back at most a week."""

_DAY = timedelta(days=1)


@dataclasses.dataclass
class MemberHistory:
    """The changing state of one member: last purchase and recent contacts."""

    member: Member
    clock: datetime
    """Time up to which the background processes have been simulated."""
    last_purchase: datetime
    contacts: deque[tuple[datetime, str]] = dataclasses.field(default_factory=deque)
    """Recent (time, channel) contacts, oldest first."""

    @classmethod
    def start(cls, member: Member, start: datetime, rng: np.random.Generator) -> MemberHistory:
        """Return the history of ``member`` at ``start``, with the week before it filled in."""
        last_purchase = start - member.initial_recency_days * _DAY
        history = cls(member=member, clock=start, last_purchase=last_purchase)
        history._add_background_contacts(start - HISTORY_DAYS * _DAY, start, rng)
        return history

    def advance(self, now: datetime, rng: np.random.Generator) -> None:
        """Simulate purchases and background contacts from ``clock`` to ``now``."""
        if now <= self.clock:
            return
        days = (now - self.clock) / _DAY

        purchases = int(rng.poisson(self.member.purchase_rate_per_day * days))
        if purchases:
            # The n arrival times are uniform in the interval, and their max is distributed as U ** (1 / n).
            latest = float(rng.random()) ** (1.0 / purchases)
            self.last_purchase = self.clock + latest * days * _DAY

        self._add_background_contacts(max(self.clock, now - HISTORY_DAYS * _DAY), now, rng)
        self.clock = now
        self._forget_before(now - HISTORY_DAYS * _DAY)

    def record_contact(self, at: datetime, channel: str) -> None:
        """Add a contact made at ``at``, keeping the contacts in time order."""
        self.contacts.append((at, channel))
        if len(self.contacts) > 1 and self.contacts[-2][0] > at:
            self.contacts = deque(sorted(self.contacts))

    def recency_days(self, now: datetime) -> float:
        """Return the days from the last purchase to ``now``."""
        return max(0.0, (now - self.last_purchase) / _DAY)

    def contacts_since(self, since: datetime, now: datetime, channel: str = "") -> int:
        """Count the contacts in [since, now], on ``channel`` only when it is given."""
        return sum(
            1
            for at, contact_channel in self.contacts
            if since <= at <= now and (not channel or contact_channel == channel)
        )

    def last_contact(self, now: datetime, channel: str = "") -> datetime | None:
        """Return the latest contact at or before ``now``, on ``channel`` when given."""
        latest = None
        for at, contact_channel in self.contacts:
            if at <= now and (not channel or contact_channel == channel):
                latest = at
        return latest

    def _add_background_contacts(self, window_start: datetime, now: datetime, rng: np.random.Generator) -> None:
        window_days = (now - window_start) / _DAY
        new_contacts = []
        for channel, rate in BACKGROUND_CONTACTS_PER_DAY.items():
            if channel not in self.member.consents:
                continue
            for _ in range(int(rng.poisson(rate * window_days))):
                new_contacts.append((window_start + float(rng.random()) * window_days * _DAY, channel))
        for at, channel in sorted(new_contacts):
            self.record_contact(at, channel)

    def _forget_before(self, cutoff: datetime) -> None:
        while self.contacts and self.contacts[0][0] < cutoff:
            self.contacts.popleft()
