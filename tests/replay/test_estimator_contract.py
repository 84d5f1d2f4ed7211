"""The contract every off-policy estimator passes.

Deterministic under a seed, inputs left untouched, merging partial
accumulators equals one pass, picklable, and no state shared between
instances.
"""

from __future__ import annotations

import itertools
import pickle
from collections.abc import Callable

import numpy as np
import pytest

from bandit.errors import InvalidInputError
from replay.estimators import (
    DM,
    DR,
    IPS,
    SNDR,
    SNIPS,
    EstimatorInput,
    OffPolicyEstimator,
    SwitchDR,
    update_all,
)

Factory = Callable[[], OffPolicyEstimator]

FACTORIES: dict[str, Factory] = {
    "ips": lambda: IPS(replicates=50, seed=3),
    "ips-clipped": lambda: IPS(max_weight=4.0, replicates=50, seed=3),
    "snips": lambda: SNIPS(replicates=50, seed=3),
    "dm": lambda: DM(replicates=50, seed=3),
    "dr": lambda: DR(replicates=50, seed=3),
    "sndr": lambda: SNDR(replicates=50, seed=3),
    "switch-dr": lambda: SwitchDR(threshold=5.0, replicates=50, seed=3),
}


@pytest.fixture(params=sorted(FACTORIES))
def factory(request: pytest.FixtureRequest) -> Factory:
    return FACTORIES[request.param]


def make_arrays(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    logged = rng.uniform(0.02, 1.0, n)
    logged[::13] = 1e-6
    logged[5::17] = 1.0
    return {
        "reward": rng.binomial(1, 0.3, n).astype(float),
        "logged_propensity": logged,
        "target_propensity": rng.uniform(0.0, 1.0, n),
        "q_logged": rng.uniform(0, 1, n),
        "q_target": rng.uniform(0, 1, n),
    }


def split(arrays: dict[str, np.ndarray], bounds: list[int]) -> list[tuple[int, EstimatorInput]]:
    """Return (first_row, chunk) for each slice between consecutive bounds."""
    chunks = []
    for start, stop in itertools.pairwise(bounds):
        piece = {name: values[start:stop] for name, values in arrays.items()}
        chunks.append((start, EstimatorInput(**piece)))
    return chunks


def single_pass(factory: Factory, arrays: dict[str, np.ndarray]) -> OffPolicyEstimator:
    estimator = factory()
    estimator.update(EstimatorInput(**arrays))
    return estimator


def assert_same_results(left: OffPolicyEstimator, right: OffPolicyEstimator) -> None:
    assert left.n == right.n
    assert left.estimate() == pytest.approx(right.estimate(), rel=1e-9)
    assert left.standard_error() == pytest.approx(right.standard_error(), rel=1e-9)
    np.testing.assert_allclose(
        left.replicate_estimates(), right.replicate_estimates(), rtol=1e-9
    )
    left_diagnostics = left.diagnostics()
    right_diagnostics = right.diagnostics()
    assert left_diagnostics.n == right_diagnostics.n
    assert left_diagnostics.ess == pytest.approx(right_diagnostics.ess, rel=1e-9)
    assert left_diagnostics.max_weight == right_diagnostics.max_weight
    assert left_diagnostics.weight_quantiles == right_diagnostics.weight_quantiles
    assert left_diagnostics.unsupported_share == right_diagnostics.unsupported_share


def test_deterministic_under_seed(factory: Factory) -> None:
    arrays = make_arrays(300, 0)

    first = single_pass(factory, arrays)
    second = single_pass(factory, arrays)

    assert first.interval("bootstrap") == second.interval("bootstrap")
    assert first.interval("normal") == second.interval("normal")


def test_inputs_left_untouched(factory: Factory) -> None:
    arrays = make_arrays(200, 1)
    originals = {name: values.copy() for name, values in arrays.items()}
    chunk = EstimatorInput(**arrays)

    estimator = factory()
    estimator.update(chunk)
    estimator.interval("bootstrap")

    for name, values in arrays.items():
        np.testing.assert_array_equal(values, originals[name])
        np.testing.assert_array_equal(getattr(chunk, name), originals[name])


def test_merge_equals_single_pass(factory: Factory) -> None:
    arrays = make_arrays(1000, 2)
    expected = single_pass(factory, arrays)

    partials = []
    for first_row, chunk in split(arrays, [0, 137, 600, 1000]):
        partial = factory()
        partial.update(chunk, first_row=first_row)
        partials.append(partial)

    assert_same_results(partials[0].merge(partials[1]).merge(partials[2]), expected)
    assert_same_results(partials[2].merge(partials[0]).merge(partials[1]), expected)


def test_sequential_updates_equal_single_pass(factory: Factory) -> None:
    arrays = make_arrays(700, 3)
    expected = single_pass(factory, arrays)

    estimator = factory()
    for _, chunk in split(arrays, [0, 1, 350, 700]):
        estimator.update(chunk)

    assert_same_results(estimator, expected)


def test_merge_leaves_operands_unchanged(factory: Factory) -> None:
    arrays = make_arrays(400, 4)
    (start_a, chunk_a), (start_b, chunk_b) = split(arrays, [0, 200, 400])
    left = factory()
    left.update(chunk_a, first_row=start_a)
    right = factory()
    right.update(chunk_b, first_row=start_b)
    left_value = left.estimate()
    right_value = right.estimate()

    left.merge(right)

    assert left.n == 200
    assert right.n == 200
    assert left.estimate() == left_value
    assert right.estimate() == right_value


def test_merge_overlapping_rows_rejected(factory: Factory) -> None:
    arrays = make_arrays(100, 5)
    left = single_pass(factory, arrays)
    right = single_pass(factory, arrays)

    with pytest.raises(InvalidInputError) as caught:
        left.merge(right)

    assert str(caught.value) == (
        "first_row: rows 0..99 were already added; give each chunk its own first_row so "
        "that bootstrap counts are not reused"
    )


def test_merge_different_seed_rejected(factory: Factory) -> None:
    left = factory()
    right = factory()
    right.seed = 4

    with pytest.raises(InvalidInputError, match="settings differ"):
        left.merge(right)


def test_picklable(factory: Factory) -> None:
    arrays = make_arrays(500, 6)
    (_, head), (_, tail) = split(arrays, [0, 250, 500])
    estimator = factory()
    estimator.update(head)

    restored = pickle.loads(pickle.dumps(estimator))
    restored.update(tail)
    estimator.update(tail)

    assert_same_results(restored, estimator)


def test_instances_share_no_state(factory: Factory) -> None:
    first = factory()
    second = factory()

    first.update(EstimatorInput(**make_arrays(50, 7)))

    assert second.n == 0
    assert second.diagnostics().n == 0


def test_update_all_equals_separate_updates() -> None:
    arrays = make_arrays(5000, 8)
    together = [factory() for factory in FACTORIES.values()]
    separate = [factory() for factory in FACTORIES.values()]

    for first_row, chunk in split(arrays, [0, 4100, 5000]):
        update_all(together, chunk, first_row=first_row)
        for estimator in separate:
            estimator.update(chunk, first_row=first_row)

    for joint, alone in zip(together, separate, strict=True):
        assert_same_results(joint, alone)


def test_update_all_checks_before_changing() -> None:
    ips = IPS(replicates=10)
    dm = DM(replicates=10)
    chunk = EstimatorInput(reward=[1.0], logged_propensity=[0.5], target_propensity=[1.0])

    with pytest.raises(InvalidInputError, match="is required by dm"):
        update_all([ips, dm], chunk)

    assert ips.n == 0


def test_update_all_rejects_repeated_estimator() -> None:
    ips = IPS(replicates=10)
    chunk = EstimatorInput(reward=[1.0], logged_propensity=[0.5], target_propensity=[1.0])

    with pytest.raises(InvalidInputError) as caught:
        update_all([ips, ips], chunk)

    assert str(caught.value) == "estimators: contains the same estimator more than once"
