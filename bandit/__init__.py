"""loyalty-bandit: a next-best-action engine for loyalty programs.

The public names below are the library API; the gRPC service is started by
``loyalty-bandit serve`` or ``bandit.service.server.Service``.
"""

from bandit.config import Config, load_config
from bandit.domain import Decision, DecisionRequest, Exclusion, JointAction, Offer
from bandit.errors import BanditError
from bandit.policy_api import Policy

__all__ = [
    "BanditError",
    "Config",
    "Decision",
    "DecisionRequest",
    "Exclusion",
    "JointAction",
    "Offer",
    "Policy",
    "load_config",
]

__version__ = "0.1.0"
