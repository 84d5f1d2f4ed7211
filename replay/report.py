"""Replay reports: JSON for machines, Markdown with PNG plots for people."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # Files only; no display is needed or assumed.
import matplotlib.pyplot as plt
import numpy as np
import numpy.typing as npt

from replay.evaluate import Evaluation


def write_json(path: str | Path, data: Mapping[str, Any]) -> None:
    """Write ``data`` as indented JSON, turning NaN and infinity into null."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text(json.dumps(_finite(data), indent=2, sort_keys=False) + "\n", encoding="utf-8")


def _finite(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {str(key): _finite(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(item) for item in value]
    return value


def plot_estimates(
    rows: Sequence[tuple[str, str, float, float, float]],
    path: str | Path,
    truth: Mapping[str, float] | None = None,
    title: str = "Estimated policy value",
) -> None:
    """Plot one point with its interval per (policy, estimator), and the true value when known."""
    policies = list(dict.fromkeys(row[0] for row in rows))
    estimators = list(dict.fromkeys(row[1] for row in rows))
    figure, axis = plt.subplots(figsize=(max(6.0, 1.6 * len(policies) + 2), 4.0))
    width = 0.8 / max(len(estimators), 1)

    for offset, estimator in enumerate(estimators):
        xs, values, lows, highs = [], [], [], []
        for policy, name, value, low, high in rows:
            if name != estimator:
                continue
            xs.append(policies.index(policy) + (offset - (len(estimators) - 1) / 2) * width)
            values.append(value)
            lows.append(value - low)
            highs.append(high - value)
        axis.errorbar(xs, values, yerr=[lows, highs], fmt="o", capsize=3, label=estimator)

    if truth:
        for index, policy in enumerate(policies):
            if policy in truth:
                axis.hlines(truth[policy], index - 0.45, index + 0.45, colors="black", linestyles="dashed")
        axis.plot([], [], "k--", label="true value")
    axis.set_xticks(range(len(policies)), policies)
    axis.set_ylabel("value per decision")
    axis.set_title(title)
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_weights(weights: Mapping[str, npt.NDArray[np.float64]], path: str | Path) -> None:
    """Plot the distribution of importance weights per policy, on a log scale."""
    figure, axis = plt.subplots(figsize=(7.0, 4.0))
    for name, values in weights.items():
        positive = values[values > 0]
        if positive.size == 0:
            continue
        axis.hist(np.log10(positive), bins=50, histtype="step", label=f"{name} ({np.mean(values == 0):.0%} zero)")
    axis.set_xlabel("log10 importance weight (zero weights left out)")
    axis.set_ylabel("events")
    axis.set_title("Importance weights")
    axis.legend(fontsize="small")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def estimate_rows(evaluation: Evaluation) -> list[tuple[str, str, float, float, float]]:
    """Return (policy, estimator, value, ci_low, ci_high) rows with bootstrap intervals."""
    rows = []
    for name, policy in evaluation.policies.items():
        for estimator in policy.accumulators:
            estimate = policy.estimate(estimator, "bootstrap", evaluation.level)
            rows.append((name, estimator, estimate.value, estimate.ci_low, estimate.ci_high))
    return rows


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """Return a Markdown table; floats are shown with four significant digits."""

    def cell(value: Any) -> str:
        if isinstance(value, float):
            return "n/a" if not math.isfinite(value) else f"{value:.4g}"
        return str(value)

    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def write_evaluation_report(
    evaluation: Evaluation,
    out_dir: str | Path,
    *,
    title: str = "Replay report",
    truth: Mapping[str, float] | None = None,
    extra: Mapping[str, Any] | None = None,
    notes: Sequence[str] = (),
    descriptions: Mapping[str, str] | None = None,
    lifts: Sequence[Mapping[str, Any]] = (),
) -> dict[str, Any]:
    """Write report.json, report.md, estimates.png and weights.png; return the JSON data."""
    folder = Path(out_dir)
    folder.mkdir(parents=True, exist_ok=True)
    data = evaluation.to_dict()
    if truth:
        data["true_values"] = dict(truth)
    data.update(extra or {})

    rows = estimate_rows(evaluation)
    plot_estimates(rows, folder / "estimates.png", truth)
    plot_weights({name: policy.weights() for name, policy in evaluation.policies.items()}, folder / "weights.png")
    write_json(folder / "report.json", data)

    headers: tuple[str, ...] = ("policy", "estimator", "estimate", "ci_low", "ci_high")
    table_rows: list[tuple[Any, ...]] = [row for row in rows]
    if truth:
        headers += ("true value",)
        table_rows = [(*row, truth.get(row[0], math.nan)) for row in rows]
    diagnostics_rows = []
    for name, details in data["policies"].items():
        diagnostics = details["diagnostics"]
        diagnostics_rows.append(
            (name, diagnostics["n"], diagnostics["ess"], diagnostics["max_weight"], diagnostics["unsupported_share"])
        )
    sections = [
        f"# {title}",
        f"Source: `{evaluation.source}`; {evaluation.n_events} events replayed, "
        f"{evaluation.n_invalid} invalid rows set aside; logged policy's mean reward "
        f"{evaluation.logged_value:.4g}. Intervals: {evaluation.level:.0%} bootstrap.",
        *(
            ["\n".join(f"- `{name}`: {text}" for name, text in descriptions.items() if name in evaluation.policies)]
            if descriptions
            else []
        ),
        markdown_table(headers, table_rows),
        "The direct method's intervals hold the reward model fixed, so they are too narrow; "
        "read its value as a point estimate. With a small effective sample size (ESS, below), the "
        "other intervals can miss too: heavy-tailed rewards that a policy would often earn may be "
        "missing from the log.",
        "![estimates](estimates.png)",
        *(
            [
                "## Lifts (paired bootstrap)",
                markdown_table(
                    ("candidate", "incumbent", "estimator", "lift", "ci_low", "ci_high"),
                    [
                        (lift["candidate"], lift["incumbent"], lift["estimator"], lift["value"],
                         lift["ci_low"], lift["ci_high"])
                        for lift in lifts
                    ],
                ),
            ]
            if lifts
            else []
        ),
        "## Importance weights",
        markdown_table(("policy", "events", "ESS", "max weight", "share never taken"), diagnostics_rows),
        "![weights](weights.png)",
        *notes,
    ]
    (folder / "report.md").write_text("\n\n".join(sections) + "\n", encoding="utf-8")
    return data
