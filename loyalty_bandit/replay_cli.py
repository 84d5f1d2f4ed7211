"""``loyalty-bandit replay``: train, compare, promote and roll back policies on the log."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from bandit.config import load_config
from bandit.policy_api import Policy
from bandit.store.reader import max_join_seq, split_time
from bandit.store.registry import SOURCE_IMPORT, ModelRegistry
from replay.evaluate import Evaluation, evaluate_store
from replay.gate import GateConfig, GateResult, check_gate
from replay.policies.spec import SPEC_HELP, load_policy
from replay.report import write_evaluation_report, write_json
from replay.train import train_from_store

app = typer.Typer(help="Off-policy evaluation on the service's log, and the promotion gate.", no_args_is_help=True)
console = Console(stderr=True)

StoreArgument = Annotated[Path, typer.Option("--store", help="SQLite store of the service.")]
ConfigOption = Annotated[Path | None, typer.Option("--config", "-c", help="TOML configuration of the service.")]
JsonOption = Annotated[Path | None, typer.Option("--json", help="Write the results as JSON to this file.")]
ReportOption = Annotated[
    Path | None, typer.Option("--report", help="Write report.md, report.json and plots to this folder.")
]
ReplicatesOption = Annotated[int, typer.Option(help="Bootstrap replicates of every interval.")]
SeedOption = Annotated[int, typer.Option(help="Seed of the bootstrap.")]
SinceOption = Annotated[
    float | None, typer.Option("--since", help="Replay only decisions at or after this Unix time.")
]


def _registry(store: Path, config_path: Path | None) -> ModelRegistry:
    config = load_config(config_path, {"store.path": str(store)})
    return ModelRegistry(config.store.path, config.store.model_dir or None)


def print_estimates(evaluation: Evaluation, truth: dict[str, float] | None = None) -> None:
    """Print one row per policy and estimator."""
    table = Table(title=f"{evaluation.n_events} events, {evaluation.level:.0%} bootstrap intervals")
    for column in ("policy", "estimator", "estimate", "interval", *(("true",) if truth else ())):
        table.add_column(column)
    for name, policy in evaluation.policies.items():
        for estimator in policy.accumulators:
            estimate = policy.estimate(estimator, "bootstrap", evaluation.level)
            cells = [name, estimator, f"{estimate.value:.4f}", f"[{estimate.ci_low:.4f}, {estimate.ci_high:.4f}]"]
            if truth:
                cells.append(f"{truth[name]:.4f}" if name in truth else "")
            table.add_row(*cells)
    console.print(table)


def _evaluate(
    store: Path, policies: dict[str, Policy], replicates: int, seed: int, since: float | None
) -> Evaluation:
    return evaluate_store(store, policies, replicates=replicates, seed=seed, decided_from=since)


def _write_comparison(
    evaluation: Evaluation,
    incumbent: str,
    lifts: list[dict[str, Any]],
    json_path: Path | None,
    report: Path | None,
    title: str,
) -> None:
    """Write the comparison as JSON and as a report folder, each when its path is given."""
    if report is not None:
        write_evaluation_report(evaluation, report, title=title, extra={"lifts": lifts}, lifts=lifts)
    if json_path is not None:
        data = evaluation.to_dict()
        data["incumbent"] = incumbent
        data["lifts"] = lifts
        write_json(json_path, data)


def _incumbent(spec: str | None, registry: ModelRegistry) -> tuple[str, Policy]:
    if spec is None:
        spec = "active" if registry.head() is not None else "uniform"
    return spec, load_policy(spec, registry)


@app.command()
def train(
    store: StoreArgument,
    output: Annotated[Path | None, typer.Option(help="Also write the model to this file.")] = None,
    split: Annotated[float, typer.Option(help="Train on this earliest fraction of the log.")] = 0.7,
    register: Annotated[bool, typer.Option(help="Store the model in the registry (not served).")] = True,
    evaluate: Annotated[bool, typer.Option(help="Replay the model on the later part of the log.")] = True,
    passes: Annotated[int, typer.Option(help="Passes over the training part.")] = 1,
    config_path: ConfigOption = None,
    replicates: ReplicatesOption = 500,
    seed: SeedOption = 0,
    json_path: JsonOption = None,
) -> None:
    """Train a VW policy on the earlier part of the log and evaluate it on the later part."""
    if not 0.0 < split < 1.0:
        raise typer.BadParameter(f"--split is {split}; use a fraction between 0 and 1")
    config = load_config(config_path, {"store.path": str(store)})
    boundary = split_time(store, split)
    trained = train_from_store(store, config.policy, decided_before=boundary, passes=passes)
    result: dict[str, Any] = {"trained_events": trained.events, "split_time": boundary}

    if output is not None:
        output.write_bytes(trained.model_bytes)
        result["file"] = str(output)
    if register:
        registry = _registry(store, config_path)
        try:
            record = registry.publish(
                trained.model_bytes, parent="", lineage=-1, source=SOURCE_IMPORT,
                events_learned=trained.events, vw_args=trained.vw_args,
            )
        finally:
            registry.close()
        result["version"] = record.version
        console.print(f"registered model {record.version} trained on {trained.events} events")

    if evaluate:
        from bandit.vw_policy import VWPolicy

        policies: dict[str, Policy] = {"trained": VWPolicy(trained.model_bytes, result.get("version", "trained"))}
        evaluation = _evaluate(store, policies, replicates, seed, boundary)
        print_estimates(evaluation)
        result["evaluation"] = evaluation.to_dict()
    if json_path is not None:
        write_json(json_path, result)


@app.command()
def compare(
    store: StoreArgument,
    candidate: Annotated[list[str], typer.Option(help=f"Candidate policy, repeatable: {SPEC_HELP}.")],
    incumbent: Annotated[
        str | None, typer.Option(help="Incumbent policy. Default: the served model, else uniform.")
    ] = None,
    estimator: Annotated[str, typer.Option(help="Estimator of the lift: ips, snips, dm, dr or sndr.")] = "dr",
    config_path: ConfigOption = None,
    replicates: ReplicatesOption = 500,
    seed: SeedOption = 0,
    since: SinceOption = None,
    json_path: JsonOption = None,
    report: ReportOption = None,
) -> None:
    """Estimate candidates and the incumbent on the same events, with paired lifts."""
    registry = _registry(store, config_path)
    try:
        incumbent_spec, incumbent_policy = _incumbent(incumbent, registry)
        policies = {incumbent_spec: incumbent_policy}
        for spec in candidate:
            policies[spec] = load_policy(spec, registry)
    finally:
        registry.close()

    evaluation = _evaluate(store, policies, replicates, seed, since)
    print_estimates(evaluation)
    if "active" in policies and since is None:
        console.print(
            "note: the active model learned from the events replayed here, so its estimate is in-sample "
            "and optimistic; pass --since to replay only later events"
        )
    lifts = [evaluation.lift(spec, incumbent_spec, estimator).to_dict() for spec in candidate if spec != incumbent_spec]
    for lift in lifts:
        console.print(
            f"{lift['candidate']} − {lift['incumbent']} ({estimator}): {lift['value']:.4f} "
            f"[{lift['ci_low']:.4f}, {lift['ci_high']:.4f}]"
        )
    _write_comparison(evaluation, incumbent_spec, lifts, json_path, report, "Policy comparison")


def promote_candidate(
    store: Path,
    candidate: str,
    *,
    incumbent: str | None = None,
    gate: GateConfig | None = None,
    config_path: Path | None = None,
    replicates: int = 500,
    seed: int = 0,
    since: float | None = None,
) -> tuple[GateResult, Evaluation, str | None]:
    """Evaluate ``candidate`` against the incumbent and promote it if the gate passes.

    Returns the gate result, the evaluation and the promoted version (None
    when the gate failed). A ``file:`` candidate is stored in the registry
    before it is promoted.
    """
    gate = gate or GateConfig()
    registry = _registry(store, config_path)
    try:
        incumbent_spec, incumbent_policy = _incumbent(incumbent, registry)
        candidate_policy = load_policy(candidate, registry)
        evaluation = _evaluate(
            store, {incumbent_spec: incumbent_policy, candidate: candidate_policy}, replicates, seed, since
        )
        result = check_gate(evaluation, candidate, incumbent_spec, gate)
        if not result.passed:
            return result, evaluation, None

        version = candidate_policy.version
        if candidate.startswith("file:"):
            record = registry.publish(
                Path(candidate.partition(":")[2]).read_bytes(), parent="", lineage=-1, source=SOURCE_IMPORT
            )
            version = record.version
        report = {"gate": result.to_dict(), "incumbent": incumbent_spec, "evaluation": evaluation.to_dict()}
        registry.promote(version, report, join_seq_mark=max_join_seq(store))
        return result, evaluation, version
    finally:
        registry.close()


@app.command()
def promote(
    store: StoreArgument,
    candidate: Annotated[str, typer.Option(help="Candidate: registry:VERSION or file:PATH.")],
    incumbent: Annotated[
        str | None, typer.Option(help="Incumbent policy. Default: the served model, else uniform.")
    ] = None,
    estimator: Annotated[str, typer.Option(help="Estimator the gate uses.")] = "dr",
    min_lift: Annotated[float, typer.Option(help="Minimum lower confidence bound of the lift, in reward units.")] = 0.0,
    min_ess: Annotated[float, typer.Option(help="Minimum effective sample size of the candidate's weights.")] = 100.0,
    config_path: ConfigOption = None,
    replicates: ReplicatesOption = 500,
    seed: SeedOption = 0,
    since: SinceOption = None,
    json_path: JsonOption = None,
) -> None:
    """Promote a candidate to the running service only if it clears the gate. Exit code 1 if not."""
    if not (candidate.startswith("registry:") or candidate.startswith("file:")):
        raise typer.BadParameter(f"--candidate {candidate!r} must be registry:VERSION or file:PATH")
    gate = GateConfig(estimator=estimator, min_lift=min_lift, min_ess=min_ess)
    result, evaluation, version = promote_candidate(
        store, candidate, incumbent=incumbent, gate=gate, config_path=config_path,
        replicates=replicates, seed=seed, since=since,
    )
    print_estimates(evaluation)
    lift = result.lift
    console.print(
        f"lift {lift.value:.4f} [{lift.ci_low:.4f}, {lift.ci_high:.4f}], ESS {result.ess:.1f}: "
        + (f"promoted {version}" if version else "not promoted: " + "; ".join(result.reasons))
    )
    if json_path is not None:
        write_json(json_path, {"promoted": version, "gate": result.to_dict(), "evaluation": evaluation.to_dict()})
    if version is None:
        raise typer.Exit(code=1)


@app.command()
def rollback(store: StoreArgument, config_path: ConfigOption = None) -> None:
    """Serve again the model that the newest promotion replaced."""
    registry = _registry(store, config_path)
    try:
        promotion = registry.rollback(join_seq_mark=max_join_seq(store))
    finally:
        registry.close()
    console.print(f"rolled back: serving {promotion.version} again (promotion {promotion.id})")
    json.dump({"version": promotion.version, "promotion": promotion.id}, sys.stdout)
    sys.stdout.write("\n")


@app.command()
def dsjson(
    file: Annotated[Path, typer.Option("--file", help="DSJson file: the service's export or VW's own log.")],
    candidate: Annotated[list[str], typer.Option(help="Candidate, repeatable: uniform or file:PATH (VW model).")],
    incumbent: Annotated[str, typer.Option(help="Incumbent for the lifts: uniform or file:PATH.")] = "uniform",
    estimator: Annotated[str, typer.Option(help="Estimator of the lift: ips, snips, dm, dr or sndr.")] = "dr",
    quarantine: Annotated[
        bool, typer.Option("--quarantine/--reject", help="Set invalid lines aside, or stop at the first chunk.")
    ] = False,
    replicates: ReplicatesOption = 500,
    seed: SeedOption = 0,
    json_path: JsonOption = None,
    report: ReportOption = None,
) -> None:
    """Estimate candidates on a DSJson file, with paired lifts over the incumbent."""
    from replay.dsjson import evaluate_dsjson, load_dsjson_policy

    specs = [incumbent, *[spec for spec in candidate if spec != incumbent]]
    policies = {spec: load_dsjson_policy(spec) for spec in specs}
    evaluation = evaluate_dsjson(
        file, policies, replicates=replicates, seed=seed, on_invalid="quarantine" if quarantine else "raise"
    )
    print_estimates(evaluation)
    if evaluation.n_invalid:
        console.print(f"{evaluation.n_invalid} invalid lines set aside: {evaluation.invalid_reasons}")
    lifts = [evaluation.lift(spec, incumbent, estimator).to_dict() for spec in specs[1:]]
    _write_comparison(evaluation, incumbent, lifts, json_path, report, "DSJson replay")
