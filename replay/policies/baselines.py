"""Baseline policies: uniform random and one fixed triple.

Both satisfy ``bandit.policy_api.Policy``. They are the reference points of a
replay report: a candidate that cannot beat uniform random has learned
nothing, and one that cannot beat the best fixed triple has not used the
context.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from bandit.domain import DecisionRequest, JointAction
from bandit.errors import NoEligibleActionError
from bandit.policy_api import Policy


def _require_actions(request: DecisionRequest, actions: Sequence[JointAction]) -> None:
    if not actions:
        raise NoEligibleActionError(f"request {request.request_id} has no eligible action to give a probability to")


class UniformPolicy:
    """A policy that gives every eligible triple the same probability."""

    def __init__(self, version: str = "1") -> None:
        self._version = version

    @property
    def name(self) -> str:
        """The policy kind: ``uniform``."""
        return "uniform"

    @property
    def version(self) -> str:
        """The version given to the constructor."""
        return self._version

    def distribution(self, request: DecisionRequest, actions: Sequence[JointAction]) -> npt.NDArray[np.float64]:
        """Return 1 / len(actions) for each action. Raises NoEligibleActionError when there is none."""
        _require_actions(request, actions)
        return np.full(len(actions), 1.0 / len(actions), dtype=np.float64)


class FixedActionPolicy:
    """A policy that always serves one (offer, channel, slot) triple when it is eligible.

    When the triple is not among the eligible actions, the distribution is
    that of ``fallback``, uniform random unless another policy is given.
    Propensities are therefore 0 or 1 on requests where the triple is
    eligible, and the fallback's elsewhere.
    """

    def __init__(self, offer_id: str, channel: str, slot: str, fallback: Policy | None = None) -> None:
        self.action = JointAction(offer_id, channel, slot)
        self.fallback: Policy = fallback if fallback is not None else UniformPolicy()

    @property
    def name(self) -> str:
        """The policy kind: ``fixed-action``."""
        return "fixed-action"

    @property
    def version(self) -> str:
        """The triple and the fallback, such as ``double_points/email/now;fallback=uniform@1``."""
        return f"{self.action.key()};fallback={self.fallback.name}@{self.fallback.version}"

    def distribution(self, request: DecisionRequest, actions: Sequence[JointAction]) -> npt.NDArray[np.float64]:
        """Return probability 1 on the fixed triple, or the fallback's distribution without it."""
        _require_actions(request, actions)
        for index, action in enumerate(actions):
            if action == self.action:
                probabilities = np.zeros(len(actions), dtype=np.float64)
                probabilities[index] = 1.0
                return probabilities
        return self.fallback.distribution(request, actions)
