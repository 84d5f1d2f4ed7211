"""Service configuration: dataclasses with defaults, loaded from TOML.

Every section of the TOML file maps to one dataclass below, and every key to
one field. A missing file section or key keeps its default, so the service
runs with no configuration at all. Unknown keys and invalid values raise
``ConfigError`` naming the key.
"""

from __future__ import annotations

import dataclasses
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bandit.errors import ConfigError

DEFAULT_CHANNELS = ("email", "sms", "push", "in_app", "pos_receipt")

EXPLORATION_KINDS = ("epsilon", "squarecb", "softmax", "bag")
AGGREGATIONS = ("sum", "first", "last", "max")


@dataclasses.dataclass(frozen=True)
class SlotSpec:
    """A timing slot and the rule that maps it to a send time.

    With ``offset_minutes`` set, the send time is the request time plus that
    offset. Otherwise it is the next ``hour:minute`` in the member's time zone
    that is at or after the request time, at least ``days_ahead`` days later,
    and on ``weekday`` (0 = Monday) when that is set.
    """

    name: str
    offset_minutes: int | None = None
    hour: int = 9
    minute: int = 0
    days_ahead: int = 0
    weekday: int | None = None

    def __post_init__(self) -> None:
        where = f"catalog.slots[{self.name!r}]"
        if not self.name:
            raise ConfigError(f"{where}.name is empty; give every slot a name")
        if self.offset_minutes is not None and self.offset_minutes < 0:
            raise ConfigError(f"{where}.offset_minutes is {self.offset_minutes}; use 0 or more")
        if not 0 <= self.hour <= 23:
            raise ConfigError(f"{where}.hour is {self.hour}; use 0 to 23")
        if not 0 <= self.minute <= 59:
            raise ConfigError(f"{where}.minute is {self.minute}; use 0 to 59")
        if self.days_ahead < 0:
            raise ConfigError(f"{where}.days_ahead is {self.days_ahead}; use 0 or more")
        if self.weekday is not None and not 0 <= self.weekday <= 6:
            raise ConfigError(f"{where}.weekday is {self.weekday}; use 0 (Monday) to 6 (Sunday)")


DEFAULT_SLOTS = (
    SlotSpec("now", offset_minutes=0),
    SlotSpec("in_2_hours", offset_minutes=120),
    SlotSpec("this_evening", hour=19),
    SlotSpec("tomorrow_morning", hour=9, days_ahead=1),
    SlotSpec("tomorrow_evening", hour=19, days_ahead=1),
    SlotSpec("weekend", hour=10, weekday=5),
)


@dataclasses.dataclass(frozen=True)
class ServiceConfig:
    """Network and lifecycle settings of the gRPC server."""

    host: str = "127.0.0.1"
    port: int = 50051
    max_workers: int = 16
    """Threads serving unary and streaming calls."""
    max_message_bytes: int = 4 * 1024 * 1024
    """Largest request accepted; larger ones get RESOURCE_EXHAUSTED."""
    shutdown_grace_seconds: float = 10.0
    """Time given to calls in flight before shutdown cancels them."""
    reuse_port: bool = False
    """Let several serving processes bind the same port (SO_REUSEPORT, Linux), sharing one store.

    Run them with ``learner.enabled = false`` and one ``loyalty-bandit learn``
    process, so that exactly one process joins rewards and trains.
    """


@dataclasses.dataclass(frozen=True)
class StoreConfig:
    """The embedded SQLite event store."""

    path: str = "loyalty-bandit.db"
    model_dir: str = ""
    """Folder for model snapshots. Empty: a ``models`` folder beside the database."""
    group_commit_max_rows: int = 256
    """Most records written in one transaction."""
    group_commit_max_delay_ms: float = 0.0
    """Maximum time the writer waits for more records before committing.

    0 commits whatever is queued at once: under load, records that arrive
    during one fsync form the next batch, so batching costs no latency.
    """


@dataclasses.dataclass(frozen=True)
class CatalogConfig:
    """Channels and timing slots a request may use when it names none."""

    channels: tuple[str, ...] = DEFAULT_CHANNELS
    slots: tuple[SlotSpec, ...] = DEFAULT_SLOTS
    default_time_zone: str = "UTC"

    def slot(self, name: str) -> SlotSpec:
        """Return the slot with this name; raise KeyError when unknown."""
        for spec in self.slots:
            if spec.name == name:
                return spec
        raise KeyError(name)


@dataclasses.dataclass(frozen=True)
class PolicyConfig:
    """The Vowpal Wabbit model and its exploration."""

    exploration: str = "epsilon"
    """One of epsilon, squarecb, softmax, bag."""
    epsilon: float = 0.1
    """Exploration probability of epsilon-greedy; also mixed into bag."""
    squarecb_gamma_scale: float = 10.0
    softmax_lambda: float = 10.0
    bag_size: int = 5
    interactions: tuple[str, ...] = ("UO", "UC", "UT", "OC", "OT", "CT")
    """VW namespace interactions. U: member context, O: offer, C: channel, T: timing slot."""
    learning_rate: float = 0.5
    extra_args: tuple[str, ...] = ()
    """More VW options appended verbatim, such as ("--l2", "1e-6")."""
    seed: int = 0
    """Seed of VW's own random state (bagging) and of the event id sampling salt."""

    def vw_args(self) -> list[str]:
        """Return the VW command line for a ``--cb_explore_adf`` workspace."""
        args = ["--cb_explore_adf", "--quiet", "--learning_rate", str(self.learning_rate)]
        args += ["--random_seed", str(self.seed)]
        for interaction in self.interactions:
            args += ["--interactions", interaction]
        if self.exploration == "epsilon":
            args += ["--epsilon", str(self.epsilon)]
        elif self.exploration == "squarecb":
            args += ["--squarecb", "--gamma_scale", str(self.squarecb_gamma_scale)]
        elif self.exploration == "softmax":
            args += ["--softmax", "--lambda", str(self.softmax_lambda)]
        elif self.exploration == "bag":
            args += ["--bag", str(self.bag_size), "--epsilon", str(self.epsilon)]
        return args + list(self.extra_args)

    def __post_init__(self) -> None:
        if self.exploration not in EXPLORATION_KINDS:
            raise ConfigError(
                f"policy.exploration is {self.exploration!r}; use one of {', '.join(EXPLORATION_KINDS)}"
            )
        if not 0.0 <= self.epsilon <= 1.0:
            raise ConfigError(f"policy.epsilon is {self.epsilon}; use a number from 0 to 1")
        if self.bag_size < 1:
            raise ConfigError(f"policy.bag_size is {self.bag_size}; use 1 or more")
        for interaction in self.interactions:
            if not interaction or set(interaction) - set("UOCT"):
                raise ConfigError(
                    f"policy.interactions contains {interaction!r}; "
                    "use letters U (member), O (offer), C (channel), T (slot), such as 'OC'"
                )


@dataclasses.dataclass(frozen=True)
class RewardConfig:
    """Settings that join rewards to their decisions."""

    window_seconds: float = 7 * 24 * 3600.0
    """Time after a decision during which its rewards count."""
    default_reward: float = 0.0
    """Reward of a decision whose window closes with no reward."""
    aggregation: str = "sum"
    """Rule that combines several rewards of one decision: sum, first, last or max."""

    def __post_init__(self) -> None:
        if self.window_seconds <= 0:
            raise ConfigError(f"rewards.window_seconds is {self.window_seconds}; use a positive number")
        if self.aggregation not in AGGREGATIONS:
            raise ConfigError(
                f"rewards.aggregation is {self.aggregation!r}; use one of {', '.join(AGGREGATIONS)}"
            )


@dataclasses.dataclass(frozen=True)
class LearnerConfig:
    """The background joiner and learner."""

    enabled: bool = True
    """Join rewards and learn. When False the service still follows promotions."""
    join_interval_seconds: float = 1.0
    """How often closed reward windows are looked for."""
    snapshot_every_events: int = 200
    """Publish a new model after this many learned events."""
    snapshot_every_seconds: float = 5.0
    """Publish a new model at least this often while events are being learned."""
    registry_poll_seconds: float = 1.0
    """How often the service checks the registry for a promotion or rollback."""


@dataclasses.dataclass(frozen=True)
class LimitsConfig:
    """Bounds on one request, checked before any work."""

    max_offers: int = 256
    max_actions: int = 4096
    """Most (offer, channel, slot) triples one request may expand to."""
    max_features: int = 1024
    """Maximum number of features in the context plus all offers of one request."""
    max_id_length: int = 256


@dataclasses.dataclass(frozen=True)
class Config:
    """The whole service configuration."""

    service: ServiceConfig = ServiceConfig()
    store: StoreConfig = StoreConfig()
    catalog: CatalogConfig = CatalogConfig()
    policy: PolicyConfig = PolicyConfig()
    rewards: RewardConfig = RewardConfig()
    learner: LearnerConfig = LearnerConfig()
    limits: LimitsConfig = LimitsConfig()

    def __post_init__(self) -> None:
        try:
            ZoneInfo(self.catalog.default_time_zone)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ConfigError(
                f"catalog.default_time_zone is {self.catalog.default_time_zone!r}; "
                "use an IANA name such as 'Europe/Paris'"
            ) from error
        names = [slot.name for slot in self.catalog.slots]
        if len(set(names)) != len(names) or not names:
            raise ConfigError(f"catalog.slots names are {names}; give at least one, each unique")
        if len(set(self.catalog.channels)) != len(self.catalog.channels) or not self.catalog.channels:
            raise ConfigError(
                f"catalog.channels is {list(self.catalog.channels)}; give at least one, each unique"
            )


Section = TypeVar("Section")


def _build_section(cls: type[Section], name: str, values: Mapping[str, Any]) -> Section:
    known = {field.name: field for field in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(known))
    if unknown:
        raise ConfigError(
            f"[{name}] has unknown keys {unknown}; known keys are {sorted(known)}"
        )
    converted: dict[str, Any] = {}
    for key, value in values.items():
        default = getattr(cls, key, None)
        if isinstance(default, tuple) and isinstance(value, list):
            value = tuple(value)
        converted[key] = value
    try:
        return cls(**converted)
    except TypeError as error:
        raise ConfigError(f"[{name}]: {error}") from error


def load_config(path: str | Path | None = None, overrides: Mapping[str, Any] | None = None) -> Config:
    """Load the configuration from a TOML file, or the defaults when ``path`` is None.

    ``overrides`` maps ``"section.key"`` to a value and wins over the file,
    which is how command-line options such as ``--port`` apply.
    """
    data: dict[str, Any] = {}
    if path is not None:
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except FileNotFoundError as error:
            raise ConfigError(f"configuration file {str(path)!r} not found") from error
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"configuration file {str(path)!r} is not valid TOML: {error}") from error

    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        data.setdefault(section, {})[key] = value

    sections = {field.name: field for field in dataclasses.fields(Config)}
    unknown = sorted(set(data) - set(sections))
    if unknown:
        raise ConfigError(f"configuration has unknown sections {unknown}; known are {sorted(sections)}")

    catalog = dict(data.get("catalog", {}))
    if "slots" in catalog:
        slots = []
        for index, slot in enumerate(catalog["slots"]):
            if not isinstance(slot, dict):
                raise ConfigError(f"catalog.slots[{index}] is {slot!r}; use a table with a name")
            slots.append(_build_section(SlotSpec, f"catalog.slots[{index}]", slot))
        catalog["slots"] = tuple(slots)

    built: dict[str, Any] = {}
    for name, field in sections.items():
        values = catalog if name == "catalog" else data.get(name, {})
        section_type = type(field.default)
        built[name] = _build_section(section_type, name, values)
    return Config(**built)
