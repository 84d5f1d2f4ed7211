"""Reference policies for replay: uniform random, a fixed triple and RFM segment rules."""

from replay.policies.baselines import FixedActionPolicy, UniformPolicy
from replay.policies.rfm import FeatureRef, RFMFeatures, RFMPolicy, SegmentRule

__all__ = [
    "FeatureRef",
    "FixedActionPolicy",
    "RFMFeatures",
    "RFMPolicy",
    "SegmentRule",
    "UniformPolicy",
]
