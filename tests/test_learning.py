"""Online learning and the statistics of logged probabilities, on a real server."""

from __future__ import annotations

import collections
import time

import pytest
from conftest import decide_request
from scipy import stats

BEST = ("free_coffee", "push", "now")


def wait_until(condition, timeout_seconds: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_seconds
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"condition not met within {timeout_seconds} s")
        time.sleep(0.02)


def test_learning_moves_choice_to_best_pair(start_service):
    running = start_service(
        **{
            "rewards.window_seconds": 0.2,
            "learner.snapshot_every_events": 50,
            "policy.epsilon": 0.1,
        }
    )
    rounds = 400
    for index in range(rounds):
        response = running.client.decide(decide_request(f"train-{index}"))
        served = (response.offer_id, response.channel, response.slot)
        running.client.reward(response.event_id, 1.0 if served == BEST else 0.0)

    wait_until(lambda: running.service.learner.events_learned >= rounds)
    wait_until(lambda: running.service.policies.current().name == "vw-cb")
    wait_until(lambda: running.service.learner.unpublished_events == 0)

    probe = running.client.decide(decide_request("probe"))
    probabilities = {(e.offer_id, e.channel, e.slot): e.probability for e in probe.distribution}

    assert probe.policy == "vw-cb"
    assert probe.model_version
    assert max(probabilities, key=probabilities.get) == BEST
    assert probabilities[BEST] == pytest.approx(0.9 + 0.1 / 4, abs=1e-6)


def test_logged_probabilities_match_frequencies(start_service):
    # Train a model first so the distribution is not uniform, then freeze it.
    running = start_service(**{"rewards.window_seconds": 0.2, "policy.epsilon": 0.3})
    for index in range(150):
        response = running.client.decide(decide_request(f"train-{index}"))
        served = (response.offer_id, response.channel, response.slot)
        running.client.reward(response.event_id, 1.0 if served == BEST else 0.0)
    wait_until(lambda: running.service.learner.events_learned >= 150)
    wait_until(lambda: running.service.learner.unpublished_events == 0)
    running.service.learner.stop()

    requests = [decide_request(f"stat-{index}") for index in range(4000)]
    responses = [item.decision for item in running.client.decide_stream(requests)]
    versions = {response.model_version for response in responses}
    assert len(versions) == 1

    distribution = {(e.offer_id, e.channel, e.slot): e.probability for e in responses[0].distribution}
    assert len(set(distribution.values())) > 1
    counts = collections.Counter((r.offer_id, r.channel, r.slot) for r in responses)
    for response in responses:
        assert response.probability == distribution[(response.offer_id, response.channel, response.slot)]

    keys = sorted(distribution)
    observed = [counts.get(key, 0) for key in keys]
    expected = [distribution[key] * len(responses) for key in keys]
    result = stats.chisquare(observed, expected)
    assert result.pvalue > 1e-3, (observed, expected)
