"""The BTS prior reader and the Monte Carlo action distribution of the BTS policy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import integrate, stats

from bandit.errors import InvalidInputError, NotFoundError
from replay.bts import (
    BetaPrior,
    CampaignNotFoundError,
    PriorFormatError,
    bts_action_distribution,
    check_position_distribution,
    parse_bts_prior,
    read_bts_prior,
)

PRIOR_TEXT = """\
# Beta parameters per campaign
all:
  alpha:
    - 47.0
    - 8.0
    - 62.0
  beta:
    - 12198.0
    - 3566.0
    - 14830.0

spring_sale:
  alpha:
    - 1.0
    - 2.0
  beta:
    - 3.0
    - 4.0
"""


def prior(alpha: list[float], beta: list[float]) -> BetaPrior:
    return BetaPrior(campaign="test", alpha=np.array(alpha), beta=np.array(beta))


def test_parse_sections() -> None:
    priors = parse_bts_prior(PRIOR_TEXT)

    assert sorted(priors) == ["all", "spring_sale"]
    np.testing.assert_array_equal(priors["all"].alpha, [47.0, 8.0, 62.0])
    np.testing.assert_array_equal(priors["spring_sale"].beta, [3.0, 4.0])
    assert priors["all"].n_items == 3


BAD_PRIORS = [
    (
        "all:\n  alpha: [1, 2]\n",
        "prior, line 2: expected 'CAMPAIGN:', 'alpha:', 'beta:' or '- NUMBER', got 'alpha: [1, 2]'",
    ),
    ("all:\n  alpha:\n    - one\n", "prior, line 3: expected a number, got 'one'"),
    ("all:\n  alpha:\n    - nan\n", "prior, line 3: expected a finite number, got 'nan'"),
    ("all:\n  alpha:\n    - 1.0\n", "prior: campaign 'all' has no beta list"),
    ("    - 1.0\n", "prior, line 1: expected 'CAMPAIGN:', 'alpha:', 'beta:' or '- NUMBER', got '- 1.0'"),
]


@pytest.mark.parametrize(("text", "message"), BAD_PRIORS)
def test_bad_prior_rejected(text: str, message: str) -> None:
    with pytest.raises(PriorFormatError) as caught:
        parse_bts_prior(text)

    assert str(caught.value) == message


def test_mismatched_lengths_rejected() -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_bts_prior("all:\n  alpha:\n    - 1.0\n    - 2.0\n  beta:\n    - 1.0\n")

    assert str(caught.value) == "all.beta: expected 2 values like alpha, got 1"


def test_non_positive_parameter_rejected() -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_bts_prior("all:\n  alpha:\n    - 1.0\n  beta:\n    - 0.0\n")

    assert str(caught.value) == "all.beta[0]: must be > 0, got 0.0"


def test_missing_campaign_names_available(tmp_path: Path) -> None:
    path = tmp_path / "prior_bts.yaml"
    path.write_text(PRIOR_TEXT, encoding="utf-8")

    with pytest.raises(CampaignNotFoundError) as caught:
        read_bts_prior(path, "winter")

    assert str(caught.value) == (
        f"campaign 'winter' is not in the BTS prior file {path}; campaigns there: all, spring_sale"
    )


def test_missing_prior_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="BTS prior file not found"):
        read_bts_prior(tmp_path / "absent.yaml", "all")


def test_distribution_columns_and_rows() -> None:
    distribution = bts_action_distribution(
        prior([47.0, 8.0, 62.0, 142.0, 3.0], [12198.0, 3566.0, 14830.0, 10000.0, 900.0]),
        n_draws=20_000,
        seed=1,
    )

    assert distribution.shape == (5, 3)
    np.testing.assert_allclose(distribution.sum(axis=0), 1.0)
    assert bool((distribution.sum(axis=1) <= 1.0 + 1e-12).all())


def test_distribution_deterministic_under_seed() -> None:
    beta_prior = prior([1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0])

    first = bts_action_distribution(beta_prior, n_draws=5000, seed=9, batch_size=700)
    second = bts_action_distribution(beta_prior, n_draws=5000, seed=9, batch_size=5000)

    np.testing.assert_array_equal(first, second)


def test_two_items_match_integral() -> None:
    beta_prior = prior([2.0, 3.0], [5.0, 4.0])
    first = stats.beta(2.0, 5.0)
    second = stats.beta(3.0, 4.0)
    # P(X1 > X2) = integral of f1(x) F2(x) over [0, 1].
    first_wins, _ = integrate.quad(lambda x: first.pdf(x) * second.cdf(x), 0.0, 1.0)

    distribution = bts_action_distribution(beta_prior, len_list=2, n_draws=100_000, seed=0)

    standard_error = np.sqrt(first_wins * (1 - first_wins) / 100_000)
    assert distribution[0, 0] == pytest.approx(first_wins, abs=4 * standard_error)
    assert distribution[1, 0] == pytest.approx(1 - first_wins, abs=4 * standard_error)
    np.testing.assert_allclose(distribution[:, 1], distribution[::-1, 0])


def test_identical_priors_uniform() -> None:
    distribution = bts_action_distribution(
        prior([2.0] * 6, [2.0] * 6), n_draws=60_000, seed=2
    )

    np.testing.assert_allclose(distribution, 1 / 6, atol=0.01)


def test_dominant_item_always_first() -> None:
    distribution = bts_action_distribution(
        prior([5000.0, 1.0, 1.0, 1.0], [1.0, 5000.0, 5000.0, 5000.0]), n_draws=2000
    )

    assert distribution[0, 0] == 1.0
    assert distribution[0, 1:].sum() == 0.0


def test_len_list_above_item_count_rejected() -> None:
    with pytest.raises(InvalidInputError) as caught:
        bts_action_distribution(prior([1.0, 1.0], [1.0, 1.0]), len_list=3)

    assert str(caught.value) == "len_list: must be at most the number of items (2), got 3"


@pytest.mark.parametrize(
    ("distribution", "message"),
    [
        (
            np.array([[0.5, 0.5], [0.4, 0.5]]),
            "distribution[:, 0]: probabilities of position 1 sum to 0.9, expected 1",
        ),
        (
            np.array([[0.7, 0.6], [0.3, 0.4]]),
            "distribution[0]: probabilities of item 0 over positions sum to 1.3, expected at most 1",
        ),
        (np.array([0.5, 0.5]), "distribution: expected shape (n_items, len_list), got (2,)"),
    ],
)
def test_invalid_position_distribution(distribution: np.ndarray, message: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        check_position_distribution(distribution)

    assert str(caught.value) == message
