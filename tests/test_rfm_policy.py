"""Tests of the RFM segment rules policy and of the uniform and fixed-action baselines."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from bandit.config import DEFAULT_CHANNELS, DEFAULT_SLOTS
from bandit.domain import DecisionRequest, Exclusion, JointAction, Offer
from bandit.errors import ConfigError, NoEligibleActionError
from bandit.policy_api import Policy
from bandit.simulator import CATALOG, SEGMENTS, Simulator, eligible_actions
from replay.policies import FixedActionPolicy, RFMPolicy, UniformPolicy
from replay.policies.rfm import default_rules_path

SMALL_RULES = """
version = "test-1"
fallback_actions = [["fallback_offer", "email", "now"]]

[[segment]]
name = "champions"
recency_max = 30
frequency_min = 10
monetary_min = 500
actions = [["vip", "push", "now"], ["vip", "email", "now"]]

[[segment]]
name = "lapsing"
recency_min = 90
actions = [["winback", "email", "now"]]

[[segment]]
name = "everyone"
actions = [["points", "email", "now"]]
"""


def write_rules(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "rules.toml"
    path.write_text(text, encoding="utf-8")
    return path


def make_request(
    recency: float = 10.0,
    frequency: float = 12.0,
    monetary: float = 800.0,
    exclusions: tuple[Exclusion, ...] = (),
    context: dict[str, dict[str, float | str]] | None = None,
) -> DecisionRequest:
    if context is None:
        context = {"rfm": {"recency_days": recency, "frequency": frequency, "monetary": monetary}}
    return DecisionRequest(
        request_id="r1",
        member_id="m1",
        context=context,
        offers=tuple(Offer(offer_id) for offer_id in ("vip", "winback", "points", "fallback_offer", "other")),
        channels=("email", "push"),
        slots=("now",),
        exclusions=exclusions,
    )


@pytest.fixture
def small_policy(tmp_path: Path) -> RFMPolicy:
    return RFMPolicy.from_toml(write_rules(tmp_path, SMALL_RULES))


def served(policy: Policy, request: DecisionRequest) -> JointAction:
    actions = eligible_actions(request)
    probabilities = policy.distribution(request, actions)
    assert probabilities.sum() == pytest.approx(1.0)
    assert sorted(probabilities.tolist())[-1] == 1.0, "expected a deterministic choice"
    return actions[int(np.argmax(probabilities))]


# Segment choice ------------------------------------------------------------


@pytest.mark.parametrize(
    ("figures", "expected"),
    [
        ((10.0, 12.0, 800.0), JointAction("vip", "push", "now")),
        ((30.0, 10.0, 500.0), JointAction("vip", "push", "now")),
        ((31.0, 12.0, 800.0), JointAction("points", "email", "now")),
        ((10.0, 9.0, 800.0), JointAction("points", "email", "now")),
        ((90.0, 1.0, 20.0), JointAction("winback", "email", "now")),
        ((400.0, 30.0, 5000.0), JointAction("winback", "email", "now")),
        ((60.0, 3.0, 100.0), JointAction("points", "email", "now")),
    ],
)
def test_rfm_picks_per_segment(
    small_policy: RFMPolicy, figures: tuple[float, float, float], expected: JointAction
) -> None:
    assert served(small_policy, make_request(*figures)) == expected


def test_rfm_segment_of_names_rule(small_policy: RFMPolicy) -> None:
    assert small_policy.segment_of(make_request(5.0, 20.0, 900.0)).name == "champions"
    assert small_policy.segment_of(make_request(120.0, 20.0, 900.0)).name == "lapsing"
    assert small_policy.segment_of(make_request(45.0, 2.0, 50.0)).name == "everyone"


def test_rfm_skips_ineligible_preferences(small_policy: RFMPolicy) -> None:
    no_push = make_request(exclusions=(Exclusion(channel="push"),))
    assert served(small_policy, no_push) == JointAction("vip", "email", "now")

    no_vip = make_request(exclusions=(Exclusion(offer_id="vip"),))
    assert served(small_policy, no_vip) == JointAction("fallback_offer", "email", "now")


def test_rfm_falls_back_to_uniform(small_policy: RFMPolicy) -> None:
    request = make_request(
        exclusions=(
            Exclusion(offer_id="vip"),
            Exclusion(offer_id="fallback_offer"),
        )
    )
    actions = eligible_actions(request)

    probabilities = small_policy.distribution(request, actions)

    assert np.allclose(probabilities, 1.0 / len(actions))


def test_rfm_reads_configured_features(tmp_path: Path) -> None:
    text = SMALL_RULES.replace(
        "[[segment]]",
        '[features]\nrecency = "loyalty.days_since_purchase"\nfrequency = "loyalty.visits"\n\n[[segment]]',
        1,
    )
    policy = RFMPolicy.from_toml(write_rules(tmp_path, text))
    context: dict[str, dict[str, float | str]] = {
        "loyalty": {"days_since_purchase": 100.0, "visits": 2.0},
        "rfm": {"monetary": 40.0},
    }

    assert policy.segment_of(make_request(context=context)).name == "lapsing"


def test_rfm_version_defaults_to_file_hash(tmp_path: Path) -> None:
    text = SMALL_RULES.replace('version = "test-1"\n', "")
    policy = RFMPolicy.from_toml(write_rules(tmp_path, text))

    assert policy.version.startswith("sha256:")
    assert len(policy.version) == len("sha256:") + 12
    assert policy.name == "rfm-rules"


def test_rfm_from_toml_keeps_declared_version(small_policy: RFMPolicy) -> None:
    assert small_policy.version == "test-1"


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"rfm": {"frequency": 3.0, "monetary": 40.0}}, "features.recency is 'rfm.recency_days'"),
        ({"profile": {"tier": "gold"}}, "has no feature 'recency_days' in namespace 'rfm'"),
        ({"rfm": {"recency_days": "recent", "frequency": 3.0, "monetary": 40.0}}, "value 'recent'"),
        ({"rfm": {"recency_days": 3.0, "frequency": 3.0}}, "features.monetary"),
    ],
)
def test_rfm_missing_feature_raises(
    small_policy: RFMPolicy, context: dict[str, dict[str, float | str]], message: str
) -> None:
    request = make_request(context=context)

    with pytest.raises(ConfigError, match=message):
        small_policy.distribution(request, eligible_actions(request))


def test_rfm_empty_actions_raise(small_policy: RFMPolicy) -> None:
    with pytest.raises(NoEligibleActionError, match="r1"):
        small_policy.distribution(make_request(), [])


# Invalid rules files -------------------------------------------------------

VALID_SEGMENT = '[[segment]]\nname = "all"\nactions = [["a", "email", "now"]]\n'

BAD_RULES = [
    ("syntax", "version = \n", "not valid TOML"),
    ("unknown top key", 'colour = "red"\n' + VALID_SEGMENT, "unknown keys ['colour']"),
    ("no segment", 'version = "x"\n', "no [[segment]] table"),
    ("segment not table", 'segment = "all"\n', "segment is 'all'; write [[segment]] tables"),
    ("empty version", 'version = ""\n' + VALID_SEGMENT, "version is ''"),
    ("number version", "version = 3\n" + VALID_SEGMENT, "version is 3"),
    ("segment without name", '[[segment]]\nactions = [["a", "email", "now"]]\n', "segment[0].name is None"),
    (
        "unknown segment key",
        VALID_SEGMENT.replace("[[segment]]\n", "[[segment]]\nrecency_below = 3\n"),
        "segment[0] has unknown keys ['recency_below']",
    ),
    (
        "text bound",
        '[[segment]]\nname = "c"\nrecency_max = "thirty"\nactions = [["a", "email", "now"]]\n' + VALID_SEGMENT,
        "segment[0].recency_max is 'thirty'; use a number",
    ),
    (
        "boolean bound",
        '[[segment]]\nname = "c"\nfrequency_min = true\nactions = [["a", "email", "now"]]\n' + VALID_SEGMENT,
        "segment[0].frequency_min is True",
    ),
    (
        "min above max",
        '[[segment]]\nname = "c"\nrecency_min = 60\nrecency_max = 30\nactions = [["a", "email", "now"]]\n'
        + VALID_SEGMENT,
        "recency_min = 60.0 above recency_max = 30.0",
    ),
    ("missing actions", '[[segment]]\nname = "all"\n', "segment[0].actions is missing"),
    ("empty actions", '[[segment]]\nname = "all"\nactions = []\n', "segment[0].actions is []"),
    (
        "short triple",
        '[[segment]]\nname = "all"\nactions = [["a", "email"]]\n',
        "segment[0].actions[0] is ['a', 'email']; use [offer_id, channel, slot]",
    ),
    (
        "empty name in triple",
        '[[segment]]\nname = "all"\nactions = [["a", "", "now"]]\n',
        "segment[0].actions[0] is ['a', '', 'now']",
    ),
    (
        "last segment bounded",
        '[[segment]]\nname = "c"\nrecency_max = 30\nactions = [["a", "email", "now"]]\n',
        "the last segment 'c' has bounds",
    ),
    (
        "default segment not last",
        VALID_SEGMENT + VALID_SEGMENT.replace('"all"', '"other"'),
        "segment 'all' has no bounds but is not last",
    ),
    (
        "duplicate names",
        '[[segment]]\nname = "all"\nrecency_max = 3\nactions = [["a", "email", "now"]]\n' + VALID_SEGMENT,
        "segment names ['all'] appear more than once",
    ),
    ("feature without dot", '[features]\nrecency = "recency_days"\n' + VALID_SEGMENT, "features.recency is"),
    ("feature not text", "[features]\nmonetary = 3\n" + VALID_SEGMENT, "features.monetary is 3"),
    ("unknown feature key", '[features]\nspend = "rfm.spend"\n' + VALID_SEGMENT, "features has unknown keys"),
    ("bad fallback", 'fallback_actions = ["a/email/now"]\n' + VALID_SEGMENT, "fallback_actions[0] is 'a/email/now'"),
]


@pytest.mark.parametrize(("text", "message"), [case[1:] for case in BAD_RULES], ids=[case[0] for case in BAD_RULES])
def test_rfm_rejects_bad_rules(tmp_path: Path, text: str, message: str) -> None:
    path = write_rules(tmp_path, text)

    with pytest.raises(ConfigError, match=re.escape(message)) as raised:
        RFMPolicy.from_toml(path)
    assert str(path) in str(raised.value)


def test_rfm_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        RFMPolicy.from_toml(tmp_path / "absent.toml")


# The shipped default rules -------------------------------------------------


def test_default_rules_load() -> None:
    policy = RFMPolicy.default()

    assert default_rules_path().is_file()
    assert policy.version == "default-2024.1"
    assert [segment.name for segment in policy.segments] == list(SEGMENTS)


def test_default_rules_use_simulator_catalog() -> None:
    policy = RFMPolicy.default()
    offers = {offer.id: offer for offer in CATALOG}
    slots = {slot.name for slot in DEFAULT_SLOTS}
    triples = [action for segment in policy.segments for action in segment.actions]

    for action in triples + list(policy.fallback_actions):
        offer = offers[action.offer_id]
        assert action.channel in DEFAULT_CHANNELS, action
        assert not offer.channels or action.channel in offer.channels, action
        assert action.slot in slots, action


def test_default_rules_match_simulator_segments() -> None:
    simulator = Simulator(seed=1, n_members=300)
    policy = RFMPolicy.default()

    for request in simulator.requests(300):
        assert policy.segment_of(request).name == request.context["rfm"]["segment"]


def test_default_rules_mostly_deterministic() -> None:
    simulator = Simulator(seed=1, n_members=300)
    policy = RFMPolicy.default()

    deterministic = 0
    requests = list(simulator.requests(300))
    for request in requests:
        probabilities = policy.distribution(request, simulator.eligible_actions(request))
        if probabilities.max() == 1.0:
            deterministic += 1
    assert deterministic > 0.9 * len(requests)


# Baselines -----------------------------------------------------------------


def test_baselines_satisfy_policy_protocol() -> None:
    for policy in (UniformPolicy(), FixedActionPolicy("a", "email", "now"), RFMPolicy.default()):
        assert isinstance(policy, Policy)
        assert policy.name
        assert policy.version


def test_distributions_sum_to_one() -> None:
    simulator = Simulator(seed=2, n_members=200)
    policies: list[Policy] = [
        UniformPolicy(),
        FixedActionPolicy("early_access", "push", "this_evening"),
        RFMPolicy.default(),
    ]

    for request in simulator.requests(200):
        actions = simulator.eligible_actions(request)
        for policy in policies:
            probabilities = policy.distribution(request, actions)
            assert probabilities.shape == (len(actions),)
            assert (probabilities >= 0).all()
            assert probabilities.sum() == pytest.approx(1.0), (policy.name, request.request_id)


def test_fixed_action_serves_its_triple() -> None:
    request = make_request()
    actions = eligible_actions(request)
    policy = FixedActionPolicy("winback", "push", "now")

    probabilities = policy.distribution(request, actions)

    assert probabilities.tolist().count(1.0) == 1
    assert actions[int(np.argmax(probabilities))] == JointAction("winback", "push", "now")
    assert policy.version == "winback/push/now;fallback=uniform@1"


def test_fixed_action_falls_back_to_uniform() -> None:
    request = make_request(exclusions=(Exclusion(offer_id="winback"),))
    actions = eligible_actions(request)

    probabilities = FixedActionPolicy("winback", "push", "now").distribution(request, actions)

    assert np.allclose(probabilities, 1.0 / len(actions))


def test_fixed_action_uses_given_fallback(small_policy: RFMPolicy) -> None:
    request = make_request(exclusions=(Exclusion(offer_id="winback"),))
    policy = FixedActionPolicy("winback", "push", "now", fallback=small_policy)

    assert served(policy, request) == JointAction("vip", "push", "now")
    assert policy.version == "winback/push/now;fallback=rfm-rules@test-1"


def test_baselines_reject_empty_actions() -> None:
    request = make_request()

    with pytest.raises(NoEligibleActionError):
        UniformPolicy().distribution(request, [])
    with pytest.raises(NoEligibleActionError):
        FixedActionPolicy("a", "email", "now").distribution(request, [])


def test_policies_leave_inputs_untouched(small_policy: RFMPolicy) -> None:
    request = make_request()
    actions = eligible_actions(request)
    record = request.to_record()
    actions_before = list(actions)

    for policy in (UniformPolicy(), FixedActionPolicy("vip", "email", "now"), small_policy):
        policy.distribution(request, actions)

    assert request.to_record() == record
    assert actions == actions_before
