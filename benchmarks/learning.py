"""Events per second of the online learner, against VW's command-line driver on the same data.

The learner path is ``bandit.learner.Learner.learn`` on ``JoinedEvent``
objects: it builds the VW text lines of each event, parses them and learns,
all in this thread. The driver is ``vowpal_wabbit_next.run_cli_driver`` with
the same VW arguments (``PolicyConfig().vw_args()`` without ``--quiet``),
reading the same lines from a text file, in one thread (``onethread=True``)
and, for reference, with its background parser thread. Both learn on 16-action
events (4 offers, 2 channels, 2 slots) and on the realistic 384-action events
(16 offers, 4 channels, 6 slots).

    python benchmarks/learning.py --json learning.json
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import vowpal_wabbit_next as vw
from benchlib import environment, write_json
from workload import joined_events, realistic_request

from bandit.config import Config, load_config
from bandit.engine import PolicyHolder
from bandit.features import labelled_lines
from bandit.learner import Learner
from bandit.store.event_store import EventStore, JoinedEvent
from bandit.store.registry import ModelRegistry
from bandit.vw_policy import UniformPolicy

TARGET_RATIO = 0.5
"""The learner should learn at least half as many events per second as the driver."""

SHAPES = {
    "actions_16": {"offers": 4, "channels": 2, "slots": 2},
    "actions_384": {"offers": 16, "channels": 4, "slots": 6},
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="Write the results to this JSON file.")
    parser.add_argument("--events-16", type=int, default=5000, help="Events of the 16-action data set.")
    parser.add_argument("--events-384", type=int, default=1000, help="Events of the 384-action data set.")
    parser.add_argument("--members", type=int, default=64, help="Distinct member contexts cycled through.")
    parser.add_argument("--repeats", type=int, default=3, help="Timed repetitions of each measurement; the "
                        "median is reported.")
    parser.add_argument("--duration", type=float, default=120.0, help="Maximum time of the whole run, in seconds; "
                        "repetitions stop once it has passed.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the synthetic events.")
    args = parser.parse_args(argv)
    for name in ("events_16", "events_384", "members", "repeats"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} is {getattr(args, name)}; use 1 or more")
    return args


def timed_repeats(repeats: int, deadline: float, run: Callable[[], int]) -> dict[str, Any]:
    """Time ``run`` (which returns the events it processed) up to ``repeats`` times; at least once."""
    seconds: list[float] = []
    events = 0
    for _ in range(repeats):
        start = time.perf_counter_ns()
        events = run()
        seconds.append((time.perf_counter_ns() - start) / 1e9)
        if time.monotonic() >= deadline:
            break
    median = statistics.median(seconds)
    return {
        "events": events,
        "seconds": seconds,
        "seconds_median": median,
        "events_per_s": events / median if median > 0 else None,
    }


def learner_run(config: Config, workdir: Path, events: list[JoinedEvent]) -> Callable[[], int]:
    """Return a run that feeds every event to a fresh ``Learner``."""

    def run() -> int:
        store_path = workdir / f"learner-{time.perf_counter_ns()}.db"
        store = EventStore(
            str(store_path), window_seconds=config.rewards.window_seconds,
            default_reward=config.rewards.default_reward, aggregation=config.rewards.aggregation,
        )
        registry = ModelRegistry(str(store_path))
        try:
            learner = Learner(config, store, registry, PolicyHolder(UniformPolicy()))
            for event in events:
                learner.learn(event)
            return learner.events_learned
        finally:
            store.close()
            registry.close()

    return run


def event_lines(events: list[JoinedEvent]) -> list[list[str]]:
    return [
        labelled_lines(event.request, event.actions, event.chosen_index, -event.reward, event.probability)
        for event in events
    ]


def featurize_run(events: list[JoinedEvent]) -> Callable[[], int]:
    """Return a run that only builds the text lines, the share of the learner in Python string code."""

    def run() -> int:
        return len(event_lines(events))

    return run


def parse_learn_run(vw_args: list[str], lines: list[list[str]]) -> Callable[[], int]:
    """Return a run that parses and learns prebuilt lines in a fresh workspace, as the learner does."""

    def run() -> int:
        workspace = vw.Workspace(vw_args)
        parser = vw.TextFormatParser(workspace)
        for example in lines:
            workspace.learn_one([parser.parse_line(line) for line in example])
        return len(lines)

    return run


def driver_run(vw_args: list[str], data_path: Path, *, onethread: bool) -> Callable[[], int]:
    """Return a run of the VW command-line driver over the data file; it returns the examples VW read."""

    def run() -> int:
        output, _logs = vw.run_cli_driver(["-d", str(data_path), *vw_args], onethread=onethread)
        match = re.search(r"number of examples = (\d+)", output)
        if match is None:
            raise RuntimeError(f"the VW driver output has no example count:\n{output[-2000:]}")
        return int(match.group(1))

    return run


def measure_shape(
    name: str, shape: dict[str, int], count: int, args: argparse.Namespace, workdir: Path, deadline: float
) -> dict[str, Any]:
    config = load_config(None, {"store.path": str(workdir / "unused.db")})
    rng = np.random.default_rng(args.seed)
    messages = [realistic_request(member, rng, **shape) for member in range(args.members)]
    events = joined_events(messages, count, config, rng)
    lines = event_lines(events)
    vw_args = [arg for arg in config.policy.vw_args() if arg != "--quiet"]

    # VW reads multi-line examples separated by an empty line.
    data_path = workdir / f"{name}.txt"
    with open(data_path, "w", encoding="utf-8") as handle:
        for example in lines:
            handle.write("\n".join(example))
            handle.write("\n\n")

    learner = timed_repeats(args.repeats, deadline, learner_run(config, workdir, events))
    featurize = timed_repeats(args.repeats, deadline, featurize_run(events))
    parse_learn = timed_repeats(args.repeats, deadline, parse_learn_run(vw_args, lines))
    driver = timed_repeats(args.repeats, deadline, driver_run(vw_args, data_path, onethread=True))
    driver_threaded = timed_repeats(args.repeats, deadline, driver_run(vw_args, data_path, onethread=False))
    for run_name, result in (("driver", driver), ("driver_threaded", driver_threaded)):
        if result["events"] != count:
            raise RuntimeError(f"the VW driver ({run_name}) read {result['events']} examples, expected {count}")

    ratio = learner["events_per_s"] / driver["events_per_s"]
    return {
        "actions": len(events[0].actions),
        "events": count,
        "data_file_bytes": data_path.stat().st_size,
        "learner": learner,
        "featurize_only": featurize,
        "parse_learn_only": parse_learn,
        "driver": driver,
        "driver_threaded": driver_threaded,
        "ratio_learner_over_driver": ratio,
        "target_ratio_min": TARGET_RATIO,
        "target_met": ratio >= TARGET_RATIO,
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    results: dict[str, Any] = {"benchmark": "learning", "environment": environment()}
    results["settings"] = {key: value for key, value in vars(args).items() if key != "json"}
    results["settings"]["vw_args"] = [arg for arg in load_config().policy.vw_args() if arg != "--quiet"]

    deadline = time.monotonic() + args.duration
    counts = {"actions_16": args.events_16, "actions_384": args.events_384}
    with tempfile.TemporaryDirectory(prefix="loyalty-bandit-learning-") as workdir_name:
        for name, shape in SHAPES.items():
            results[name] = measure_shape(name, shape, counts[name], args, Path(workdir_name), deadline)

    print(f"{'data':<12} {'learner ev/s':>12} {'driver ev/s':>12} {'ratio':>6} {'featurize ev/s':>15} "
          f"{'parse+learn ev/s':>17}", file=sys.stderr)
    for name in SHAPES:
        row = results[name]
        print(
            f"{name:<12} {row['learner']['events_per_s']:>12.0f} {row['driver']['events_per_s']:>12.0f} "
            f"{row['ratio_learner_over_driver']:>6.2f} {row['featurize_only']['events_per_s']:>15.0f} "
            f"{row['parse_learn_only']['events_per_s']:>17.0f}",
            file=sys.stderr,
        )
    if args.json:
        write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
