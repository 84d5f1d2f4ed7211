"""Every configured exploration kind serves valid, logged distributions after learning."""

from __future__ import annotations

import math

import pytest
from conftest import decide_request
from test_durability import train
from test_learning import BEST, wait_until


@pytest.mark.parametrize("exploration", ["epsilon", "squarecb", "softmax", "bag"])
def test_exploration_kind_serves_valid_distribution(start_service, exploration):
    running = start_service(
        **{
            "policy.exploration": exploration,
            "rewards.window_seconds": 0.1,
            "learner.snapshot_every_events": 20,
        }
    )
    train(running, 60, prefix=exploration)
    wait_until(lambda: running.service.policies.current().name == "vw-cb")

    response = running.client.decide(decide_request(f"{exploration}-probe"))

    probabilities = {(e.offer_id, e.channel, e.slot): e.probability for e in response.distribution}
    assert response.policy == "vw-cb"
    assert math.isclose(sum(probabilities.values()), 1.0, abs_tol=1e-9)
    assert all(p >= 0.0 for p in probabilities.values())
    assert probabilities[(response.offer_id, response.channel, response.slot)] == response.probability
    assert response.probability > 0.0
    assert BEST in probabilities
    stored = running.service.store.get_decision(response.event_id)
    assert stored.probabilities == tuple(probabilities.values())
