"""Confidence intervals: formulas, delta-method standard errors and simulated coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from bandit.errors import InvalidInputError
from replay.estimators import DR, IPS, SNDR, SNIPS, EstimationError, EstimatorInput
from replay.intervals import IntervalError, normal_interval, percentile_interval

ACTION_REWARD = np.array([0.1, 0.3, 0.5, 0.2, 0.6])
TARGET = np.array([0.5, 0.2, 0.1, 0.1, 0.1])
TRUE_VALUE = float(TARGET @ ACTION_REWARD)
MODEL_BIAS = 0.05


def simulate(n: int, seed: int) -> EstimatorInput:
    """Uniform logging over 5 actions, Bernoulli rewards and a reward model biased by 0.05."""
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, 5, n)
    model = ACTION_REWARD + MODEL_BIAS
    return EstimatorInput(
        reward=rng.binomial(1, ACTION_REWARD[actions]).astype(float),
        logged_propensity=np.full(n, 0.2),
        target_propensity=TARGET[actions],
        q_logged=model[actions],
        q_target=np.full(n, TARGET @ model),
    )


def test_normal_interval_uses_normal_quantile() -> None:
    low, high = normal_interval(1.0, 0.5, 0.9)

    z = stats.norm.ppf(0.95)
    assert low == pytest.approx(1.0 - z * 0.5, rel=1e-12)
    assert high == pytest.approx(1.0 + z * 0.5, rel=1e-12)


def test_percentile_interval_uses_quantiles() -> None:
    values = np.arange(1000, dtype=float)

    low, high = percentile_interval(values, 0.9)

    assert low == pytest.approx(np.quantile(values, 0.05))
    assert high == pytest.approx(np.quantile(values, 0.95))


def test_percentile_interval_skips_undefined_replicates() -> None:
    values = np.array([np.nan] * 5 + list(range(11)), dtype=float)

    low, high = percentile_interval(values, 0.5)

    assert (low, high) == (2.5, 7.5)


def test_percentile_interval_too_few_replicates() -> None:
    with pytest.raises(IntervalError) as caught:
        percentile_interval([1.0, np.nan, 2.0], 0.95)

    assert str(caught.value) == "only 2 of 3 bootstrap replicates are defined; need at least 10"


@pytest.mark.parametrize("level", [0.0, 1.0, 1.5, -0.1, True])
def test_invalid_level_rejected(level: float) -> None:
    with pytest.raises(InvalidInputError) as caught:
        normal_interval(0.0, 1.0, level)

    assert str(caught.value) == f"level: must be a number in (0, 1), got {level!r}"


def test_ips_standard_error_is_sample_formula() -> None:
    chunk = simulate(500, 0)
    estimator = IPS(replicates=0)
    estimator.update(chunk)

    terms = chunk.importance_weights() * chunk.reward
    expected = np.std(terms, ddof=1) / math.sqrt(len(chunk))
    assert estimator.standard_error() == pytest.approx(expected, rel=1e-9)


def test_snips_delta_method_standard_error() -> None:
    chunk = simulate(500, 1)
    estimator = SNIPS(replicates=0)
    estimator.update(chunk)

    weights = chunk.importance_weights()
    value = float((weights * chunk.reward).sum() / weights.sum())
    linearised = weights * (chunk.reward - value)
    expected = np.std(linearised, ddof=1) / (math.sqrt(len(chunk)) * weights.mean())
    assert estimator.standard_error() == pytest.approx(expected, rel=1e-9)


def test_sndr_delta_method_standard_error() -> None:
    chunk = simulate(500, 2)
    assert chunk.q_logged is not None and chunk.q_target is not None
    estimator = SNDR(replicates=0)
    estimator.update(chunk)

    weights = chunk.importance_weights()
    residual = weights * (chunk.reward - chunk.q_logged)
    ratio = residual.sum() / weights.sum()
    linearised = chunk.q_target + (residual - ratio * weights) / weights.mean()
    expected = np.std(linearised, ddof=1) / math.sqrt(len(chunk))
    assert estimator.standard_error() == pytest.approx(expected, rel=1e-9)


def test_bootstrap_spread_matches_standard_error() -> None:
    chunk = simulate(2000, 3)
    estimator = IPS(replicates=400, seed=1)
    estimator.update(chunk)

    spread = float(np.std(estimator.replicate_estimates(), ddof=1))

    assert spread == pytest.approx(estimator.standard_error(), rel=0.15)


def test_bootstrap_depends_on_seed() -> None:
    chunk = simulate(300, 4)
    first = IPS(replicates=100, seed=1)
    first.update(chunk)
    second = IPS(replicates=100, seed=2)
    second.update(chunk)

    assert first.interval() != second.interval()
    assert first.estimate() == second.estimate()


@pytest.mark.parametrize("estimator_class", [IPS, SNIPS, DR, SNDR])
def test_intervals_cover_truth(estimator_class: type) -> None:
    repeats = 100
    covered = {"bootstrap": 0, "normal": 0}
    for repeat in range(repeats):
        estimator = estimator_class(replicates=200, seed=repeat)
        estimator.update(simulate(300, 1000 + repeat))
        for method in covered:
            estimate = estimator.interval(method, 0.95)
            if estimate.ci_low <= TRUE_VALUE <= estimate.ci_high:
                covered[method] += 1

    # Nominal 95%; with 100 repeats the binomial standard deviation is about 2 points.
    assert covered["bootstrap"] / repeats >= 0.87
    assert covered["normal"] / repeats >= 0.87
    assert covered["bootstrap"] / repeats <= 1.0


def test_interval_result_fields() -> None:
    estimator = IPS(replicates=50)
    estimator.update(simulate(100, 5))

    result = estimator.interval("normal", 0.9).to_dict()

    assert set(result) == {"value", "ci_low", "ci_high", "method", "level", "diagnostics"}
    assert result["method"] == "normal"
    assert result["level"] == 0.9
    assert result["ci_low"] <= result["value"] <= result["ci_high"]


def test_bootstrap_without_replicates_raises() -> None:
    estimator = IPS(replicates=0)
    estimator.update(simulate(10, 6))

    with pytest.raises(EstimationError) as caught:
        estimator.interval("bootstrap")

    assert str(caught.value) == (
        "ips: no bootstrap replicates are kept (replicates=0); use the normal interval or "
        "create the estimator with replicates > 0"
    )


def test_unknown_interval_method_rejected() -> None:
    estimator = IPS(replicates=0)
    estimator.update(simulate(10, 7))

    with pytest.raises(InvalidInputError) as caught:
        estimator.interval("exact")  # type: ignore[arg-type]

    assert str(caught.value) == "method: must be 'bootstrap' or 'normal', got 'exact'"


def test_normal_interval_needs_two_events() -> None:
    estimator = IPS(replicates=0)
    estimator.update(simulate(1, 8))

    with pytest.raises(EstimationError) as caught:
        estimator.interval("normal")

    assert str(caught.value) == "ips: needs at least 2 events, got 1"
