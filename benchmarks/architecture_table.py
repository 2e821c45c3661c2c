"""Print the comparison of architectures from a finished run's tables.

    python benchmarks/architecture_table.py [run directory, default .]

Reads results/aggregate/training_metrics.csv, selectivity_summary.csv and results/claims.csv
of a run of config/cifar10_subset_architectures.yaml (or any run with several models) and prints,
per architecture: test accuracy (last epoch and best-validation checkpoint, mean over clean
networks), mean gOSI per layer for gratings and for the shuffled control at the best-validation
checkpoint, and the headline verdict of each claim with its effect, interval, networks and the
networks that would decide it (docs/method.md §6.2).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from selectivity.claims.evaluation import headline_claims
from selectivity.claims.table import CLAIM_IDS
from selectivity.tuning.summaries import select_checkpoint


def accuracy_rows(metrics: pd.DataFrame, summary: pd.DataFrame) -> list[str]:
    clean = metrics[metrics["label_corruption"] == 0.0]
    last = clean[clean["epoch"] == clean.groupby(["model", "seed"])["epoch"].transform("max")]
    best = select_checkpoint(summary[summary["label_corruption"] == 0.0], "best")
    best = best.drop_duplicates(["model", "seed"])
    lines = [
        "| architecture | networks | test accuracy, last epoch | test accuracy, best-validation checkpoint |"
    ]
    lines.append("| --- | --- | --- | --- |")
    for model, rows in last.groupby("model", sort=False):
        at_best = best[best["model"] == model]["test_accuracy"]
        lines.append(
            f"| {model} | {rows['seed'].nunique()} | {rows['test_accuracy'].mean():.3f} "
            f"(range {rows['test_accuracy'].min():.3f}-{rows['test_accuracy'].max():.3f}) | {at_best.mean():.3f} |"
        )
    return lines


def gosi_rows(summary: pd.DataFrame) -> list[str]:
    best = select_checkpoint(summary[summary["label_corruption"] == 0.0], "best")
    means = best.pivot_table(
        index=["model", "layer_index", "layer"], columns="stimulus_set", values="mean_gosi"
    )
    lines = [
        "| architecture | mean gOSI per layer, gratings / shuffled control (shallow to deep) |",
        "| --- | --- |",
    ]
    for model, rows in means.groupby(level="model", sort=False):
        cells = [
            f"{layer} {row['gratings']:.2f}/{row['shuffled']:.2f}"
            for (_, _, layer), row in rows.sort_index(level="layer_index").iterrows()
        ]
        lines.append(f"| {model} | {', '.join(cells)} |")
    return lines


def paper_claims(claims: pd.DataFrame) -> pd.DataFrame:
    """The headline rows of the paper's claims C1-C6 about orientation (the other features' rows and
    the comparison across features are the feature tables' subject, docs/results.md)."""
    headline = headline_claims(claims)
    return headline[headline["claim"].isin(CLAIM_IDS) & (headline["feature"] == "orientation")]


def networks_needed(row: pd.Series) -> str:
    """The networks that would decide the row at 80% power (docs/method.md §6.2); "n/a" where
    undefined (the claims table's power_note says why)."""
    return "n/a" if pd.isna(row["networks_needed"]) else f"{int(row['networks_needed'])}"


def verdict_rows(claims: pd.DataFrame) -> list[str]:
    headline = paper_claims(claims)
    models = list(dict.fromkeys(headline["model"]))
    lines = ["| claim | " + " | ".join(models) + " |", "| --- |" + " --- |" * len(models)]
    for claim, rows in headline.groupby("claim", sort=True):
        cells = []
        for model in models:
            row = rows[rows["model"] == model].iloc[0]
            cells.append(
                f"{row['verdict']} ({row['test']} [{row['layer']}]: {row['effect_size']:.3g} "
                f"[{row['ci_low']:.3g}, {row['ci_high']:.3g}]; {row['n_networks']} networks, "
                f"{networks_needed(row)} needed)"
            )
        lines.append(f"| {claim} | " + " | ".join(cells) + " |")
    return lines


def tables(run: Path) -> str:
    """The three tables (docs/results.md) of the run in directory ``run``, as Markdown."""
    metrics = pd.read_csv(run / "results/aggregate/training_metrics.csv")
    summary = pd.read_csv(run / "results/aggregate/selectivity_summary.csv")
    claims = pd.read_csv(run / "results/claims.csv")
    claims = claims[claims["model"].isin(metrics["model"].unique())]  # the trained architectures' claims
    blocks = (accuracy_rows(metrics, summary), gosi_rows(summary), verdict_rows(claims))
    return "\n\n".join("\n".join(block) for block in blocks) + "\n"


def main() -> None:
    print(tables(Path(sys.argv[1] if len(sys.argv) > 1 else ".")))


if __name__ == "__main__":
    main()
