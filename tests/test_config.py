"""Loading the TOML configuration: defaults, overrides and errors that name the key."""

from __future__ import annotations

import pytest

from bandit.config import Config, load_config
from bandit.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_no_file_gives_defaults():
    config = load_config()

    assert config == Config()
    assert config.service.host == "127.0.0.1"
    assert "--epsilon" in config.policy.vw_args()


def test_file_and_overrides(tmp_path):
    path = write(
        tmp_path,
        """
[service]
port = 6000

[catalog]
channels = ["email", "push"]
default_time_zone = "Asia/Tokyo"

[[catalog.slots]]
name = "now"
offset_minutes = 0

[[catalog.slots]]
name = "evening"
hour = 19

[policy]
exploration = "squarecb"
""",
    )

    config = load_config(path, {"service.port": 7000})

    assert config.service.port == 7000
    assert config.catalog.channels == ("email", "push")
    assert [slot.name for slot in config.catalog.slots] == ["now", "evening"]
    assert config.catalog.slot("evening").hour == 19
    assert "--squarecb" in config.policy.vw_args()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[servce]\nport = 1", "unknown sections ['servce']"),
        ("[service]\nprot = 1", "[service] has unknown keys ['prot']"),
        ("[policy]\nexploration = 'greedy'", "policy.exploration is 'greedy'; use one of epsilon, squarecb"),
        ("[policy]\nepsilon = 1.5", "policy.epsilon is 1.5; use a number from 0 to 1"),
        ("[policy]\ninteractions = ['UX']", "policy.interactions contains 'UX'"),
        ("[rewards]\naggregation = 'mean'", "rewards.aggregation is 'mean'; use one of sum, first, last, max"),
        ("[rewards]\nwindow_seconds = 0", "rewards.window_seconds is 0; use a positive number"),
        ("[catalog]\ndefault_time_zone = 'Moon/Base'", "catalog.default_time_zone is 'Moon/Base'"),
        ("[catalog]\nchannels = ['sms', 'sms']", "catalog.channels is ['sms', 'sms']"),
        ("[[catalog.slots]]\nname = 'late'\nhour = 25", "catalog.slots['late'].hour is 25; use 0 to 23"),
        ("[[catalog.slots]]\nname = 'x'\nweekday = 9", "catalog.slots['x'].weekday is 9"),
        ("[[catalog.slots]]\nname = 'a'\n[[catalog.slots]]\nname = 'a'", "catalog.slots names are ['a', 'a']"),
        ("[service\nport = 1", "is not valid TOML"),
    ],
)
def test_bad_config_names_key(tmp_path, text, message):
    path = write(tmp_path, text)

    with pytest.raises(ConfigError) as caught:
        load_config(path)

    assert message in str(caught.value)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "absent.toml")

    assert "absent.toml' not found" in str(caught.value)
