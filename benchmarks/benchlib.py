"""Helpers shared by the benchmark scripts in this folder.

The scripts import this module by its bare name, which works because Python
puts a script's own folder first on ``sys.path``. It contains the environment
record written into every JSON output, the latency summary and the control of
server subprocesses: start, readiness, CPU time and call counters. It imports
nothing from the project, so that a process measuring its own memory does not
load the service's modules.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

REPOSITORY = Path(__file__).resolve().parent.parent

PACKAGES = ("grpcio", "protobuf", "vowpal-wabbit-next", "numpy")

COUNTERS_PREFIX = "counters "
"""Start of the line that ``serve_service.py`` prints on SIGUSR1, followed by its call counters as JSON."""

# Environment record.


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def _git(*args: str) -> str:
    try:
        completed = subprocess.run(
            ["git", *args], cwd=REPOSITORY, capture_output=True, text=True, timeout=10, check=True
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return completed.stdout.strip()


def environment() -> dict[str, Any]:
    """Return the machine, software versions, commit, command line and date of this run."""
    versions: dict[str, str] = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"

    try:
        usable_cores = len(os.sched_getaffinity(0))
    except AttributeError:
        usable_cores = os.cpu_count() or 0

    return {
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable_cores,
        "load_average_1m_5m_15m": list(os.getloadavg()),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "packages": versions,
        "git_commit": _git("rev-parse", "HEAD"),
        # Uncommitted changes mean the numbers are not for the commit alone.
        "git_uncommitted_changes": _git("status", "--porcelain") not in ("", "unknown"),
        "command": shlex.join([sys.executable, *sys.argv]),
        "date_utc": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def write_json(path: str | Path, data: dict[str, Any]) -> None:
    """Write ``data`` as indented JSON to ``path``."""
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=False) + "\n", encoding="utf-8")


# Latency statistics.


def latency_summary(latencies_ns: Sequence[int], errors: int, elapsed_ns: int) -> dict[str, Any]:
    """Summarise one run: percentiles in milliseconds, achieved rate and error count.

    ``rps`` counts successful calls per second of ``elapsed_ns``, the wall
    time from the first send to the last completion.
    """
    summary: dict[str, Any] = {
        "count": len(latencies_ns),
        "errors": errors,
        "elapsed_s": elapsed_ns / 1e9,
        "rps": len(latencies_ns) / (elapsed_ns / 1e9) if elapsed_ns > 0 else 0.0,
    }
    if not latencies_ns:
        for key in ("p50_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms"):
            summary[key] = None
        return summary

    values = np.asarray(latencies_ns, dtype=np.float64) / 1e6
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    summary.update(
        p50_ms=float(p50),
        p95_ms=float(p95),
        p99_ms=float(p99),
        max_ms=float(values.max()),
        mean_ms=float(values.mean()),
    )
    return summary


# Server subprocesses.


class ServerProcess:
    """A server started as a subprocess that prints a ready line, by default ``... serving on HOST:PORT``.

    Its output goes to ``log_path``. ``port`` is the port of the ready line,
    or 0 when ``ready_pattern`` has no group (a process that serves nothing,
    such as ``loyalty-bandit learn``). ``stop`` sends SIGTERM to this process
    only, by its PID, and kills it if it has not exited within the timeout.
    """

    READY = re.compile(r"serving on [0-9.]+:(\d+)")

    def __init__(
        self,
        command: Sequence[str],
        log_path: Path,
        *,
        ready_timeout_s: float = 60.0,
        ready_pattern: re.Pattern[str] = READY,
    ) -> None:
        self.command = list(command)
        self.log_path = log_path
        self.ready_pattern = ready_pattern
        self._log = open(log_path, "wb")  # noqa: SIM115 because the handle lives as long as the process.
        self.process = subprocess.Popen(
            self.command, stdout=self._log, stderr=subprocess.STDOUT, cwd=REPOSITORY
        )
        self.pid = self.process.pid
        try:
            self.port = self._wait_ready(ready_timeout_s)
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self, timeout_s: float) -> int:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            match = self.ready_pattern.search(self.log_path.read_text(encoding="utf-8", errors="replace"))
            if match:
                return int(match.group(1)) if match.groups() else 0
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server {self.command} exited with code {self.process.returncode} before it "
                    f"was ready; its output is in {self.log_path}:\n{self.log_text()}"
                )
            time.sleep(0.05)
        raise TimeoutError(f"server {self.command} was not ready within {timeout_s:.0f} s; see {self.log_path}")

    def log_text(self) -> str:
        """Return the last 4,000 characters of the server's output."""
        return self.log_path.read_text(encoding="utf-8", errors="replace")[-4000:]

    def read_counters(self, timeout_s: float = 10.0) -> dict[str, int]:
        """Send SIGUSR1 and return the call counters that the server prints in reply.

        Only ``serve_service.py`` answers SIGUSR1 this way; any other process
        would be ended by the signal, so call it on those servers only.
        """
        pattern = re.compile("^" + re.escape(COUNTERS_PREFIX) + r"(\{.*\})$", re.MULTILINE)
        seen = len(pattern.findall(self.log_path.read_text(encoding="utf-8", errors="replace")))
        self.process.send_signal(signal.SIGUSR1)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            found = pattern.findall(self.log_path.read_text(encoding="utf-8", errors="replace"))
            if len(found) > seen:
                counters: dict[str, int] = json.loads(found[-1])
                return counters
            if self.process.poll() is not None:
                raise RuntimeError(f"server {self.command} exited with code {self.process.returncode}; "
                                   f"see {self.log_path}:\n{self.log_text()}")
            time.sleep(0.01)
        raise TimeoutError(f"server {self.command} printed no counters within {timeout_s:.0f} s of SIGUSR1; "
                           f"see {self.log_path}")

    def stop(self, timeout_s: float = 20.0) -> int | None:
        """Stop the server; return its exit code, or None if it had to be killed."""
        try:
            if self.process.poll() is None:
                self.process.send_signal(signal.SIGTERM)
                try:
                    return self.process.wait(timeout=timeout_s)
                except subprocess.TimeoutExpired:
                    self.process.kill()
                    self.process.wait(timeout=timeout_s)
                    return None
            return self.process.returncode
        finally:
            self._log.close()


def cpu_seconds(pid: int) -> float:
    """Return the user plus system CPU time of a process so far, from /proc; NaN once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    # After the command name, utime and stime are the 12th and 13th fields.
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
