"""Streaming, mergeable off-policy estimators.

Feed each accumulator chunks of a log as ``EstimatorInput``, merge the
accumulators of separate chunks with ``merge``, and read ``estimate()`` or
``interval(...)``.
"""

from replay.estimators.base import (
    EstimationError,
    IntervalMethod,
    OffPolicyEstimator,
    update_all,
)
from replay.estimators.dr import DM, DR, SNDR, SwitchDR
from replay.estimators.input import EstimatorInput
from replay.estimators.ips import IPS, SNIPS

__all__ = [
    "DM",
    "DR",
    "IPS",
    "SNDR",
    "SNIPS",
    "EstimationError",
    "EstimatorInput",
    "IntervalMethod",
    "OffPolicyEstimator",
    "SwitchDR",
    "update_all",
]
