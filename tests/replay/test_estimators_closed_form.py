"""Each estimator against closed-form cases and against a plain loop written here."""

from __future__ import annotations

import math

import numpy as np
import pytest

from replay.estimators import DM, DR, IPS, SNDR, SNIPS, EstimationError, EstimatorInput, SwitchDR


def random_chunk(n: int, seed: int, *, tiny: bool = False) -> EstimatorInput:
    """Return a chunk with varied propensities; with ``tiny`` some are 1e-6 and some 1.0."""
    rng = np.random.default_rng(seed)
    logged = rng.uniform(0.05, 1.0, n)
    target = rng.uniform(0.0, 1.0, n)
    target[rng.random(n) < 0.1] = 0.0
    if tiny:
        logged[::7] = 1e-6
        logged[3::11] = 1.0
        target[3::11] = 1.0
    return EstimatorInput(
        reward=rng.normal(0.5, 1.0, n),
        logged_propensity=logged,
        target_propensity=target,
        q_logged=rng.uniform(0, 1, n),
        q_target=rng.uniform(0, 1, n),
    )


def loop_weights(chunk: EstimatorInput) -> list[float]:
    weights = []
    for i in range(len(chunk)):
        weights.append(float(chunk.target_propensity[i]) / float(chunk.logged_propensity[i]))
    return weights


def loop_ips(chunk: EstimatorInput, max_weight: float | None = None) -> float:
    total = 0.0
    for i, weight in enumerate(loop_weights(chunk)):
        if max_weight is not None and weight > max_weight:
            weight = max_weight
        total += weight * float(chunk.reward[i])
    return total / len(chunk)


def loop_snips(chunk: EstimatorInput) -> float:
    numerator = 0.0
    denominator = 0.0
    for i, weight in enumerate(loop_weights(chunk)):
        numerator += weight * float(chunk.reward[i])
        denominator += weight
    return numerator / denominator


def loop_dm(chunk: EstimatorInput) -> float:
    assert chunk.q_target is not None
    total = 0.0
    for i in range(len(chunk)):
        total += float(chunk.q_target[i])
    return total / len(chunk)


def loop_dr(chunk: EstimatorInput, threshold: float = math.inf) -> float:
    assert chunk.q_target is not None and chunk.q_logged is not None
    total = 0.0
    for i, weight in enumerate(loop_weights(chunk)):
        total += float(chunk.q_target[i])
        if weight <= threshold:
            total += weight * (float(chunk.reward[i]) - float(chunk.q_logged[i]))
    return total / len(chunk)


def loop_sndr(chunk: EstimatorInput) -> float:
    assert chunk.q_target is not None and chunk.q_logged is not None
    direct = 0.0
    correction = 0.0
    weight_sum = 0.0
    for i, weight in enumerate(loop_weights(chunk)):
        direct += float(chunk.q_target[i])
        correction += weight * (float(chunk.reward[i]) - float(chunk.q_logged[i]))
        weight_sum += weight
    return direct / len(chunk) + correction / weight_sum


def fitted(estimator_class: type, chunk: EstimatorInput, **options: float) -> float:
    estimator = estimator_class(replicates=0, **options)
    estimator.update(chunk)
    return float(estimator.estimate())


@pytest.mark.parametrize("tiny", [False, True], ids=["moderate", "tiny-and-boundary"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_estimators_match_plain_loops(seed: int, tiny: bool) -> None:
    chunk = random_chunk(257, seed, tiny=tiny)

    assert fitted(IPS, chunk) == pytest.approx(loop_ips(chunk), rel=1e-12)
    assert fitted(IPS, chunk, max_weight=5.0) == pytest.approx(loop_ips(chunk, 5.0), rel=1e-12)
    assert fitted(SNIPS, chunk) == pytest.approx(loop_snips(chunk), rel=1e-12)
    assert fitted(DM, chunk) == pytest.approx(loop_dm(chunk), rel=1e-12)
    assert fitted(DR, chunk) == pytest.approx(loop_dr(chunk), rel=1e-12)
    assert fitted(SNDR, chunk) == pytest.approx(loop_sndr(chunk), rel=1e-12)
    assert fitted(SwitchDR, chunk, threshold=3.0) == pytest.approx(
        loop_dr(chunk, 3.0), rel=1e-12
    )


def test_tiny_propensity_weight_is_exact() -> None:
    chunk = EstimatorInput(
        reward=[1.0, 0.0, 0.0, 0.0],
        logged_propensity=[1e-6, 1.0, 0.5, 0.5],
        target_propensity=[1.0, 1.0, 0.0, 0.0],
    )

    assert fitted(IPS, chunk) == pytest.approx(1e6 / 4, rel=1e-12)
    assert fitted(IPS, chunk, max_weight=10.0) == pytest.approx(10 / 4, rel=1e-12)
    assert fitted(SNIPS, chunk) == pytest.approx(1e6 / (1e6 + 1), rel=1e-12)


def test_on_policy_weights_give_sample_mean() -> None:
    rewards = [0.0, 1.0, 1.0, 0.5]
    propensities = [1.0, 0.2, 0.7, 0.05]
    chunk = EstimatorInput(
        reward=rewards, logged_propensity=propensities, target_propensity=propensities
    )

    assert fitted(IPS, chunk) == pytest.approx(0.625)
    assert fitted(SNIPS, chunk) == pytest.approx(0.625)


def test_snips_ignores_weight_scale() -> None:
    chunk = EstimatorInput(
        reward=[1.0, 0.0, 1.0, 1.0],
        logged_propensity=[0.5, 0.5, 0.5, 0.5],
        target_propensity=[0.1, 0.1, 0.1, 0.1],
    )

    assert fitted(SNIPS, chunk) == pytest.approx(0.75)
    assert fitted(IPS, chunk) == pytest.approx(0.75 * 0.2)


def test_perfect_reward_model_makes_dr_equal_dm() -> None:
    rewards = [0.2, 0.9, 0.4]
    chunk = EstimatorInput(
        reward=rewards,
        logged_propensity=[0.1, 0.5, 1.0],
        target_propensity=[0.9, 0.3, 1.0],
        q_logged=rewards,
        q_target=[0.3, 0.6, 0.9],
    )

    assert fitted(DM, chunk) == pytest.approx(0.6)
    assert fitted(DR, chunk) == pytest.approx(0.6)
    assert fitted(SNDR, chunk) == pytest.approx(0.6)


def test_constant_weights_sndr_closed_form() -> None:
    chunk = EstimatorInput(
        reward=[1.0, 0.0, 1.0, 0.0],
        logged_propensity=[0.25, 0.25, 0.25, 0.25],
        target_propensity=[0.5, 0.5, 0.5, 0.5],
        q_logged=[0.5, 0.5, 0.5, 0.5],
        q_target=[0.2, 0.2, 0.2, 0.2],
    )

    # mean(q_target) + mean(r - q_logged) because every weight is 2.
    assert fitted(SNDR, chunk) == pytest.approx(0.2 + 0.0)
    # mean(q_target) + 2 * mean(r - q_logged).
    assert fitted(DR, chunk) == pytest.approx(0.2)


def test_switch_dr_limits_are_dr_and_dm() -> None:
    chunk = random_chunk(100, 5)
    positive = EstimatorInput(
        reward=chunk.reward,
        logged_propensity=chunk.logged_propensity,
        target_propensity=np.maximum(chunk.target_propensity, 0.01),
        q_logged=chunk.q_logged,
        q_target=chunk.q_target,
    )

    assert fitted(SwitchDR, positive, threshold=math.inf) == pytest.approx(fitted(DR, positive))
    assert fitted(SwitchDR, positive, threshold=0.0) == pytest.approx(fitted(DM, positive))


@pytest.mark.parametrize("estimator_class", [SNIPS, SNDR])
def test_self_normalised_undefined_without_support(estimator_class: type) -> None:
    chunk = EstimatorInput(
        reward=[1.0, 0.0],
        logged_propensity=[0.5, 0.5],
        target_propensity=[0.0, 0.0],
        q_logged=[0.1, 0.1],
        q_target=[0.2, 0.2],
    )
    estimator = estimator_class()
    estimator.update(chunk)

    with pytest.raises(EstimationError) as caught:
        estimator.estimate()

    assert str(caught.value) == (
        f"{estimator.name}: the estimate is undefined because every importance weight is 0; "
        "the candidate never takes a logged action"
    )


def test_empty_estimator_raises() -> None:
    with pytest.raises(EstimationError) as caught:
        IPS().estimate()

    assert str(caught.value) == "ips: needs at least 1 event, got 0"
