"""``loyalty-bandit demo``: the whole loop on simulated and real data.

1. Start the service on a free loopback port with a fresh store.
2. Drive simulated members through gRPC clients at a fixed rate; send each
   reward after its (time-compressed) delay; the model learns online.
3. Train a candidate on the earlier part of the log, with less exploration
   than the live model, and replay it, the model that was live when the later
   part began, the RFM rules and uniform random on the later part, each
   beside its true value from the simulator.
4. Promote the candidate through the gate against the live model, and check
   that the running service then serves it.
5. Evaluate BTS on the Open Bandit Dataset when the sample is found.
"""

from __future__ import annotations

import dataclasses
import heapq
import itertools
import logging
import shutil
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bandit.client import DecisionClient
from bandit.config import load_config
from bandit.domain import DecisionRequest, JointAction
from bandit.policy_api import Policy
from bandit.service.server import Service
from bandit.simulator import Simulator
from bandit.store.reader import split_time
from bandit.store.registry import SOURCE_IMPORT
from bandit.vw_policy import VWPolicy
from loyalty_bandit.datasets import find_obd_dir
from replay.evaluate import Evaluation, evaluate_store
from replay.gate import GateConfig, check_gate
from replay.policies.baselines import UniformPolicy
from replay.policies.rfm import RFMPolicy, default_rules_path
from replay.report import write_evaluation_report, write_json
from replay.service_log import iter_store_log
from replay.train import train_from_store

logger = logging.getLogger(__name__)

SECONDS_PER_DAY = 86400.0


@dataclasses.dataclass(frozen=True)
class DemoOptions:
    """Sizes and settings of a demo run."""

    seed: int = 7
    requests: int = 20_000
    rate: float = 400.0
    """Decide calls per second, shared by all clients."""
    clients: int = 4
    members: int = 3000
    day_seconds: float = 0.1
    """Wall-clock seconds per simulated day, for reward delays and the window."""
    window_days: float = 22.0
    """Reward window in simulated days; the simulator's longest redemption delay is about 21 days."""
    slots: tuple[str, ...] = ("now", "this_evening", "tomorrow_morning")
    """Timing slots offered. Fewer joint actions give replay more overlap per event."""
    train_fraction: float = 0.6
    passes: int = 3
    replicates: int = 300
    epsilon: float = 0.4
    """Exploration of the online model that serves the traffic."""
    candidate_epsilon: float = 0.05
    """Exploration of the retrained candidate: less than online, which is what it is tested for."""
    out_dir: Path = Path("demo-output")
    obd_dir: Path | None = None
    time_limit_seconds: float = 900.0
    """Hard cap on the traffic and drain phases."""


class RewardScheduler:
    """Sends each reward when its delay has passed, from one background thread."""

    def __init__(self, client: DecisionClient) -> None:
        self._client = client
        self._heap: list[tuple[float, int, str, float, str]] = []
        self._counter = itertools.count()
        self._condition = threading.Condition()
        self._closed = False
        self.sent = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="demo-rewards", daemon=True)
        self._thread.start()

    def schedule(self, due: float, event_id: str, value: float, outcome: str) -> None:
        """Send the reward at monotonic time ``due``."""
        with self._condition:
            heapq.heappush(self._heap, (due, next(self._counter), event_id, value, outcome))
            self._condition.notify()

    def pending(self) -> int:
        """Return the number of rewards not sent yet."""
        with self._condition:
            return len(self._heap)

    def close(self) -> None:
        """Stop after sending what is due; drop the rest."""
        with self._condition:
            self._closed = True
            self._condition.notify()
        self._thread.join()

    def _run(self) -> None:
        while True:
            with self._condition:
                while not self._closed and (not self._heap or self._heap[0][0] > time.monotonic()):
                    timeout = self._heap[0][0] - time.monotonic() if self._heap else None
                    self._condition.wait(timeout)
                if self._closed:
                    return
                _, _, event_id, value, outcome = heapq.heappop(self._heap)
            try:
                self._client.reward(event_id, value, outcome=outcome)
                self.sent += 1
            except Exception as error:  # The demo counts failures and goes on.
                self.failed += 1
                logger.warning("reward for %s failed: %s", event_id, error)


def _drive_traffic(
    options: DemoOptions, simulator: Simulator, port: int, progress: Progress
) -> dict[str, int]:
    """Send ``options.requests`` Decide calls at ``options.rate`` from several clients."""
    lock = threading.Lock()
    next_index = itertools.count()
    counts = {"decided": 0, "errors": 0, "rewards_scheduled": 0, "rewards_after_window": 0}
    rng = np.random.default_rng(options.seed + 1)
    window = options.window_days * options.day_seconds
    start = time.monotonic()
    deadline = start + options.time_limit_seconds
    task = progress.add_task("decisions over gRPC", total=options.requests)
    reward_client = DecisionClient(f"127.0.0.1:{port}")
    scheduler = RewardScheduler(reward_client)

    def client_loop() -> None:
        with DecisionClient(f"127.0.0.1:{port}") as client:
            while True:
                index = next(next_index)
                if index >= options.requests or time.monotonic() > deadline:
                    return
                delay = start + index / options.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
                with lock:
                    request = simulator.next_request()
                try:
                    response = client.decide(request)
                except Exception as error:  # Counted and shown in the summary.
                    with lock:
                        counts["errors"] += 1
                    logger.warning("decide %s failed: %s", request.request_id, error)
                    continue
                action = JointAction(response.offer_id, response.channel, response.slot)
                with lock:
                    simulator.record_decision(request, action)
                    outcome = simulator.sample_outcome(request, action, rng)
                    counts["decided"] += 1
                if outcome.reward != 0.0:
                    if outcome.delay_seconds > window:
                        counts["rewards_after_window"] += 1
                    else:
                        scheduler.schedule(
                            time.monotonic() + outcome.delay_seconds, response.event_id,
                            outcome.reward, outcome.outcome,
                        )
                        counts["rewards_scheduled"] += 1
                progress.advance(task)

    threads = [threading.Thread(target=client_loop, name=f"demo-client-{i}") for i in range(options.clients)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    drain = progress.add_task("rewards still to send", total=None)
    while scheduler.pending() and time.monotonic() < deadline:
        progress.update(drain, description=f"rewards still to send: {scheduler.pending()}")
        time.sleep(0.2)
    scheduler.close()
    reward_client.close()
    counts["rewards_sent"] = scheduler.sent
    counts["reward_errors"] = scheduler.failed
    return counts


def _wait_for_learning(service: Service, window_seconds: float, deadline: float) -> None:
    """Wait until every window has closed and the learner has published what it learned."""
    time.sleep(window_seconds)
    while time.monotonic() < deadline:
        joined = service.store.max_join_seq()
        pending = service.store.count("decisions") - joined
        if pending == 0 and service.learner.unpublished_events == 0 and service.learner.learned_through >= joined:
            return
        time.sleep(0.2)


def _true_values(
    simulator: Simulator, store: str, policies: dict[str, Policy], decided_from: float
) -> dict[str, float]:
    """Return each policy's true mean reward on the replayed events' requests."""
    totals = dict.fromkeys(policies, 0.0)
    count = 0
    for chunk in iter_store_log(store, decided_from=decided_from):
        for event in chunk.events:
            expected = simulator.expected_rewards(event.request, event.actions)
            for name, policy in policies.items():
                totals[name] += float(np.dot(policy.distribution(event.request, event.actions), expected))
            count += 1
    return {name: total / max(count, 1) for name, total in totals.items()}


def _summary_table(evaluation: Evaluation, truth: dict[str, float]) -> Table:
    table = Table(title=f"Replay on {evaluation.n_events} later events ({evaluation.level:.0%} bootstrap)")
    for column in ("policy", "estimator", "estimate", "interval", "true value"):
        table.add_column(column)
    for name, policy in evaluation.policies.items():
        for estimator in ("ips", "snips", "dr"):
            estimate = policy.estimate(estimator, "bootstrap", evaluation.level)
            table.add_row(
                name, estimator, f"{estimate.value:.4f}", f"[{estimate.ci_low:.4f}, {estimate.ci_high:.4f}]",
                f"{truth[name]:.4f}",
            )
    return table


def run_demo(options: DemoOptions, console: Console | None = None) -> dict[str, Any]:
    """Run the demo and return the summary written to ``report.json``."""
    console = console or Console(stderr=True)
    out_dir = options.out_dir
    if out_dir.exists():
        for name in ("demo.db", "demo.db-wal", "demo.db-shm"):
            (out_dir / name).unlink(missing_ok=True)
        shutil.rmtree(out_dir / "models", ignore_errors=True)
    out_dir.mkdir(parents=True, exist_ok=True)
    store = str(out_dir / "demo.db")
    window_seconds = options.window_days * options.day_seconds

    config = load_config(
        None,
        {
            "service.port": 0,
            "store.path": store,
            "rewards.window_seconds": window_seconds,
            "learner.join_interval_seconds": 0.2,
            "learner.snapshot_every_events": 500,
            "learner.registry_poll_seconds": 0.2,
            "policy.epsilon": options.epsilon,
            "policy.seed": options.seed,
        },
    )
    simulator = Simulator(
        seed=options.seed,
        n_members=options.members,
        time_scale=options.day_seconds / SECONDS_PER_DAY,
        slots=[config.catalog.slot(name) for name in options.slots],
    )
    service = Service(config)
    port = service.start()
    console.print(f"service on 127.0.0.1:{port}, store {store}")
    started = time.monotonic()
    result: dict[str, Any] = {"options": {k: str(v) for k, v in dataclasses.asdict(options).items()}}

    try:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        with Progress(*columns, console=console, transient=False) as progress:
            traffic = _drive_traffic(options, simulator, port, progress)
            learning = progress.add_task("closing reward windows and learning", total=None)
            _wait_for_learning(service, window_seconds, started + options.time_limit_seconds)
            progress.update(learning, completed=1, total=1)
        result["traffic"] = traffic
        online_head = service.registry.head()
        result["online_model"] = online_head.version if online_head is not None else None

        console.print("training a candidate on the earlier part of the log")
        boundary = split_time(store, options.train_fraction)
        candidate_config = dataclasses.replace(config.policy, epsilon=options.candidate_epsilon)
        trained = train_from_store(store, candidate_config, decided_before=boundary, passes=options.passes)
        record = service.registry.publish(
            trained.model_bytes, parent="", lineage=-1, source=SOURCE_IMPORT,
            events_learned=trained.events, vw_args=trained.vw_args,
        )
        live = _live_at(service, boundary)
        policies: dict[str, Policy] = {
            "bandit": VWPolicy(trained.model_bytes, record.version),
            "live": live,
            "rfm": RFMPolicy.from_toml(default_rules_path()),
            "uniform": UniformPolicy(),
        }

        console.print("replaying policies on the later part of the log")
        evaluation = evaluate_store(
            store, policies, replicates=options.replicates, seed=options.seed, decided_from=boundary
        )
        truth = _true_values(simulator, store, policies, boundary)
        gate = check_gate(evaluation, "bandit", "live", GateConfig(estimator="dr", min_lift=0.0, min_ess=50.0))
        console.print(_summary_table(evaluation, truth))

        promoted = "live"
        served_version = ""
        if gate.passed:
            service.registry.promote(record.version, {"gate": gate.to_dict()}, service.store.max_join_seq())
            deadline = time.monotonic() + 30.0
            while time.monotonic() < deadline and not _serves(service, record.version):
                time.sleep(0.1)
            served_version = _probe(port, simulator)
            promoted = "bandit"
            console.print(
                f"gate passed (DR lift {gate.lift.value:.4f}, lower bound {gate.lift.ci_low:.4f}): "
                f"promoted {record.version}; the service now answers with model {served_version}"
            )
        else:
            console.print("gate failed, the live model stays: " + "; ".join(gate.reasons))

        result["policies"] = {
            name: {
                "estimated": policy.estimate("dr").value,
                "ci_low": policy.estimate("dr").ci_low,
                "ci_high": policy.estimate("dr").ci_high,
                "true": truth[name],
                "estimator": "dr",
            }
            for name, policy in evaluation.policies.items()
        }
        result["promoted"] = promoted
        result["promoted_version"] = record.version if gate.passed else None
        result["served_model_after_promotion"] = served_version
        result["gate"] = gate.to_dict()
        result["trained_events"] = trained.events
        result["obd"] = _run_obd(options, console)
        result["seconds"] = time.monotonic() - started

        write_evaluation_report(
            evaluation, out_dir, title="loyalty-bandit demo", truth=truth,
            extra={"demo": {k: v for k, v in result.items() if k != "policies"}},
            notes=_notes(result),
        )
        write_json(out_dir / "summary.json", result)
        return result
    finally:
        service.stop()


def _live_at(service: Service, boundary: float) -> Policy:
    """Return the policy the service served at ``boundary`` (Unix time): the live incumbent.

    It was trained only on events joined before it was published, so none of
    the replayed events, which are decided at or after ``boundary``, trained it.
    """
    served = [record for record in service.registry.list_models() if record.lineage == 0]
    before = [record for record in served if record.created_at <= boundary]
    if not before:
        return UniformPolicy()
    record = before[-1]
    return VWPolicy(service.registry.load_bytes(record), record.version)


def _serves(service: Service, version: str) -> bool:
    current = service.registry.head()
    return current is not None and current.parent == version and service.policies.current().version == current.version


def _probe(port: int, simulator: Simulator) -> str:
    request: DecisionRequest = simulator.next_request()
    with DecisionClient(f"127.0.0.1:{port}") as client:
        return client.decide(request).model_version


def _run_obd(options: DemoOptions, console: Console) -> dict[str, Any] | None:
    obd_dir = find_obd_dir(options.obd_dir)
    if obd_dir is None:
        console.print(
            "Open Bandit Dataset not found: run 'loyalty-bandit datasets fetch obd' or pass --obd-dir; skipped"
        )
        return None
    from replay.obd import run_obd

    console.print(f"evaluating BTS on the Open Bandit Dataset in {obd_dir}")
    obd = run_obd(obd_dir, "all", seed=options.seed)
    estimates = obd["estimates"]
    table = Table(title=f"Open Bandit Dataset, campaign all: BTS on-policy click rate {obd['on_policy_value']:.5f}")
    for column in ("estimator", "estimate", "interval", "relative error"):
        table.add_column(column)
    for name, estimate in estimates.items():
        table.add_row(
            name, f"{estimate['value']:.5f}", f"[{estimate['ci_low']:.5f}, {estimate['ci_high']:.5f}]",
            f"{obd['relative_error'][name]:.3f}",
        )
    console.print(table)
    return obd


def _notes(result: dict[str, Any]) -> list[str]:
    traffic = result.get("traffic", {})
    lines = [
        "## Run",
        f"{traffic.get('decided', 0)} decisions, {traffic.get('rewards_sent', 0)} rewards sent, "
        f"{traffic.get('rewards_after_window', 0)} outcomes fell after their reward window, "
        f"{traffic.get('errors', 0)} failed calls. Promoted: {result.get('promoted')}.",
    ]
    obd = result.get("obd")
    if obd:
        lines += [
            "## Open Bandit Dataset",
            f"BTS on-policy click rate {obd['on_policy_value']:.5f}; estimates from the uniform log: "
            + ", ".join(f"{name} {value['value']:.5f}" for name, value in obd["estimates"].items()),
        ]
    return lines
