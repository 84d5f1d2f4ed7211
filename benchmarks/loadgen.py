"""Load generators for DecisionService: closed loop, open loop and streaming.

The client is kept lean so that it measures the server and not protobuf in
the client. Requests are serialised once. Each call sends a short message
that contains only its ``request_id``, followed by the serialised rest of the
request. Protobuf merges concatenated messages, so the server parses one
whole DecideRequest. Responses stay as bytes and are not parsed. Every loop
stops at a request count or a deadline, whichever comes first.
"""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import grpc
from benchlib import latency_summary

from bandit.proto import decision_pb2 as pb

DECIDE = "/loyalty_bandit.v1.DecisionService/Decide"
DECIDE_STREAM = "/loyalty_bandit.v1.DecisionService/DecideStream"
REWARD = "/loyalty_bandit.v1.DecisionService/Reward"

MAX_MESSAGE_BYTES = 4 * 1024 * 1024

# A serialised DecideStreamResponse starts with the tag of its oneof field:
# 0x0A for field 1 (decision), 0x12 for field 2 (error).
STREAM_ERROR_TAG = b"\x12"

POOL_STRIDE = 7919
"""Offset between the threads' starting requests in the pool. It is prime, so threads start on different members."""


def open_channel(address: str) -> grpc.Channel:
    """Open a channel with its own connection, so client threads do not share one."""
    return grpc.insecure_channel(
        address,
        options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
            ("grpc.use_local_subchannel_pool", 1),
        ],
    )


class RequestBodies:
    """Serialised requests without a request id, cycled through by index."""

    def __init__(self, messages: Sequence[pb.DecideRequest]) -> None:
        if not messages:
            raise ValueError("messages is empty; give at least one request")
        self._bodies = []
        for message in messages:
            copy = pb.DecideRequest()
            copy.CopyFrom(message)
            copy.ClearField("request_id")
            self._bodies.append(copy.SerializeToString())

    def wire(self, request_id: str, index: int) -> bytes:
        """Return the bytes of request ``index`` (modulo the pool size) with this request id."""
        head = pb.DecideRequest(request_id=request_id).SerializeToString()
        return head + self._bodies[index % len(self._bodies)]

    def sizes(self) -> list[int]:
        """Return the size in bytes of each serialised request, without its id."""
        return [len(body) for body in self._bodies]


class _Recorder:
    """Latencies and errors of one run, appended to from several threads."""

    def __init__(self) -> None:
        self.latencies_ns: list[int] = []
        self.error_codes: collections.Counter[str] = collections.Counter()
        self._lock = threading.Lock()

    def ok(self, latency_ns: int) -> None:
        self.latencies_ns.append(latency_ns)

    def error(self, code: str) -> None:
        with self._lock:
            self.error_codes[code] += 1

    def summary(self, elapsed_ns: int, **extra: Any) -> dict[str, Any]:
        result = latency_summary(self.latencies_ns, sum(self.error_codes.values()), elapsed_ns)
        result["error_codes"] = dict(self.error_codes)
        result.update(extra)
        return result


class _StartClock:
    """The start time and deadline of a run, set when every thread is ready."""

    def __init__(self, duration_s: float) -> None:
        self.duration_ns = int(duration_s * 1e9)
        self.start_ns = 0
        self.deadline_ns = 0

    def start(self) -> None:
        # Runs as the barrier's action, before any thread is released.
        self.start_ns = time.perf_counter_ns()
        self.deadline_ns = self.start_ns + self.duration_ns


def _code_name(error: grpc.RpcError) -> str:
    code = error.code() if isinstance(error, grpc.Call) else None
    return code.name if code is not None else type(error).__name__


def closed_loop(
    addresses: Sequence[str],
    bodies: RequestBodies,
    *,
    concurrency: int,
    requests: int,
    duration_s: float,
    tag: str,
    call_timeout_s: float = 10.0,
) -> dict[str, Any]:
    """Run ``concurrency`` threads that each send one unary Decide after another.

    Thread ``t`` talks to ``addresses[t % len(addresses)]``. The run ends when
    ``requests`` calls are done or ``duration_s`` has passed.
    """
    recorder = _Recorder()
    share = [requests // concurrency + (1 if t < requests % concurrency else 0) for t in range(concurrency)]
    end_times: list[int] = []
    clock = _StartClock(duration_s)
    barrier = threading.Barrier(concurrency + 1, action=clock.start)

    def worker(thread_index: int) -> None:
        channel = open_channel(addresses[thread_index % len(addresses)])
        try:
            call = channel.unary_unary(DECIDE)
            grpc.channel_ready_future(channel).result(timeout=call_timeout_s)
            barrier.wait()
            deadline = clock.deadline_ns
            for k in range(share[thread_index]):
                if time.perf_counter_ns() >= deadline:
                    break
                wire = bodies.wire(f"{tag}-{thread_index}-{k}", thread_index * POOL_STRIDE + k)
                start = time.perf_counter_ns()
                try:
                    call(wire, timeout=call_timeout_s)
                except grpc.RpcError as error:
                    recorder.error(_code_name(error))
                else:
                    recorder.ok(time.perf_counter_ns() - start)
            end_times.append(time.perf_counter_ns())
        finally:
            channel.close()

    threads = [threading.Thread(target=worker, args=(t,), daemon=True) for t in range(concurrency)]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=call_timeout_s + 30)
    start_ns = clock.start_ns
    cpu_start = time.process_time()
    for thread in threads:
        thread.join(timeout=duration_s + call_timeout_s + 30)
    elapsed_ns = (max(end_times) if end_times else time.perf_counter_ns()) - start_ns

    return recorder.summary(
        elapsed_ns,
        mode="closed",
        concurrency=concurrency,
        servers=len(addresses),
        requests_planned=requests,
        stopped_by_deadline=len(recorder.latencies_ns) + sum(recorder.error_codes.values()) < requests,
        client_cpu_s=time.process_time() - cpu_start,
    )


def open_loop(
    addresses: Sequence[str],
    bodies: RequestBodies,
    *,
    rate: float,
    requests: int,
    duration_s: float,
    tag: str,
    call_timeout_s: float = 10.0,
    max_in_flight: int = 512,
) -> dict[str, Any]:
    """Send unary Decide calls at a fixed rate, whether or not earlier ones have returned.

    Latency runs from each call's scheduled send time, not from when it was
    actually sent, so a sender that falls behind a slow server still counts
    the wait (no coordinated omission). At most ``max_in_flight`` calls are
    outstanding; beyond that the sender waits and the lateness shows up in
    latency and in ``send_lag``.
    """
    if rate <= 0:
        raise ValueError(f"rate is {rate}; give a positive number of requests per second")
    recorder = _Recorder()
    slots = threading.BoundedSemaphore(max_in_flight)
    channels = [open_channel(address) for address in addresses]
    send_lags_ns: list[int] = []
    last_done = [0]

    try:
        calls = [channel.unary_unary(DECIDE) for channel in channels]
        for channel in channels:
            grpc.channel_ready_future(channel).result(timeout=call_timeout_s)

        def on_done(scheduled_ns: int, future: grpc.Future) -> None:
            now = time.perf_counter_ns()
            try:
                error = future.exception()
            except grpc.FutureCancelledError:
                recorder.error("CANCELLED")
            else:
                if error is None:
                    recorder.ok(now - scheduled_ns)
                else:
                    recorder.error(_code_name(error))
            last_done[0] = max(last_done[0], now)
            slots.release()

        interval_ns = 1e9 / rate
        cpu_start = time.process_time()
        start_ns = time.perf_counter_ns() + 10_000_000
        deadline = start_ns + int(duration_s * 1e9)
        sent = 0
        for index in range(requests):
            scheduled = start_ns + int(index * interval_ns)
            if scheduled >= deadline:
                break
            wait_ns = scheduled - time.perf_counter_ns()
            if wait_ns > 0:
                time.sleep(wait_ns / 1e9)
            if not slots.acquire(timeout=max(0.0, (deadline - time.perf_counter_ns()) / 1e9)):
                break
            send_lags_ns.append(time.perf_counter_ns() - scheduled)
            wire = bodies.wire(f"{tag}-{index}", index)
            future = calls[index % len(calls)].future(wire, timeout=call_timeout_s)
            future.add_done_callback(lambda done, scheduled=scheduled: on_done(scheduled, done))
            sent += 1

        # Every callback releases its slot, so holding all slots means every call has finished.
        drain_deadline = time.monotonic() + call_timeout_s + 5
        drained = 0
        while drained < max_in_flight and slots.acquire(timeout=max(0.0, drain_deadline - time.monotonic())):
            drained += 1
        client_cpu_s = time.process_time() - cpu_start
    finally:
        for channel in channels:
            channel.close()

    lag = latency_summary(send_lags_ns, 0, 1)
    result = recorder.summary(
        max(last_done[0] - start_ns, 1),
        mode="open",
        target_rate=rate,
        servers=len(addresses),
        requests_planned=requests,
        sent=sent,
        unfinished=sent - len(recorder.latencies_ns) - sum(recorder.error_codes.values()),
        send_lag_p50_ms=lag["p50_ms"],
        send_lag_p99_ms=lag["p99_ms"],
        client_cpu_s=client_cpu_s,
    )
    # Below the target rate, calls queued: latency then grows with the length of the run.
    result["overloaded"] = result["rps"] < 0.9 * rate
    return result


def stream_run(
    addresses: Sequence[str],
    bodies: RequestBodies,
    *,
    streams: int,
    requests: int,
    duration_s: float,
    tag: str,
    call_timeout_s: float = 10.0,
) -> dict[str, Any]:
    """Send ``requests`` Decide messages in total over ``streams`` DecideStream calls.

    Latency of a message runs from when gRPC takes it from the request
    iterator to when its response arrives. It includes the time spent
    queued behind earlier messages of the same stream, so read it as queueing
    delay, and the rate as the result.
    """
    recorder = _Recorder()
    share = [requests // streams + (1 if s < requests % streams else 0) for s in range(streams)]
    end_times: list[int] = []
    clock = _StartClock(duration_s)
    barrier = threading.Barrier(streams + 1, action=clock.start)

    def worker(stream_index: int) -> None:
        channel = open_channel(addresses[stream_index % len(addresses)])
        sent_at: collections.deque[int] = collections.deque()
        try:
            call = channel.stream_stream(DECIDE_STREAM)
            grpc.channel_ready_future(channel).result(timeout=call_timeout_s)
            barrier.wait()
            deadline = clock.deadline_ns

            def messages() -> Iterator[bytes]:
                for k in range(share[stream_index]):
                    if time.perf_counter_ns() >= deadline:
                        return
                    wire = bodies.wire(f"{tag}-{stream_index}-{k}", stream_index * POOL_STRIDE + k)
                    sent_at.append(time.perf_counter_ns())
                    yield wire

            try:
                for raw in call(messages(), timeout=duration_s + call_timeout_s):
                    now = time.perf_counter_ns()
                    sent = sent_at.popleft()
                    if raw[:1] == STREAM_ERROR_TAG:
                        recorder.error("stream_error_item")
                    else:
                        recorder.ok(now - sent)
            except grpc.RpcError as error:
                # Every message still waiting for its response is lost with the stream.
                for _ in range(len(sent_at)):
                    recorder.error(_code_name(error))
            end_times.append(time.perf_counter_ns())
        finally:
            channel.close()

    threads = [threading.Thread(target=worker, args=(s,), daemon=True) for s in range(streams)]
    for thread in threads:
        thread.start()
    barrier.wait(timeout=call_timeout_s + 30)
    start_ns = clock.start_ns
    cpu_start = time.process_time()
    for thread in threads:
        thread.join(timeout=duration_s + call_timeout_s + 30)
    elapsed_ns = (max(end_times) if end_times else time.perf_counter_ns()) - start_ns

    return recorder.summary(
        elapsed_ns,
        mode="stream",
        streams=streams,
        servers=len(addresses),
        requests_planned=requests,
        client_cpu_s=time.process_time() - cpu_start,
    )
