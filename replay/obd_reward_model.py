"""A cross-fitted ridge reward model of Open Bandit Dataset clicks, for DM and DR.

The model is a linear probability model, click ~ item + position + user
features + the user's affinity to the item, fitted by ridge regression from
streamed normal equations. Rows are split into K folds by a seeded hash of
their position in the log. The model that scores a row is fitted on the other
K - 1 folds only, so no row is scored by a model that saw it.

Usage is two passes over the log: ``add`` every chunk, ``fit``, then
``predict`` every chunk.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import numpy.typing as npt

from bandit.errors import BanditError, InvalidInputError
from replay.estimators.resampling import row_hashes
from replay.obd_loader import ObdChunk

FloatArray = npt.NDArray[np.float64]

USER_BUCKETS = 64
"""Hash buckets per user feature; each OBD user feature has fewer than 10 categories."""


class RewardModelError(BanditError):
    """The reward model was used before it was fitted, or could not be fitted."""


@dataclasses.dataclass(frozen=True)
class FeatureLayout:
    """Column layout of the design matrix: intercept, items, positions, user buckets, affinity."""

    n_items: int
    len_list: int
    n_user_features: int = 4

    @property
    def item_offset(self) -> int:
        """First column of the item one-hot block; column 0 is the intercept."""
        return 1

    @property
    def position_offset(self) -> int:
        """First column of the position one-hot block."""
        return self.item_offset + self.n_items

    @property
    def user_offset(self) -> int:
        """First column of the hashed user feature block."""
        return self.position_offset + self.len_list

    @property
    def affinity_column(self) -> int:
        """Column of the user's affinity to the item."""
        return self.user_offset + self.n_user_features * USER_BUCKETS

    @property
    def width(self) -> int:
        """Number of columns."""
        return self.affinity_column + 1

    def design(self, chunk: ObdChunk, items: npt.NDArray[np.intp]) -> FloatArray:
        """Return the design matrix of each row shown ``items[i]`` at its logged position."""
        n = len(chunk)
        rows = np.arange(n)
        matrix = np.zeros((n, self.width))
        matrix[:, 0] = 1.0
        matrix[rows, self.item_offset + items] = 1.0
        matrix[rows, self.position_offset + chunk.position - 1] = 1.0
        for feature in range(self.n_user_features):
            buckets = (chunk.user_codes[:, feature] % np.uint64(USER_BUCKETS)).astype(np.intp)
            matrix[rows, self.user_offset + feature * USER_BUCKETS + buckets] = 1.0
        matrix[:, self.affinity_column] = chunk.affinity[rows, items]
        return matrix


class CrossFittedRidge:
    """Ridge regression of clicks fitted on K - 1 folds and applied to the remaining fold.

    Parameters
    ----------
    layout
        Design matrix layout.
    folds
        Number of folds K, at least 2.
    l2
        Ridge penalty on every coefficient except the intercept.
    seed
        Seed of the fold assignment.
    """

    def __init__(
        self, layout: FeatureLayout, *, folds: int = 2, l2: float = 1.0, seed: int = 0
    ) -> None:
        if isinstance(folds, bool) or not isinstance(folds, int) or folds < 2:
            raise InvalidInputError("folds", f"must be an integer >= 2, got {folds!r}")
        if not l2 > 0:
            raise InvalidInputError("l2", f"must be > 0, got {l2!r}")
        self.layout = layout
        self.folds = folds
        self.l2 = l2
        self.seed = seed
        self._gram = np.zeros((folds, layout.width, layout.width))
        self._moment = np.zeros((folds, layout.width))
        self._fold_rows = np.zeros(folds, dtype=np.int64)
        self._coefficients: FloatArray | None = None

    def fold_of(self, rows: npt.NDArray[np.int64]) -> npt.NDArray[np.intp]:
        """Return the fold of each log row position."""
        hashes = row_hashes(self.seed, rows.astype(np.uint64))
        return (hashes % np.uint64(self.folds)).astype(np.intp)

    def add(self, chunk: ObdChunk) -> None:
        """Add the rows of ``chunk`` to the normal equations of their fold."""
        design = self.layout.design(chunk, chunk.item)
        fold = self.fold_of(chunk.rows)
        for k in range(self.folds):
            selected = fold == k
            self._gram[k] += design[selected].T @ design[selected]
            self._moment[k] += design[selected].T @ chunk.click[selected]
            self._fold_rows[k] += int(selected.sum())

    def fit(self) -> None:
        """Solve the ridge problem of each fold from the rows of the other folds."""
        if bool((self._fold_rows == 0).any()):
            raise RewardModelError(
                f"every fold needs rows; rows per fold: {self._fold_rows.tolist()}"
            )
        penalty = np.full(self.layout.width, self.l2)
        penalty[0] = 0.0
        total_gram = self._gram.sum(axis=0)
        total_moment = self._moment.sum(axis=0)

        coefficients = np.zeros((self.folds, self.layout.width))
        for k in range(self.folds):
            gram = total_gram - self._gram[k] + np.diag(penalty)
            coefficients[k] = np.linalg.solve(gram, total_moment - self._moment[k])
        self._coefficients = coefficients

    def predict(self, chunk: ObdChunk) -> FloatArray:
        """Return q(x_i, item, logged position of row i) for every item, shape (n, n_items).

        Each row is scored with the model fitted without its fold; predictions
        are clipped to [0, 1], the range of a click.
        """
        if self._coefficients is None:
            raise RewardModelError("the reward model is not fitted; call fit() after add()")
        layout = self.layout
        coefficients = self._coefficients[self.fold_of(chunk.rows)]

        # The score is linear, so the columns that do not depend on the item form a
        # per-row base, and each item adds its own coefficient and affinity term.
        design = layout.design(chunk, np.zeros(len(chunk), dtype=np.intp))
        design[:, layout.item_offset] = 0.0
        design[:, layout.affinity_column] = 0.0
        base = np.einsum("ij,ij->i", design, coefficients)
        item_effects = coefficients[:, layout.item_offset : layout.item_offset + layout.n_items]
        affinity_effect = coefficients[:, layout.affinity_column][:, None] * chunk.affinity

        scores = base[:, None] + item_effects + affinity_effect
        clipped: FloatArray = np.clip(scores, 0.0, 1.0)
        return clipped
