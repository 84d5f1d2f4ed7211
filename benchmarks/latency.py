"""Decide latency and throughput of the real service, against a no-op gRPC floor.

The service runs as a subprocess (``serve_service.py``) on
127.0.0.1 with a store in a temporary folder, durable logging on, and a VW
model trained beforehand, so every decision scores all triples with VW. The
floor is ``noop_server.py``: the same grpcio server, thread-pool size and
message sizes, doing nothing. The client runs in this process.

    python benchmarks/latency.py --json latency.json --learner-busy

Runs, for the floor and then the service: closed loop at each concurrency,
open loop at a fixed rate (by default half the floor's highest closed-loop
rate), and DecideStream with each stream count. The service also gets an open
loop at half its own highest rate. With ``--learner-busy``, Decide is
measured while the learner trains, once with the learner in the serving
process and once in a ``loyalty-bandit learn`` process of its own. Last comes
the scale-out layout: two serving processes on one port (SO_REUSEPORT) and one
store, with the learner in a third process. Each run records the servers' CPU
time per call, read from /proc, which is steadier than latency on a shared
machine.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sqlite3
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import numpy as np
import vowpal_wabbit_next as vw
from benchlib import ServerProcess, cpu_seconds, environment, write_json
from loadgen import DECIDE, REWARD, RequestBodies, closed_loop, open_channel, open_loop, stream_run
from workload import constant_response, context_feature_count, joined_events, realistic_request

from bandit.config import ServiceConfig, load_config
from bandit.features import labelled_lines
from bandit.proto import decision_pb2 as pb
from bandit.store.registry import ModelRegistry

HERE = Path(__file__).resolve().parent

TARGET_RATIO_P50 = 1.3
TARGET_RATIO_P99 = 2.0
TARGET_STREAM_RPS = 5000.0

BUSY_WINDOW_SECONDS = 1.0
"""Reward window of the --learner-busy runs: every decision joins, and is learned, one second after it is made."""

LEARNER_READY = re.compile(r"learning from ")
"""The line ``loyalty-bandit learn`` prints once its learner thread runs."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="Write the results to this JSON file.")
    parser.add_argument("--requests", type=int, default=2000, help="Calls per closed- or open-loop run.")
    parser.add_argument("--concurrency", default="1,4", help="Client threads of the closed-loop runs, comma-separated.")
    parser.add_argument("--duration", type=float, default=20.0, help="Maximum time of one run, in seconds.")
    parser.add_argument(
        "--rate", type=float, default=0.0,
        help="Open-loop rate in requests per second. Default: half the floor's highest closed-loop rate.",
    )
    parser.add_argument("--stream-requests", type=int, default=5000, help="Messages per streaming run, in total.")
    parser.add_argument("--streams", default="1,4", help="Concurrent DecideStream calls of the streaming runs.")
    parser.add_argument("--warmup", type=int, default=300, help="Unmeasured calls sent to each server first.")
    parser.add_argument("--offers", type=int, default=16, help="Offers per request.")
    parser.add_argument("--channels", type=int, default=4, help="Channels per request, from the default catalog.")
    parser.add_argument("--slots", type=int, default=6, help="Timing slots per request, from the default catalog.")
    parser.add_argument("--members", type=int, default=64, help="Distinct member contexts cycled through.")
    parser.add_argument(
        "--workers", type=int, default=ServiceConfig().max_workers,
        help="Server threads, for the service and the floor alike.",
    )
    parser.add_argument("--seed-events", type=int, default=300, help="Events the model learns before the run.")
    parser.add_argument(
        "--learner-busy", action="store_true",
        help="Also measure with a 1 s reward window and a reward stream, so the learner trains during the run: "
        "once in the serving process and once in a separate 'loyalty-bandit learn' process.",
    )
    parser.add_argument("--reward-rate", type=float, default=50.0, help="Decide+Reward pairs per second sent by "
                        "the reward stream of --learner-busy.")
    parser.add_argument(
        "--scale-out", action=argparse.BooleanOptionalAction, default=True,
        help="Also measure two serving processes on one port and one store, with the learner in a third process.",
    )
    parser.add_argument("--call-timeout", type=float, default=10.0, help="Deadline of each call, in seconds.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the synthetic requests and events.")
    args = parser.parse_args(argv)

    args.concurrency = _positive_list("--concurrency", args.concurrency)
    args.streams = _positive_list("--streams", args.streams)
    for name in ("requests", "stream_requests", "offers", "channels", "slots", "members", "workers"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} is {getattr(args, name)}; use 1 or more")
    if args.duration <= 0:
        parser.error(f"--duration is {args.duration}; use a positive number of seconds")
    return args


def _positive_list(option: str, text: str) -> list[int]:
    try:
        values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise SystemExit(f"{option} is {text!r}; use comma-separated integers such as 1,4") from None
    if not values or min(values) < 1:
        raise SystemExit(f"{option} is {text!r}; use integers of 1 or more")
    return values


# Servers.


SERVICE = "service"
LEARNER = "learner"
FLOOR = "floor"


@dataclasses.dataclass
class Server:
    """A started subprocess, its role (``service``, ``learner`` or ``floor``) and where to reach it."""

    name: str
    process: ServerProcess
    role: str
    store_path: Path | None = None

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.process.port}"


def serving_addresses(servers: list[Server]) -> list[str]:
    """Return each distinct address that serves calls; processes sharing a port give one address."""
    return list(dict.fromkeys(server.address for server in servers if server.role != LEARNER))


def write_service_config(
    path: Path,
    store_path: Path,
    workers: int,
    *,
    port: int = 0,
    reuse_port: bool = False,
    learner_enabled: bool = True,
    window_seconds: float | None = None,
) -> None:
    lines = [
        "[service]",
        'host = "127.0.0.1"',
        f"port = {port}",
        f"max_workers = {workers}",
        f"reuse_port = {json.dumps(reuse_port)}",
        "[store]",
        f"path = {json.dumps(str(store_path))}",
        "[learner]",
        f"enabled = {json.dumps(learner_enabled)}",
    ]
    if window_seconds is not None:
        lines += ["[rewards]", f"window_seconds = {window_seconds}"]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def seed_model(store_path: Path, messages: list[pb.DecideRequest], events: int, seed: int) -> str:
    """Train a model on synthetic events and publish it where the service will load it."""
    config = load_config(None, {"store.path": str(store_path)})
    vw_args = config.policy.vw_args()
    workspace = vw.Workspace(vw_args)
    parser = vw.TextFormatParser(workspace)
    for event in joined_events(messages, events, config, np.random.default_rng(seed)):
        lines = labelled_lines(event.request, event.actions, event.chosen_index, -event.reward, event.probability)
        workspace.learn_one([parser.parse_line(line) for line in lines])

    store_path.parent.mkdir(parents=True, exist_ok=True)
    registry = ModelRegistry(str(store_path))
    try:
        record = registry.publish(
            workspace.serialize(), parent="", lineage=0, events_learned=events, vw_args=tuple(vw_args)
        )
    finally:
        registry.close()
    return record.version


def seeded_store(workdir: Path, name: str, messages: list[pb.DecideRequest], args: argparse.Namespace) -> Path:
    """Create ``workdir/name`` with a store that contains a trained model; return the store's path."""
    folder = workdir / name
    folder.mkdir(parents=True)
    store_path = folder / "events.db"
    seed_model(store_path, messages, args.seed_events, args.seed)
    return store_path


def launch_service(store_path: Path, name: str, args: argparse.Namespace, **config: Any) -> Server:
    """Start ``serve_service.py`` on ``store_path``; ``config`` goes to ``write_service_config``."""
    config_path = store_path.parent / f"{name}.toml"
    write_service_config(config_path, store_path, args.workers, **config)
    command = [sys.executable, str(HERE / "serve_service.py"), str(config_path)]
    return Server(name, ServerProcess(command, store_path.parent / f"{name}.log"), SERVICE, store_path)


def launch_learner(store_path: Path, name: str, args: argparse.Namespace, **config: Any) -> Server:
    """Start ``loyalty-bandit learn`` on ``store_path``, the joiner and learner without a server."""
    config_path = store_path.parent / f"{name}.toml"
    write_service_config(config_path, store_path, args.workers, **config)
    command = [sys.executable, "-m", "loyalty_bandit.cli", "learn", "--config", str(config_path)]
    process = ServerProcess(command, store_path.parent / f"{name}.log", ready_pattern=LEARNER_READY)
    return Server(name, process, LEARNER, store_path)


def start_service(workdir: Path, name: str, messages: list[pb.DecideRequest], args: argparse.Namespace) -> Server:
    """Start one process that serves and learns, on a new store with a trained model."""
    return launch_service(seeded_store(workdir, name, messages, args), name, args)


def start_floor(workdir: Path, message: pb.DecideRequest, args: argparse.Namespace) -> tuple[Server, int]:
    folder = workdir / "floor"
    folder.mkdir(parents=True)
    response = constant_response(message)
    response_path = folder / "response.bin"
    response_path.write_bytes(response.SerializeToString())
    command = [
        sys.executable, str(HERE / "noop_server.py"),
        "--response", str(response_path), "--workers", str(args.workers),
    ]
    return Server("floor", ServerProcess(command, folder / "server.log"), FLOOR), response.ByteSize()


def stop_all(servers: list[Server]) -> None:
    for server in servers:
        server.process.stop()
    servers.clear()


# Runs.


def measured(servers: list[Server], run: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """Run one load and add the servers' CPU time per successful call.

    ``server_cpu_ms_per_call`` divides the CPU time of all the processes by
    the client's successful calls. With more than one process, ``processes``
    also lists each one's CPU time, and ``calls`` as counted by a serving
    process itself (all methods, including calls from other clients such as
    the reward stream). A serving process's ``cpu_ms_per_call`` is per call
    it counted. The learner's is per successful call of the client, the CPU
    it adds to each call of the layout.
    """
    several = len(servers) > 1
    # The counters are read outside the CPU window, so that handling SIGUSR1 does not count as work.
    counters_before = [read_counters(server) for server in servers] if several else []
    cpu_before = [cpu_seconds(server.process.pid) for server in servers]
    result = run()
    cpu_used = [cpu_seconds(server.process.pid) - start for server, start in zip(servers, cpu_before, strict=True)]
    counters_after = [read_counters(server) for server in servers] if several else []

    used = sum(cpu_used)
    result["server_cpu_s"] = used
    result["server_cpu_ms_per_call"] = 1000.0 * used / result["count"] if result["count"] else None
    if several:
        result["processes"] = [
            process_usage(server, cpu, before, after, result["count"])
            for server, cpu, before, after in zip(servers, cpu_used, counters_before, counters_after, strict=True)
        ]
        served = [entry["calls"] for entry in result["processes"] if entry["role"] == SERVICE]
        # Share of the calls served by the busiest serving process: 1.0 means one process got every connection.
        result["busiest_process_share"] = max(served) / sum(served) if len(served) > 1 and sum(served) else None
    return result


def read_counters(server: Server) -> dict[str, int] | None:
    """Return the call counters of a ``serve_service.py`` process, or None for the other processes."""
    return server.process.read_counters() if server.role == SERVICE else None


def process_usage(
    server: Server, cpu_s: float, before: dict[str, int] | None, after: dict[str, int] | None, client_calls: int
) -> dict[str, Any]:
    """Describe one process's share of a run: its CPU time and the calls it served."""
    entry: dict[str, Any] = {"name": server.name, "role": server.role, "pid": server.process.pid, "cpu_s": cpu_s}
    if before is None or after is None:
        entry["calls"] = None
        entry["cpu_ms_per_call"] = 1000.0 * cpu_s / client_calls if client_calls else None
        return entry
    by_method = {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key, 0)}
    calls = sum(by_method.values())
    entry["calls"] = calls
    entry["calls_by_method"] = by_method
    entry["cpu_ms_per_call"] = 1000.0 * cpu_s / calls if calls else None
    return entry


def check_decide(address: str, bodies: RequestBodies, timeout_s: float) -> pb.DecideResponse:
    """Send one Decide with a parsed response, to check what the server returns."""
    channel = open_channel(address)
    try:
        call = channel.unary_unary(DECIDE, response_deserializer=pb.DecideResponse.FromString)
        response: pb.DecideResponse = call(bodies.wire(f"check-{uuid.uuid4().hex}", 0), timeout=timeout_s)
        return response
    finally:
        channel.close()


def warm_up(addresses: list[str], bodies: RequestBodies, args: argparse.Namespace, tag: str) -> dict[str, Any]:
    return closed_loop(
        addresses, bodies, concurrency=max(args.concurrency), requests=args.warmup,
        duration_s=args.duration, tag=f"{tag}-warmup", call_timeout_s=args.call_timeout,
    )


def standard_runs(
    servers: list[Server], bodies: RequestBodies, args: argparse.Namespace, tag: str, rate: float | None
) -> dict[str, Any]:
    """Run the closed-loop runs, then the open loop at ``rate`` (or at half the best closed-loop rate)."""
    addresses = serving_addresses(servers)
    runs: dict[str, Any] = {"warmup": warm_up(addresses, bodies, args, tag)}
    for concurrency in args.concurrency:
        runs[f"closed_c{concurrency}"] = measured(servers, lambda c=concurrency: closed_loop(
            addresses, bodies, concurrency=c, requests=args.requests, duration_s=args.duration,
            tag=f"{tag}-c{c}", call_timeout_s=args.call_timeout,
        ))

    max_rps = max(runs[f"closed_c{c}"]["rps"] for c in args.concurrency)
    open_rate = rate if rate is not None else max_rps / 2
    runs["max_closed_rps"] = max_rps
    runs["open"] = measured(servers, lambda: open_loop(
        addresses, bodies, rate=open_rate, requests=args.requests, duration_s=args.duration,
        tag=f"{tag}-open", call_timeout_s=args.call_timeout,
    ))
    return runs


def stream_runs(servers: list[Server], bodies: RequestBodies, args: argparse.Namespace, tag: str) -> dict[str, Any]:
    addresses = serving_addresses(servers)
    runs: dict[str, Any] = {}
    for streams in args.streams:
        runs[f"stream_s{streams}"] = measured(servers, lambda s=streams: stream_run(
            addresses, bodies, streams=s, requests=args.stream_requests, duration_s=args.duration,
            tag=f"{tag}-s{s}", call_timeout_s=args.call_timeout,
        ))
    return runs


class RewardStream:
    """A background thread that sends Decide then Reward, at a fixed rate, until stopped."""

    def __init__(self, address: str, bodies: RequestBodies, rate: float, deadline_s: float, timeout_s: float) -> None:
        self.decides = 0
        self.rewards = 0
        self.errors = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=self._run, args=(address, bodies, rate, deadline_s, timeout_s), daemon=True
        )
        self._thread.start()

    def _run(self, address: str, bodies: RequestBodies, rate: float, deadline_s: float, timeout_s: float) -> None:
        channel = open_channel(address)
        decide = channel.unary_unary(DECIDE, response_deserializer=pb.DecideResponse.FromString)
        reward = channel.unary_unary(
            REWARD, request_serializer=pb.RewardRequest.SerializeToString,
            response_deserializer=pb.RewardResponse.FromString,
        )
        rng = np.random.default_rng(1)
        deadline = time.monotonic() + deadline_s
        index = 0
        try:
            while not self._stop.is_set() and time.monotonic() < deadline:
                try:
                    response = decide(bodies.wire(f"reward-stream-{uuid.uuid4().hex}", index), timeout=timeout_s)
                    self.decides += 1
                    value = float(rng.random() < 0.3)
                    reward(pb.RewardRequest(event_id=response.event_id, value=value, outcome="redeemed"),
                           timeout=timeout_s)
                    self.rewards += 1
                except grpc.RpcError:
                    self.errors += 1
                index += 1
                self._stop.wait(1.0 / rate)
        finally:
            channel.close()

    def stop(self) -> dict[str, int]:
        self._stop.set()
        self._thread.join(timeout=30)
        return {"decides": self.decides, "rewards": self.rewards, "errors": self.errors}


def store_counts(store_path: Path) -> dict[str, int]:
    """Count joined decisions and published models in a stopped service's store."""
    connection = sqlite3.connect(f"file:{store_path}?mode=ro", uri=True)
    try:
        joined = connection.execute("SELECT COUNT(*) FROM decisions WHERE state = 'joined'").fetchone()[0]
        decisions = connection.execute("SELECT COUNT(*) FROM decisions").fetchone()[0]
        models = connection.execute("SELECT COUNT(*) FROM models").fetchone()[0]
    finally:
        connection.close()
    return {"decisions": int(decisions), "decisions_joined": int(joined), "models": int(models)}


def floor_phase(
    workdir: Path, messages: list[pb.DecideRequest], bodies: RequestBodies, args: argparse.Namespace,
    servers: list[Server],
) -> dict[str, Any]:
    """Measure the no-op server: its highest closed-loop rate fixes the open-loop rate of the service."""
    floor, floor_bytes = start_floor(workdir, messages[0], args)
    servers.append(floor)
    runs = standard_runs(servers, bodies, args, "floor", args.rate or None)
    runs.update(stream_runs(servers, bodies, args, "floor"))
    runs["response_bytes"] = floor_bytes
    stop_all(servers)
    return runs


def decide_phase(
    workdir: Path, messages: list[pb.DecideRequest], bodies: RequestBodies, args: argparse.Namespace,
    rate: float, servers: list[Server],
) -> dict[str, Any]:
    """Measure the service with a trained model, the learner idle (the default 7-day reward window)."""
    decide = start_service(workdir, "decide", messages, args)
    servers.append(decide)
    response = check_decide(decide.address, bodies, args.call_timeout)
    if response.policy != "vw-cb":
        print(f"warning: the service served policy {response.policy!r}, not the VW model", file=sys.stderr)
    runs = standard_runs(servers, bodies, args, "decide", rate)

    own_half = runs["max_closed_rps"] / 2
    runs["open_half_own_max"] = measured(servers, lambda: open_loop(
        [decide.address], bodies, rate=own_half, requests=args.requests, duration_s=args.duration,
        tag="decide-open-own", call_timeout_s=args.call_timeout,
    ))
    runs.update(stream_runs(servers, bodies, args, "decide"))
    runs["response"] = {
        "bytes": response.ByteSize(),
        "policy": response.policy,
        "model_version": response.model_version,
        "distribution_size": len(response.distribution),
    }
    stop_all(servers)
    return runs


def learner_busy_runs(
    workdir: Path,
    messages: list[pb.DecideRequest],
    bodies: RequestBodies,
    args: argparse.Namespace,
    rate: float,
    servers: list[Server],
    *,
    out_of_process: bool,
) -> dict[str, Any]:
    """Measure Decide while the learner trains on every decision, one second after it is made.

    With ``out_of_process``, the serving process runs with ``learner.enabled =
    false``. A ``loyalty-bandit learn`` process on the same store joins, learns
    and publishes, and the serving process loads each new snapshot from the
    registry. Otherwise one process serves and learns. The open loop runs at
    ``rate``, the rate of the quiet service's ``open_half_own_max`` run, so
    the runs can be compared.
    """
    name = "busy_out_of_process" if out_of_process else "busy"
    store_path = seeded_store(workdir, name, messages, args)
    busy = launch_service(
        store_path, "serve", args, window_seconds=BUSY_WINDOW_SECONDS, learner_enabled=not out_of_process
    )
    servers.append(busy)
    if out_of_process:
        servers.append(launch_learner(store_path, "learn", args, window_seconds=BUSY_WINDOW_SECONDS))

    runs: dict[str, Any] = {"learner": "own process" if out_of_process else "serving process"}
    stream = RewardStream(busy.address, bodies, args.reward_rate, 4 * args.duration + 60, args.call_timeout)
    try:
        runs["warmup"] = warm_up([busy.address], bodies, args, name)
        runs["learner_published"] = wait_for_new_model(busy.address, bodies, args)
        runs["closed_c1"] = measured(servers, lambda: closed_loop(
            [busy.address], bodies, concurrency=1, requests=args.requests, duration_s=args.duration,
            tag=f"{name}-c1", call_timeout_s=args.call_timeout,
        ))
        runs["open_half_own_max"] = measured(servers, lambda: open_loop(
            [busy.address], bodies, rate=rate, requests=args.requests, duration_s=args.duration,
            tag=f"{name}-open", call_timeout_s=args.call_timeout,
        ))
    finally:
        runs["reward_stream"] = stream.stop()
    stop_all(servers)
    runs["store_after"] = store_counts(store_path)
    return runs


def wait_for_new_model(address: str, bodies: RequestBodies, args: argparse.Namespace) -> dict[str, Any]:
    """Wait until the service serves a model the learner published, so the learner is known to run.

    Gives up after the shorter of ``--duration`` and 15 s; the runs go on either way.
    """
    first = check_decide(address, bodies, args.call_timeout).model_version
    start = time.monotonic()
    deadline = start + min(args.duration, 15.0)
    version = first
    while version == first and time.monotonic() < deadline:
        time.sleep(0.25)
        version = check_decide(address, bodies, args.call_timeout).model_version
    return {"seeded_version": first, "served_version": version, "waited_s": time.monotonic() - start}


def warm_up_every_process(
    servers: list[Server], address: str, bodies: RequestBodies, args: argparse.Namespace, max_rounds: int = 5
) -> tuple[dict[str, Any], int]:
    """Warm up through the shared port until each serving process has served warm-up calls, or ``max_rounds`` times.

    The kernel picks the process per connection, so one round can miss a
    process. Returns the last round's result and the number of rounds.
    """
    serving = [server for server in servers if server.role == SERVICE]
    before = [sum(server.process.read_counters().values()) for server in serving]
    rounds = 0
    while True:
        rounds += 1
        result = warm_up([address], bodies, args, f"scale-out-{rounds}")
        after = [sum(server.process.read_counters().values()) for server in serving]
        if all(now > start for now, start in zip(after, before, strict=True)) or rounds >= max_rounds:
            return result, rounds


def scale_out_runs(
    workdir: Path,
    messages: list[pb.DecideRequest],
    bodies: RequestBodies,
    args: argparse.Namespace,
    servers: list[Server],
) -> dict[str, Any]:
    """Measure two serving processes on one port and one store, with the learner in a third process.

    Both serving processes set SO_REUSEPORT before they bind. The first binds
    a free port and the second binds that same port. The kernel then hands
    each new connection to one of them, so each client thread and each stream
    opens its own channel, and ``busiest_process_share`` shows how the
    connections fell. The learner is idle as in ``decide_runs``, because the
    reward window is the default 7 days.
    """
    store_path = seeded_store(workdir, "scale_out", messages, args)
    first = launch_service(store_path, "serve0", args, reuse_port=True, learner_enabled=False)
    servers.append(first)
    second = launch_service(
        store_path, "serve1", args, port=first.process.port, reuse_port=True, learner_enabled=False
    )
    servers.append(second)
    if second.process.port != first.process.port:
        raise RuntimeError(f"the second serving process bound port {second.process.port}, "
                           f"not the first one's port {first.process.port}")
    servers.append(launch_learner(store_path, "learn", args))

    address = first.address
    response = check_decide(address, bodies, args.call_timeout)
    if response.policy != "vw-cb":
        print(f"warning: the scale-out service served policy {response.policy!r}, not the VW model",
              file=sys.stderr)
    runs: dict[str, Any] = {
        "port": first.process.port,
        "layout": [{"name": server.name, "role": server.role, "pid": server.process.pid} for server in servers],
        "response_policy": response.policy,
    }
    runs["warmup"], runs["warmup_rounds"] = warm_up_every_process(servers, address, bodies, args)
    for concurrency in args.concurrency:
        runs[f"closed_c{concurrency}"] = measured(servers, lambda c=concurrency: closed_loop(
            [address], bodies, concurrency=c, requests=args.requests, duration_s=args.duration,
            tag=f"scale-out-c{c}", call_timeout_s=args.call_timeout,
        ))
    runs["max_closed_rps"] = max(runs[f"closed_c{c}"]["rps"] for c in args.concurrency)
    runs.update(stream_runs(servers, bodies, args, "scale-out"))
    stop_all(servers)
    runs["store_after"] = store_counts(store_path)
    return runs


# Report.


def _ratio(numerator: float | None, denominator: float | None) -> float | None:
    if numerator is None or not denominator:
        return None
    return numerator / denominator


def headline(floor: dict[str, Any], decide: dict[str, Any]) -> dict[str, Any]:
    """Pick the numbers the targets are stated in, from the detailed runs."""
    c1_floor = floor.get("closed_c1", {})
    c1_decide = decide.get("closed_c1", {})
    summary = {
        "decide": {
            "p50_ms": decide["open"]["p50_ms"],
            "p99_ms": decide["open"]["p99_ms"],
            "rps": decide["max_closed_rps"],
            "open_rate": decide["open"]["target_rate"],
            "open_overloaded": decide["open"]["overloaded"],
            "p50_ms_closed_c1": c1_decide.get("p50_ms"),
        },
        "floor": {
            "p50_ms": floor["open"]["p50_ms"],
            "p99_ms": floor["open"]["p99_ms"],
            "rps": floor["max_closed_rps"],
            "open_rate": floor["open"]["target_rate"],
            "open_overloaded": floor["open"]["overloaded"],
            "p50_ms_closed_c1": c1_floor.get("p50_ms"),
        },
        "ratio_p50": _ratio(decide["open"]["p50_ms"], floor["open"]["p50_ms"]),
        "ratio_p99": _ratio(decide["open"]["p99_ms"], floor["open"]["p99_ms"]),
        "ratio_p50_closed_c1": _ratio(c1_decide.get("p50_ms"), c1_floor.get("p50_ms")),
        "ratio_rps": _ratio(decide["max_closed_rps"], floor["max_closed_rps"]),
    }
    stream_rates = {name: run["rps"] for name, run in decide.items() if name.startswith("stream_s")}
    best = max(stream_rates, key=lambda name: stream_rates[name])
    summary["stream"] = {"rps": stream_rates[best], "run": best, "p99_ms": decide[best]["p99_ms"]}
    summary["targets"] = {
        "ratio_p50_max": TARGET_RATIO_P50,
        "ratio_p50_met": summary["ratio_p50"] is not None and summary["ratio_p50"] <= TARGET_RATIO_P50,
        "ratio_p99_max": TARGET_RATIO_P99,
        "ratio_p99_met": summary["ratio_p99"] is not None and summary["ratio_p99"] <= TARGET_RATIO_P99,
        "stream_rps_min": TARGET_STREAM_RPS,
        "stream_rps_met": summary["stream"]["rps"] >= TARGET_STREAM_RPS,
    }
    summary["headline_definition"] = (
        "p50_ms and p99_ms: open loop, both servers at the same rate (half the floor's highest closed-loop "
        "rate unless --rate is given), latency from the scheduled send time. rps: highest closed-loop rate. "
        "stream.rps: best DecideStream run of the service."
    )
    return summary


def scale_out_ratios(scale_out: dict[str, Any], decide: dict[str, Any]) -> dict[str, float | None]:
    """Divide each scale-out rate by the one-process rate of the run with the same name."""
    ratios = {
        name: _ratio(run["rps"], decide[name]["rps"])
        for name, run in scale_out.items()
        if name.startswith(("closed_c", "stream_s")) and name in decide
    }
    ratios["max_closed"] = _ratio(scale_out["max_closed_rps"], decide["max_closed_rps"])
    return ratios


def learner_placement(in_process: dict[str, Any], out_of_process: dict[str, Any]) -> dict[str, Any]:
    """Compare Decide latency with the learner in the serving process and in a process of its own."""
    comparison: dict[str, Any] = {}
    for run in ("closed_c1", "open_half_own_max"):
        comparison[run] = {
            key: {
                "in_process": in_process[run][key],
                "out_of_process": out_of_process[run][key],
                "ratio_out_over_in": _ratio(out_of_process[run][key], in_process[run][key]),
            }
            for key in ("p50_ms", "p99_ms", "max_ms")
        }
    comparison["models_published"] = {
        "in_process": in_process["store_after"]["models"],
        "out_of_process": out_of_process["store_after"]["models"],
    }
    return comparison


def _cell(value: float | None, width: int = 8) -> str:
    return f"{value:>{width}.2f}" if value is not None else f"{'-':>{width}}"


def print_table(results: dict[str, Any]) -> None:
    """Print one line per measured run on standard error."""
    print(f"{'run':<46} {'count':>6} {'err':>4} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'max ms':>8} "
          f"{'rps':>8} {'srv cpu ms':>10}", file=sys.stderr)
    for group in ("floor_runs", "decide_runs", "learner_busy", "learner_busy_out_of_process", "scale_out"):
        for name, run in results.get(group, {}).items():
            if not isinstance(run, dict) or "p50_ms" not in run or name == "warmup":
                continue
            print(
                f"{group + '.' + name:<46} {run['count']:>6} {run['errors']:>4} {_cell(run['p50_ms'])} "
                f"{_cell(run['p95_ms'])} {_cell(run['p99_ms'])} {_cell(run['max_ms'])} {run['rps']:>8.0f} "
                f"{_cell(run.get('server_cpu_ms_per_call'), 10)}",
                file=sys.stderr,
            )
            for process in run.get("processes", []):
                calls = "-" if process["calls"] is None else str(process["calls"])
                print(f"    {process['name']:<8} {process['role']:<8} calls {calls:>6}  cpu ms/call "
                      f"{_cell(process['cpu_ms_per_call'])}", file=sys.stderr)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    args = parse_args(argv)
    results: dict[str, Any] = {"benchmark": "latency", "environment": environment()}

    rng = np.random.default_rng(args.seed)
    messages = [
        realistic_request(member, rng, offers=args.offers, channels=args.channels, slots=args.slots)
        for member in range(args.members)
    ]
    bodies = RequestBodies(messages)
    settings = {key: value for key, value in vars(args).items() if key != "json"}
    settings.update(
        context_features=context_feature_count(messages[0]),
        triples_per_request=args.offers * args.channels * args.slots,
        request_bytes_mean=float(np.mean(bodies.sizes())),
        client="one process; one channel per thread, raw bytes in and out",
    )
    results["settings"] = settings

    servers: list[Server] = []
    with tempfile.TemporaryDirectory(prefix="loyalty-bandit-bench-") as workdir_name:
        workdir = Path(workdir_name)
        try:
            results["floor_runs"] = floor_phase(workdir, messages, bodies, args, servers)
            rate = args.rate or results["floor_runs"]["max_closed_rps"] / 2
            settings["open_rate"] = rate
            results["decide_runs"] = decide_phase(workdir, messages, bodies, args, rate, servers)
            if args.learner_busy:
                own_half = results["decide_runs"]["open_half_own_max"]["target_rate"]
                results["learner_busy"] = learner_busy_runs(
                    workdir, messages, bodies, args, own_half, servers, out_of_process=False
                )
                results["learner_busy_out_of_process"] = learner_busy_runs(
                    workdir, messages, bodies, args, own_half, servers, out_of_process=True
                )
            if args.scale_out:
                results["scale_out"] = scale_out_runs(workdir, messages, bodies, args, servers)
        except BaseException:
            for server in servers:
                print(f"--- output of {server.name} (pid {server.process.pid}):\n{server.process.log_text()}",
                      file=sys.stderr)
            raise
        finally:
            stop_all(servers)

    results.update(headline(results["floor_runs"], results["decide_runs"]))
    if "learner_busy" in results:
        results["learner_placement"] = learner_placement(
            results["learner_busy"], results["learner_busy_out_of_process"]
        )
    if "scale_out" in results:
        results["scale_out"]["ratio_rps_to_one_process"] = scale_out_ratios(
            results["scale_out"], results["decide_runs"]
        )
    print_table(results)
    if args.json:
        write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
