"""Smoke tests of the benchmark scripts: each runs with tiny sizes and writes sane JSON.

These tests check that the scripts work and write the keys that the README
documents.
They never check a speed: the numbers of a tiny run on a shared machine mean
nothing.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

REPOSITORY = Path(__file__).resolve().parent.parent
BENCHMARKS = REPOSITORY / "benchmarks"

ENVIRONMENT_KEYS = ("cpu_model", "cpu_count", "python", "packages", "git_commit", "command", "date_utc")


def run_script(script: str, output: Path, *options: str, timeout_s: float = 240.0) -> dict[str, Any]:
    completed = subprocess.run(
        [sys.executable, str(BENCHMARKS / script), "--json", str(output), *options],
        cwd=REPOSITORY, capture_output=True, text=True, timeout=timeout_s,
    )
    assert completed.returncode == 0, f"{script} failed:\n{completed.stderr[-4000:]}"
    result: dict[str, Any] = json.loads(output.read_text(encoding="utf-8"))
    return result


def check_environment(result: dict[str, Any]) -> None:
    environment = result["environment"]
    for key in ENVIRONMENT_KEYS:
        assert key in environment, f"environment has no {key!r}"
    for package in ("grpcio", "vowpal-wabbit-next", "numpy"):
        assert package in environment["packages"]


def check_run(name: str, run: dict[str, Any]) -> None:
    assert run["count"] > 0, f"{name}: no successful call"
    assert run["errors"] == 0, f"{name}: errors {run['error_codes']}"
    assert run["rps"] > 0, f"{name}: rate {run['rps']}"
    assert run["p50_ms"] <= run["p95_ms"] <= run["p99_ms"] <= run["max_ms"], f"{name}: percentiles out of order"


@pytest.mark.timeout(300)
def test_latency_writes_documented_keys(tmp_path):
    result = run_script(
        "latency.py", tmp_path / "latency.json",
        "--requests", "30", "--warmup", "10", "--stream-requests", "30", "--duration", "2",
        "--concurrency", "1,2", "--streams", "1,2", "--seed-events", "20", "--members", "4",
        "--learner-busy", "--reward-rate", "20",
    )

    check_environment(result)
    for target in ("decide", "floor"):
        assert result[target]["p50_ms"] > 0
        assert result[target]["p50_ms"] <= result[target]["p99_ms"]
        assert result[target]["rps"] > 0
    assert result["ratio_p50"] > 0
    assert result["ratio_p99"] > 0
    assert result["stream"]["rps"] > 0
    assert result["decide_runs"]["response"]["policy"] == "vw-cb"
    assert result["decide_runs"]["response"]["distribution_size"] == 384
    assert result["settings"]["context_features"] == 30

    for group in ("floor_runs", "decide_runs"):
        for name in ("closed_c1", "closed_c2", "open", "stream_s1", "stream_s2"):
            check_run(f"{group}.{name}", result[group][name])
    check_run("decide_runs.open_half_own_max", result["decide_runs"]["open_half_own_max"])
    for group in ("learner_busy", "learner_busy_out_of_process"):
        check_run(f"{group}.closed_c1", result[group]["closed_c1"])
        check_run(f"{group}.open_half_own_max", result[group]["open_half_own_max"])
        assert result[group]["reward_stream"]["errors"] == 0
        assert result[group]["store_after"]["decisions_joined"] > 0, f"{group}: the learner joined nothing"
    out_of_process = result["learner_busy_out_of_process"]["closed_c1"]["processes"]
    assert [process["role"] for process in out_of_process] == ["service", "learner"]
    for run in ("closed_c1", "open_half_own_max"):
        assert result["learner_placement"][run]["p99_ms"]["ratio_out_over_in"] > 0

    scale_out = result["scale_out"]
    assert scale_out["response_policy"] == "vw-cb"
    assert [process["role"] for process in scale_out["layout"]] == ["service", "service", "learner"]
    assert 1 <= scale_out["warmup_rounds"] <= 5
    for name in ("closed_c1", "closed_c2", "stream_s1", "stream_s2"):
        run = scale_out[name]
        check_run(f"scale_out.{name}", run)
        assert run["servers"] == 1, f"scale_out.{name}: the client used {run['servers']} addresses, not one port"
        served = [process["calls"] for process in run["processes"] if process["role"] == "service"]
        assert sum(served) == run["count"], f"scale_out.{name}: processes counted {served}, client {run['count']}"
        assert scale_out["ratio_rps_to_one_process"][name] > 0


@pytest.mark.timeout(300)
def test_learning_writes_documented_keys(tmp_path):
    result = run_script(
        "learning.py", tmp_path / "learning.json",
        "--events-16", "40", "--events-384", "6", "--members", "4", "--repeats", "1",
    )

    check_environment(result)
    for name, actions, events in (("actions_16", 16, 40), ("actions_384", 384, 6)):
        row = result[name]
        assert row["actions"] == actions
        assert row["learner"]["events"] == events
        assert row["driver"]["events"] == events
        assert row["learner"]["events_per_s"] > 0
        assert row["driver"]["events_per_s"] > 0
        assert row["ratio_learner_over_driver"] > 0


@pytest.mark.timeout(300)
def test_replay_estimators_writes_documented_keys(tmp_path):
    result = run_script(
        "replay_estimators.py", tmp_path / "replay.json",
        "--rows", "4000", "--file-rows", "12000", "--chunk-rows", "2000", "--replicates", "20",
        "--memory-cap-mb", "0",
    )

    check_environment(result)
    inmemory = result["inmemory"]
    assert inmemory["rows"] == 4000
    assert inmemory["estimate"]["ci_low"] <= inmemory["estimate"]["value"] <= inmemory["estimate"]["ci_high"]
    assert inmemory["split_merge_abs_diff"]["value"] < 1e-9
    assert result["chunked_quarter"]["rows"] == 3000
    assert result["chunked_full"]["rows"] == 12000
    assert result["chunked_full"]["chunks"] == 6
    assert result["chunked_full"]["peak_rss_mib"] > 0
    assert result["summary"]["chunked_matches_inmemory_abs_diff"] < 1e-9
