"""Shared fixtures: a real service on a loopback port with a store in a temp dir."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from bandit.client import DecisionClient
from bandit.config import Config, load_config
from bandit.proto import decision_pb2 as pb
from bandit.service.server import Service


def make_config(tmp_path: Path, **overrides: Any) -> Config:
    """Return a test configuration: port 0, a store in ``tmp_path``, fast learner cycles."""
    values: dict[str, Any] = {
        "service.port": 0,
        "service.shutdown_grace_seconds": 2.0,
        "store.path": str(tmp_path / "events.db"),
        "learner.join_interval_seconds": 0.05,
        "learner.registry_poll_seconds": 0.1,
    }
    values.update(overrides)
    return load_config(None, values)


class RunningService:
    """A started service and a client connected to it."""

    def __init__(self, config: Config) -> None:
        self.config = config
        self.service = Service(config)
        self.port = self.service.start()
        self.client = DecisionClient(f"127.0.0.1:{self.port}")

    def stop(self) -> None:
        self.client.close()
        self.service.stop(grace_seconds=2.0)


@pytest.fixture
def start_service(tmp_path: Path) -> Iterator[Callable[..., RunningService]]:
    """Start services on demand; every one still running is stopped at the end."""
    started: list[RunningService] = []

    def start(**overrides: Any) -> RunningService:
        running = RunningService(make_config(tmp_path, **overrides))
        started.append(running)
        return running

    yield start
    for running in started:
        running.stop()


def decide_request(
    request_id: str,
    *,
    member_id: str = "member-1",
    offers: tuple[str, ...] = ("double_points", "free_coffee"),
    channels: tuple[str, ...] = ("email", "push"),
    slots: tuple[str, ...] = ("now",),
    tier: str = "gold",
) -> pb.DecideRequest:
    """Build a small valid DecideRequest."""
    message = pb.DecideRequest(
        request_id=request_id,
        member_id=member_id,
        channels=list(channels),
        slots=list(slots),
        time_zone="Europe/Paris",
    )
    profile = message.context.add(name="profile")
    profile.features.add(name="tier", category=tier)
    profile.features.add(name="points_balance", number=1250.0)
    rfm = message.context.add(name="rfm")
    rfm.features.add(name="recency_days", number=12.0)
    for offer_id in offers:
        offer = message.offers.add(id=offer_id, cost=1.0)
        offer.features.add(name="kind", category=offer_id.split("_")[0])
    return message
