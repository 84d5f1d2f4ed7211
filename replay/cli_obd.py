"""The ``replay obd`` command: evaluate the BTS policy on the Open Bandit Dataset."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bandit.errors import BanditError
from replay.obd import ESTIMATOR_NAMES, run_obd

OBD_DIR_ENV = "LOYALTY_BANDIT_OBD_DIR"
"""Environment variable read when --obd-dir is not given."""

app = typer.Typer(help="Off-policy replay on public benchmark logs.", no_args_is_help=True)


@app.callback()
def replay_group() -> None:
    """Off-policy replay on public benchmark logs."""
    # Without a callback, Typer runs a lone command without its name, so ``obd`` would
    # not be a subcommand.


@app.command("obd")
def obd_command(
    obd_dir: Annotated[
        Path,
        typer.Option(
            "--obd-dir",
            envvar=OBD_DIR_ENV,
            help="Folder with random/, bts/ and prior_bts.yaml of the Open Bandit Dataset.",
        ),
    ] = Path("data/obd"),
    campaign: Annotated[
        str, typer.Option("--campaign", help="Campaign folder name, such as all, men or women.")
    ] = "all",
    prior: Annotated[
        Path | None,
        typer.Option("--prior", help="BTS prior file. [default: OBD_DIR/prior_bts.yaml]"),
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="Write the full result to this JSON file.")
    ] = None,
    n_draws: Annotated[
        int,
        typer.Option("--n-draws", min=1, help="Monte Carlo draws for the BTS distribution."),
    ] = 100_000,
    seed: Annotated[
        int, typer.Option("--seed", min=0, help="Seed of the draws, bootstrap and folds.")
    ] = 0,
    bootstrap: Annotated[
        int,
        typer.Option(
            "--bootstrap", min=0, help="Bootstrap replicates; 0 uses normal intervals."
        ),
    ] = 200,
    level: Annotated[
        float, typer.Option("--level", help="Confidence level of the intervals, in (0, 1).")
    ] = 0.95,
    folds: Annotated[
        int, typer.Option("--folds", min=2, help="Folds of the cross-fitted reward model.")
    ] = 2,
    quarantine: Annotated[
        bool,
        typer.Option(
            "--quarantine/--reject",
            help="Leave invalid log rows out and count them, or stop at the first invalid chunk.",
        ),
    ] = False,
) -> None:
    """Estimate the BTS policy's click rate from the random log and compare with BTS's own log."""
    try:
        result = run_obd(
            obd_dir,
            campaign,
            prior,
            n_draws=n_draws,
            seed=seed,
            bootstrap=bootstrap,
            level=level,
            folds=folds,
            on_invalid="quarantine" if quarantine else "raise",
        )
    except BanditError as exc:
        Console(stderr=True, soft_wrap=True).print(f"error: {exc}", markup=False, highlight=False)
        raise typer.Exit(code=1) from exc

    console = Console()
    console.print(format_obd_table(result))
    if json_out is not None:
        json_out.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n", encoding="utf-8")
        console.print(f"wrote {json_out}", markup=False, highlight=False)


def format_obd_table(result: dict[str, Any]) -> Table:
    """Return a table of each estimate, its interval and its error against the on-policy value."""
    diagnostics = result["diagnostics"]
    on_policy = result["on_policy"]
    table = Table(
        title=f"BTS on random log, campaign {result['campaign']}",
        caption=(
            f"on-policy click rate {on_policy['value']:.5f} "
            f"[{on_policy['ci_low']:.5f}, {on_policy['ci_high']:.5f}] over {on_policy['n']} "
            f"impressions; n={diagnostics['n']}, ESS={diagnostics['ess']:.0f}, "
            f"max weight={diagnostics['max_weight']:.2f}"
        ),
    )
    table.add_column("estimator")
    table.add_column("value", justify="right")
    table.add_column("ci_low", justify="right")
    table.add_column("ci_high", justify="right")
    table.add_column("relative error", justify="right")

    for name in ESTIMATOR_NAMES:
        estimate = result["estimates"][name]
        error = result["relative_error"][name]
        table.add_row(
            name,
            f"{estimate['value']:.5f}",
            f"{estimate['ci_low']:.5f}",
            f"{estimate['ci_high']:.5f}",
            "n/a" if error is None else f"{error:.3f}",
        )
    return table
