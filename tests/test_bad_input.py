"""Every malformed request gets a status code and a message naming the field and value."""

from __future__ import annotations

import math

import grpc
import pytest
from conftest import decide_request


def clear_request_id(message):
    message.request_id = ""


def clear_member_id(message):
    message.member_id = ""


def clear_offers(message):
    del message.offers[:]


def nan_feature(message):
    message.context[0].features[1].number = math.nan


def infinite_feature(message):
    message.offers[1].features.add(name="depth", number=math.inf)


def duplicate_offer(message):
    message.offers[1].id = message.offers[0].id


def unknown_channel(message):
    message.channels.append("carrier_pigeon")


def unknown_slot(message):
    message.slots.append("midnight")


def duplicate_feature(message):
    message.context[0].features.add(name="tier", category="silver")


def duplicate_namespace(message):
    message.context.add(name="profile")


def feature_without_value(message):
    message.context[0].features.add(name="empty")


def unknown_time_zone(message):
    message.time_zone = "Mars/Olympus_Mons"


def infinite_cost(message):
    message.offers[0].cost = math.inf


def unknown_offer_channel(message):
    message.offers[0].channels.append("fax")


def empty_exclusion(message):
    message.exclusions.add(reason="typo")


def long_request_id(message):
    message.request_id = "x" * 1000


def too_many_offers(message):
    for index in range(300):
        message.offers.add(id=f"bulk-{index}")


BAD_DECIDE = [
    (clear_request_id, grpc.StatusCode.INVALID_ARGUMENT, "request_id: is missing"),
    (clear_member_id, grpc.StatusCode.INVALID_ARGUMENT, "member_id: is missing"),
    (clear_offers, grpc.StatusCode.INVALID_ARGUMENT, "offers: is empty"),
    (nan_feature, grpc.StatusCode.INVALID_ARGUMENT, "context[0].features[1].number: is nan"),
    (infinite_feature, grpc.StatusCode.INVALID_ARGUMENT, "offers[1].features[1].number: is inf"),
    (duplicate_offer, grpc.StatusCode.INVALID_ARGUMENT, "offers[1].id: 'double_points' is a duplicate"),
    (unknown_channel, grpc.StatusCode.INVALID_ARGUMENT, "channels[2]: 'carrier_pigeon' is not a configured"),
    (unknown_slot, grpc.StatusCode.INVALID_ARGUMENT, "slots[1]: 'midnight' is not a configured"),
    (duplicate_feature, grpc.StatusCode.INVALID_ARGUMENT, "context[0].features[2].name: 'tier' is a duplicate"),
    (duplicate_namespace, grpc.StatusCode.INVALID_ARGUMENT, "context[2].name: 'profile' is a duplicate"),
    (feature_without_value, grpc.StatusCode.INVALID_ARGUMENT, "context[0].features[2]: feature 'empty' has no value"),
    (unknown_time_zone, grpc.StatusCode.INVALID_ARGUMENT, "time_zone: 'Mars/Olympus_Mons' is not an IANA"),
    (infinite_cost, grpc.StatusCode.INVALID_ARGUMENT, "offers[0].cost: is inf"),
    (unknown_offer_channel, grpc.StatusCode.INVALID_ARGUMENT, "offers[0].channels[0]: 'fax'"),
    (empty_exclusion, grpc.StatusCode.INVALID_ARGUMENT, "exclusions[0]: sets none of"),
    (long_request_id, grpc.StatusCode.INVALID_ARGUMENT, "request_id: is 1000 characters long"),
    (too_many_offers, grpc.StatusCode.INVALID_ARGUMENT, "offers: has 302 offers, more than the limit of 256"),
]


@pytest.fixture
def running(start_service):
    return start_service(**{"learner.enabled": False})


@pytest.mark.parametrize(("mutate", "code", "message"), BAD_DECIDE, ids=[case[0].__name__ for case in BAD_DECIDE])
def test_bad_decide_rejected(running, mutate, code, message):
    request = decide_request("bad")
    mutate(request)

    with pytest.raises(grpc.RpcError) as caught:
        running.client.decide(request)

    assert caught.value.code() == code
    assert message in caught.value.details()


def test_every_triple_excluded(running):
    request = decide_request("all-excluded")
    request.exclusions.add(channel="email", reason="frequency_cap")
    request.exclusions.add(channel="push", reason="no_consent")

    with pytest.raises(grpc.RpcError) as caught:
        running.client.decide(request)

    assert caught.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert "frequency_cap: 2" in caught.value.details()
    assert "no_consent: 2" in caught.value.details()


def test_oversized_message_rejected(start_service):
    running = start_service(**{"learner.enabled": False, "service.max_message_bytes": 64 * 1024})
    request = decide_request("huge")
    request.context[0].features.add(name="blob", category="x" * 100_000)

    with pytest.raises(grpc.RpcError) as caught:
        running.client.decide(request)

    assert caught.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


def test_reward_unknown_event_not_found(running):
    with pytest.raises(grpc.RpcError) as caught:
        running.client.reward("no-such-event", 1.0)

    assert caught.value.code() == grpc.StatusCode.NOT_FOUND
    assert "event_id 'no-such-event' not found" in caught.value.details()


@pytest.mark.parametrize(
    ("event_id", "value", "message"),
    [
        ("", 1.0, "event_id: is missing"),
        ("e", math.nan, "value: is nan"),
        ("e", -math.inf, "value: is -inf"),
    ],
)
def test_bad_reward_rejected(running, event_id, value, message):
    with pytest.raises(grpc.RpcError) as caught:
        running.client.reward(event_id, value)

    assert caught.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in caught.value.details()


def test_bad_input_loses_nothing_acknowledged(running):
    acknowledged = [running.client.decide(decide_request(f"ok-{index}")).event_id for index in range(20)]
    for mutate, _, _ in BAD_DECIDE:
        request = decide_request("bad")
        mutate(request)
        with pytest.raises(grpc.RpcError):
            running.client.decide(request)

    after = running.client.decide(decide_request("after"))

    assert after.event_id
    for event_id in acknowledged:
        assert running.service.store.get_decision(event_id).event_id == event_id
    assert running.service.store.count("decisions") == 21
    assert running.service.servicer.counters.snapshot()["Decide.INVALID_ARGUMENT"] == len(BAD_DECIDE)



def test_port_in_use_gives_clear_error(start_service, tmp_path):
    from conftest import make_config

    from bandit.errors import ConfigError
    from bandit.service.server import Service

    first = start_service(**{"learner.enabled": False})
    config = make_config(tmp_path / "second", **{"service.port": first.port, "learner.enabled": False})
    second = Service(config)

    with pytest.raises(ConfigError) as caught:
        second.start()

    assert f"failed to bind 127.0.0.1:{first.port}" in str(caught.value)
    assert "pass another --port" in str(caught.value)
    assert not (tmp_path / "second" / "events.db-wal").exists()
