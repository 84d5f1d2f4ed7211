"""Replay on DSJson files: the service's export and VW's own Decision Service logs.

A DSJson line carries the shared context and the actions (``c._multi``), the
logged action (``_labelIndex``, 0-based into ``_multi``), its probability
(``_label_probability``), its cost (``_label_cost``, the negated reward) and,
usually, the distribution it was drawn from (``a``: 1-based action ids,
``p``: their probabilities). Candidates here are VW models, which read the
same features, and uniform random. Rules policies need the structured
context, which only the service's own store keeps.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd  # type: ignore[import-untyped]  # pandas-stubs is not a dev dependency
import vowpal_wabbit_next as vw

from bandit.errors import InvalidInputError, NotFoundError
from bandit.vw_policy import action_scores, normalise
from replay.evaluate import Evaluation, Tally
from replay.reward_model import DEFAULT_INTERACTIONS, CrossFittedModels
from replay.schemas import InvalidRowsReport, OnInvalid, logged_bandit_schema, validate_log

_SCHEMA = logged_bandit_schema(action_set="count", distribution=True)
_SCHEMA_WITHOUT_DISTRIBUTION = logged_bandit_schema(action_set="count", distribution=False)


@dataclasses.dataclass(frozen=True)
class DSJsonEvent:
    """One validated DSJson line."""

    line_number: int
    event_id: str
    text: str
    chosen_index: int
    propensity: float
    reward: float
    n_actions: int


class DSJsonPolicy(Protocol):
    """A candidate that gives a distribution over a DSJson line's actions, in ``_multi`` order."""

    @property
    def version(self) -> str: ...

    def distribution(self, event: DSJsonEvent) -> npt.NDArray[np.float64]: ...


class UniformDSJsonPolicy:
    """Uniform over the actions of the line."""

    version = "uniform"

    def distribution(self, event: DSJsonEvent) -> npt.NDArray[np.float64]:
        return np.full(event.n_actions, 1.0 / event.n_actions)


class VWDSJsonPolicy:
    """A ``--cb_explore_adf`` model scoring the actions of each line."""

    def __init__(self, model_bytes: bytes, version: str) -> None:
        self._workspace = vw.Workspace(["--quiet"], model_data=model_bytes)
        self._parser = vw.DSJsonFormatParser(self._workspace)
        self._version = version

    @property
    def version(self) -> str:
        return self._version

    def distribution(self, event: DSJsonEvent) -> npt.NDArray[np.float64]:
        prediction = self._workspace.predict_one(self._parser.parse_json(event.text))
        return normalise(action_scores(prediction, event.n_actions), self._version)


def load_dsjson_policy(spec: str) -> DSJsonPolicy:
    """Return the candidate a spec names: ``uniform`` or ``file:PATH``."""
    if spec == "uniform":
        return UniformDSJsonPolicy()
    kind, _, argument = spec.partition(":")
    if kind == "file":
        path = Path(argument)
        if not path.is_file():
            raise NotFoundError(f"model file {argument!r} not found")
        return VWDSJsonPolicy(path.read_bytes(), f"file:{path.name}")
    raise InvalidInputError("candidate", f"{spec!r} is not usable on DSJson; use uniform or file:PATH")


@dataclasses.dataclass(frozen=True)
class DSJsonChunk:
    """The valid events of a chunk of lines, and what was set aside."""

    events: list[DSJsonEvent]
    report: InvalidRowsReport
    quarantined: pd.DataFrame


def _distribution_in_multi_order(record: Mapping[str, Any], n_actions: int) -> list[float] | None:
    ids = record.get("a")
    probabilities = record.get("p")
    if not isinstance(ids, list) or not isinstance(probabilities, list) or len(ids) != len(probabilities):
        return None
    ordered = [float("nan")] * n_actions
    for action_id, probability in zip(ids, probabilities, strict=True):
        if not isinstance(action_id, int) or not 1 <= action_id <= n_actions:
            return None
        ordered[action_id - 1] = probability
    return ordered


def _row(line_number: int, text: str) -> tuple[dict[str, Any], DSJsonEvent | None]:
    try:
        record = json.loads(text)
    except ValueError:
        record = {}
    multi = record.get("c", {}).get("_multi") if isinstance(record.get("c"), dict) else None
    n_actions = len(multi) if isinstance(multi, list) else None
    cost = record.get("_label_cost")
    row = {
        "line": line_number,
        "timestamp": record.get("Timestamp", "1970-01-01T00:00:00+00:00"),
        "action": record.get("_labelIndex"),
        "n_actions": n_actions,
        "propensity": record.get("_label_probability"),
        "reward": -cost if isinstance(cost, int | float) else cost,
        "probabilities": _distribution_in_multi_order(record, n_actions) if n_actions else None,
    }
    if not record or n_actions is None:
        return row, None
    event = DSJsonEvent(
        line_number=line_number,
        event_id=str(record.get("EventId", f"line-{line_number}")),
        text=text,
        chosen_index=row["action"] if isinstance(row["action"], int) else -1,
        propensity=float(row["propensity"]) if isinstance(row["propensity"], int | float) else float("nan"),
        reward=float(row["reward"]) if isinstance(row["reward"], int | float) else float("nan"),
        n_actions=n_actions,
    )
    return row, event


def iter_dsjson(
    path: str | Path, *, chunk_size: int = 5000, on_invalid: OnInvalid = "raise"
) -> Iterator[DSJsonChunk]:
    """Yield validated chunks of a DSJson file; a line that is not JSON is an invalid row."""
    source = Path(path)
    if not source.is_file():
        raise NotFoundError(f"DSJson file {str(path)!r} not found")
    with open(source, encoding="utf-8") as handle:
        batch: list[tuple[int, str]] = []
        for line_number, line in enumerate(handle, start=1):
            if line.strip():
                batch.append((line_number, line))
            if len(batch) >= chunk_size:
                yield _validate(batch, str(path), on_invalid)
                batch = []
        if batch:
            yield _validate(batch, str(path), on_invalid)


def _validate(batch: list[tuple[int, str]], source: str, on_invalid: OnInvalid) -> DSJsonChunk:
    parsed = [_row(line_number, text) for line_number, text in batch]
    frame = pd.DataFrame.from_records([row for row, _ in parsed])
    has_distribution = frame["probabilities"].notna().all()
    schema = _SCHEMA if has_distribution else _SCHEMA_WITHOUT_DISTRIBUTION
    validated = validate_log(frame, schema, on_invalid=on_invalid, source=source)
    events = [
        event
        for (_, event), keep in zip(parsed, validated.valid_mask, strict=True)
        if keep and event is not None
    ]
    return DSJsonChunk(events=events, report=validated.report, quarantined=validated.quarantined)


class DSJsonRewardModel(CrossFittedModels[DSJsonEvent]):
    """The cross-fitted reward model over the lines' own features."""

    def __init__(self, *, folds: int = 2, interactions: Sequence[str] = DEFAULT_INTERACTIONS) -> None:
        super().__init__(folds=folds, interactions=interactions)
        self._parsers = [vw.DSJsonFormatParser(workspace) for workspace in self._workspaces]

    def _event_id(self, event: DSJsonEvent) -> str:
        return event.event_id

    def _action_count(self, event: DSJsonEvent) -> int:
        return event.n_actions

    def _examples(self, model: int, event: DSJsonEvent, *, labelled: bool) -> list[vw.Example]:
        # The line's label is ignored when the model predicts.
        return self._parsers[model].parse_json(event.text)


def evaluate_dsjson(
    path: str | Path,
    policies: Mapping[str, DSJsonPolicy],
    *,
    estimators: Sequence[str] = ("ips", "snips", "dm", "dr", "sndr"),
    folds: int = 2,
    replicates: int = 500,
    seed: int = 0,
    level: float = 0.95,
    chunk_size: int = 5000,
    on_invalid: OnInvalid = "raise",
    interactions: Sequence[str] = DEFAULT_INTERACTIONS,
) -> Evaluation:
    """Estimate each candidate's value on a DSJson file, as ``evaluate_store`` does for a store."""
    reward_model = DSJsonRewardModel(folds=folds, interactions=interactions)
    for chunk in iter_dsjson(path, chunk_size=chunk_size, on_invalid=on_invalid):
        reward_model.fit(chunk.events)

    tally = Tally({name: policy.version for name, policy in policies.items()}, estimators, replicates, seed)
    for chunk in iter_dsjson(path, chunk_size=chunk_size, on_invalid=on_invalid):
        tally.add_report(chunk.report)
        if not chunk.events:
            continue

        predictions = [reward_model.predict(event) for event in chunk.events]
        targets = {}
        for name, policy in policies.items():
            distributions = [policy.distribution(event) for event in chunk.events]
            target = np.array([d[event.chosen_index] for d, event in zip(distributions, chunk.events, strict=True)])
            q_target = np.array([float(np.dot(d, q)) for d, q in zip(distributions, predictions, strict=True)])
            targets[name] = (target, q_target)

        tally.add(
            rewards=np.array([event.reward for event in chunk.events]),
            logged=np.array([event.propensity for event in chunk.events]),
            q_logged=np.array([q[event.chosen_index] for q, event in zip(predictions, chunk.events, strict=True)]),
            targets=targets,
        )

    return tally.finish(str(path), level, "has no valid DSJson events to replay")
