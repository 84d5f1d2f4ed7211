"""Restart, idempotency and reproducibility of logged decisions."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from conftest import decide_request, make_config
from test_learning import BEST, wait_until

from bandit.engine import PolicyHolder
from bandit.learner import Learner
from bandit.proto import decision_pb2 as pb
from bandit.sampling import draw_for_event, sample_index
from bandit.store.event_store import EventStore
from bandit.store.registry import ModelRegistry
from bandit.vw_policy import UniformPolicy, VWPolicy


def train(running, rounds: int, prefix: str = "train") -> list[str]:
    event_ids = []
    for index in range(rounds):
        response = running.client.decide(decide_request(f"{prefix}-{index}"))
        served = (response.offer_id, response.channel, response.slot)
        running.client.reward(response.event_id, 1.0 if served == BEST else 0.0)
        event_ids.append(response.event_id)
    return event_ids


def test_restart_keeps_decisions_rewards_and_model(start_service):
    first = start_service(**{"rewards.window_seconds": 0.3, "learner.snapshot_every_events": 25})
    train(first, 100)
    wait_until(lambda: first.service.learner.events_learned >= 100)
    pending = first.client.decide(decide_request("pending-1"))
    first.stop()

    second = start_service(**{"rewards.window_seconds": 3600.0})
    store = second.service.store

    assert store.count("decisions") == 101
    assert store.count("rewards") == 100
    assert second.service.policies.current().name == "vw-cb"
    assert second.service.learner.events_learned >= 100
    stored = store.get_decision(pending.event_id)
    assert stored.chosen.offer_id == pending.offer_id
    late_reward = second.client.reward(pending.event_id, 1.0)
    assert late_reward.status in (pb.REWARD_STATUS_RECORDED, pb.REWARD_STATUS_LATE)
    replayed = second.client.decide(decide_request("pending-1"))
    assert replayed.event_id == pending.event_id
    assert replayed.replayed


def test_restart_learns_events_joined_after_snapshot(start_service):
    first = start_service(
        **{"rewards.window_seconds": 0.1, "learner.snapshot_every_events": 10_000,
           "learner.snapshot_every_seconds": 3600.0}
    )
    train(first, 30)
    wait_until(lambda: first.service.learner.events_learned >= 30)
    first.service.learner.stop(publish=False)
    assert first.service.registry.head() is None
    first.stop()

    second = start_service(**{"rewards.window_seconds": 0.1})
    wait_until(lambda: second.service.learner.events_learned >= 30)
    wait_until(lambda: second.service.registry.head() is not None)

    assert second.service.registry.head().join_seq_mark == 30


def test_same_request_id_returns_stored_decision(start_service):
    running = start_service(**{"learner.enabled": False})

    first = running.client.decide(decide_request("same"))
    again = running.client.decide(decide_request("same"))

    assert again.event_id == first.event_id
    assert again.offer_id == first.offer_id
    assert again.replayed
    assert not first.replayed
    assert running.service.store.count("decisions") == 1


def test_request_id_reused_with_other_content(start_service):
    running = start_service(**{"learner.enabled": False})
    running.client.decide(decide_request("same"))

    with pytest.raises(grpc.RpcError) as caught:
        running.client.decide(decide_request("same", member_id="member-2"))

    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "request_id 'same'" in caught.value.details()
    assert "new request_id" in caught.value.details()


def test_duplicate_reward_learned_once(start_service):
    running = start_service(**{"learner.enabled": False})
    decision = running.client.decide(decide_request("r"))

    first = running.client.reward(decision.event_id, 5.0, reward_id="pos-receipt-77")
    again = running.client.reward(decision.event_id, 5.0, reward_id="pos-receipt-77")
    auto_first = running.client.reward(decision.event_id, 1.0, outcome="visited")
    auto_again = running.client.reward(decision.event_id, 1.0, outcome="visited")

    assert first.status == pb.REWARD_STATUS_RECORDED
    assert again.status == pb.REWARD_STATUS_DUPLICATE
    assert auto_first.status == pb.REWARD_STATUS_RECORDED
    assert auto_again.status == pb.REWARD_STATUS_DUPLICATE
    joined = running.service.store.join_closed(now=decision.send_at.seconds + 30 * 24 * 3600.0).result()
    assert joined[0].reward == 6.0
    assert joined[0].reward_count == 2


def test_decision_reproduces_from_log(start_service):
    running = start_service(**{"rewards.window_seconds": 0.2, "learner.snapshot_every_events": 20})
    train(running, 80)
    wait_until(lambda: running.service.policies.current().name == "vw-cb")
    response = running.client.decide(decide_request("to-reproduce"))

    stored = running.service.store.get_decision(response.event_id)
    record = running.service.registry.get(stored.model_version)
    policy = VWPolicy(running.service.registry.load_bytes(record), record.version)
    probabilities = policy.distribution(stored.request, stored.actions)
    draw = draw_for_event(stored.event_id, running.config.policy.seed)

    np.testing.assert_allclose(probabilities, stored.probabilities, rtol=0, atol=0)
    assert draw == stored.draw
    assert sample_index(probabilities, draw) == stored.chosen_index


def test_service_follows_learner_in_other_process(start_service, tmp_path):
    serving = start_service(**{"learner.enabled": False, "rewards.window_seconds": 0.1})
    config = make_config(tmp_path, **{"rewards.window_seconds": 0.1})
    store = EventStore(config.store.path, window_seconds=0.1, default_reward=0.0, aggregation="sum")
    registry = ModelRegistry(config.store.path)
    learner = Learner(config, store, registry, PolicyHolder(UniformPolicy()))
    learner.restore()
    train(serving, 60)

    def learned_all() -> bool:
        learner.step()
        return learner.events_learned >= 60

    wait_until(learned_all)
    published = learner.publish()

    wait_until(lambda: serving.service.policies.current().version == published.version, 10)
    response = serving.client.decide(decide_request("after-publish"))

    assert response.model_version == published.version
    assert serving.service.learner.events_learned == published.events_learned
    store.close()
    registry.close()


def test_reward_id_reused_with_other_value(start_service):
    running = start_service(**{"learner.enabled": False})
    decision = running.client.decide(decide_request("r"))
    running.client.reward(decision.event_id, 5.0, reward_id="receipt-9")

    with pytest.raises(grpc.RpcError) as caught:
        running.client.reward(decision.event_id, 7.0, reward_id="receipt-9")

    assert caught.value.code() == grpc.StatusCode.ALREADY_EXISTS
    assert "reward_id 'receipt-9' was stored with" in caught.value.details()
    assert "value 5.0" in caught.value.details()
    assert running.service.store.count("rewards") == 1
