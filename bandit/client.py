"""A small typed client for app and POS backends written in Python.

    with DecisionClient("127.0.0.1:50051") as client:
        response = client.decide(request)
        client.reward(response.event_id, 12.5, outcome="redeemed")

Errors arrive as ``grpc.RpcError`` with the status code and message the
server set.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from types import TracebackType

import grpc

from bandit.domain import DecisionRequest
from bandit.proto import decision_pb2 as pb
from bandit.proto import decision_pb2_grpc as pb_grpc
from bandit.service.convert import request_to_proto


class DecisionClient:
    """A channel to one decision service and typed calls on it."""

    def __init__(self, target: str, *, timeout_seconds: float = 10.0) -> None:
        self.target = target
        self.timeout_seconds = timeout_seconds
        self._channel = grpc.insecure_channel(target)
        self._stub = pb_grpc.DecisionServiceStub(self._channel)

    def __enter__(self) -> DecisionClient:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the channel."""
        self._channel.close()

    def decide(self, request: DecisionRequest | pb.DecideRequest) -> pb.DecideResponse:
        """Send one Decide call."""
        message = request_to_proto(request) if isinstance(request, DecisionRequest) else request
        response: pb.DecideResponse = self._stub.Decide(message, timeout=self.timeout_seconds)
        return response

    def decide_stream(
        self, requests: Iterable[DecisionRequest | pb.DecideRequest]
    ) -> Iterator[pb.DecideStreamResponse]:
        """Send requests over one DecideStream call; yield one response per request, in order."""
        messages = (
            request_to_proto(request) if isinstance(request, DecisionRequest) else request
            for request in requests
        )
        responses: Iterator[pb.DecideStreamResponse] = self._stub.DecideStream(messages)
        yield from responses

    def reward(
        self,
        event_id: str,
        value: float,
        *,
        outcome: str = "",
        occurred_at: datetime | None = None,
        reward_id: str = "",
    ) -> pb.RewardResponse:
        """Send one Reward call."""
        message = pb.RewardRequest(event_id=event_id, value=value, outcome=outcome, reward_id=reward_id)
        if occurred_at is not None:
            message.occurred_at.FromDatetime(occurred_at)
        response: pb.RewardResponse = self._stub.Reward(message, timeout=self.timeout_seconds)
        return response
