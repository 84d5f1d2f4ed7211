"""Importance-weight diagnostics: ESS, max weight, quantiles and the unsupported share."""

from __future__ import annotations

import numpy as np
import pytest

from replay.diagnostics import QUANTILES, RELATIVE_ACCURACY, WeightDiagnostics
from replay.estimators import IPS, EstimatorInput


def test_ess_and_max_weight_plain_formula() -> None:
    weights = np.array([0.0, 0.5, 2.0, 4.0, 0.5])
    accumulator = WeightDiagnostics()

    accumulator.update(weights)
    result = accumulator.result()

    assert result.n == 5
    assert result.ess == pytest.approx(7.0**2 / 20.5)
    assert result.max_weight == 4.0
    assert result.unsupported_share == pytest.approx(0.2)


def test_equal_weights_give_full_ess() -> None:
    accumulator = WeightDiagnostics()

    accumulator.update(np.full(40, 3.0))

    assert accumulator.result().ess == pytest.approx(40.0)


@pytest.mark.parametrize("seed", [0, 1])
def test_quantiles_within_relative_accuracy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    weights = np.concatenate([np.zeros(50), rng.lognormal(0.0, 2.0, 5000), [1e6, 1e-7]])
    accumulator = WeightDiagnostics()
    accumulator.update(weights)

    quantiles = accumulator.result().weight_quantiles

    for level in QUANTILES:
        exact = float(np.quantile(weights, level, method="lower"))
        assert quantiles[level] == pytest.approx(exact, rel=RELATIVE_ACCURACY)


def test_quantile_in_zero_mass() -> None:
    accumulator = WeightDiagnostics()

    accumulator.update(np.array([0.0] * 9 + [5.0]))

    assert accumulator.quantile(0.5) == 0.0
    assert accumulator.quantile(1.0) == pytest.approx(5.0, rel=RELATIVE_ACCURACY)


def test_merge_equals_single_pass() -> None:
    rng = np.random.default_rng(2)
    weights = rng.exponential(2.0, 3000)
    whole = WeightDiagnostics()
    whole.update(weights)
    left = WeightDiagnostics()
    left.update(weights[:1000])
    right = WeightDiagnostics()
    right.update(weights[1000:])

    merged = left.merge(right).result()
    expected = whole.result()

    assert merged.n == expected.n
    assert merged.ess == pytest.approx(expected.ess, rel=1e-12)
    assert merged.max_weight == expected.max_weight
    assert merged.weight_quantiles == expected.weight_quantiles
    assert left.n == 1000


def test_estimator_reports_weight_diagnostics() -> None:
    chunk = EstimatorInput(
        reward=[1.0, 0.0, 1.0, 0.0],
        logged_propensity=[0.5, 0.25, 1e-6, 1.0],
        target_propensity=[0.0, 0.5, 1e-6, 1.0],
    )
    estimator = IPS(replicates=0)
    estimator.update(chunk)

    result = estimator.diagnostics()

    assert result.n == 4
    assert result.max_weight == pytest.approx(2.0)
    assert result.unsupported_share == pytest.approx(0.25)
    assert result.ess == pytest.approx(16.0 / 6.0)


def test_empty_diagnostics() -> None:
    result = WeightDiagnostics().result()

    assert result.n == 0
    assert result.ess == 0.0
    assert np.isnan(result.max_weight)
    assert np.isnan(result.unsupported_share)
