"""Featurization: turn a request and its eligible triples into VW text examples.

Each decision becomes one multi-line ``--cb_explore_adf`` example: a shared
line with the member's context, then one line per eligible triple. The first
letter of a VW namespace is what ``--interactions`` refers to, so the
namespaces are laid out as

- ``U<name>``: one per context namespace of the request (member, RFM, time…),
- ``Offer``: the offer id and the offer's features,
- ``Channel``: the channel,
- ``Timing``: the timing slot,

and the default interactions ``UO UC UT OC OT CT`` let the model learn, for
example, that an offer works by push and not by email.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache

from bandit.domain import Context, DecisionRequest, Features, JointAction, Offer

_UNSAFE = re.compile(r"[\s|:]")


@lru_cache(maxsize=65536)
def _token(text: str) -> str:
    """Replace the characters that end a VW token (white space, ``|``, ``:``) with ``_``."""
    return _UNSAFE.sub("_", text)


def _feature_text(features: Features) -> str:
    parts: list[str] = []
    for name, value in features.items():
        if isinstance(value, str):
            parts.append(f"{_token(name)}={_token(value)}")
        else:
            parts.append(f"{_token(name)}:{float(value)!r}")
    return " ".join(parts)


def json_features(features: Features) -> dict[str, float]:
    """Return features as a VW JSON namespace object that hashes like the text form.

    VW's JSON reader turns ``"tier": "gold"`` into the feature ``tiergold``,
    but the text line has ``tier=gold``. Writing ``"tier=gold": 1`` makes the
    two hash alike, so a model trained on an export matches the served one.
    """
    result: dict[str, float] = {}
    for name, value in features.items():
        if isinstance(value, str):
            result[f"{_token(name)}={_token(value)}"] = 1.0
        else:
            result[_token(name)] = float(value)
    return result


def shared_json(context: Context) -> dict[str, dict[str, float]]:
    """Return the shared context as VW JSON namespaces, named as in ``shared_line``."""
    return {f"U{_token(namespace)}": json_features(features) for namespace, features in context.items()}


def action_json(request: DecisionRequest, action: JointAction) -> dict[str, dict[str, float]]:
    """Return one triple as VW JSON namespaces, named as in ``action_lines``."""
    offer = request.offer(action.offer_id)
    offer_features = {f"id={_token(offer.id)}": 1.0}
    offer_features.update(json_features(offer.features))
    return {
        "Offer": offer_features,
        "Channel": {_token(action.channel): 1.0},
        "Timing": {_token(action.slot): 1.0},
    }


def shared_line(context: Context) -> str:
    """Return the ``shared`` line of a decision's context."""
    sections = [f"|U{_token(namespace)} {_feature_text(features)}" for namespace, features in context.items()]
    return "shared " + " ".join(sections) if sections else "shared |U"


def _offer_section(offer: Offer) -> str:
    extra = _feature_text(offer.features)
    return f"|Offer id={_token(offer.id)} {extra}" if extra else f"|Offer id={_token(offer.id)}"


def action_lines(request: DecisionRequest, actions: Sequence[JointAction]) -> list[str]:
    """Return one line per (offer, channel, slot) triple, without labels.

    Each offer's features are formatted once per request, not once per
    triple, since a request has many more triples than offers.
    """
    offers = {offer.id: _offer_section(offer) for offer in request.offers}
    return [
        f"{offers[action.offer_id]} |Channel {_token(action.channel)} |Timing {_token(action.slot)}"
        for action in actions
    ]


def example_lines(request: DecisionRequest, actions: Sequence[JointAction]) -> list[str]:
    """Return the shared line followed by one line per action, without labels."""
    return [shared_line(request.context), *action_lines(request, actions)]


def labelled_lines(
    request: DecisionRequest,
    actions: Sequence[JointAction],
    chosen_index: int,
    cost: float,
    probability: float,
) -> list[str]:
    """Return the lines of a learned event: the chosen action carries ``0:cost:probability``.

    VW minimises cost, so callers pass the negated reward.
    """
    lines = example_lines(request, actions)
    lines[chosen_index + 1] = f"0:{cost!r}:{probability!r} {lines[chosen_index + 1]}"
    return lines
