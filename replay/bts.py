"""The Bernoulli Thompson Sampling policy of the Open Bandit Dataset, from its Beta prior.

On every impression the policy draws one sample from Beta(alpha_i, beta_i) per
item i and shows the items with the three highest samples in positions 1, 2
and 3. ``bts_action_distribution`` estimates P(item i at position k) by Monte
Carlo, as the dataset's authors do in zr-obp (``BernoulliTS`` with the
ZOZOTOWN prior and ``compute_batch_action_dist``).
"""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import numpy.typing as npt

from bandit.errors import BanditError, InvalidInputError, NotFoundError

FloatArray = npt.NDArray[np.float64]


class PriorFormatError(BanditError):
    """The BTS prior file does not have the expected layout."""


class CampaignNotFoundError(NotFoundError):
    """The prior file has no section for the requested campaign."""


@dataclasses.dataclass(frozen=True, eq=False)
class BetaPrior:
    """Beta(alpha_i, beta_i) parameters of every item of one campaign, indexed by item id."""

    campaign: str
    alpha: FloatArray
    beta: FloatArray

    def __post_init__(self) -> None:
        if self.alpha.shape != self.beta.shape or self.alpha.ndim != 1:
            raise InvalidInputError(
                f"{self.campaign}.beta",
                f"expected {self.alpha.shape[0]} values like alpha, got {self.beta.shape[0]}",
            )
        for name, values in (("alpha", self.alpha), ("beta", self.beta)):
            invalid = ~(np.isfinite(values) & (values > 0))
            if invalid.any():
                index = int(np.flatnonzero(invalid)[0])
                raise InvalidInputError(
                    f"{self.campaign}.{name}[{index}]", f"must be > 0, got {float(values[index])}"
                )

    @property
    def n_items(self) -> int:
        """Number of items."""
        return int(self.alpha.shape[0])


def parse_bts_prior(text: str, source: str = "prior") -> dict[str, BetaPrior]:
    """Parse a prior file: one section per campaign, each with ``alpha`` and ``beta`` lists.

    The accepted layout is the subset of YAML that ``prior_bts.yaml`` uses::

        all:
          alpha:
            - 47.0
          beta:
            - 12198.0

    Blank lines and ``#`` comments are skipped; any other line raises
    ``PriorFormatError`` naming the line.
    """
    sections: dict[str, dict[str, list[float]]] = {}
    campaign: str | None = None
    key: str | None = None

    for number, raw_line in enumerate(text.splitlines(), start=1):
        line = raw_line.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        indent = len(line) - len(line.lstrip(" "))
        content = line.strip()

        if indent == 0 and content.endswith(":"):
            campaign = content[:-1].strip()
            sections[campaign] = {}
            key = None
        elif indent > 0 and content in ("alpha:", "beta:") and campaign is not None:
            key = content[:-1]
            sections[campaign][key] = []
        elif content.startswith("- ") and campaign is not None and key is not None:
            sections[campaign][key].append(_parse_number(content[2:], source, number))
        else:
            raise PriorFormatError(
                f"{source}, line {number}: expected 'CAMPAIGN:', 'alpha:', 'beta:' or "
                f"'- NUMBER', got {raw_line.strip()!r}"
            )

    priors: dict[str, BetaPrior] = {}
    for name, lists in sections.items():
        missing = [key for key in ("alpha", "beta") if key not in lists]
        if missing:
            raise PriorFormatError(f"{source}: campaign {name!r} has no {' or '.join(missing)} list")
        priors[name] = BetaPrior(
            campaign=name, alpha=np.array(lists["alpha"]), beta=np.array(lists["beta"])
        )
    return priors


def read_bts_prior(path: Path, campaign: str) -> BetaPrior:
    """Read the prior of ``campaign`` from the file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise NotFoundError(f"BTS prior file not found: {path}") from exc

    priors = parse_bts_prior(text, str(path))
    if campaign not in priors:
        available = ", ".join(sorted(priors)) or "none"
        raise CampaignNotFoundError(
            f"campaign {campaign!r} is not in the BTS prior file {path}; "
            f"campaigns there: {available}"
        )
    return priors[campaign]


def _parse_number(text: str, source: str, number: int) -> float:
    try:
        value = float(text)
    except ValueError:
        raise PriorFormatError(
            f"{source}, line {number}: expected a number, got {text.strip()!r}"
        ) from None
    if not math.isfinite(value):
        raise PriorFormatError(f"{source}, line {number}: expected a finite number, got {text!r}")
    return value


def bts_action_distribution(
    prior: BetaPrior,
    *,
    len_list: int = 3,
    n_draws: int = 100_000,
    seed: int = 0,
    batch_size: int = 10_000,
) -> FloatArray:
    """Estimate P(item i at position k) of the BTS policy by Monte Carlo.

    Returns an array of shape (n_items, len_list). Column k is the
    distribution over items at position k + 1 and sums to 1. Each row sums to
    at most 1 because an item fills at most one position per draw. The Monte
    Carlo standard error of an entry p is sqrt(p (1 - p) / n_draws).
    """
    _require_positive_int("n_draws", n_draws)
    _require_positive_int("len_list", len_list)
    _require_positive_int("batch_size", batch_size)
    if len_list > prior.n_items:
        raise InvalidInputError(
            "len_list", f"must be at most the number of items ({prior.n_items}), got {len_list}"
        )

    rng = np.random.default_rng(seed)
    counts = np.zeros((prior.n_items, len_list), dtype=np.int64)
    remaining = n_draws
    while remaining > 0:
        size = min(batch_size, remaining)
        samples = rng.beta(prior.alpha, prior.beta, size=(size, prior.n_items))
        top = np.argpartition(-samples, len_list - 1, axis=1)[:, :len_list]
        order = np.argsort(-np.take_along_axis(samples, top, axis=1), axis=1)
        ranked = np.take_along_axis(top, order, axis=1)
        for position in range(len_list):
            counts[:, position] += np.bincount(ranked[:, position], minlength=prior.n_items)
        remaining -= size

    distribution: FloatArray = counts / n_draws
    check_position_distribution(distribution)
    return distribution


def check_position_distribution(distribution: FloatArray, tolerance: float = 1e-9) -> None:
    """Raise InvalidInputError unless every column sums to 1 and every row to at most 1."""
    if distribution.ndim != 2:
        raise InvalidInputError(
            "distribution", f"expected shape (n_items, len_list), got {distribution.shape}"
        )
    if bool((distribution < 0).any()):
        raise InvalidInputError("distribution", "has negative probabilities")

    column_sums = distribution.sum(axis=0)
    bad_columns = np.flatnonzero(np.abs(column_sums - 1) > tolerance)
    if bad_columns.size:
        position = int(bad_columns[0])
        raise InvalidInputError(
            f"distribution[:, {position}]",
            f"probabilities of position {position + 1} sum to {float(column_sums[position]):.6g}, "
            "expected 1",
        )

    row_sums = distribution.sum(axis=1)
    bad_rows = np.flatnonzero(row_sums > 1 + tolerance)
    if bad_rows.size:
        item = int(bad_rows[0])
        raise InvalidInputError(
            f"distribution[{item}]",
            f"probabilities of item {item} over positions sum to {float(row_sums[item]):.6g}, "
            "expected at most 1",
        )


def _require_positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidInputError(name, f"must be an integer >= 1, got {value!r}")
