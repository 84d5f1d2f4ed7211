"""Print the true values of the reference policies on simulated requests.

Usage: ``python -m loyalty_bandit.simulator_values [--seed 0] [--members 2000] [--requests 5000]``.
The values are exact expectations under the simulator's ground truth, in
currency units per request: uniform random, the default RFM rules, the best
fixed triple and the per-request oracle.
"""

from __future__ import annotations

import argparse
import time

from bandit.simulator.simulator import Simulator
from replay.policies import RFMPolicy, UniformPolicy


def main(argv: list[str] | None = None) -> None:
    """Parse the options, simulate the requests and print one value per line."""
    parser = argparse.ArgumentParser(
        prog="python -m loyalty_bandit.simulator_values", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--seed", type=int, default=0, help="seed of the population and the requests")
    parser.add_argument("--members", type=int, default=2000, help="number of simulated members")
    parser.add_argument("--requests", type=int, default=5000, help="number of requests evaluated")
    options = parser.parse_args(argv)

    started = time.monotonic()
    simulator = Simulator(seed=options.seed, n_members=options.members)
    requests = list(simulator.requests(options.requests))

    best_action, best_fixed = simulator.best_fixed_action(requests)
    rows = [
        ("uniform", simulator.policy_value(UniformPolicy(), requests)),
        ("rfm rules (default file)", simulator.policy_value(RFMPolicy.default(), requests)),
        (f"best fixed triple {best_action.key()}", best_fixed),
        ("oracle", simulator.oracle_value(requests)),
    ]
    print(f"seed {options.seed}, {options.members} members, {options.requests} requests")
    for label, value in rows:
        print(f"{value:8.3f}  {label}")
    print(f"computed in {time.monotonic() - started:.1f} s")


if __name__ == "__main__":
    main()
