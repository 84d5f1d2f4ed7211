"""The embedded SQLite store: decision log, rewards and the model registry."""

from bandit.store.event_store import EventStore, JoinedEvent, RewardRecord, RewardStatus
from bandit.store.registry import ModelRecord, ModelRegistry, Promotion

__all__ = [
    "EventStore",
    "JoinedEvent",
    "ModelRecord",
    "ModelRegistry",
    "Promotion",
    "RewardRecord",
    "RewardStatus",
]
