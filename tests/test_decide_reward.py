"""Decide and Reward round trips against a real server on a loopback port."""

from __future__ import annotations

import math
from datetime import UTC

import grpc
import pytest
from conftest import decide_request
from grpc_health.v1 import health_pb2, health_pb2_grpc

from bandit.proto import decision_pb2 as pb


def test_decide_returns_logged_decision(start_service):
    running = start_service()

    response = running.client.decide(decide_request("r-1"))

    assert response.event_id
    assert response.request_id == "r-1"
    assert response.offer_id in ("double_points", "free_coffee")
    assert response.channel in ("email", "push")
    assert response.slot == "now"
    assert response.policy == "cold-start-uniform"
    assert len(response.distribution) == 4
    assert math.isclose(sum(entry.probability for entry in response.distribution), 1.0)
    served = [
        entry.probability
        for entry in response.distribution
        if (entry.offer_id, entry.channel, entry.slot) == (response.offer_id, response.channel, response.slot)
    ]
    assert served == [response.probability]
    assert response.probability == pytest.approx(0.25)
    assert response.send_at.seconds > 0

    stored = running.service.store.get_decision(response.event_id)
    assert stored.chosen.offer_id == response.offer_id
    assert stored.probability == response.probability


def test_reward_joins_decision(start_service):
    running = start_service(**{"rewards.window_seconds": 0.3, "learner.enabled": False})
    decision = running.client.decide(decide_request("r-1"))

    first = running.client.reward(decision.event_id, 2.5, outcome="redeemed")
    second = running.client.reward(decision.event_id, 1.0, outcome="visited")

    assert first.status == pb.REWARD_STATUS_RECORDED
    assert second.status == pb.REWARD_STATUS_RECORDED
    joined = running.service.store.join_closed(now=decision.send_at.seconds + 3600.0).result()
    assert [event.event_id for event in joined] == [decision.event_id]
    assert joined[0].reward == pytest.approx(3.5)
    assert joined[0].reward_count == 2


def test_window_without_reward_gets_default(start_service):
    running = start_service(**{"rewards.default_reward": -0.5, "learner.enabled": False})
    decision = running.client.decide(decide_request("r-1"))
    far_future = decision.send_at.seconds + 30 * 24 * 3600.0

    joined = running.service.store.join_closed(now=far_future).result()

    assert joined[0].reward == -0.5
    assert joined[0].reward_count == 0
    late = running.client.reward(decision.event_id, 9.0)
    assert late.status == pb.REWARD_STATUS_LATE


@pytest.mark.parametrize(("rule", "expected"), [("sum", 6.0), ("first", 1.0), ("last", 3.0), ("max", 3.0)])
def test_reward_aggregation_rules(start_service, rule, expected):
    running = start_service(**{"rewards.aggregation": rule, "learner.enabled": False})
    decision = running.client.decide(decide_request("r-1"))
    base = decision.send_at.ToDatetime()
    from datetime import timedelta

    for offset, value in enumerate((1.0, 2.0, 3.0)):
        occurred = (base + timedelta(seconds=offset)).replace(tzinfo=UTC)
        running.client.reward(decision.event_id, value, occurred_at=occurred)

    joined = running.service.store.join_closed(now=decision.send_at.seconds + 30 * 24 * 3600.0).result()
    assert joined[0].reward == expected


def test_stream_answers_in_order(start_service):
    running = start_service(**{"learner.enabled": False})
    requests = [decide_request(f"s-{index}") for index in range(200)]
    requests[7] = decide_request("s-7", offers=())

    responses = list(running.client.decide_stream(requests))

    assert len(responses) == 200
    assert responses[7].WhichOneof("result") == "error"
    assert responses[7].error.code == grpc.StatusCode.INVALID_ARGUMENT.value[0]
    assert responses[7].error.request_id == "s-7"
    decided = [r.decision.request_id for i, r in enumerate(responses) if i != 7]
    assert decided == [f"s-{index}" for index in range(200) if index != 7]
    assert running.service.store.count("decisions") == 199


def test_health_and_reflection_serving(start_service):
    running = start_service()
    channel = grpc.insecure_channel(f"127.0.0.1:{running.port}")
    stub = health_pb2_grpc.HealthStub(channel)

    overall = stub.Check(health_pb2.HealthCheckRequest(service=""))
    decision = stub.Check(health_pb2.HealthCheckRequest(service="loyalty_bandit.v1.DecisionService"))

    assert overall.status == health_pb2.HealthCheckResponse.SERVING
    assert decision.status == health_pb2.HealthCheckResponse.SERVING
    channel.close()
