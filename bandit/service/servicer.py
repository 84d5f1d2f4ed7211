"""The DecisionService servicer: Decide, DecideStream and Reward."""

from __future__ import annotations

import collections
import logging
import threading
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor

import grpc

from bandit.config import Config
from bandit.engine import STORE_TIMEOUT_SECONDS, DecisionEngine
from bandit.proto import decision_pb2 as pb
from bandit.proto import decision_pb2_grpc as pb_grpc
from bandit.service.convert import decision_to_proto, request_from_proto, reward_from_proto
from bandit.service.status import status_of
from bandit.store.event_store import EventStore, RewardStatus

logger = logging.getLogger(__name__)

STREAM_WINDOW = 64
"""Most requests of one stream decided at once; responses still go out in order."""

_REWARD_STATUS = {
    RewardStatus.RECORDED: pb.REWARD_STATUS_RECORDED,
    RewardStatus.DUPLICATE: pb.REWARD_STATUS_DUPLICATE,
    RewardStatus.LATE: pb.REWARD_STATUS_LATE,
}


class Counters:
    """Call counts by method and status code, for logs and metrics."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls: collections.Counter[str] = collections.Counter()

    def add(self, method: str, code: grpc.StatusCode) -> None:
        """Count one finished call."""
        with self._lock:
            self.calls[f"{method}.{code.name}"] += 1

    def snapshot(self) -> dict[str, int]:
        """Return a copy of the counts."""
        with self._lock:
            return dict(self.calls)


class DecisionServicer(pb_grpc.DecisionServiceServicer):
    """Validates requests, runs the engine and maps errors to status codes."""

    def __init__(
        self,
        config: Config,
        engine: DecisionEngine,
        store: EventStore,
        stream_executor: ThreadPoolExecutor,
    ) -> None:
        self.config = config
        self.engine = engine
        self.store = store
        self.counters = Counters()
        self._stream_executor = stream_executor

    def _decide(self, request: pb.DecideRequest) -> pb.DecideResponse:
        decision_request = request_from_proto(request, self.config)
        decision, replayed = self.engine.decide(decision_request)
        return decision_to_proto(decision, replayed)

    def Decide(self, request: pb.DecideRequest, context: grpc.ServicerContext) -> pb.DecideResponse:
        try:
            response = self._decide(request)
        except Exception as error:  # Every error leaves through status_of.
            code, message = status_of(error)
            self.counters.add("Decide", code)
            _log_failure("Decide", request.request_id, code, message)
            context.abort(code, message)
        self.counters.add("Decide", grpc.StatusCode.OK)
        return response

    def DecideStream(
        self, request_iterator: Iterator[pb.DecideRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.DecideStreamResponse]:
        pending: collections.deque[tuple[str, Future[pb.DecideResponse]]] = collections.deque()
        for request in request_iterator:
            pending.append((request.request_id, self._stream_executor.submit(self._decide, request)))
            while len(pending) >= STREAM_WINDOW:
                yield self._stream_result(*pending.popleft())
        while pending:
            yield self._stream_result(*pending.popleft())

    def _stream_result(self, request_id: str, future: Future[pb.DecideResponse]) -> pb.DecideStreamResponse:
        try:
            decision = future.result(timeout=STORE_TIMEOUT_SECONDS * 2)
        except Exception as error:  # Reported as an error item; the stream goes on.
            code, message = status_of(error)
            self.counters.add("DecideStream", code)
            _log_failure("DecideStream", request_id, code, message)
            return pb.DecideStreamResponse(
                error=pb.DecideError(request_id=request_id, code=code.value[0], message=message)
            )
        self.counters.add("DecideStream", grpc.StatusCode.OK)
        return pb.DecideStreamResponse(decision=decision)

    def Reward(self, request: pb.RewardRequest, context: grpc.ServicerContext) -> pb.RewardResponse:
        try:
            reward = reward_from_proto(request, self.config)
            status = self.store.append_reward(reward, time.time()).result(timeout=STORE_TIMEOUT_SECONDS)
        except Exception as error:  # Every error leaves through status_of.
            code, message = status_of(error)
            self.counters.add("Reward", code)
            _log_failure("Reward", request.event_id, code, message)
            context.abort(code, message)
        self.counters.add("Reward", grpc.StatusCode.OK)
        return pb.RewardResponse(
            event_id=reward.event_id, reward_id=reward.key(), status=_REWARD_STATUS[status]
        )


CLIENT_ERRORS = (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.NOT_FOUND, grpc.StatusCode.ALREADY_EXISTS)

LOG_LIMIT_PER_MINUTE = 10
"""Maximum log lines per minute for each method and status code; the rest are counted."""

_log_lock = threading.Lock()
_log_windows: dict[tuple[str, str], list[float]] = {}


def _log_failure(method: str, key: str, code: grpc.StatusCode, message: str) -> None:
    # Bad input can come in floods from one broken client, so each (method, code) logs at
    # most LOG_LIMIT_PER_MINUTE lines a minute, and the next line counts those left out.
    now = time.monotonic()
    with _log_lock:
        window = _log_windows.setdefault((method, code.name), [now, 0.0, 0.0])
        if now - window[0] >= 60.0:
            window[:] = [now, 0.0, window[2]]
        window[1] += 1
        if window[1] > LOG_LIMIT_PER_MINUTE:
            window[2] += 1
            return
        suppressed = int(window[2])
        window[2] = 0.0
    level = logging.INFO if code in CLIENT_ERRORS else logging.WARNING
    verb = "rejected" if code in CLIENT_ERRORS else "failed"
    logger.log(
        level, "%s %r %s: %s %s (%d similar lines left out before)", method, key, verb, code.name, message,
        suppressed,
    )

