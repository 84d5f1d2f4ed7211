"""Off-policy evaluation of the BTS policy on the Open Bandit Dataset's uniform-random log.

The Open Bandit Dataset records the same campaign under two logging policies:
uniform random and Bernoulli Thompson Sampling (BTS). Estimating the BTS
policy's click rate from the random log, and comparing it with the click rate
that BTS actually achieved in its own log, checks the estimators on real data.
The value is the click rate per impression, averaged over the positions.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from bandit.errors import InvalidInputError
from replay.bts import bts_action_distribution, read_bts_prior
from replay.estimators import (
    DM,
    DR,
    IPS,
    SNDR,
    SNIPS,
    EstimatorInput,
    IntervalMethod,
    OffPolicyEstimator,
    update_all,
)
from replay.intervals import check_level, normal_interval
from replay.obd_loader import (
    FETCH_HINT,
    LEN_LIST,
    DatasetNotFoundError,
    campaign_files,
    iter_obd_log,
    read_item_count,
)
from replay.obd_reward_model import CrossFittedRidge, FeatureLayout
from replay.schemas import InvalidRowsReport, OnInvalid

ESTIMATOR_NAMES = ("ips", "snips", "dm", "dr", "sndr")
"""Estimators that ``run_obd`` reports, in report order."""


def run_obd(
    obd_dir: Path,
    campaign: str,
    prior: Path | None = None,
    *,
    n_draws: int = 100_000,
    seed: int = 0,
    bootstrap: int = 200,
    level: float = 0.95,
    folds: int = 2,
    chunksize: int = 100_000,
    on_invalid: OnInvalid = "raise",
) -> dict[str, Any]:
    """Estimate the BTS policy's click rate from the random log and compare it with BTS's own.

    Parameters
    ----------
    obd_dir
        Folder with ``random/CAMPAIGN/``, ``bts/CAMPAIGN/`` and, by default,
        ``prior_bts.yaml``.
    campaign
        Campaign folder name, such as ``all``, ``men`` or ``women``.
    prior
        BTS prior file; defaults to ``obd_dir / "prior_bts.yaml"``.
    n_draws
        Monte Carlo draws for the BTS action distribution.
    seed
        Seed of the Monte Carlo draws, the bootstrap and the reward model folds.
    bootstrap
        Poisson bootstrap replicates for percentile intervals; with 0 the
        intervals use the normal approximation (delta method).
    level
        Confidence level of the intervals.
    folds
        Folds of the cross-fitted reward model used by DM, DR and SNDR.
    chunksize
        Rows read from a log at a time.
    on_invalid
        ``raise`` rejects a log with invalid rows; ``quarantine`` leaves them
        out and counts them under ``invalid_rows`` in the result.

    Returns
    -------
    dict
        JSON-ready: ``campaign``, ``on_policy_value``, ``on_policy``,
        ``estimates`` (value, ci_low, ci_high, method, level per estimator),
        ``relative_error`` (|estimate - on-policy value| / on-policy value, or
        None when the on-policy value is 0), ``diagnostics``, ``invalid_rows``
        and ``settings``.
    """
    check_level(level)
    random_files = campaign_files(obd_dir, "random", campaign)
    bts_files = campaign_files(obd_dir, "bts", campaign)
    prior_path = obd_dir / "prior_bts.yaml" if prior is None else prior
    if not prior_path.is_file():
        raise DatasetNotFoundError(f"BTS prior file not found: {prior_path}; {FETCH_HINT}")

    n_items = read_item_count(random_files.item_context)
    beta_prior = read_bts_prior(prior_path, campaign)
    if beta_prior.n_items != n_items:
        raise InvalidInputError(
            f"{prior_path}: {campaign}",
            f"has {beta_prior.n_items} items, but {random_files.item_context} lists {n_items}",
        )
    distribution = bts_action_distribution(
        beta_prior, len_list=LEN_LIST, n_draws=n_draws, seed=seed
    )

    # Pass 1 fits the reward model. Pass 2 scores each row with the folds that exclude it.
    model = CrossFittedRidge(FeatureLayout(n_items, LEN_LIST), folds=folds, seed=seed)
    for chunk in iter_obd_log(
        random_files.log, n_items, chunksize=chunksize, on_invalid=on_invalid
    ):
        model.add(chunk)
    model.fit()

    estimators: dict[str, OffPolicyEstimator] = {
        "ips": IPS(replicates=bootstrap, seed=seed),
        "snips": SNIPS(replicates=bootstrap, seed=seed),
        "dm": DM(replicates=bootstrap, seed=seed),
        "dr": DR(replicates=bootstrap, seed=seed),
        "sndr": SNDR(replicates=bootstrap, seed=seed),
    }
    random_invalid = _InvalidRowCounter()
    for chunk in iter_obd_log(
        random_files.log, n_items, chunksize=chunksize, on_invalid=on_invalid
    ):
        random_invalid.add(chunk.report)
        q_all = model.predict(chunk)
        position_distribution = distribution[:, chunk.position - 1].T
        rows = np.arange(len(chunk))
        estimator_input = EstimatorInput(
            reward=chunk.click,
            logged_propensity=chunk.propensity,
            target_propensity=distribution[chunk.item, chunk.position - 1],
            q_logged=q_all[rows, chunk.item],
            q_target=(q_all * position_distribution).sum(axis=1),
        )
        update_all(list(estimators.values()), estimator_input)

    on_policy, bts_invalid = _on_policy_click_rate(
        bts_files.log, bts_files.item_context, level, chunksize, on_invalid
    )
    method: IntervalMethod = "bootstrap" if bootstrap > 0 else "normal"
    estimates = {
        name: estimator.interval(method, level).to_dict()
        for name, estimator in estimators.items()
    }
    for estimate in estimates.values():
        estimate.pop("diagnostics", None)

    on_policy_value = on_policy["value"]
    relative_error = {
        name: (abs(estimate["value"] - on_policy_value) / on_policy_value)
        if on_policy_value > 0
        else None
        for name, estimate in estimates.items()
    }
    return {
        "campaign": campaign,
        "on_policy_value": on_policy_value,
        "on_policy": on_policy,
        "estimates": estimates,
        "relative_error": relative_error,
        "diagnostics": estimators["ips"].diagnostics().to_dict(),
        "invalid_rows": {"random": random_invalid.to_dict(), "bts": bts_invalid.to_dict()},
        "settings": {
            "obd_dir": str(obd_dir),
            "prior": str(prior_path),
            "n_items": n_items,
            "len_list": LEN_LIST,
            "n_draws": n_draws,
            "seed": seed,
            "bootstrap": bootstrap,
            "level": level,
            "folds": folds,
        },
    }


class _InvalidRowCounter:
    """Sums the invalid-row reports of the chunks of one log."""

    def __init__(self) -> None:
        self.count = 0
        self.reasons: dict[str, int] = {}

    def add(self, report: InvalidRowsReport) -> None:
        self.count += report.n_invalid
        for reason, count in report.reasons.items():
            self.reasons[reason] = self.reasons.get(reason, 0) + count

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "reasons": dict(self.reasons)}


def _on_policy_click_rate(
    log: Path, item_context: Path, level: float, chunksize: int, on_invalid: OnInvalid
) -> tuple[dict[str, Any], _InvalidRowCounter]:
    """Return the click rate of a log with its normal interval, and the invalid-row counts."""
    n_items = read_item_count(item_context)
    invalid = _InvalidRowCounter()
    n = 0
    clicks = 0.0
    for chunk in iter_obd_log(log, n_items, chunksize=chunksize, on_invalid=on_invalid):
        invalid.add(chunk.report)
        n += len(chunk)
        clicks += float(chunk.click.sum())
    if n == 0:
        raise InvalidInputError(str(log), "has no valid rows")

    rate = clicks / n
    low, high = normal_interval(rate, math.sqrt(rate * (1 - rate) / n), level)
    summary = {
        "value": rate,
        "ci_low": low,
        "ci_high": high,
        "method": "normal",
        "level": level,
        "n": n,
    }
    return summary, invalid
