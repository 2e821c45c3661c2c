"""Print the tables of the low-level features from a finished run (Markdown, for docs/results.md).

Reads a run directory's ``results/aggregate/feature_summary.csv``, ``results/claims.csv``,
``results/aggregate/half_ablation.csv`` and ``results/aggregate/feature_half_ablation.csv`` (made
by e.g. ``config/cifar10_subset_features.yaml``) and prints, per trained model:

1. the paper's claims C1-C6 (orientation): each verdict row with the tests behind it, their effect
   (median over networks, or the estimate of C3), interval and verdict, and the networks the
   verdict would need (§6.2);
2. per feature and layer, the clean networks at the causal checkpoint: the median over networks of
   the fraction of selective units for gratings, for the shuffled control and at epoch 0 (for F1/F0
   also the fraction of phase-invariant units, F1/F0 below its threshold, which its C1 counts), and
   of the layer's mean index over measured units (docs/method.md §6.4);
3. the verdict of every claim by feature (headline rows: C1-C5 per feature, CF per feature), with
   the effect, its interval and the networks (§6.3);
4. per layer, each feature's top-half ablation cost beyond a random half (median over clean
   networks with its one-sided order-statistic bounds) and, per lower layer and pooled, the CF
   verdict of each feature ("costs more than every other feature");
5. the matched control's collapse: per feature and layer, the mean share of a matched draw's units
   that are top units and the fraction of matched draws equal to the top half (§4.6).

    python benchmarks/feature_tables.py RUN_DIRECTORY [--model cnn7] [--checkpoint best]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from selectivity.statistics import median_confidence_bounds
from selectivity.tuning.features import FEATURE_INDEX_COLUMNS, FEATURES
from selectivity.tuning.summaries import select_checkpoint

LABELS = {
    "orientation": "gOSI",
    "spatial_frequency": "SF selectivity",
    "colour": "colour selectivity",
    "phase": "F1/F0",
}


def arguments(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run", type=Path, help="the run's working directory (holding results/)")
    parser.add_argument("--model", help="one model (default: every trained model in the claims)")
    parser.add_argument(
        "--checkpoint", default="best", choices=("best", "final"), help="causal.checkpoint of the run"
    )
    parser.add_argument("--confidence", type=float, default=0.95, help="claims.confidence of the run")
    return parser.parse_args(argv)


def markdown(table: pd.DataFrame) -> str:
    header = "| " + " | ".join(map(str, table.columns)) + " |"
    rule = "| " + " | ".join("---" for _ in table.columns) + " |"
    rows = ["| " + " | ".join(str(value) for value in row) + " |" for row in table.itertuples(index=False)]
    return "\n".join([header, rule, *rows])


def number(value: float, digits: int = 3) -> str:
    return "n/a" if not np.isfinite(value) else f"{value:.{digits}g}"


def median_over_networks(rows: pd.DataFrame, value: str) -> float:
    values = rows.groupby(["label_corruption", "seed"])[value].mean()
    return float(values.median()) if len(values) else float("nan")


def selectivity_table(summary: pd.DataFrame, model: str, checkpoint: str) -> pd.DataFrame:
    clean = summary[(summary["model"] == model) & np.isclose(summary["label_corruption"].astype(float), 0.0)]
    at_checkpoint = select_checkpoint(clean, checkpoint)
    untrained = clean[(clean["checkpoint"] == "epoch") & (clean["epoch"] == 0)]
    records = []
    for feature in [f for f in FEATURES if f in set(clean["feature"])]:
        of_feature = at_checkpoint[at_checkpoint["feature"] == feature]
        for layer, rows in of_feature.sort_values("layer_index").groupby("layer", sort=False):
            gratings, shuffled = (
                rows[rows["stimulus_set"] == "gratings"],
                rows[rows["stimulus_set"] == "shuffled"],
            )
            start = untrained[(untrained["feature"] == feature) & (untrained["layer"] == layer)]
            start = start[start["stimulus_set"] == "gratings"]
            fraction = "fraction_below_threshold" if feature == "phase" else "fraction_selective"
            records.append(
                {
                    "feature": LABELS[feature],
                    "layer": layer,
                    "threshold": number(gratings["threshold"].iloc[0]) if len(gratings) else "n/a",
                    "selective, gratings": number(median_over_networks(gratings, "fraction_selective")),
                    "shuffled": number(median_over_networks(shuffled, "fraction_selective")),
                    "epoch 0": number(median_over_networks(start, "fraction_selective")),
                    "phase-invariant (gratings / shuffled / epoch 0)": (
                        " / ".join(
                            number(median_over_networks(t, fraction)) for t in (gratings, shuffled, start)
                        )
                        if feature == "phase"
                        else ""
                    ),
                    "mean index (measured units)": number(
                        median_over_networks(gratings, "mean_index_measured")
                    ),
                    "networks": gratings.groupby(["label_corruption", "seed"]).ngroups,
                }
            )
    return pd.DataFrame(records)


ORIENTATION_CLAIMS = ("C1", "C2", "C3", "C4", "C5", "C6")


def verdict_rows(rows: pd.DataFrame) -> pd.DataFrame:
    """A claim's rows that carry its verdicts: the combined "claim" rows, or its headline test."""
    combined = rows[rows["test"] == "claim"]
    return combined if len(combined) else rows[rows["headline"].astype(bool)]


def tests_behind(rows: pd.DataFrame, verdict) -> pd.DataFrame:
    """The tests of a claim decided on the verdict row's layer(s) ("lower+higher" has two); a
    headline test that is itself the verdict (C6) comes first, then the comparisons beside it."""
    layers = set(str(verdict.layer).split("+"))
    tests = rows[(rows["test"] != "claim") & rows["layer"].astype(str).isin(layers)]
    return pd.concat([tests[tests.index == verdict.Index], tests[tests.index != verdict.Index]])


def orientation_claims_table(claims: pd.DataFrame, model: str) -> pd.DataFrame:
    records = []
    for claim in ORIENTATION_CLAIMS:
        rows = claims[
            (claims["model"] == model) & (claims["claim"] == claim) & (claims["feature"] == "orientation")
        ]
        for verdict in verdict_rows(rows).itertuples():
            tests = "; ".join(
                f"{test.test} [{test.layer}] {number(test.effect_size)} "
                f"[{number(test.ci_low)}, {number(test.ci_high)}] {test.verdict}"
                for test in tests_behind(rows, verdict).itertuples()
            )
            records.append(
                {
                    "claim": claim,
                    "layer": verdict.layer,
                    "headline": "yes" if bool(verdict.headline) else "",
                    "tests behind the verdict (effect [interval] verdict)": tests
                    or f"{number(verdict.effect_size)} [{number(verdict.ci_low)}, {number(verdict.ci_high)}]",
                    "networks": verdict.n_networks,
                    "networks needed": number(verdict.networks_needed),
                    "verdict": verdict.verdict,
                }
            )
    return pd.DataFrame(records)


def claims_table(claims: pd.DataFrame, model: str) -> pd.DataFrame:
    rows = claims[
        (claims["model"] == model) & claims["headline"].astype(bool) & (claims["feature"] != "orientation")
    ]
    rows = pd.concat(
        [
            rows,
            claims[
                (claims["model"] == model)
                & (claims["claim"] == "CF")
                & claims["headline"].astype(bool)
                & (claims["feature"] == "orientation")
            ],
        ]
    )
    records = [
        {
            "claim": row.claim,
            "feature": row.feature,
            "test": f"{row.test} [{row.layer}]",
            "effect": number(row.effect_size),
            "interval": f"[{number(row.ci_low)}, {number(row.ci_high)}]",
            "networks": row.n_networks,
            "networks needed": number(row.networks_needed),
            "verdict": row.verdict,
        }
        for row in rows.itertuples()
    ]
    order = {feature: number_ for number_, feature in enumerate(FEATURES)}
    table = pd.DataFrame(records)
    if table.empty:
        return table
    return table.sort_values(
        ["claim", "feature"], key=lambda c: c.map(order) if c.name == "feature" else c
    ).reset_index(drop=True)


def ablation_table(
    orientation: pd.DataFrame, features: pd.DataFrame, claims: pd.DataFrame, model: str, confidence: float
) -> pd.DataFrame:
    sources = [("orientation", orientation, "gosi")]
    sources += [
        (f, features[features["feature"] == f], FEATURE_INDEX_COLUMNS[f])
        for f in FEATURES[1:]
        if not features.empty and f in set(features["feature"])
    ]
    cf = claims[(claims["model"] == model) & (claims["claim"] == "CF") & (claims["test"] == "claim")]
    records = []
    for feature, table, ranking in sources:
        rows = table[
            (table["model"] == model)
            & np.isclose(table["label_corruption"].astype(float), 0.0)
            & (table["ranking"] == ranking)
        ]
        by_condition = rows.pivot_table(
            index=["seed", "layer", "layer_index"],
            columns="condition",
            values="loss_increase_mean",
            aggfunc="mean",
        )
        if not {"top", "random"} <= set(by_condition.columns):
            continue
        effect = (by_condition["top"] - by_condition["random"]).dropna()
        for (layer, layer_index), values in effect.groupby(level=["layer", "layer_index"], sort=True):
            median, low, high, _ = median_confidence_bounds(values.to_numpy(float), confidence)
            verdict = cf[(cf["feature"] == feature) & (cf["layer"] == layer)]["verdict"]
            records.append(
                {
                    "layer": layer,
                    "_index": layer_index,
                    "ranked by": LABELS[feature],
                    "top minus random (nats/image)": f"{number(median)} [{number(low)}, {number(high)}]",
                    "networks": len(values),
                    "CF: costs more than every other": verdict.iloc[0] if len(verdict) else "",
                }
            )
    table = pd.DataFrame(records)
    if table.empty:
        return table
    return table.sort_values(["_index"], kind="stable").drop(columns="_index").reset_index(drop=True)


def collapse_table(features: pd.DataFrame, model: str) -> pd.DataFrame:
    matched = features[(features["model"] == model) & (features["condition"] == "matched")]
    if matched.empty or "overlap_with_top" not in matched.columns:
        return pd.DataFrame()
    grouped = matched.groupby(["feature", "layer_index", "layer"])["overlap_with_top"]
    table = pd.DataFrame(
        {
            "mean overlap with the top half": grouped.mean().map(number),
            "draws equal to the top half": grouped.apply(lambda v: f"{int((v == 1).sum())} of {len(v)}"),
        }
    ).reset_index()
    order = {feature: number_ for number_, feature in enumerate(FEATURES)}
    table = table.assign(_order=table["feature"].map(order)).sort_values(
        ["_order", "layer_index"], kind="stable"
    )
    table["feature"] = table["feature"].map(LABELS)
    return table.drop(columns=["layer_index", "_order"]).reset_index(drop=True)


def main(argv=None) -> None:
    args = arguments(argv)
    results = args.run / "results"
    summary = pd.read_csv(results / "aggregate" / "feature_summary.csv")
    claims = pd.read_csv(results / "claims.csv")
    orientation = pd.read_csv(results / "aggregate" / "half_ablation.csv")
    feature_path = results / "aggregate" / "feature_half_ablation.csv"
    features = pd.read_csv(feature_path) if feature_path.exists() else pd.DataFrame()
    models = [args.model] if args.model else list(dict.fromkeys(claims["model"]))
    for model in models:
        print(f"## {model}\n")
        print("### The paper's claims C1-C6 (orientation)\n")
        print(markdown(orientation_claims_table(claims, model)) + "\n")
        print(
            f"### Selective units per feature and layer (clean networks, {args.checkpoint} checkpoint; medians over networks)\n"
        )
        print(markdown(selectivity_table(summary, model, args.checkpoint)) + "\n")
        print("### Claims by feature (headline rows)\n")
        print(markdown(claims_table(claims, model)) + "\n")
        print(
            f"### Ablation cost by feature (median over clean networks, one-sided {100 * args.confidence:g}% bounds)\n"
        )
        print(markdown(ablation_table(orientation, features, claims, model, args.confidence)) + "\n")
        collapse = collapse_table(features, model)
        if not collapse.empty:
            print("### Matched control of the feature rankings: overlap with the top half\n")
            print(markdown(collapse) + "\n")


if __name__ == "__main__":
    main()
