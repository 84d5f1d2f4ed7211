"""The interface every policy implements, live or replayed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from bandit.domain import DecisionRequest, JointAction


@runtime_checkable
class Policy(Protocol):
    """A policy gives a probability to each eligible triple of a request.

    ``name`` identifies the kind of policy (such as ``vw-cb`` or ``rfm-rules``)
    and ``version`` the exact model or rule set, so a logged decision names what
    produced it.
    """

    @property
    def name(self) -> str: ...

    @property
    def version(self) -> str: ...

    def distribution(
        self, request: DecisionRequest, actions: Sequence[JointAction]
    ) -> npt.NDArray[np.float64]:
        """Return one probability per action, in the order given, summing to 1."""
        ...
