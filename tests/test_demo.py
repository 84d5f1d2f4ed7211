"""A small demo run end to end: service, simulated traffic, replay, gate and report."""

from __future__ import annotations

import json
import math
from pathlib import Path

from loyalty_bandit.demo import DemoOptions, run_demo

SHARED_OBD = Path(__file__).resolve().parents[2] / "shared" / "data" / "obd"


def test_small_demo_end_to_end(tmp_path):
    options = DemoOptions(
        seed=3, requests=600, rate=1000.0, clients=3, members=300, day_seconds=0.01,
        replicates=50, out_dir=tmp_path / "out",
        obd_dir=SHARED_OBD if SHARED_OBD.is_dir() else tmp_path / "no-obd",
    )

    result = run_demo(options)

    assert result["traffic"]["decided"] == 600
    assert result["traffic"]["errors"] == 0
    assert {"rfm", "uniform"} <= set(result["policies"])
    for name, values in result["policies"].items():
        assert values["ci_low"] <= values["estimated"] <= values["ci_high"], name
        assert math.isfinite(values["true"]), name
    assert result["promoted"] in ("learned", "none")
    if result["promoted"] == "learned":
        assert result["served_model_after_promotion"]
    saved = json.loads((options.out_dir / "report.json").read_text())
    assert saved["true_values"]["uniform"] == result["policies"]["uniform"]["true"]
    assert (options.out_dir / "estimates.png").stat().st_size > 0
    assert "| policy | estimator |" in (options.out_dir / "report.md").read_text()
    if SHARED_OBD.is_dir():
        assert result["obd"]["campaign"] == "all"
    else:
        assert result["obd"] is None
