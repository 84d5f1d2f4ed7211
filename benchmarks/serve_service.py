"""Run the decision service from a TOML file until SIGTERM, for the benchmarks.

It does what ``loyalty-bandit serve --config FILE`` does through the library
API only (``load_config`` and ``Service``), so the benchmarks do not depend
on where the command line lives. It prints the bound address on standard
error, and logs warnings and errors only.

    python benchmarks/serve_service.py service.toml
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from pathlib import Path

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
    port = service.start()
    print(f"loyalty-bandit serving on {config.service.host}:{port}", file=sys.stderr, flush=True)

    stop_requested = threading.Event()
    signal.signal(signal.SIGTERM, lambda signum, frame: stop_requested.set())
    signal.signal(signal.SIGINT, lambda signum, frame: stop_requested.set())
    stop_requested.wait()
    service.stop()


if __name__ == "__main__":
    main()
