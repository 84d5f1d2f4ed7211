"""``loyalty-bandit demo``: the whole loop on simulated and real data.

1. Start the service on a free loopback port with a fresh store.
2. Drive simulated members through gRPC clients at a fixed rate, and send
   each reward after its time-compressed delay. A learner beside the service
   trains online, and the service follows its snapshots.
3. Freeze the model for the rest of the traffic, the evaluation phase, and
   replay on it: the frozen live model, the same model with less exploration
   (the candidate), the RFM rules and uniform random, each beside its true
   value from the simulator.
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
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from bandit.client import DecisionClient
from bandit.config import load_config
from bandit.domain import DecisionRequest, JointAction
from bandit.engine import PolicyHolder
from bandit.learner import Learner
from bandit.policy_api import Policy
from bandit.service.server import Service
from bandit.simulator import Simulator
from bandit.store.event_store import EventStore
from bandit.store.registry import SOURCE_IMPORT, ModelRegistry
from bandit.vw_policy import UniformPolicy as ColdStartPolicy
from bandit.vw_policy import VWPolicy, reconfigure_model
from loyalty_bandit.datasets import find_obd_dir
from replay.evaluate import Evaluation, evaluate_store
from replay.gate import GateConfig, check_gate
from replay.policies.baselines import UniformPolicy
from replay.policies.rfm import RFMPolicy, default_rules_path
from replay.report import write_evaluation_report, write_json
from replay.service_log import iter_store_log

logger = logging.getLogger(__name__)

SECONDS_PER_DAY = 86400.0

LOW_ESS = 200.0
"""Effective sample size below which the demo marks an estimate as unreliable (a rule of thumb)."""

POLICY_DESCRIPTIONS = {
    "learned": "the candidate: the live model's weights with lower exploration",
    "live": "the model the service served, frozen, during the evaluation phase",
    "rfm": "RFM segment rules (bandit/data/rfm_rules.toml), what loyalty programs run today",
    "uniform": "uniform random over the eligible triples",
}


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
    split_fraction: float = 0.6
    """Share of the requests served while the model learns; the rest are served frozen and replayed."""
    replicates: int = 300
    epsilon: float = 0.4
    """Exploration of the online model that serves the traffic."""
    candidate_epsilon: float = 0.05
    """Exploration of the candidate: the live model's weights with less exploration."""
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
    options: DemoOptions, simulator: Simulator, port: int, progress: Progress, requests: int, description: str
) -> dict[str, int]:
    """Send ``requests`` Decide calls at ``options.rate`` from several clients, then the last rewards."""
    lock = threading.Lock()
    next_index = itertools.count()
    counts = {"decided": 0, "errors": 0, "rewards_scheduled": 0, "rewards_after_window": 0}
    window = options.window_days * options.day_seconds
    start = time.monotonic()
    deadline = start + options.time_limit_seconds
    task = progress.add_task(description, total=requests)
    reward_client = DecisionClient(f"127.0.0.1:{port}")
    scheduler = RewardScheduler(reward_client)

    def client_loop() -> None:
        with DecisionClient(f"127.0.0.1:{port}") as client:
            while True:
                index = next(next_index)
                if index >= requests or time.monotonic() > deadline:
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
                # One generator per request makes each outcome a function of the seed, the
                # request and the served action alone, whatever order the clients run in.
                rng = np.random.default_rng([options.seed, zlib.crc32(request.request_id.encode())])
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

    waiting = scheduler.pending()
    drain = progress.add_task("sending the last delayed rewards", total=max(waiting, 1))
    while scheduler.pending() and time.monotonic() < deadline:
        progress.update(drain, completed=waiting - scheduler.pending())
        time.sleep(0.2)
    progress.update(drain, completed=max(waiting, 1))
    scheduler.close()
    reward_client.close()
    counts["rewards_sent"] = scheduler.sent
    counts["reward_errors"] = scheduler.failed
    return counts


def _wait_for_windows(service: Service, window_seconds: float, deadline: float) -> None:
    """Wait until every decision's reward window has closed, then join them all."""
    time.sleep(window_seconds)
    while time.monotonic() < deadline:
        service.store.join_closed(time.time()).result(timeout=60)
        if service.store.max_join_seq() >= service.store.count("decisions"):
            return
        time.sleep(0.2)


def _wait_for_learner(learner: Learner, service: Service, window_seconds: float, deadline: float) -> None:
    """Wait until the learner has learned every decision so far, then stop it and wait for the service to serve it.

    Join sequence numbers count joined decisions from 1, so the learner has
    seen every decision once its mark reaches the number of decisions.
    """
    time.sleep(window_seconds)
    while time.monotonic() < deadline and learner.learned_through < service.store.count("decisions"):
        time.sleep(0.2)
    learner.stop()
    head = service.registry.head()
    while time.monotonic() < deadline and head is not None and service.policies.current().version != head.version:
        time.sleep(0.1)


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
    table = Table(
        title=f"Replay on {evaluation.n_events} evaluation-phase events ({evaluation.level:.0%} bootstrap)",
        caption=f"ESS: effective sample size of the importance weights. Below {LOW_ESS:.0f}, an interval "
        "can miss the true value: rewards are heavy-tailed and rarely logged for that policy's choices.",
    )
    for column in ("policy", "estimator", "estimate", "interval", "true value", "ESS"):
        table.add_column(column)
    for name, policy in evaluation.policies.items():
        for estimator in ("ips", "snips", "dr"):
            estimate = policy.estimate(estimator, "bootstrap", evaluation.level)
            ess = estimate.diagnostics.ess if estimate.diagnostics is not None else float("nan")
            table.add_row(
                name, estimator, f"{estimate.value:.4f}", f"[{estimate.ci_low:.4f}, {estimate.ci_high:.4f}]",
                f"{truth[name]:.4f}", f"{ess:.0f}" + (" (low)" if ess < LOW_ESS else ""),
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

    settings = {
        "service.port": 0,
        "store.path": store,
        "rewards.window_seconds": window_seconds,
        "learner.join_interval_seconds": 0.2,
        "learner.snapshot_every_events": 500,
        "learner.registry_poll_seconds": 0.2,
        "policy.epsilon": options.epsilon,
        "policy.seed": options.seed,
    }
    # The service only serves. A learner beside it, as 'loyalty-bandit learn' runs, trains during
    # the learning phase and then stops, so the model stays frozen for the evaluation phase.
    config = load_config(None, {**settings, "learner.enabled": False})
    learner_config = load_config(None, settings)
    simulator = Simulator(
        seed=options.seed,
        n_members=options.members,
        time_scale=options.day_seconds / SECONDS_PER_DAY,
        slots=[config.catalog.slot(name) for name in options.slots],
    )
    service = Service(config)
    port = service.start()
    learner_store = EventStore(
        store, window_seconds=window_seconds, default_reward=0.0, aggregation=config.rewards.aggregation
    )
    learner_registry = ModelRegistry(store)
    learner = Learner(learner_config, learner_store, learner_registry, PolicyHolder(ColdStartPolicy()))
    learner.restore()
    learner.start()
    console.print(f"service on 127.0.0.1:{port}, store {store}")
    started = time.monotonic()
    result: dict[str, Any] = {"options": _json_options(options)}

    try:
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
        deadline = started + options.time_limit_seconds
        learning_requests = int(options.requests * options.split_fraction)
        with Progress(*columns, console=console, transient=False) as progress:
            learning_traffic = _drive_traffic(
                options, simulator, port, progress, learning_requests, "decisions, model learning online"
            )
            learning = progress.add_task("closing reward windows, learning the last events", total=1)
            _wait_for_learner(learner, service, window_seconds, deadline)
            progress.update(learning, completed=1)

            live_record = service.registry.head()
            boundary = time.time()
            evaluation_traffic = _drive_traffic(
                options, simulator, port, progress, options.requests - learning_requests,
                "decisions, model frozen for evaluation",
            )
            closing = progress.add_task("closing reward windows", total=1)
            _wait_for_windows(service, window_seconds, deadline)
            progress.update(closing, completed=1)
        result["traffic"] = {
            key: learning_traffic[key] + evaluation_traffic[key] for key in learning_traffic
        }
        result["live_model"] = live_record.version if live_record is not None else None
        policies: dict[str, Policy] = {}
        candidate_record = None
        if live_record is not None:
            live_bytes = service.registry.load_bytes(live_record)
            learned_bytes = reconfigure_model(live_bytes, ["--epsilon", str(options.candidate_epsilon)])
            candidate_record = service.registry.publish(
                learned_bytes, parent=live_record.version, lineage=-1, source=SOURCE_IMPORT,
                events_learned=live_record.events_learned, vw_args=live_record.vw_args,
            )
            policies["learned"] = VWPolicy(learned_bytes, candidate_record.version)
            policies["live"] = VWPolicy(live_bytes, live_record.version)
        else:
            console.print("no model was learned before the evaluation phase; replaying the baselines only")
        policies["rfm"] = RFMPolicy.from_toml(default_rules_path())
        policies["uniform"] = UniformPolicy()

        console.print(f"replaying policies on the {options.requests - learning_requests} frozen-phase decisions")
        evaluation = evaluate_store(
            store, policies, replicates=options.replicates, seed=options.seed, decided_from=boundary
        )
        truth = _true_values(simulator, store, policies, boundary)
        console.print(_summary_table(evaluation, truth))

        gate = None
        served_version = ""
        if candidate_record is not None:
            gate = check_gate(evaluation, "learned", "live", GateConfig(estimator="dr", min_lift=0.0, min_ess=50.0))
            if gate.passed:
                service.registry.promote(
                    candidate_record.version, {"gate": gate.to_dict()}, service.store.max_join_seq()
                )
                deadline = time.monotonic() + 30.0
                while time.monotonic() < deadline and not _serves(service, candidate_record.version):
                    time.sleep(0.1)
                served_version = _probe(port, simulator)
                console.print(
                    f"gate passed (DR lift {gate.lift.value:.4f}, lower bound {gate.lift.ci_low:.4f}): "
                    f"promoted {candidate_record.version}; the service now answers with model {served_version}"
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
                "ess": policy.accumulators["dr"].diagnostics().ess,
                "description": POLICY_DESCRIPTIONS[name],
            }
            for name, policy in evaluation.policies.items()
        }
        promoted = gate is not None and gate.passed
        result["promoted"] = "learned" if promoted else "none"
        result["promoted_version"] = candidate_record.version if promoted and candidate_record else None
        result["served_model_after_promotion"] = served_version
        result["gate"] = gate.to_dict() if gate is not None else None
        result["obd"] = _run_obd(options, console)
        result["seconds"] = time.monotonic() - started

        write_evaluation_report(
            evaluation, out_dir, title="loyalty-bandit demo", truth=truth,
            extra={"demo": {k: v for k, v in result.items() if k != "policies"}},
            notes=_notes(result),
            descriptions=POLICY_DESCRIPTIONS,
        )
        write_json(out_dir / "summary.json", result)
        return result
    finally:
        learner.stop()
        learner_store.close()
        learner_registry.close()
        service.stop()


def _json_options(options: DemoOptions) -> dict[str, Any]:
    values = dataclasses.asdict(options)
    return {key: str(value) if isinstance(value, Path) else value for key, value in values.items()}


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
        f"{traffic.get('errors', 0)} failed calls. Runs with the same seed share the simulated "
        "members and request stream; the sampled decisions and model snapshots differ with "
        "thread timing, so their numbers differ a little.",
        "## Promotion gate",
    ]
    gate = result.get("gate")
    if gate is None:
        lines.append("No model was live at the split, so no candidate was tested.")
    else:
        lift = gate["lift"]
        verdict = (
            f"Passed: promoted {result['promoted_version']}; the service then answered with model "
            f"{result['served_model_after_promotion']}."
            if gate["passed"]
            else "Failed, no promotion: " + "; ".join(gate["reasons"]) + "."
        )
        lines.append(
            f"DR lift of `learned` over `live`: {lift['value']:.4g} "
            f"[{lift['ci_low']:.4g}, {lift['ci_high']:.4g}], effective sample size {gate['ess']:.1f}. {verdict}"
        )
    obd = result.get("obd")
    if obd:
        lines += [
            "## Open Bandit Dataset",
            f"BTS on-policy click rate {obd['on_policy_value']:.5f}; estimates from the uniform log: "
            + ", ".join(f"{name} {value['value']:.5f}" for name, value in obd["estimates"].items()),
        ]
    return lines
