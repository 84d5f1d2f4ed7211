"""Train a VW policy from the service's log: ``loyalty-bandit replay train``."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import vowpal_wabbit_next as vw

from bandit.config import PolicyConfig
from bandit.features import labelled_lines
from bandit.vw_policy import ExampleCache
from replay.schemas import OnInvalid
from replay.service_log import iter_store_log


@dataclasses.dataclass(frozen=True)
class TrainedModel:
    """A model trained from logged decisions."""

    model_bytes: bytes
    events: int
    vw_args: tuple[str, ...]


def train_from_store(
    path: str | Path,
    policy: PolicyConfig,
    *,
    decided_before: float | None = None,
    passes: int = 1,
    chunk_size: int = 5000,
    on_invalid: OnInvalid = "raise",
) -> TrainedModel:
    """Train a ``--cb_explore_adf`` model on the joined decisions before ``decided_before``.

    Each decision is learned with its logged propensity, as the online
    learner does; ``passes`` repeats the whole log.
    """
    args = tuple(policy.vw_args())
    workspace = vw.Workspace(list(args))
    examples = ExampleCache(vw.TextFormatParser(workspace))
    events = 0
    for _ in range(passes):
        for chunk in iter_store_log(path, chunk_size=chunk_size, on_invalid=on_invalid, decided_before=decided_before):
            for event in chunk.events:
                lines = labelled_lines(
                    event.request, event.actions, event.chosen_index, -event.reward, event.probability
                )
                workspace.learn_one(examples.labelled_event(lines, event.chosen_index))
                events += 1
    return TrainedModel(model_bytes=workspace.serialize(), events=events, vw_args=args)
