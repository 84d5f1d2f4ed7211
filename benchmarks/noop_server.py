"""A DecisionService that does nothing: the floor that latency.py compares against.

It runs the same grpcio server as the real service, with the same thread-pool
size and channel options, and returns one constant DecideResponse, read
from a file, for every Decide, so messages have the size of real ones.
grpcio still parses each request and serialises each response, as it does for
the real service. It binds 127.0.0.1 only.

    python benchmarks/noop_server.py --response response.bin --port 0
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import grpc

from bandit.config import ServiceConfig
from bandit.proto import decision_pb2 as pb
from bandit.proto import decision_pb2_grpc as pb_grpc


class NoOpServicer(pb_grpc.DecisionServiceServicer):
    """A servicer that returns a constant message for every call."""

    def __init__(self, response: pb.DecideResponse) -> None:
        self.response = response
        self.stream_response = pb.DecideStreamResponse(decision=response)
        self.reward_response = pb.RewardResponse(status=pb.REWARD_STATUS_RECORDED)

    def Decide(self, request: pb.DecideRequest, context: grpc.ServicerContext) -> pb.DecideResponse:
        return self.response

    def DecideStream(
        self, request_iterator: Iterator[pb.DecideRequest], context: grpc.ServicerContext
    ) -> Iterator[pb.DecideStreamResponse]:
        for _request in request_iterator:
            yield self.stream_response

    def Reward(self, request: pb.RewardRequest, context: grpc.ServicerContext) -> pb.RewardResponse:
        return self.reward_response


def main() -> None:
    defaults = ServiceConfig()
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--response", type=Path, required=True, help="File with a serialised DecideResponse.")
    parser.add_argument("--port", type=int, default=0, help="Port on 127.0.0.1; 0 picks a free one.")
    parser.add_argument(
        "--workers", type=int, default=defaults.max_workers,
        help=f"Threads serving calls. Default: the service's default, {defaults.max_workers}.",
    )
    args = parser.parse_args()

    response = pb.DecideResponse.FromString(args.response.read_bytes())
    options = [
        ("grpc.max_receive_message_length", defaults.max_message_bytes),
        ("grpc.max_send_message_length", defaults.max_message_bytes),
        ("grpc.so_reuseport", 0),
    ]
    server = grpc.server(
        ThreadPoolExecutor(max_workers=args.workers, thread_name_prefix="grpc"), options=options
    )
    pb_grpc.add_DecisionServiceServicer_to_server(NoOpServicer(response), server)
    port = server.add_insecure_port(f"127.0.0.1:{args.port}")
    if port == 0:
        sys.exit(f"failed to bind 127.0.0.1:{args.port}; is the port in use?")
    server.start()
    print(f"noop DecisionService serving on 127.0.0.1:{port}", file=sys.stderr, flush=True)

    stop_requested = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop_requested.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop_requested.set())
    stop_requested.wait()
    server.stop(2.0).wait()


if __name__ == "__main__":
    main()
