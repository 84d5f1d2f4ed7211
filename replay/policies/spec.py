"""Build a candidate policy from a short text spec given on the command line.

| spec | policy |
|---|---|
| ``active`` | the model the service serves now (newest of the active lineage) |
| ``registry:v12`` | a model version of the store's registry |
| ``file:path/model.vw`` | a VW ``--cb_explore_adf`` model file |
| ``uniform`` | uniform over the eligible triples |
| ``rfm`` or ``rfm:rules.toml`` | RFM segment rules, the packaged default or a file |
| ``fixed:offer/channel/slot`` | one triple; uniform on events where it is not eligible |
"""

from __future__ import annotations

from pathlib import Path

from bandit.errors import InvalidInputError, NotFoundError
from bandit.policy_api import Policy
from bandit.store.registry import ModelRegistry
from bandit.vw_policy import VWPolicy
from replay.policies.baselines import FixedActionPolicy, UniformPolicy
from replay.policies.rfm import RFMPolicy, default_rules_path

SPEC_HELP = (
    "active, registry:VERSION, file:PATH, uniform, rfm, rfm:PATH or fixed:OFFER/CHANNEL/SLOT "
    "(uniform where that triple is not eligible)"
)


def load_policy(spec: str, registry: ModelRegistry | None = None) -> Policy:
    """Return the policy a spec names; ``registry`` is needed for ``active`` and ``registry:``."""
    kind, _, argument = spec.partition(":")

    if kind in ("active", "registry"):
        if registry is None:
            raise InvalidInputError("policy", f"{spec!r} needs a store; pass --store")
        if kind == "active":
            record = registry.head()
            if record is None:
                raise NotFoundError("the service has no model yet (cold start); train or promote one first")
        else:
            record = registry.get(argument)
        return VWPolicy(registry.load_bytes(record), record.version)

    if kind == "file":
        path = Path(argument)
        if not path.is_file():
            raise NotFoundError(f"model file {argument!r} not found")
        return VWPolicy(path.read_bytes(), f"file:{path.name}")

    if kind == "uniform" and not argument:
        return UniformPolicy()

    if kind == "rfm":
        return RFMPolicy.from_toml(argument or default_rules_path())

    if kind == "fixed":
        parts = argument.split("/")
        if len(parts) != 3 or not all(parts):
            raise InvalidInputError("policy", f"{spec!r} must be fixed:OFFER/CHANNEL/SLOT")
        offer_id, channel, slot = parts
        return FixedActionPolicy(offer_id, channel, slot)

    raise InvalidInputError("policy", f"{spec!r} is not a policy spec; use {SPEC_HELP}")
