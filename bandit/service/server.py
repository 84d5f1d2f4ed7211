"""Server lifecycle: build the store, learner and gRPC server, start and stop them.

``Service`` owns every part of a running service. ``Service.start`` binds the
port (0 picks a free one) and returns it. ``Service.stop`` works in this
order, so nothing acknowledged is lost: it stops taking calls, lets calls in
flight finish within the grace period, stops the learner (which publishes
what it learned), then commits and closes the store.
"""

from __future__ import annotations

import logging
import os
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from bandit.config import Config
from bandit.engine import DecisionEngine, PolicyHolder
from bandit.errors import ConfigError
from bandit.learner import Learner
from bandit.proto import decision_pb2 as pb
from bandit.proto import decision_pb2_grpc as pb_grpc
from bandit.service.servicer import DecisionServicer
from bandit.store.event_store import EventStore
from bandit.store.registry import ModelRegistry
from bandit.vw_policy import UniformPolicy

logger = logging.getLogger(__name__)

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["DecisionService"].full_name


class Service:
    """A decision service: store, registry, engine, learner and gRPC server."""

    def __init__(self, config: Config) -> None:
        self.config = config
        store_dir = Path(config.store.path).resolve().parent
        os.makedirs(store_dir, exist_ok=True)

        self.store = EventStore(
            config.store.path,
            window_seconds=config.rewards.window_seconds,
            default_reward=config.rewards.default_reward,
            aggregation=config.rewards.aggregation,
            max_batch=config.store.group_commit_max_rows,
            max_delay_ms=config.store.group_commit_max_delay_ms,
        )
        self.registry = ModelRegistry(config.store.path, config.store.model_dir or None)
        self.policies = PolicyHolder(UniformPolicy())
        self.engine = DecisionEngine(config, self.store, self.policies)
        self.learner = Learner(config, self.store, self.registry, self.policies)
        self.learner.restore()

        self._stream_executor = ThreadPoolExecutor(
            max_workers=config.service.max_workers, thread_name_prefix="stream-decide"
        )
        self.servicer = DecisionServicer(config, self.engine, self.store, self._stream_executor)
        self.health = health.HealthServicer()
        self.server: grpc.Server | None = None
        self.port = 0
        self._stopped = threading.Event()

    def start(self) -> int:
        """Start serving and learning; return the bound port."""
        options = [
            ("grpc.max_receive_message_length", self.config.service.max_message_bytes),
            ("grpc.max_send_message_length", self.config.service.max_message_bytes),
            # Without reuse_port a second service on the same port fails to bind, loudly.
            ("grpc.so_reuseport", 1 if self.config.service.reuse_port else 0),
        ]
        server = grpc.server(
            ThreadPoolExecutor(max_workers=self.config.service.max_workers, thread_name_prefix="grpc"),
            options=options,
        )
        pb_grpc.add_DecisionServiceServicer_to_server(self.servicer, server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), server
        )
        address = f"{self.config.service.host}:{self.config.service.port}"
        try:
            port = server.add_insecure_port(address)
        except RuntimeError as error:  # grpcio raises RuntimeError when the port cannot be bound.
            self._close_parts()
            raise ConfigError(
                f"failed to bind {address}: {error}; the port may be in use, so pass another --port"
            ) from error
        server.start()
        self.server = server
        self.port = port

        self.learner.start()
        self.health.set("", health_pb2.HealthCheckResponse.SERVING)
        self.health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
        logger.info(
            "serving %s on %s:%d, store %s", SERVICE_NAME, self.config.service.host, port,
            self.config.store.path,
        )
        return port

    def stop(self, grace_seconds: float | None = None) -> None:
        """Drain calls, stop the learner, flush and close the store."""
        if self._stopped.is_set():
            return
        self._stopped.set()
        grace = self.config.service.shutdown_grace_seconds if grace_seconds is None else grace_seconds
        logger.info("stopping: draining calls for up to %.1f s", grace)
        self.health.enter_graceful_shutdown()
        if self.server is not None:
            self.server.stop(grace).wait()
        self._close_parts()
        logger.info(
            "stopped; calls %s, policy swaps %d, policy failures served uniform %d, learner step errors %d",
            self.servicer.counters.snapshot(), self.policies.swaps, self.engine.policy_failures,
            self.learner.errors,
        )

    def _close_parts(self) -> None:
        self._stopped.set()
        self._stream_executor.shutdown(wait=True)
        self.learner.stop()
        self.store.close()
        self.registry.close()

    def wait(self) -> None:
        """Block until the server stops."""
        if self.server is not None:
            self.server.wait_for_termination()
