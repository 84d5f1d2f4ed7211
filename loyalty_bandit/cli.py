"""The ``loyalty-bandit`` command line.

Typer builds the commands, options and help text from the function
signatures; this is the only module that configures logging.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
from pathlib import Path
from typing import Annotated, Any

import typer

from bandit.config import Config, load_config
from bandit.errors import BanditError

app = typer.Typer(
    name="loyalty-bandit",
    help="Next-best-action engine for loyalty programs: decide, log, learn, replay.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

logger = logging.getLogger("loyalty_bandit.cli")

ConfigOption = Annotated[
    Path | None, typer.Option("--config", "-c", help="TOML configuration file. Default: built-in defaults.")
]
StoreOption = Annotated[
    Path | None, typer.Option("--store", help="SQLite store file. Overrides store.path of the configuration.")
]


def _config(config_path: Path | None, **overrides: Any) -> Config:
    values = {key: value for key, value in overrides.items() if value is not None}
    return load_config(config_path, values)


def _wait_for_stop_signal() -> None:
    """Block until SIGINT or SIGTERM arrives."""
    stop_requested = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        logger.info("received signal %d, shutting down", signum)
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    stop_requested.wait()


@app.callback()
def main_options(
    log_level: Annotated[str, typer.Option(help="Log level: DEBUG, INFO, WARNING or ERROR.")] = "INFO",
) -> None:
    """Next-best-action engine for loyalty programs."""
    logging.basicConfig(
        level=log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    if log_level.upper() != "DEBUG":
        # vowpal_wabbit_next logs its driver's progress lines at INFO, one per model loaded.
        logging.getLogger("vowpal_wabbit_next").setLevel(logging.WARNING)


@app.command()
def serve(
    config_path: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Address to listen on.")] = None,
    port: Annotated[int | None, typer.Option(help="Port to listen on; 0 picks a free one.")] = None,
    store: StoreOption = None,
) -> None:
    """Start the gRPC decision service and run until SIGINT or SIGTERM."""
    from bandit.service.server import Service

    config = _config(
        config_path,
        **{"service.host": host, "service.port": port, "store.path": str(store) if store else None},
    )
    service = Service(config)
    port_bound = service.start()  # A failure to bind closes the store and raises ConfigError.
    typer.echo(f"loyalty-bandit serving on {config.service.host}:{port_bound}", err=True)

    _wait_for_stop_signal()
    service.stop()


@app.command()
def learn(config_path: ConfigOption = None, store: StoreOption = None) -> None:
    """Join rewards and train in this process, for services run with learner.enabled = false."""
    from bandit.engine import PolicyHolder
    from bandit.learner import Learner
    from bandit.store.event_store import EventStore
    from bandit.store.registry import ModelRegistry
    from bandit.vw_policy import UniformPolicy

    config = _config(config_path, **{"store.path": str(store) if store else None, "learner.enabled": True})
    event_store = EventStore(
        config.store.path,
        window_seconds=config.rewards.window_seconds,
        default_reward=config.rewards.default_reward,
        aggregation=config.rewards.aggregation,
    )
    registry = ModelRegistry(config.store.path, config.store.model_dir or None)
    learner = Learner(config, event_store, registry, PolicyHolder(UniformPolicy()))
    learner.restore()
    learner.start()
    typer.echo(f"loyalty-bandit learning from {config.store.path}", err=True)

    _wait_for_stop_signal()
    learner.stop()
    event_store.close()
    registry.close()


@app.command()
def export(
    output: Annotated[Path, typer.Option("--output", "-o", help="File to write; '-' for standard output.")],
    export_format: Annotated[str, typer.Option("--format", help="Export format. Only 'dsjson'.")] = "dsjson",
    config_path: ConfigOption = None,
    store: StoreOption = None,
) -> None:
    """Export joined decisions (those whose reward window closed) for VW and other tools."""
    from bandit.store.event_store import EventStore
    from bandit.store.export import write_dsjson

    if export_format != "dsjson":
        raise typer.BadParameter(f"format {export_format!r} is not supported; use 'dsjson'")
    config = _config(config_path, **{"store.path": str(store) if store else None})
    if not Path(config.store.path).exists():
        raise typer.BadParameter(f"store {config.store.path!r} not found; pass --store PATH")
    event_store = EventStore(
        config.store.path,
        window_seconds=config.rewards.window_seconds,
        default_reward=config.rewards.default_reward,
        aggregation=config.rewards.aggregation,
    )
    try:
        if str(output) == "-":
            count = write_dsjson(event_store, sys.stdout)
        else:
            with open(output, "w", encoding="utf-8") as handle:
                count = write_dsjson(event_store, handle)
    finally:
        event_store.close()
    typer.echo(f"wrote {count} events to {output}", err=True)


@app.command()
def models(config_path: ConfigOption = None, store: StoreOption = None) -> None:
    """List stored model versions and promotions."""
    from bandit.store.registry import ModelRegistry

    config = _config(config_path, **{"store.path": str(store) if store else None})
    if not Path(config.store.path).exists():
        raise typer.BadParameter(f"store {config.store.path!r} not found; pass --store PATH")
    registry = ModelRegistry(config.store.path, config.store.model_dir or None)
    try:
        if not registry.list_models():
            typer.echo("no model versions stored yet: the service serves the cold-start policy")
        else:
            typer.echo("* = served now; lineage -1 = stored, never served")
        active = registry.head()
        for record in registry.list_models():
            marker = "*" if active is not None and record.version == active.version else " "
            typer.echo(
                f"{marker} {record.version:>6} lineage {record.lineage} {record.source:<9} "
                f"events {record.events_learned:>8} parent {record.parent or '-'}"
            )
        for promotion in registry.promotions():
            typer.echo(f"  {promotion.action} {promotion.version} (was {promotion.previous_version or '-'})")
    finally:
        registry.close()


datasets_app = typer.Typer(help="Public datasets for replay.", no_args_is_help=True)


@datasets_app.command("fetch")
def datasets_fetch(
    name: Annotated[str, typer.Argument(help="Dataset to fetch. Only 'obd' (Open Bandit Dataset sample).")],
    target: Annotated[Path, typer.Option("--dir", help="Folder to unpack into.")] = Path("data/obd"),
) -> None:
    """Download, verify and unpack a public dataset."""
    from loyalty_bandit.datasets import fetch_obd

    if name != "obd":
        raise typer.BadParameter(f"dataset {name!r} is unknown; use 'obd'")
    files = fetch_obd(target)
    typer.echo(f"unpacked {len(files)} files into {target}; see {target / 'ATTRIBUTION.txt'}", err=True)


@app.command()
def demo(
    requests: Annotated[int, typer.Option(help="Decide calls to simulate.")] = 20_000,
    rate: Annotated[float, typer.Option(help="Decide calls per second, all clients together.")] = 400.0,
    clients: Annotated[int, typer.Option(help="Concurrent gRPC clients.")] = 4,
    members: Annotated[int, typer.Option(help="Simulated loyalty members.")] = 3000,
    seed: Annotated[int, typer.Option(help="Seed of the simulator, the sampling and the bootstrap.")] = 7,
    day_seconds: Annotated[float, typer.Option(help="Wall-clock seconds per simulated day.")] = 0.1,
    replicates: Annotated[int, typer.Option(help="Bootstrap replicates of every interval.")] = 300,
    epsilon: Annotated[float, typer.Option(help="Exploration of the online model serving the traffic.")] = 0.4,
    candidate_epsilon: Annotated[float, typer.Option(help="Exploration of the retrained candidate.")] = 0.05,
    out_dir: Annotated[Path, typer.Option("--out", help="Folder for the store and the report.")] = Path(
        "demo-output"
    ),
    obd_dir: Annotated[
        Path | None, typer.Option("--obd-dir", help="Open Bandit Dataset folder. Default: searched.")
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Also write the summary to this file.")] = None,
) -> None:
    """Run the whole loop on simulated members and, if found, the Open Bandit Dataset."""
    from loyalty_bandit.demo import DemoOptions, run_demo
    from replay.report import write_json

    if logging.getLogger().level > logging.DEBUG:
        # The demo draws progress bars; the service's INFO lines would break them up.
        logging.getLogger("bandit").setLevel(logging.WARNING)

    options = DemoOptions(
        seed=seed, requests=requests, rate=rate, clients=clients, members=members,
        day_seconds=day_seconds, replicates=replicates, out_dir=out_dir, obd_dir=obd_dir,
        epsilon=epsilon, candidate_epsilon=candidate_epsilon,
    )
    result = run_demo(options)
    if json_path is not None:
        write_json(json_path, result)
    typer.echo(f"report: {out_dir / 'report.md'}", err=True)


def _mount_subcommands() -> None:
    from loyalty_bandit.replay_cli import app as replay_app
    from replay.cli_obd import obd_command

    replay_app.command("obd")(obd_command)
    app.add_typer(replay_app, name="replay")
    app.add_typer(datasets_app, name="datasets")


_mount_subcommands()


def main() -> None:
    """Run the command line; engine errors end with their message and exit code 2."""
    try:
        app()
    except BanditError as error:
        typer.echo(f"error: {error}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
