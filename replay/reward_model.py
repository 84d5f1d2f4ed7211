"""A cross-fitted reward model for the direct method and doubly robust estimators.

The model is VW ``--cb_adf --cb_type mtr``: an importance-weighted regression
of the cost of the logged action on the same shared and action features the
service scores, which predicts a cost for every eligible action in one call.
Events are split into folds by a hash of their event id. The model that
predicts for fold k is trained only on the other folds, so no event is scored
by a model that saw it.
"""

from __future__ import annotations

import abc
import hashlib
from collections.abc import Iterable, Sequence
from typing import Generic, TypeVar

import numpy as np
import numpy.typing as npt
import vowpal_wabbit_next as vw

from bandit.errors import InvalidInputError
from bandit.features import example_lines, labelled_lines
from bandit.store.event_store import JoinedEvent
from bandit.vw_policy import ExampleCache, action_scores

Event = TypeVar("Event")

DEFAULT_INTERACTIONS = ("UO", "UC", "UT", "OC", "OT", "CT")


def fold_of(event_id: str, folds: int) -> int:
    """Return the fold of an event: a stable hash of its id modulo ``folds``."""
    digest = hashlib.sha256(event_id.encode()).digest()
    return int.from_bytes(digest[:8], "big") % folds


class CrossFittedModels(abc.ABC, Generic[Event]):
    """``folds`` VW regressions; model k is trained on every fold but k.

    Subclasses turn an event into VW examples, so the same cross-fitting serves
    the service's own log and DSJson files.
    """

    def __init__(self, *, folds: int = 2, interactions: Sequence[str] = DEFAULT_INTERACTIONS) -> None:
        if folds < 2:
            raise InvalidInputError("folds", f"is {folds}; cross-fitting needs at least 2 folds")
        self.folds = folds
        args = ["--cb_adf", "--cb_type", "mtr", "--quiet"]
        for interaction in interactions:
            args += ["--interactions", interaction]
        self._workspaces = [vw.Workspace(args) for _ in range(folds)]
        self.trained_events = [0] * folds

    @abc.abstractmethod
    def _event_id(self, event: Event) -> str: ...

    @abc.abstractmethod
    def _action_count(self, event: Event) -> int: ...

    @abc.abstractmethod
    def _examples(self, model: int, event: Event, *, labelled: bool) -> list[vw.Example]:
        """Return the examples of ``event`` for model ``model``, with the logged label when ``labelled``."""

    def fit(self, events: Iterable[Event]) -> None:
        """Train each model on the events outside its fold; may be called once per chunk."""
        for event in events:
            event_fold = fold_of(self._event_id(event), self.folds)
            for model in range(self.folds):
                if model == event_fold:
                    continue
                self._workspaces[model].learn_one(self._examples(model, event, labelled=True))
                self.trained_events[model] += 1

    def predict(self, event: Event) -> npt.NDArray[np.float64]:
        """Return the predicted reward of every action of the event, from its fold's model."""
        model = fold_of(self._event_id(event), self.folds)
        costs = action_scores(
            self._workspaces[model].predict_one(self._examples(model, event, labelled=False)),
            self._action_count(event),
        )
        return -costs


class CrossFitRewardModel(CrossFittedModels[JoinedEvent]):
    """The cross-fitted reward model over the service's own decisions."""

    def __init__(self, *, folds: int = 2, interactions: Sequence[str] = DEFAULT_INTERACTIONS) -> None:
        super().__init__(folds=folds, interactions=interactions)
        self._caches = [ExampleCache(vw.TextFormatParser(workspace)) for workspace in self._workspaces]

    def _event_id(self, event: JoinedEvent) -> str:
        return event.event_id

    def _action_count(self, event: JoinedEvent) -> int:
        return len(event.actions)

    def _examples(self, model: int, event: JoinedEvent, *, labelled: bool) -> list[vw.Example]:
        if not labelled:
            return self._caches[model].unlabelled_event(example_lines(event.request, event.actions))
        lines = labelled_lines(event.request, event.actions, event.chosen_index, -event.reward, event.probability)
        return self._caches[model].labelled_event(lines, event.chosen_index)
