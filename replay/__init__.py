"""Off-policy replay: estimate a candidate policy's value from logged decisions.

The package re-exports the streaming estimators, their intervals and the
importance-weight diagnostics. Log validation (``replay.schemas``) and the Open
Bandit Dataset benchmark (``replay.obd``, ``replay.cli_obd``) are imported from
their modules, so that importing the estimators does not load pandas and pandera.
"""

from replay.diagnostics import Diagnostics, WeightDiagnostics
from replay.estimators import (
    DM,
    DR,
    IPS,
    SNDR,
    SNIPS,
    EstimationError,
    EstimatorInput,
    IntervalMethod,
    OffPolicyEstimator,
    SwitchDR,
    update_all,
)
from replay.intervals import Estimate, IntervalError, normal_interval, percentile_interval

__all__ = [
    "DM",
    "DR",
    "IPS",
    "SNDR",
    "SNIPS",
    "Diagnostics",
    "Estimate",
    "EstimationError",
    "EstimatorInput",
    "IntervalError",
    "IntervalMethod",
    "OffPolicyEstimator",
    "SwitchDR",
    "WeightDiagnostics",
    "normal_interval",
    "percentile_interval",
    "update_all",
]
