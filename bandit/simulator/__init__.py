"""A seeded loyalty-program simulator with a known ground truth.

It builds ``DecisionRequest`` objects for a population of members and gives
the true expected reward of any (offer, channel, slot) triple. It samples
outcomes with realistic delays and computes the exact value of any policy,
so the learner and the off-policy estimators can be checked against the truth.
"""

from bandit.simulator.catalog import CATALOG, MARKETING_OFFER_IDS, SERVICE_RECOVERY
from bandit.simulator.eligibility import eligible_actions
from bandit.simulator.members import SEGMENTS, TIERS, Member, rfm_segment
from bandit.simulator.response import OUTCOMES, ActionResponse, Outcome, ResponseModel
from bandit.simulator.simulator import Simulator

__all__ = [
    "CATALOG",
    "MARKETING_OFFER_IDS",
    "OUTCOMES",
    "SEGMENTS",
    "SERVICE_RECOVERY",
    "TIERS",
    "ActionResponse",
    "Member",
    "Outcome",
    "ResponseModel",
    "Simulator",
    "eligible_actions",
    "rfm_segment",
]
