"""Conversion between protobuf messages and domain types, with input validation.

Every check names the field by its path in the request, such as
``offers[2].features[0].number``, gives the value received and names what to
send instead. The error classes come from ``bandit.errors``; the status codes
are set in ``bandit.service.status``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from google.protobuf.timestamp_pb2 import Timestamp

from bandit.config import Config
from bandit.domain import (
    Decision,
    DecisionRequest,
    Exclusion,
    FeatureValue,
    Offer,
)
from bandit.errors import InvalidInputError
from bandit.proto import decision_pb2 as pb
from bandit.store.event_store import RewardRecord

MAX_NAME_LENGTH = 256
"""Maximum length of a feature, namespace or outcome name."""


def _check_id(field: str, value: str, max_length: int) -> str:
    if not value:
        raise InvalidInputError(field, "is missing; send a non-empty string")
    if len(value) > max_length:
        raise InvalidInputError(
            field, f"is {len(value)} characters long, more than the limit of {max_length}"
        )
    return value


def _unique(field: str, values: Iterable[str]) -> None:
    seen: set[str] = set()
    for index, value in enumerate(values):
        if value in seen:
            raise InvalidInputError(f"{field}[{index}]", f"{value!r} is a duplicate; send each once")
        seen.add(value)


def _features(field: str, features: Sequence[pb.Feature]) -> dict[str, FeatureValue]:
    result: dict[str, FeatureValue] = {}
    for index, feature in enumerate(features):
        path = f"{field}[{index}]"
        name = _check_id(f"{path}.name", feature.name, MAX_NAME_LENGTH)
        if name in result:
            raise InvalidInputError(f"{path}.name", f"{name!r} is a duplicate; send each feature once")
        kind = feature.WhichOneof("value")
        if kind is None:
            raise InvalidInputError(path, f"feature {name!r} has no value; set number or category")
        if kind == "number":
            if not math.isfinite(feature.number):
                raise InvalidInputError(
                    f"{path}.number", f"is {feature.number} for feature {name!r}; send a finite number"
                )
            result[name] = float(feature.number)
        else:
            if not feature.category:
                raise InvalidInputError(
                    f"{path}.category", f"is empty for feature {name!r}; send a category or a number"
                )
            result[name] = feature.category
    return result


def _optional_finite(field: str, message: pb.Offer, name: str) -> float | None:
    if not message.HasField(name):  # type: ignore[arg-type]
        return None
    value = float(getattr(message, name))
    if not math.isfinite(value):
        raise InvalidInputError(field, f"is {value}; send a finite number or leave it unset")
    return value


def _names(field: str, values: Sequence[str], known: Sequence[str], default: Sequence[str]) -> tuple[str, ...]:
    if not values:
        return tuple(default)
    for index, value in enumerate(values):
        if value not in known:
            raise InvalidInputError(
                f"{field}[{index}]", f"{value!r} is not a configured {field[:-1]}; use one of {list(known)}"
            )
    _unique(field, values)
    return tuple(values)


def _time_zone(value: str, default: str) -> str:
    if not value:
        return default
    try:
        ZoneInfo(value)
    except (ZoneInfoNotFoundError, ValueError) as error:
        raise InvalidInputError(
            "time_zone", f"{value!r} is not an IANA time zone; send a name such as 'Europe/Paris'"
        ) from error
    return value


def timestamp_to_datetime(field: str, timestamp: Timestamp) -> datetime:
    """Convert a protobuf Timestamp to an aware UTC datetime, rejecting out-of-range values."""
    try:
        return timestamp.ToDatetime(tzinfo=UTC)
    except (ValueError, OverflowError) as error:
        raise InvalidInputError(field, f"is out of range ({timestamp.seconds} s); send a valid time") from error


def request_from_proto(message: pb.DecideRequest, config: Config) -> DecisionRequest:
    """Validate a DecideRequest and return it with the configured defaults filled in."""
    limits = config.limits
    request_id = _check_id("request_id", message.request_id, limits.max_id_length)
    member_id = _check_id("member_id", message.member_id, limits.max_id_length)

    if not message.offers:
        raise InvalidInputError("offers", "is empty; send at least one candidate offer")
    if len(message.offers) > limits.max_offers:
        raise InvalidInputError(
            "offers", f"has {len(message.offers)} offers, more than the limit of {limits.max_offers}"
        )

    channel_names = list(config.catalog.channels)
    slot_names = [slot.name for slot in config.catalog.slots]
    channels = _names("channels", message.channels, channel_names, channel_names)
    slots = _names("slots", message.slots, slot_names, slot_names)

    context: dict[str, dict[str, FeatureValue]] = {}
    feature_count = 0
    for index, namespace in enumerate(message.context):
        path = f"context[{index}]"
        name = _check_id(f"{path}.name", namespace.name, MAX_NAME_LENGTH)
        if name in context:
            raise InvalidInputError(f"{path}.name", f"{name!r} is a duplicate; send each namespace once")
        context[name] = _features(f"{path}.features", namespace.features)
        feature_count += len(namespace.features)

    offers: list[Offer] = []
    for index, item in enumerate(message.offers):
        path = f"offers[{index}]"
        offer_id = _check_id(f"{path}.id", item.id, limits.max_id_length)
        for channel_index, channel in enumerate(item.channels):
            if channel not in channel_names:
                raise InvalidInputError(
                    f"{path}.channels[{channel_index}]",
                    f"{channel!r} is not a configured channel; use one of {channel_names}",
                )
        offers.append(
            Offer(
                id=offer_id,
                features=_features(f"{path}.features", item.features),
                cost=_optional_finite(f"{path}.cost", item, "cost"),
                value=_optional_finite(f"{path}.value", item, "value"),
                channels=tuple(item.channels),
            )
        )
        feature_count += len(item.features)
    seen_offers: set[str] = set()
    for index, offer in enumerate(offers):
        if offer.id in seen_offers:
            raise InvalidInputError(f"offers[{index}].id", f"{offer.id!r} is a duplicate; send each offer once")
        seen_offers.add(offer.id)

    if feature_count > limits.max_features:
        raise InvalidInputError(
            "context",
            f"the request has {feature_count} features in context and offers, "
            f"more than the limit of {limits.max_features}",
        )

    exclusions: list[Exclusion] = []
    for index, rule in enumerate(message.exclusions):
        path = f"exclusions[{index}]"
        if rule.channel and rule.channel not in channel_names:
            raise InvalidInputError(
                f"{path}.channel", f"{rule.channel!r} is not a configured channel; use one of {channel_names}"
            )
        if rule.slot and rule.slot not in slot_names:
            raise InvalidInputError(
                f"{path}.slot", f"{rule.slot!r} is not a configured slot; use one of {slot_names}"
            )
        if not (rule.offer_id or rule.channel or rule.slot):
            raise InvalidInputError(
                path, "sets none of offer_id, channel, slot and would exclude everything; set at least one"
            )
        exclusions.append(Exclusion(rule.offer_id, rule.channel, rule.slot, rule.reason))

    if message.HasField("request_time"):
        request_time = timestamp_to_datetime("request_time", message.request_time)
    else:
        request_time = datetime.now(UTC)

    return DecisionRequest(
        request_id=request_id,
        member_id=member_id,
        context=context,
        offers=tuple(offers),
        channels=channels,
        slots=slots,
        exclusions=tuple(exclusions),
        time_zone=_time_zone(message.time_zone, config.catalog.default_time_zone),
        request_time=request_time,
    )


def request_to_proto(request: DecisionRequest) -> pb.DecideRequest:
    """Build the DecideRequest message of a domain request, for clients and the simulator."""
    message = pb.DecideRequest(
        request_id=request.request_id,
        member_id=request.member_id,
        channels=list(request.channels),
        slots=list(request.slots),
        time_zone=request.time_zone,
    )
    for name, features in request.context.items():
        namespace = message.context.add(name=name)
        _fill_features(namespace.features, features.items())
    for offer in request.offers:
        item = message.offers.add(id=offer.id, channels=list(offer.channels))
        _fill_features(item.features, offer.features.items())
        if offer.cost is not None:
            item.cost = offer.cost
        if offer.value is not None:
            item.value = offer.value
    for rule in request.exclusions:
        message.exclusions.add(
            offer_id=rule.offer_id, channel=rule.channel, slot=rule.slot, reason=rule.reason
        )
    message.request_time.FromDatetime(request.request_time)
    return message


def _fill_features(target: object, items: Iterable[tuple[str, FeatureValue]]) -> None:
    for name, value in items:
        if isinstance(value, str):
            target.add(name=name, category=value)  # type: ignore[attr-defined]
        else:
            target.add(name=name, number=float(value))  # type: ignore[attr-defined]


def decision_to_proto(decision: Decision, replayed: bool) -> pb.DecideResponse:
    """Build the DecideResponse of a logged decision."""
    chosen = decision.chosen
    response = pb.DecideResponse(
        event_id=decision.event_id,
        request_id=decision.request.request_id,
        offer_id=chosen.offer_id,
        channel=chosen.channel,
        slot=chosen.slot,
        probability=decision.probability,
        policy=decision.policy,
        model_version=decision.model_version,
        exploratory=decision.exploratory,
        replayed=replayed,
    )
    response.send_at.FromDatetime(decision.send_at)
    for action, probability in zip(decision.actions, decision.probabilities, strict=True):
        response.distribution.add(
            offer_id=action.offer_id, channel=action.channel, slot=action.slot, probability=probability
        )
    return response


def reward_from_proto(message: pb.RewardRequest, config: Config) -> RewardRecord:
    """Validate a RewardRequest."""
    limits = config.limits
    event_id = _check_id("event_id", message.event_id, limits.max_id_length)
    if not math.isfinite(message.value):
        raise InvalidInputError("value", f"is {message.value}; send a finite number")
    if len(message.outcome) > MAX_NAME_LENGTH:
        raise InvalidInputError(
            "outcome", f"is {len(message.outcome)} characters long, more than {MAX_NAME_LENGTH}"
        )
    if len(message.reward_id) > limits.max_id_length:
        raise InvalidInputError(
            "reward_id", f"is {len(message.reward_id)} characters long, more than {limits.max_id_length}"
        )
    if message.HasField("occurred_at"):
        occurred_at = timestamp_to_datetime("occurred_at", message.occurred_at).timestamp()
    else:
        occurred_at = datetime.now(UTC).timestamp()

    reward_id = message.reward_id
    if not reward_id:
        # Hash what the caller sent, not the server-filled time, so an exact resend matches.
        sent_time = message.occurred_at.ToJsonString() if message.HasField("occurred_at") else "unset"
        reward_id = RewardRecord(event_id, float(message.value), message.outcome, 0.0).key() + sent_time
        reward_id = "auto-" + hashlib.sha256(reward_id.encode()).hexdigest()[:32]
    return RewardRecord(
        event_id=event_id,
        value=float(message.value),
        outcome=message.outcome,
        occurred_at=occurred_at,
        reward_id=reward_id,
    )
