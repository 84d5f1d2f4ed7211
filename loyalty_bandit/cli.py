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
    port_bound = service.start()
    typer.echo(f"loyalty-bandit serving on {config.service.host}:{port_bound}", err=True)

    stop_requested = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        logger.info("received signal %d, shutting down", signum)
        stop_requested.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    stop_requested.wait()
    service.stop()


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
    registry = ModelRegistry(config.store.path, config.store.model_dir or None)
    try:
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


def _mount_subcommands() -> None:
    from loyalty_bandit.replay_cli import app as replay_app

    app.add_typer(replay_app, name="replay")


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
