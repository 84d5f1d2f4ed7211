"""The RFM segment rules policy: the incumbent every loyalty program already runs.

Segment rules bound recency (days since the last purchase), frequency
(purchases in the last 12 months) and monetary value (spend in the last 12
months). The first rule a member matches is their segment, and the last rule
has no bounds, so every member has one. Each segment lists preferred
(offer, channel, slot) triples. The policy serves the first of them that is
eligible, then the first eligible triple of ``fallback_actions``, and
otherwise draws uniformly over the eligible triples. Its propensities are 0
or 1 except in that last case.

A rules file looks like this (bounds are inclusive, every bound optional)::

    version = "2024-03"
    fallback_actions = [["discount_10", "email", "tomorrow_morning"]]

    [features]
    recency = "rfm.recency_days"

    [[segment]]
    name = "champions"
    recency_max = 30
    frequency_min = 12
    actions = [["early_access", "email", "tomorrow_morning"]]

    [[segment]]
    name = "everyone_else"
    actions = [["double_points", "email", "tomorrow_morning"]]
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import tomllib
from collections.abc import Mapping, Sequence
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bandit.domain import DecisionRequest, JointAction
from bandit.errors import ConfigError, NoEligibleActionError

BOUND_KEYS = (
    "recency_min",
    "recency_max",
    "frequency_min",
    "frequency_max",
    "monetary_min",
    "monetary_max",
)
SEGMENT_KEYS = ("name", "actions", *BOUND_KEYS)
TOP_LEVEL_KEYS = ("version", "features", "fallback_actions", "segment")
FIGURES = ("recency", "frequency", "monetary")
ACTION_EXAMPLE = '["double_points", "email", "tomorrow_morning"]'


def default_rules_path() -> Path:
    """Return the path of the rules file shipped with the package."""
    return Path(str(resources.files("bandit").joinpath("data", "rfm_rules.toml")))


@dataclasses.dataclass(frozen=True)
class FeatureRef:
    """A context feature named by namespace and feature name, written ``namespace.name``."""

    namespace: str
    name: str

    def __str__(self) -> str:
        return f"{self.namespace}.{self.name}"

    @classmethod
    def parse(cls, text: object, key: str) -> FeatureRef:
        """Parse ``namespace.name``, raising a ConfigError that names ``key`` when malformed."""
        message = f"{key} is {text!r}; use 'namespace.feature', such as 'rfm.recency_days'"
        if not isinstance(text, str):
            raise ConfigError(message)
        namespace, dot, name = text.partition(".")
        if not (dot and namespace and name):
            raise ConfigError(message)
        return cls(namespace, name)


@dataclasses.dataclass(frozen=True)
class RFMFeatures:
    """The context features from which the policy reads the three RFM figures."""

    recency: FeatureRef = FeatureRef("rfm", "recency_days")
    frequency: FeatureRef = FeatureRef("rfm", "frequency")
    monetary: FeatureRef = FeatureRef("rfm", "monetary")


@dataclasses.dataclass(frozen=True)
class SegmentRule:
    """One segment: inclusive bounds on the RFM figures and its preferred triples.

    A bound left as None does not constrain. A rule with no bound matches
    every member.
    """

    name: str
    actions: tuple[JointAction, ...]
    recency_min: float | None = None
    recency_max: float | None = None
    frequency_min: float | None = None
    frequency_max: float | None = None
    monetary_min: float | None = None
    monetary_max: float | None = None

    def __post_init__(self) -> None:
        where = f"segment {self.name!r}"
        if not self.name:
            raise ConfigError("a segment has an empty name; give every [[segment]] a name")
        if not self.actions:
            raise ConfigError(f"{where} has no actions; list at least one, such as {ACTION_EXAMPLE}")
        for figure in FIGURES:
            low = getattr(self, f"{figure}_min")
            high = getattr(self, f"{figure}_max")
            if low is not None and high is not None and low > high:
                raise ConfigError(
                    f"{where} has {figure}_min = {low} above {figure}_max = {high}; swap them or remove one"
                )

    @property
    def is_default(self) -> bool:
        """True when the rule has no bound and so matches every member."""
        return all(getattr(self, key) is None for key in BOUND_KEYS)

    def matches(self, recency: float, frequency: float, monetary: float) -> bool:
        """Return True when every bound that is set holds for the figures."""
        figures = {"recency": recency, "frequency": frequency, "monetary": monetary}
        for figure, value in figures.items():
            low = getattr(self, f"{figure}_min")
            high = getattr(self, f"{figure}_max")
            if low is not None and value < low:
                return False
            if high is not None and value > high:
                return False
        return True


class RFMPolicy:
    """A policy that serves each RFM segment its first eligible preferred triple."""

    def __init__(
        self,
        segments: Sequence[SegmentRule],
        *,
        features: RFMFeatures | None = None,
        fallback_actions: Sequence[JointAction] = (),
        version: str = "custom",
    ) -> None:
        if not segments:
            raise ConfigError("the rules have no [[segment]]; add at least a default one with no bounds")
        names = [segment.name for segment in segments]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise ConfigError(f"segment names {duplicates} appear more than once; make each unique")
        if not segments[-1].is_default:
            raise ConfigError(
                f"the last segment {segments[-1].name!r} has bounds; "
                "end with a [[segment]] that has none, so every member gets a segment"
            )
        for segment in segments[:-1]:
            if segment.is_default:
                raise ConfigError(
                    f"segment {segment.name!r} has no bounds but is not last, "
                    "so the segments after it never match; move it to the end"
                )

        self.segments = tuple(segments)
        self.features = features if features is not None else RFMFeatures()
        self.fallback_actions = tuple(fallback_actions)
        self._version = version

    @classmethod
    def from_toml(cls, path: str | Path) -> RFMPolicy:
        """Load a rules file. Raises ConfigError naming the key, the value and the fix.

        The version is the file's ``version`` key, or else ``sha256:`` and the
        first 12 hex digits of the file's hash.
        """
        try:
            content = Path(path).read_bytes()
        except FileNotFoundError as error:
            raise ConfigError(f"RFM rules file {str(path)!r} not found") from error
        try:
            data = tomllib.loads(content.decode("utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"RFM rules file {str(path)!r} is not valid TOML: {error}") from error

        digest = "sha256:" + hashlib.sha256(content).hexdigest()[:12]
        try:
            return cls.from_mapping(data, default_version=digest)
        except ConfigError as error:
            raise ConfigError(f"RFM rules file {str(path)!r}: {error}") from error

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any], default_version: str | None = None) -> RFMPolicy:
        """Build the policy from parsed TOML, with the keys the module docstring describes.

        Without a ``version`` key, the version is ``default_version``, or else
        a hash of the data.
        """
        unknown = sorted(set(data) - set(TOP_LEVEL_KEYS))
        if unknown:
            raise ConfigError(f"unknown keys {unknown}; known keys are {list(TOP_LEVEL_KEYS)}")

        version = data.get("version")
        if version is None:
            canonical = json.dumps(data, sort_keys=True, default=str).encode("utf-8")
            version = default_version or "sha256:" + hashlib.sha256(canonical).hexdigest()[:12]
        if not isinstance(version, str) or not version:
            raise ConfigError(f"version is {version!r}; use a non-empty string such as '2024-03'")

        raw_segments = data.get("segment")
        if raw_segments is None:
            raise ConfigError("no [[segment]] table; add at least one, the last with no bounds")
        if not isinstance(raw_segments, list) or not raw_segments:
            raise ConfigError(f"segment is {raw_segments!r}; write [[segment]] tables, the last with no bounds")
        segments = [_parse_segment(raw, index) for index, raw in enumerate(raw_segments)]

        fallback = _parse_actions(data.get("fallback_actions", []), "fallback_actions", empty_ok=True)
        return cls(
            segments,
            features=_parse_features(data.get("features", {})),
            fallback_actions=fallback,
            version=version,
        )

    @classmethod
    def default(cls) -> RFMPolicy:
        """Load the rules file shipped with the package, written for the simulator's catalog."""
        return cls.from_toml(default_rules_path())

    @property
    def name(self) -> str:
        """The policy kind: ``rfm-rules``."""
        return "rfm-rules"

    @property
    def version(self) -> str:
        """The rule set's version."""
        return self._version

    def figures(self, request: DecisionRequest) -> tuple[float, float, float]:
        """Return the request's recency, frequency and monetary figures.

        Raises ConfigError when a feature the rules read is missing or not a number.
        """
        values = []
        for figure in FIGURES:
            ref: FeatureRef = getattr(self.features, figure)
            value = request.context.get(ref.namespace, {}).get(ref.name)
            if value is None:
                raise ConfigError(
                    f"features.{figure} is {str(ref)!r}, but request {request.request_id} "
                    f"has no feature {ref.name!r} in namespace {ref.namespace!r}; "
                    f"send it, or point features.{figure} at the feature that holds it"
                )
            if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
                raise ConfigError(
                    f"features.{figure} is {str(ref)!r}, and request {request.request_id} "
                    f"gives it the value {value!r}; send a number"
                )
            values.append(float(value))
        return values[0], values[1], values[2]

    def segment_of(self, request: DecisionRequest) -> SegmentRule:
        """Return the first segment rule the request's member matches."""
        recency, frequency, monetary = self.figures(request)
        for segment in self.segments:
            if segment.matches(recency, frequency, monetary):
                return segment
        # The constructor ensures the last segment has no bounds, so this is not reached.
        return self.segments[-1]

    def distribution(self, request: DecisionRequest, actions: Sequence[JointAction]) -> npt.NDArray[np.float64]:
        """Return probability 1 on the first eligible preferred triple, else uniform.

        Raises NoEligibleActionError when ``actions`` is empty.
        """
        if not actions:
            raise NoEligibleActionError(f"request {request.request_id} has no eligible action to give a probability to")
        index_of = {action: index for index, action in enumerate(actions)}
        preferred = self.segment_of(request).actions + self.fallback_actions

        probabilities = np.zeros(len(actions), dtype=np.float64)
        for action in preferred:
            index = index_of.get(action)
            if index is not None:
                probabilities[index] = 1.0
                return probabilities

        probabilities[:] = 1.0 / len(actions)
        return probabilities


def _parse_features(raw: object) -> RFMFeatures:
    if not isinstance(raw, dict):
        raise ConfigError(f"features is {raw!r}; use a table such as [features]")
    unknown = sorted(set(raw) - set(FIGURES))
    if unknown:
        raise ConfigError(f"features has unknown keys {unknown}; known keys are {list(FIGURES)}")
    defaults = RFMFeatures()
    refs = {
        figure: FeatureRef.parse(raw[figure], f"features.{figure}") if figure in raw else getattr(defaults, figure)
        for figure in FIGURES
    }
    return RFMFeatures(**refs)


def _parse_segment(raw: object, index: int) -> SegmentRule:
    where = f"segment[{index}]"
    if not isinstance(raw, dict):
        raise ConfigError(f"{where} is {raw!r}; use a [[segment]] table")
    unknown = sorted(set(raw) - set(SEGMENT_KEYS))
    if unknown:
        raise ConfigError(f"{where} has unknown keys {unknown}; known keys are {list(SEGMENT_KEYS)}")

    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"{where}.name is {name!r}; give the segment a name such as 'champions'")

    bounds: dict[str, float | None] = {}
    for key in BOUND_KEYS:
        value = raw.get(key)
        if value is None:
            bounds[key] = None
            continue
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise ConfigError(f"{where}.{key} is {value!r}; use a number, such as 30")
        bounds[key] = float(value)

    if "actions" not in raw:
        raise ConfigError(f"{where}.actions is missing; list triples such as [{ACTION_EXAMPLE}]")
    actions = _parse_actions(raw["actions"], f"{where}.actions", empty_ok=False)
    return SegmentRule(name=name, actions=actions, **bounds)


def _parse_actions(raw: object, key: str, *, empty_ok: bool) -> tuple[JointAction, ...]:
    if not isinstance(raw, list) or (not raw and not empty_ok):
        raise ConfigError(f"{key} is {raw!r}; use a list of triples such as [{ACTION_EXAMPLE}]")
    actions = []
    for index, item in enumerate(raw):
        valid = isinstance(item, list) and len(item) == 3 and all(isinstance(part, str) and part for part in item)
        if not valid:
            raise ConfigError(f"{key}[{index}] is {item!r}; use [offer_id, channel, slot], such as {ACTION_EXAMPLE}")
        actions.append(JointAction(item[0], item[1], item[2]))
    return tuple(actions)
