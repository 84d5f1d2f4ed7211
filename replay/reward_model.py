"""A cross-fitted reward model for the direct method and doubly robust estimators.

The model is VW ``--cb_adf --cb_type mtr``: an importance-weighted regression
of the cost of the logged action on the same shared and action features the
service scores, which predicts a cost for every eligible action in one call.
Events are split into folds by a hash of their event id; the model that
predicts for fold k is trained only on the other folds, so no event is scored
by a model that saw it.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import cast

import numpy as np
import numpy.typing as npt
import vowpal_wabbit_next as vw

from bandit.errors import InvalidInputError
from bandit.features import example_lines, labelled_lines
from bandit.store.event_store import JoinedEvent
from bandit.vw_policy import ExampleCache

DEFAULT_INTERACTIONS = ("UO", "UC", "UT", "OC", "OT", "CT")


def fold_of(event_id: str, folds: int) -> int:
    """Return the fold of an event: a stable hash of its id modulo ``folds``."""
    digest = hashlib.sha256(event_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % folds


class CrossFitRewardModel:
    """``folds`` VW regressions; model k is trained on every fold but k."""

    def __init__(self, *, folds: int = 2, interactions: Sequence[str] = DEFAULT_INTERACTIONS) -> None:
        if folds < 2:
            raise InvalidInputError("folds", f"is {folds}; cross-fitting needs at least 2 folds")
        self.folds = folds
        args = ["--cb_adf", "--cb_type", "mtr", "--quiet"]
        for interaction in interactions:
            args += ["--interactions", interaction]
        self._workspaces = [vw.Workspace(args) for _ in range(folds)]
        self._caches = [ExampleCache(vw.TextFormatParser(workspace)) for workspace in self._workspaces]
        self.trained_events = [0] * folds

    def fit(self, events: Iterable[JoinedEvent]) -> None:
        """Train each model on the events outside its fold; may be called once per chunk."""
        for event in events:
            lines = labelled_lines(
                event.request, event.actions, event.chosen_index, -event.reward, event.probability
            )
            event_fold = fold_of(event.event_id, self.folds)
            for model in range(self.folds):
                if model == event_fold:
                    continue
                self._workspaces[model].learn_one(self._caches[model].labelled_event(lines, event.chosen_index))
                self.trained_events[model] += 1

    def predict(self, event: JoinedEvent) -> npt.NDArray[np.float64]:
        """Return the predicted reward of every eligible action of the event, from its fold's model."""
        model = fold_of(event.event_id, self.folds)
        examples = self._caches[model].unlabelled_event(example_lines(event.request, event.actions))
        scores = cast(list[tuple[int, float]], self._workspaces[model].predict_one(examples))
        rewards = np.zeros(len(event.actions), dtype=np.float64)
        for index, cost in scores:
            rewards[index] = -cost
        return rewards
