"""Time and memory of the off-policy replay: DR with a 95% bootstrap interval.

Three measurements, each in a fresh child process so that its peak RSS
(``VmHWM`` in /proc/self/status) is its own:

- ``inmemory``: 1M synthetic logged decisions as arrays, one ``DR.update``
  and the bootstrap interval. Then the same rows go into four accumulators,
  updated separately and merged, which must give the same result.
- ``chunked``: the decisions read from a binary file chunk by chunk, under an
  address-space limit (``RLIMIT_AS``) smaller than the file, once over the
  first quarter of the file and once over all of it. A flat peak RSS across
  the two shows that memory does not grow with the log.

The file holds float64 records of five columns (reward, logged propensity,
target propensity, q_logged, q_target), row after row. Rows are generated in
fixed blocks seeded by the block index, so every measurement sees the same
data and the in-memory estimate can be compared with the chunked one.

    python benchmarks/replay_estimators.py --json replay.json

The script is not called ``replay.py`` because Python puts the script's folder
first on ``sys.path``, where a ``replay.py`` would hide the ``replay`` package.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from benchlib import environment, write_json

COLUMNS = ("reward", "logged_propensity", "target_propensity", "q_logged", "q_target")
ROW_BYTES = 8 * len(COLUMNS)
GENERATION_BLOCK = 100_000
"""Rows generated from one seed; the data do not depend on how they are read."""

# Child processes run with one BLAS thread and few malloc arenas, so that
# their address space stays small enough for RLIMIT_AS to be a usable cap.
CHILD_ENVIRONMENT = {"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, help="Write the results to this JSON file.")
    parser.add_argument("--rows", type=int, default=1_000_000, help="Logged decisions of the in-memory run.")
    parser.add_argument("--file-rows", type=int, default=7_000_000, help="Logged decisions in the file of the "
                        "chunked runs; the default makes a 267 MiB file, larger than the default cap.")
    parser.add_argument("--chunk-rows", type=int, default=100_000, help="Rows read and added per update.")
    # NOTE: a child's address space peaks at about 180 MiB with the default chunk size, most of it
    # shared libraries (measured with Python 3.11 and numpy 2.4 on Linux x86-64). A cap much below
    # 256 MiB therefore fails with MemoryError.
    parser.add_argument("--memory-cap-mb", type=float, default=256.0, help="Address-space limit (RLIMIT_AS) of "
                        "the chunked runs, in MiB; 0 sets none.")
    parser.add_argument("--replicates", type=int, default=200, help="Bootstrap replicates of the interval.")
    parser.add_argument("--timeout", type=float, default=900.0, help="Maximum time of each child run, in seconds.")
    parser.add_argument("--seed", type=int, default=0, help="Seed of the synthetic decisions and the bootstrap.")
    parser.add_argument("--phase", choices=("inmemory", "chunked"), help=argparse.SUPPRESS)
    parser.add_argument("--file", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    for name in ("rows", "file_rows", "chunk_rows", "replicates"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} is {getattr(args, name)}; use 1 or more")
    return args


# Synthetic data.


def generate_block(seed: int, block: int) -> npt.NDArray[np.float64]:
    """Return the rows of generation block ``block``, shape (GENERATION_BLOCK, 5)."""
    rng = np.random.default_rng([seed, block])
    n = GENERATION_BLOCK
    logged = rng.uniform(0.02, 0.5, n)
    target = rng.uniform(0.0, 1.0, n)
    q_logged = rng.uniform(0.0, 0.4, n)
    q_target = rng.uniform(0.0, 0.4, n)
    reward = (rng.random(n) < q_logged + 0.05).astype(np.float64)
    return np.column_stack([reward, logged, target, q_logged, q_target])


def generate_rows(seed: int, rows: int) -> npt.NDArray[np.float64]:
    """Return the first ``rows`` rows of the synthetic log."""
    blocks = [generate_block(seed, block) for block in range(-(-rows // GENERATION_BLOCK))]
    return np.concatenate(blocks)[:rows]


def write_file(path: Path, seed: int, rows: int) -> None:
    """Write the first ``rows`` rows of the synthetic log, one generation block at a time."""
    written = 0
    with open(path, "wb") as handle:
        block = 0
        while written < rows:
            data = generate_block(seed, block)[: rows - written]
            handle.write(np.ascontiguousarray(data).tobytes())
            written += data.shape[0]
            block += 1


# Measurements, run in child processes.


def _status_mib(field: str) -> float | None:
    """Return a size field of /proc/self/status, such as VmHWM, in MiB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _peak_rss_mib() -> float:
    # VmHWM starts afresh at exec. ru_maxrss does not: a child starts with the
    # peak its parent had at fork, so it is only the fallback off Linux.
    peak = _status_mib("VmHWM")
    if peak is None:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return peak


def _chunk_input(rows: npt.NDArray[np.float64]) -> Any:
    from replay import EstimatorInput

    return EstimatorInput(
        reward=rows[:, 0], logged_propensity=rows[:, 1], target_propensity=rows[:, 2],
        q_logged=rows[:, 3], q_target=rows[:, 4],
    )


def phase_inmemory(args: argparse.Namespace) -> dict[str, Any]:
    from replay import DR

    baseline = _peak_rss_mib()
    start = time.perf_counter_ns()
    rows = generate_rows(args.seed, args.rows)
    generate_ns = time.perf_counter_ns() - start

    start = time.perf_counter_ns()
    chunk = _chunk_input(rows)
    estimator = DR(replicates=args.replicates, seed=args.seed)
    estimator.update(chunk)
    update_ns = time.perf_counter_ns() - start

    start = time.perf_counter_ns()
    estimate = estimator.interval("bootstrap", 0.95)
    interval_ns = time.perf_counter_ns() - start

    # The same rows in four accumulators, as four processes would hold them, then merged.
    start = time.perf_counter_ns()
    parts = []
    bounds = np.linspace(0, args.rows, 5).astype(int)
    for low, high in itertools.pairwise(bounds):
        part = DR(replicates=args.replicates, seed=args.seed)
        part.update(_chunk_input(rows[low:high]), first_row=int(low))
        parts.append(part)
    merged = parts[0]
    for part in parts[1:]:
        merged = merged.merge(part)
    merged_estimate = merged.interval("bootstrap", 0.95)
    merge_ns = time.perf_counter_ns() - start

    return {
        "rows": args.rows,
        "replicates": args.replicates,
        "generate_s": generate_ns / 1e9,
        "update_s": update_ns / 1e9,
        "interval_s": interval_ns / 1e9,
        "rows_per_s": args.rows / (update_ns / 1e9),
        "estimate": estimate.to_dict(),
        "split_merge_s": merge_ns / 1e9,
        "split_merge_estimate": merged_estimate.to_dict(),
        "split_merge_abs_diff": {
            key: abs(getattr(merged_estimate, key) - getattr(estimate, key)) for key in ("value", "ci_low", "ci_high")
        },
        "rss_after_imports_mib": baseline,
        "peak_rss_mib": _peak_rss_mib(),
        "peak_virtual_mib": _status_mib("VmPeak"),
    }


def phase_chunked(args: argparse.Namespace) -> dict[str, Any]:
    from replay import DR

    baseline = _peak_rss_mib()
    cap_bytes = int(args.memory_cap_mb * 1024 * 1024)
    if cap_bytes > 0:
        resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))

    estimator = DR(replicates=args.replicates, seed=args.seed)
    chunks = 0
    read = 0
    start = time.perf_counter_ns()
    with open(args.file, "rb") as handle:
        while read < args.rows:
            count = min(args.chunk_rows, args.rows - read)
            data = np.fromfile(handle, dtype=np.float64, count=count * len(COLUMNS))
            if data.size == 0:
                break
            rows = data.reshape(-1, len(COLUMNS))
            estimator.update(_chunk_input(rows))
            read += rows.shape[0]
            chunks += 1
    update_ns = time.perf_counter_ns() - start

    start = time.perf_counter_ns()
    estimate = estimator.interval("bootstrap", 0.95)
    interval_ns = time.perf_counter_ns() - start

    return {
        "rows": read,
        "chunks": chunks,
        "chunk_rows": args.chunk_rows,
        "bytes_read": read * ROW_BYTES,
        "replicates": args.replicates,
        "memory_cap_mib": args.memory_cap_mb or None,
        "update_s": update_ns / 1e9,
        "interval_s": interval_ns / 1e9,
        "rows_per_s": read / (update_ns / 1e9),
        "estimate": estimate.to_dict(),
        "rss_after_imports_mib": baseline,
        "peak_rss_mib": _peak_rss_mib(),
        "peak_virtual_mib": _status_mib("VmPeak"),
    }


# The parent: runs the children and compares.


def run_child(args: argparse.Namespace, phase: str, **overrides: Any) -> dict[str, Any]:
    options = {
        "rows": args.rows, "chunk_rows": args.chunk_rows, "memory_cap_mb": args.memory_cap_mb,
        "replicates": args.replicates, "seed": args.seed, **overrides,
    }
    command = [sys.executable, str(Path(__file__).resolve()), "--phase", phase]
    for key, value in options.items():
        command += [f"--{key.replace('_', '-')}", str(value)]
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=args.timeout, env={**os.environ, **CHILD_ENVIRONMENT},
    )
    if completed.returncode != 0:
        raise RuntimeError(f"{phase} run failed with exit code {completed.returncode}:\n{completed.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(completed.stdout)
    return result


def main(argv: list[str] | None = None) -> dict[str, Any] | None:
    args = parse_args(argv)
    if args.phase == "inmemory":
        print(json.dumps(phase_inmemory(args)))
        return None
    if args.phase == "chunked":
        print(json.dumps(phase_chunked(args)))
        return None

    results: dict[str, Any] = {"benchmark": "replay_estimators", "environment": environment()}
    results["settings"] = {key: value for key, value in vars(args).items() if key not in ("json", "phase", "file")}
    results["settings"]["child_environment"] = CHILD_ENVIRONMENT
    results["inmemory"] = run_child(args, "inmemory")

    with tempfile.TemporaryDirectory(prefix="loyalty-bandit-replay-") as workdir_name:
        path = Path(workdir_name) / "log.f64"
        start = time.perf_counter_ns()
        write_file(path, args.seed, args.file_rows)
        results["file"] = {
            "rows": args.file_rows,
            "bytes": path.stat().st_size,
            "write_s": (time.perf_counter_ns() - start) / 1e9,
        }
        quarter = max(1, args.file_rows // 4)
        results["chunked_quarter"] = run_child(args, "chunked", file=path, rows=quarter)
        results["chunked_full"] = run_child(args, "chunked", file=path, rows=args.file_rows)
        same_rows = min(args.rows, args.file_rows)
        results["chunked_same_rows_as_inmemory"] = run_child(args, "chunked", file=path, rows=same_rows)

    full = results["chunked_full"]
    comparison = results["chunked_same_rows_as_inmemory"]
    results["summary"] = {
        "dr_rows": results["inmemory"]["rows"],
        "dr_update_s": results["inmemory"]["update_s"],
        "dr_interval_s": results["inmemory"]["interval_s"],
        "dr_peak_rss_mib": results["inmemory"]["peak_rss_mib"],
        "chunked_file_mib": results["file"]["bytes"] / 2**20,
        "chunked_peak_rss_mib_quarter": results["chunked_quarter"]["peak_rss_mib"],
        "chunked_peak_rss_mib_full": full["peak_rss_mib"],
        "chunked_rss_growth_full_over_quarter": full["peak_rss_mib"] / results["chunked_quarter"]["peak_rss_mib"],
        "file_larger_than_cap": bool(args.memory_cap_mb) and results["file"]["bytes"] > args.memory_cap_mb * 2**20,
        "chunked_matches_inmemory_abs_diff": (
            abs(comparison["estimate"]["value"] - results["inmemory"]["estimate"]["value"])
            if comparison["rows"] == results["inmemory"]["rows"] else None
        ),
    }
    for key, value in results["summary"].items():
        print(f"{key:<40} {value}", file=sys.stderr)
    if args.json:
        write_json(args.json, results)
    return results


if __name__ == "__main__":
    main()
