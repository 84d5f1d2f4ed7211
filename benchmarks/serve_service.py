"""Run the decision service from a TOML file until SIGTERM, for the benchmarks.

It does what ``loyalty-bandit serve --config FILE`` does through the library
API only (``load_config`` and ``Service``), so the benchmarks do not depend
on where the command line lives. It prints the bound address on standard
error, and logs warnings and errors only. On SIGUSR1 it prints one line,
``counters`` and the call counts by method and status code as JSON. The
benchmark reads them to count the calls that each of several processes
sharing a port served.

    python benchmarks/serve_service.py service.toml
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
from pathlib import Path

from benchlib import COUNTERS_PREFIX

from bandit.config import load_config
from bandit.service.server import Service


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path, help="TOML configuration of the service.")
    args = parser.parse_args()

    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    config = load_config(args.config)
    if config.service.host != "127.0.0.1":
        sys.exit(f"service.host is {config.service.host!r}; the benchmarks serve on 127.0.0.1 only")

    service = Service(config)

    def print_counters(signum: int, frame: object) -> None:
        # One write call, so that the line does not interleave with log records of other threads.
        sys.stderr.write(COUNTERS_PREFIX + json.dumps(service.servicer.counters.snapshot()) + "\n")
        sys.stderr.flush()

    # The handlers are in place before the ready line, which is when the benchmark may signal.
    stop_requested = threading.Event()
    signal.signal(signal.SIGUSR1, print_counters)
    signal.signal(signal.SIGTERM, lambda signum, frame: stop_requested.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop_requested.set())

    port = service.start()
    print(f"loyalty-bandit serving on {config.service.host}:{port}", file=sys.stderr, flush=True)
    stop_requested.wait()
    service.stop()


if __name__ == "__main__":
    main()
