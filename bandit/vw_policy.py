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
        self._action_cache: OrderedDict[str, vw.Example] = OrderedDict()

    @property
    def version(self) -> str:
        return self._version

    def model_bytes(self) -> bytes:
        """Return the serialised model."""
        with self._lock:
            return self._workspace.serialize()

    def _action_example(self, line: str) -> vw.Example:
        example = self._action_cache.get(line)
        if example is None:
            example = self._parser.parse_line(line)
            self._action_cache[line] = example
            if len(self._action_cache) > ACTION_CACHE_SIZE:
                self._action_cache.popitem(last=False)
        else:
            self._action_cache.move_to_end(line)
        return example

    def distribution(
        self, request: DecisionRequest, actions: Sequence[JointAction]
    ) -> npt.NDArray[np.float64]:
        shared = shared_line(request.context)
        lines = action_lines(request, actions)

        with self._lock:
            examples = [self._parser.parse_line(shared)]
            examples += [self._action_example(line) for line in lines]
            # NOTE: Workspace.predict_one checks each example's label type in a Python loop,
            # which cost about a third of a 384-action predict when profiled. These examples
            # carry no label, so this calls the core of vowpal-wabbit-next 0.7.0 (pinned) directly.
            raw = self._workspace._workspace.predict_multi_ex_one([example._example for example in examples])
            prediction = cast(list[tuple[int, float]], raw)

        probabilities = np.zeros(len(actions), dtype=np.float64)
        for index, probability in prediction:
            probabilities[index] = probability
        return normalise(probabilities, self._version)


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
