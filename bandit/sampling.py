"""Seeded sampling: the draw of every decision is a pure function of its event id.

Re-running a logged decision with the same model version, context and event
id therefore serves the same triple, which makes every decision reproducible
from the log.
"""

from __future__ import annotations

import hashlib

import numpy as np
import numpy.typing as npt


def draw_for_event(event_id: str, salt: int = 0) -> float:
    """Return a uniform number in [0, 1) derived from the event id by SHA-256."""
    digest = hashlib.sha256(f"{salt}:{event_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2.0**64


def sample_index(probabilities: npt.NDArray[np.float64], draw: float) -> int:
    """Return the index whose cumulative-probability interval contains ``draw``.

    An action with probability 0 has an empty interval and is never returned.
    """
    cumulative = np.cumsum(probabilities)
    index = int(np.searchsorted(cumulative, draw * cumulative[-1], side="right"))
    return min(index, len(probabilities) - 1)
