"""The Vowpal Wabbit contextual bandit policy, and the cold-start policy.

``VWPolicy`` wraps one snapshot of a ``--cb_explore_adf`` model that only
predicts. The learner trains its own workspace and publishes a new snapshot
instead, so a decision never waits on a lock held by learning.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from typing import cast

import numpy as np
import numpy.typing as npt
import vowpal_wabbit_next as vw

from bandit.domain import DecisionRequest, JointAction
from bandit.errors import ModelError
from bandit.features import action_lines, shared_line

VW_POLICY_NAME = "vw-cb"
COLD_START_POLICY_NAME = "cold-start-uniform"

ACTION_CACHE_SIZE = 50_000
"""Parsed action examples kept per policy. Parsing costs about three times a predict."""


class ExampleCache:
    """Parsed, unlabelled VW examples by their text line, least recently used dropped first.

    VW restores an example after predict and learn, so one parsed action line
    can serve every request that offers it. With 384 actions, parsing costs
    about three times a predict. A learn with cached actions trained the same
    weights at twice the rate (measured with vowpal-wabbit-next 0.7.0).
    Not thread-safe: each workspace owner keeps its own cache.
    """

    def __init__(self, parser: vw.TextFormatParser, max_size: int = ACTION_CACHE_SIZE) -> None:
        self._parser = parser
        self._max_size = max_size
        self._examples: OrderedDict[str, vw.Example] = OrderedDict()

    def get(self, line: str) -> vw.Example:
        """Return the parsed example of an unlabelled line."""
        example = self._examples.get(line)
        if example is None:
            example = self._parser.parse_line(line)
            self._examples[line] = example
            if len(self._examples) > self._max_size:
                self._examples.popitem(last=False)
        else:
            self._examples.move_to_end(line)
        return example

    def unlabelled_event(self, lines: list[str]) -> list[vw.Example]:
        """Return the examples of a decision: the shared line fresh, the actions cached."""
        return [self._parser.parse_line(lines[0]), *(self.get(line) for line in lines[1:])]

    def labelled_event(self, lines: list[str], chosen_index: int) -> list[vw.Example]:
        """Return the examples of a learned event: shared and chosen lines fresh, the other actions cached."""
        examples = [self._parser.parse_line(lines[0])]
        for index, line in enumerate(lines[1:]):
            examples.append(self._parser.parse_line(line) if index == chosen_index else self.get(line))
        return examples


class UniformPolicy:
    """Uniform over the eligible triples: the policy served before any model exists."""

    name = COLD_START_POLICY_NAME
    version = ""

    def distribution(
        self, request: DecisionRequest, actions: Sequence[JointAction]
    ) -> npt.NDArray[np.float64]:
        return np.full(len(actions), 1.0 / len(actions))


class VWPolicy:
    """A read-only snapshot of a VW ``--cb_explore_adf`` model.

    Predictions are serialised by a lock because VW workspaces and examples
    are not safe to use from two threads at once. Parsed action lines are
    cached, since the same offers recur across requests.
    """

    name = VW_POLICY_NAME

    def __init__(self, model_data: bytes, version: str, vw_args: Sequence[str] = ()) -> None:
        try:
            if model_data:
                self._workspace = vw.Workspace(["--quiet"], model_data=model_data)
            else:
                self._workspace = vw.Workspace(list(vw_args))
        except Exception as error:  # vowpal_wabbit_next raises plain RuntimeError on bad data.
            raise ModelError(f"failed to load VW model version {version!r}: {error}") from error
        if not self._workspace.multiline:
            raise ModelError(
                f"model version {version!r} is not a multi-line (--cb_explore_adf) model"
            )
        self._version = version
        self._parser = vw.TextFormatParser(self._workspace)
        self._lock = threading.Lock()
        self._actions = ExampleCache(self._parser)

    @property
    def version(self) -> str:
        return self._version

    def model_bytes(self) -> bytes:
        """Return the serialised model."""
        with self._lock:
            return self._workspace.serialize()

    def distribution(
        self, request: DecisionRequest, actions: Sequence[JointAction]
    ) -> npt.NDArray[np.float64]:
        shared = shared_line(request.context)
        lines = action_lines(request, actions)

        with self._lock:
            examples = [self._parser.parse_line(shared)]
            examples += [self._actions.get(line) for line in lines]
            # NOTE: Workspace.predict_one checks each example's label type in a Python loop,
            # which cost about a third of a 384-action predict when profiled. These examples
            # carry no label, so this calls the core of vowpal-wabbit-next 0.7.0 (pinned) directly.
            prediction = self._workspace._workspace.predict_multi_ex_one([example._example for example in examples])

        return normalise(action_scores(prediction, len(actions)), self._version)


def action_scores(prediction: object, n_actions: int) -> npt.NDArray[np.float64]:
    """Return VW's ``[(action index, score), ...]`` prediction as an array indexed by action."""
    scores = np.zeros(n_actions, dtype=np.float64)
    for index, score in cast(list[tuple[int, float]], prediction):
        scores[index] = score
    return scores


def reconfigure_model(model_bytes: bytes, args: Sequence[str]) -> bytes:
    """Return the model with some options replaced, such as ``["--epsilon", "0.05"]``.

    VW keeps the learned weights and applies the new exploration options.
    """
    try:
        workspace = vw.Workspace(["--quiet", *args], model_data=model_bytes)
    except Exception as error:  # vowpal_wabbit_next raises plain RuntimeError on bad options.
        raise ModelError(f"failed to apply {list(args)} to the model: {error}") from error
    return workspace.serialize()


def normalise(probabilities: npt.NDArray[np.float64], version: str) -> npt.NDArray[np.float64]:
    """Rescale to sum exactly 1 in float64, since VW returns float32 probabilities.

    The rescaled values are what is sampled from and logged, so the logged
    probability is exactly the one the draw used.
    """
    total = float(probabilities.sum())
    if not np.isfinite(total) or total <= 0.0 or bool((probabilities < 0).any()):
        raise ModelError(f"model version {version!r} returned an invalid distribution (sum {total})")
    return probabilities / total
