"""Export joined events in VW's Decision Service JSON (DSJson) format.

One line per joined decision, readable by ``vw --dsjson --cb_explore_adf`` and
by vowpal_wabbit_next's ``DSJsonFormatParser``. Actions are listed in ``a``
with the served one first, as the Decision Service does, and ``p`` gives
their probabilities in the same order. The cost is the negated reward,
because VW minimises cost.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any, TextIO

from bandit.features import action_json, shared_json
from bandit.store.event_store import EventStore, JoinedEvent


def dsjson_record(event: JoinedEvent) -> dict[str, Any]:
    """Return the DSJson object of one joined event."""
    chosen = event.chosen_index
    order = [chosen] + [index for index in range(len(event.actions)) if index != chosen]
    context: dict[str, Any] = dict(shared_json(event.request.context))
    context["_multi"] = [action_json(event.request, action) for action in event.actions]
    return {
        "_label_cost": -event.reward,
        "_label_probability": event.probability,
        "_label_Action": chosen + 1,
        "_labelIndex": chosen,
        "Timestamp": datetime.fromtimestamp(event.decided_at, tz=UTC).isoformat(),
        "Version": "1",
        "EventId": event.event_id,
        "a": [index + 1 for index in order],
        "c": context,
        "p": [event.probabilities[index] for index in order],
        "VWState": {"m": event.model_version or event.policy},
    }


def iter_dsjson(store: EventStore) -> Iterator[str]:
    """Yield one DSJson line per joined event, in join order."""
    for event in store.iter_joined():
        yield json.dumps(dsjson_record(event), separators=(",", ":"))


def write_dsjson(store: EventStore, output: TextIO) -> int:
    """Write every joined event to ``output``; return the number of lines."""
    count = 0
    for line in iter_dsjson(store):
        output.write(line + "\n")
        count += 1
    return count
