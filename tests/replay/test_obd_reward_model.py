"""The cross-fitted ridge reward model: no row is scored by a model that saw it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from replay.obd_loader import ObdChunk
from replay.obd_reward_model import CrossFittedRidge, FeatureLayout, RewardModelError
from replay.schemas import InvalidRowsReport

N_ITEMS = 6


def make_chunk(n: int, seed: int, first_row: int = 0) -> ObdChunk:
    rng = np.random.default_rng(seed)
    items = rng.integers(0, N_ITEMS, n)
    affinity = rng.binomial(1, 0.2, (n, N_ITEMS)).astype(float)
    click_rate = 0.05 + 0.05 * items / N_ITEMS + 0.2 * affinity[np.arange(n), items]
    return ObdChunk(
        rows=np.arange(first_row, first_row + n, dtype=np.int64),
        item=items.astype(np.intp),
        position=rng.integers(1, 4, n).astype(np.intp),
        click=rng.binomial(1, click_rate).astype(float),
        propensity=np.full(n, 1 / N_ITEMS),
        user_codes=rng.integers(0, 2**63, (n, 4)).astype(np.uint64),
        affinity=affinity,
        quarantined=pd.DataFrame(),
        report=InvalidRowsReport("test", n, 0, {}, ()),
    )


def fitted_model(chunk: ObdChunk, folds: int = 3) -> CrossFittedRidge:
    model = CrossFittedRidge(FeatureLayout(N_ITEMS, 3), folds=folds, l2=2.0, seed=4)
    model.add(chunk)
    model.fit()
    return model


def test_predictions_match_ridge_on_other_folds() -> None:
    chunk = make_chunk(900, 0)
    model = fitted_model(chunk)
    layout = model.layout

    predictions = model.predict(chunk)

    design = layout.design(chunk, chunk.item)
    folds = model.fold_of(chunk.rows)
    penalty = np.eye(layout.width) * 2.0
    penalty[0, 0] = 0.0
    for fold in range(3):
        train = folds != fold
        coefficients = np.linalg.solve(
            design[train].T @ design[train] + penalty, design[train].T @ chunk.click[train]
        )
        scored = np.flatnonzero(folds == fold)
        for item in range(N_ITEMS):
            same_item = np.full(len(chunk), item, dtype=np.intp)
            item_design = layout.design(chunk, same_item)[scored]
            expected = np.clip(item_design @ coefficients, 0.0, 1.0)
            np.testing.assert_allclose(predictions[scored, item], expected, atol=1e-10)


def test_own_clicks_do_not_change_own_predictions() -> None:
    chunk = make_chunk(600, 1)
    model = fitted_model(chunk, folds=2)
    in_fold_zero = model.fold_of(chunk.rows) == 0
    flipped_click = chunk.click.copy()
    flipped_click[in_fold_zero] = 1.0 - flipped_click[in_fold_zero]
    flipped = ObdChunk(**{**chunk.__dict__, "click": flipped_click})

    original = model.predict(chunk)
    changed = fitted_model(flipped, folds=2).predict(flipped)

    np.testing.assert_allclose(changed[in_fold_zero], original[in_fold_zero], atol=1e-12)
    assert not np.allclose(changed[~in_fold_zero], original[~in_fold_zero])


def test_predictions_are_click_probabilities() -> None:
    chunk = make_chunk(300, 2)
    model = fitted_model(chunk)

    predictions = model.predict(chunk)

    assert predictions.shape == (300, N_ITEMS)
    assert bool(((predictions >= 0) & (predictions <= 1)).all())
    assert predictions.std() > 0


def test_folds_stable_across_chunks() -> None:
    model = CrossFittedRidge(FeatureLayout(N_ITEMS, 3), folds=5, seed=7)

    whole = model.fold_of(np.arange(0, 1000, dtype=np.int64))
    tail = model.fold_of(np.arange(600, 1000, dtype=np.int64))

    np.testing.assert_array_equal(tail, whole[600:])
    assert set(np.unique(whole)) == {0, 1, 2, 3, 4}


def test_predict_before_fit_raises() -> None:
    model = CrossFittedRidge(FeatureLayout(N_ITEMS, 3))

    with pytest.raises(RewardModelError) as caught:
        model.predict(make_chunk(10, 3))

    assert str(caught.value) == "the reward model is not fitted; call fit() after add()"


def test_empty_fold_raises() -> None:
    model = CrossFittedRidge(FeatureLayout(N_ITEMS, 3), folds=2, seed=0)
    model.add(make_chunk(1, 4))

    with pytest.raises(RewardModelError, match="every fold needs rows"):
        model.fit()
