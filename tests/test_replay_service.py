"""Replay on the service's own log: estimates, the gate, promotion and rollback."""

from __future__ import annotations

import json
import sqlite3

import numpy as np
import pytest
from conftest import decide_request
from test_learning import BEST, wait_until

from bandit.config import PolicyConfig
from bandit.errors import InvalidInputError
from bandit.vw_policy import VWPolicy
from loyalty_bandit.replay_cli import promote_candidate
from replay.evaluate import evaluate_store
from replay.gate import GateConfig
from replay.policies.baselines import FixedActionPolicy, UniformPolicy
from replay.service_log import iter_store_log
from replay.train import train_from_store

FAR_FUTURE = 4_000_000_000.0


def uniform_log(running, rounds: int, seed: int = 3) -> None:
    """Log uniform decisions with reward 1 for BEST plus noise, and close every window."""
    rng = np.random.default_rng(seed)
    for index in range(rounds):
        tier = "gold" if index % 2 else "silver"
        response = running.client.decide(decide_request(f"log-{index}", tier=tier))
        served = (response.offer_id, response.channel, response.slot)
        reward = (1.0 if served == BEST else 0.2) + rng.normal(0.0, 0.1)
        running.client.reward(response.event_id, reward)
    running.service.store.join_closed(now=FAR_FUTURE).result()


@pytest.fixture
def logged(start_service):
    running = start_service(**{"learner.enabled": False})
    uniform_log(running, 600)
    return running


def test_estimates_cover_known_values(logged):
    policies = {"best": FixedActionPolicy(*BEST), "uniform": UniformPolicy()}

    evaluation = evaluate_store(logged.config.store.path, policies, replicates=300, seed=1)

    assert evaluation.n_events == 600
    assert evaluation.n_invalid == 0
    # Event ids, and so the logged draws, are random: a 99.99% interval keeps the test stable.
    for estimator in ("ips", "snips", "dr", "sndr"):
        best = evaluation.policies["best"].estimate(estimator, "normal", 0.9999)
        uniform = evaluation.policies["uniform"].estimate(estimator, "normal", 0.9999)
        assert best.ci_low < 1.0 < best.ci_high, (estimator, best)
        assert uniform.ci_low < 0.4 < uniform.ci_high, (estimator, uniform)
    # The direct method's interval ignores the reward model's own error, so only its bias is bounded.
    assert evaluation.policies["best"].estimate("dm").value == pytest.approx(1.0, abs=0.1)
    assert evaluation.policies["uniform"].estimate("dm").value == pytest.approx(0.4, abs=0.1)
    ips_uniform = evaluation.policies["uniform"].estimate("ips").value
    assert ips_uniform == pytest.approx(evaluation.logged_value, rel=1e-9)


def test_lift_of_identical_policies_is_zero(logged):
    policies = {"a": UniformPolicy(), "b": UniformPolicy()}
    evaluation = evaluate_store(logged.config.store.path, policies, replicates=200)

    lift = evaluation.lift("a", "b", "dr")

    assert lift.value == 0.0
    assert lift.ci_low == 0.0
    assert lift.ci_high == 0.0


def test_invalid_rows_rejected_or_quarantined(logged):
    path = logged.config.store.path
    logged.stop()
    with sqlite3.connect(path) as connection:
        connection.execute(
            "UPDATE decisions SET probability = 1.7 WHERE event_id = "
            "(SELECT event_id FROM decisions ORDER BY decided_at LIMIT 1)"
        )

    with pytest.raises(InvalidInputError) as caught:
        list(iter_store_log(path))
    chunks = list(iter_store_log(path, on_invalid="quarantine"))

    assert "1 of 600 rows are invalid" in str(caught.value)
    assert "propensity must be in (0, 1]" in str(caught.value)
    assert sum(len(chunk.events) for chunk in chunks) == 599
    assert sum(len(chunk.quarantined) for chunk in chunks) == 1


def test_gate_promotes_better_and_rolls_back(logged):
    path = logged.config.store.path
    trained = train_from_store(path, PolicyConfig(epsilon=0.05), passes=2)
    record = logged.service.registry.publish(trained.model_bytes, parent="", lineage=-1, source="import")
    before = logged.client.decide(decide_request("before"))

    same, _, same_version = promote_candidate(
        path, "uniform", incumbent="uniform", gate=GateConfig(min_ess=10), replicates=200
    )
    better, _, version = promote_candidate(
        path, f"registry:{record.version}", incumbent="uniform", gate=GateConfig(min_ess=10), replicates=200
    )

    assert not same.passed
    assert same_version is None
    assert better.passed, better.reasons
    assert version == record.version
    assert better.lift.ci_low > 0
    assert before.policy == "cold-start-uniform"
    wait_until(lambda: logged.service.policies.current().name == "vw-cb", 10)
    served = logged.service.policies.current()
    assert isinstance(served, VWPolicy)
    after = logged.client.decide(decide_request("after"))
    assert after.policy == "vw-cb"
    promoted_head = logged.service.registry.head()
    assert promoted_head.parent == record.version
    assert after.model_version == promoted_head.version

    rollback = logged.service.registry.rollback(join_seq_mark=0)
    wait_until(lambda: logged.service.policies.current().name == "cold-start-uniform", 10)
    restored = logged.client.decide(decide_request("restored"))

    assert rollback.action == "rollback"
    assert rollback.previous_version == promoted_head.version
    assert restored.policy == "cold-start-uniform"
    actions = [promotion.action for promotion in logged.service.registry.promotions()]
    assert actions == ["promote", "rollback"]


def test_cli_train_compare_promote_rollback(logged, tmp_path):
    from typer.testing import CliRunner

    from loyalty_bandit.cli import app

    runner = CliRunner()
    store = logged.config.store.path
    trained_json = tmp_path / "train.json"

    trained = runner.invoke(
        app, ["replay", "train", "--store", store, "--split", "0.5", "--passes", "2",
              "--replicates", "100", "--json", str(trained_json)],
    )
    assert trained.exit_code == 0, trained.output
    version = json.loads(trained_json.read_text())["version"]

    compared = runner.invoke(
        app, ["replay", "compare", "--store", store, "--candidate", f"registry:{version}",
              "--candidate", "fixed:free_coffee/push/now", "--incumbent", "uniform", "--replicates", "100",
              "--json", str(tmp_path / "compare.json"), "--report", str(tmp_path / "report")],
    )
    assert compared.exit_code == 0, compared.output
    comparison = json.loads((tmp_path / "compare.json").read_text())
    assert [lift["candidate"] for lift in comparison["lifts"]] == [f"registry:{version}", "fixed:free_coffee/push/now"]
    assert (tmp_path / "report" / "weights.png").exists()

    refused = runner.invoke(
        app, ["replay", "promote", "--store", store, "--candidate", f"registry:{version}",
              "--incumbent", "uniform", "--min-lift", "100", "--replicates", "100"],
    )
    assert refused.exit_code == 1
    assert logged.service.registry.promotions() == []

    promoted = runner.invoke(
        app, ["replay", "promote", "--store", store, "--candidate", f"registry:{version}",
              "--incumbent", "uniform", "--min-ess", "10", "--replicates", "100"],
    )
    assert promoted.exit_code == 0, promoted.output
    wait_until(lambda: logged.service.policies.current().name == "vw-cb", 10)

    rolled_back = runner.invoke(app, ["replay", "rollback", "--store", store])
    assert rolled_back.exit_code == 0, rolled_back.output
    wait_until(lambda: logged.service.policies.current().name == "cold-start-uniform", 10)
    actions = [promotion.action for promotion in logged.service.registry.promotions()]
    assert actions == ["promote", "rollback"]


def test_dsjson_replay_matches_store_replay(logged, tmp_path):
    from bandit.store.export import write_dsjson
    from replay.dsjson import UniformDSJsonPolicy, VWDSJsonPolicy, evaluate_dsjson

    path = logged.config.store.path
    dsjson_path = tmp_path / "log.dsjson"
    with open(dsjson_path, "w") as handle:
        write_dsjson(logged.service.store, handle)
    trained = train_from_store(path, PolicyConfig(epsilon=0.05))
    model = VWPolicy(trained.model_bytes, "m")

    from_store = evaluate_store(path, {"model": model, "uniform": UniformPolicy()}, replicates=50)
    from_file = evaluate_dsjson(
        dsjson_path,
        {"model": VWDSJsonPolicy(trained.model_bytes, "m"), "uniform": UniformDSJsonPolicy()},
        replicates=50,
    )

    assert from_file.n_events == from_store.n_events == 600
    for name in ("model", "uniform"):
        for estimator in ("ips", "snips"):
            file_value = from_file.policies[name].accumulators[estimator].estimate()
            store_value = from_store.policies[name].accumulators[estimator].estimate()
            assert file_value == pytest.approx(store_value, rel=1e-5), (name, estimator)


def test_dsjson_invalid_lines_reported(tmp_path):
    from replay.dsjson import iter_dsjson

    good = {
        "_label_cost": -1.0, "_label_probability": 0.5, "_label_Action": 2, "_labelIndex": 1,
        "a": [2, 1], "c": {"shared": {"f": "1"}, "_multi": [{"x": {"a": 1}}, {"x": {"b": 1}}]}, "p": [0.5, 0.5],
    }
    zero_probability = dict(good, _label_probability=0.0)
    path = tmp_path / "vw.dsjson"
    path.write_text("\n".join([json.dumps(good), "not json", json.dumps(zero_probability)]) + "\n")

    with pytest.raises(InvalidInputError) as caught:
        list(iter_dsjson(path))
    chunks = list(iter_dsjson(path, on_invalid="quarantine"))

    assert "2 of 3 rows are invalid" in str(caught.value)
    assert [event.line_number for event in chunks[0].events] == [1]
    assert chunks[0].events[0].reward == 1.0
    assert len(chunks[0].quarantined) == 2
