"""Are bf16-trained networks draws of the same distribution as fp32-trained ones? From two runs' tables.

    python benchmarks/precision_equivalence.py FP32_RUN BF16_RUN [--csv table.csv]

FP32_RUN and BF16_RUN are the working directories of two runs of one config that differ only in
``training.precision`` (config/cifar10_subset_precision.yaml says how). The script checks that
they do (every network's best checkpoint: its precision, and its training settings apart from
the precision), then reads from each run ``results/aggregate/training_metrics.csv``,
``selectivity_summary.csv``, ``half_ablation.csv``, ``shift_invariance.csv`` and
``results/claims.csv`` and prints, for the clean-label networks, per quantity:

- test accuracy (last epoch and best-validation checkpoint), mean gOSI of each layer (gratings,
  best-validation checkpoint), and the per-network statistic behind each claim's headline test
  (computed as :mod:`selectivity.claims.evaluation` computes it; C3 is a correlation across networks and
  has none, so the lower-layer mean gOSI it correlates is given instead);
- fp32 and bf16 mean (SD) over networks, the median of the per-seed difference bf16 - fp32 (a
  seed fixes initialisation, data order and augmentation in both runs, so networks pair by seed)
  with its one-sided 95% order-statistic bounds, and an equivalence verdict against the quantity's
  stated margin (:data:`MARGINS`): two one-sided tests, each the claims' "not worse than" rule
  (:func:`selectivity.claims.verdicts.not_worse_than`: exact sign test at alpha = 0.05 with the
  bound that inverts it, level kept for any shape of values, docs/method.md §6.2), one for
  d < margin and one for -d < margin. "equivalent" needs both; "different" means a difference
  beyond the margin was shown; otherwise "inconclusive", with the networks that would decide: for
  each one-sided test the claims' sign-test model (:mod:`selectivity.claims.power`: the share of
  seeds on its side of the margin, (k + 1/2) / (n + 1)), the more of the two;
- a control with a known difference, to show what the test says when networks do differ: the
  same fp32 networks at the middle saved epoch against the last (test accuracy, lower-layer mean
  gOSI);
- the claims' headline verdicts of both runs side by side.

The runs are called equivalent only if every quantity is (an intersection-union test: each at
level 0.05, the whole at 0.05, no correction needed).
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import numpy as np
import pandas as pd

from selectivity.networks.architectures import DEFAULT_LAYER_ROLES
from selectivity.networks.checkpoints import read_checkpoint
from selectivity.claims.table import ClaimSettings, mean_over_layers, reference_networks
from selectivity.claims.claim_tests import loss_increase_by_condition
from selectivity.claims.evaluation import headline_claims
from selectivity.statistics import correlation
from selectivity.claims.power import estimated_side_probability, sign_test_networks_needed_at
from selectivity.tuning.summaries import layer_average, select_checkpoint
from selectivity.claims.verdicts import (
    NOT_SUPPORTED,
    SUPPORTED,
    TOO_FEW,
    VerdictRule,
    not_worse_than,
    positive_effect,
)

#: Equivalence margins, fixed before the comparison was run: family -> (margin, why).
MARGINS: dict[str, tuple[float, str]] = {
    "accuracy": (
        0.02,
        "test accuracy: 2 points, about the seed-to-seed range of cnn7 after 10 epochs on this subset "
        "(0.598-0.634 in docs/results.md 'Three architectures')",
    ),
    "gosi": (
        0.03,
        "mean gOSI of a layer: a tenth of the smallest gap between a cnn7 layer's gOSI and its "
        "shuffled control at 10 epochs (conv1 0.27 vs 0.08)",
    ),
    "C1": (0.05, "C1: 5 points of the fraction of selective units; the C1 effects are 0.25-0.5"),
    "C2": (0.2, "C2: one step of a Spearman correlation over the 4 saved epochs after epoch 0"),
    "C4": (0.1, "C4: 0.1 nats per image, the claims' own equivalence margin (claims.equivalence_margin)"),
    "C5": (0.01, "C5: 0.01 of normalised invariance, the size of the C5 effects this workflow reports"),
    "C6": (0.1, "C6: 0.1 nats per image, the claims' own equivalence margin"),
}
CLEAN = 0.0


def read_run(run: Path) -> dict[str, pd.DataFrame]:
    tables = {
        "metrics": run / "results/aggregate/training_metrics.csv",
        "summary": run / "results/aggregate/selectivity_summary.csv",
        "half_ablation": run / "results/aggregate/half_ablation.csv",
        "invariance": run / "results/aggregate/shift_invariance.csv",
        "claims": run / "results/claims.csv",
    }
    missing = [str(path) for path in tables.values() if not path.is_file()]
    if missing:
        raise SystemExit(f"{run}: missing {', '.join(missing)}; is it a finished run?")
    return {name: pd.read_csv(path) for name, path in tables.items()}


def run_precision(run: Path, tables: dict[str, pd.DataFrame]) -> tuple[str, dict, list[int]]:
    """The precision and training settings (without precision) shared by a run's clean networks."""
    networks = tables["metrics"][np.isclose(tables["metrics"]["label_corruption"], CLEAN)]
    networks = networks[["model", "dataset", "label_corruption", "seed"]].drop_duplicates()
    precisions, settings = set(), []
    for row in networks.itertuples():
        path = (
            run / "results/networks" / row.model / row.dataset / f"corruption{row.label_corruption:.2f}"
            / f"seed{row.seed}/checkpoints/best.pt"
        )  # fmt: skip
        blob = read_checkpoint(path)
        precisions.add(blob.get("precision", "fp32"))
        recorded = dict(blob.get("provenance", {}).get("settings", {}))
        for key in ("precision", "seed", "evaluation_batch_size", "cuda_graphs"):
            recorded.pop(key, None)
        settings.append(recorded)
    if len(precisions) != 1:
        raise SystemExit(f"{run}: its networks were trained in several precisions {sorted(precisions)}")
    if any(other != settings[0] for other in settings[1:]):
        raise SystemExit(f"{run}: its networks were trained with different settings")
    return precisions.pop(), settings[0], sorted(int(seed) for seed in networks["seed"])


def by_seed(series: pd.Series) -> pd.Series:
    """A per-network series (any network index with a seed level) indexed by seed alone."""
    values = series.copy()
    values.index = values.index.get_level_values("seed").astype(int)
    return values.sort_index()


def per_network_quantities(tables: dict[str, pd.DataFrame], settings: ClaimSettings, model: str):
    """(name, margin family, per-seed values) of every compared quantity of the clean networks."""
    network = ["model", "dataset", "label_corruption", "seed"]
    metrics = reference_networks(tables["metrics"], settings)
    metrics = metrics[metrics["model"] == model]
    summary = reference_networks(tables["summary"], settings)
    summary = summary[summary["model"] == model]
    last_epoch = int(metrics["epoch"].max())
    quantities = []

    last = metrics[metrics["epoch"] == last_epoch].set_index(network)["test_accuracy"]
    quantities.append((f"test accuracy, epoch {last_epoch}", "accuracy", by_seed(last)))
    best = select_checkpoint(summary, "best")
    best_gratings = best[best["stimulus_set"] == "gratings"]
    accuracy_at_best = best_gratings.drop_duplicates(network).set_index(network)["test_accuracy"]
    quantities.append(("test accuracy, best-validation checkpoint", "accuracy", by_seed(accuracy_at_best)))
    for layer, rows in best_gratings.sort_values("layer_index").groupby("layer", sort=False):
        quantities.append(
            (f"mean gOSI {layer} (best checkpoint)", "gosi", by_seed(rows.set_index(network)["mean_gosi"]))
        )

    # C1: fraction selective, gratings minus shuffled and trained minus untrained, lower and higher
    fractions = best.pivot_table(
        index=network + ["layer"], columns="stimulus_set", values="fraction_selective"
    )
    untrained = summary[(summary["checkpoint"] == "epoch") & (summary["epoch"] == 0)]
    untrained = untrained[untrained["stimulus_set"] == "gratings"].set_index(network + ["layer"])[
        "fraction_selective"
    ]
    for group, layers in (("lower", settings.lower_layers), ("higher", settings.higher_layers)):
        beyond_control = mean_over_layers(fractions["gratings"] - fractions["shuffled"], layers)
        beyond_untrained = mean_over_layers(
            fractions["gratings"] - untrained.reindex(fractions.index), layers
        )
        quantities.append(
            (f"C1 {group}: selective fraction, gratings minus shuffled", "C1", by_seed(beyond_control))
        )
        quantities.append(
            (f"C1 {group}: selective fraction, trained minus epoch 0", "C1", by_seed(beyond_untrained))
        )

    # C2: per network, Spearman correlation over the saved epochs after 0 of lower-layer gOSI and accuracy
    epochs = summary[(summary["checkpoint"] == "epoch") & (summary["epoch"] >= 1)]
    averaged = layer_average(epochs, settings.lower_layers, measure="mean_gosi_responsive")
    correlations = {
        seed: correlation(
            rows["mean_gosi_responsive"], rows["test_accuracy"], method=settings.correlation_method
        )
        for seed, rows in averaged.groupby("seed")
    }
    quantities.append(
        ("C2: correlation over epochs, lower-layer gOSI vs accuracy", "C2", pd.Series(correlations))
    )

    # C3's per-network input (C3 itself is a correlation across networks)
    final = select_checkpoint(summary, "final")
    lower_final = layer_average(final, settings.lower_layers, measure="mean_gosi_responsive").set_index(
        network
    )
    quantities.append(
        (
            "C3 input: lower-layer mean gOSI, final checkpoint",
            "gosi",
            by_seed(lower_final["mean_gosi_responsive"]),
        )
    )

    # C4 and C6: loss increase differences of the half ablation
    half = reference_networks(tables["half_ablation"], settings)
    half = half[half["model"] == model]
    by_condition = loss_increase_by_condition(half, "gosi", settings.lower_layers)
    for control in ("bottom", "random", "matched"):
        if control in by_condition.columns:
            values = mean_over_layers(by_condition["top"] - by_condition[control], settings.lower_layers)
            quantities.append(
                (f"C4: loss increase, top minus {control} (lower layers)", "C4", by_seed(values))
            )
    class_layers = list(
        half[half["ranking"] == "class_selectivity"].sort_values("layer_index")["layer"].unique()
    )
    class_conditions = loss_increase_by_condition(half, "class_selectivity", class_layers)
    values = mean_over_layers(class_conditions["top"] - class_conditions["random"], class_layers)
    quantities.append(
        ("C6: loss increase, class-selective top minus random (all layers)", "C6", by_seed(values))
    )

    # C5: normalised shift invariance of higher layers, each control minus top, lower layers ablated
    cell = ["measured_layer", "ablated_layer", "direction", "shift_px"]
    invariance = reference_networks(tables["invariance"], settings)
    invariance = invariance[
        (invariance["model"] == model)
        & invariance["measured_layer"].isin(settings.higher_layers)
        & invariance["ablated_layer"].isin(settings.lower_layers)
    ]
    pivot = invariance.pivot_table(
        index=network + cell, columns="condition", values="normalised_invariance_mean"
    )
    for control in ("bottom", "random", "matched"):
        if control in pivot.columns:
            per_layer = (
                (pivot[control] - pivot["top"]).dropna().groupby(level=network + ["ablated_layer"]).mean()
            )
            values = mean_over_layers(
                per_layer.rename_axis(index={"ablated_layer": "layer"}), settings.lower_layers
            )
            quantities.append(
                (f"C5: invariance, {control} minus top (lower layers ablated)", "C5", by_seed(values))
            )
    return quantities


def networks_needed(differences: np.ndarray, margin: float, alpha: float) -> str:
    """Networks at which both one-sided sign tests (d < margin, d > -margin) would reach 80% power,
    each network's difference on the tested side of its margin with the probability the run's
    share estimates (the claims' model, :mod:`selectivity.claims.power`)."""
    needed = []
    for inside in (differences < margin, differences > -margin):
        probability = estimated_side_probability(int(inside.sum()), int(differences.size))
        if probability <= 0.5:
            return "none (most differences beyond the margin)"
        needed.append(sign_test_networks_needed_at(probability, alpha))
    most = max(needed)
    return "> 10000" if math.isinf(most) else f"{most:.0f}"


def equivalence(differences: np.ndarray, margin: float, rule: VerdictRule) -> tuple[str, object]:
    """The verdict of two one-sided "not worse than" tests of the per-seed differences."""
    upper = not_worse_than(differences, margin, rule)
    lower = not_worse_than(-differences, margin, rule)
    if TOO_FEW in (upper.verdict, lower.verdict):
        return "too few networks", upper.test
    if upper.verdict == SUPPORTED and lower.verdict == SUPPORTED:
        return "equivalent", upper.test
    if NOT_SUPPORTED in (upper.verdict, lower.verdict):
        return "different", upper.test
    return "inconclusive", upper.test


def compare(name: str, family: str, first: pd.Series, second: pd.Series, rule: VerdictRule) -> dict:
    seeds = sorted(set(first.dropna().index) & set(second.dropna().index))
    a, b = first.reindex(seeds).to_numpy(float), second.reindex(seeds).to_numpy(float)
    differences = b - a
    margin = MARGINS[family][0]
    verdict, test = equivalence(differences, margin, rule)
    # differs from 0: the claims' rule for an effect above 0, "not supported" meaning below it
    shown_nonzero = positive_effect(differences, rule).verdict in (SUPPORTED, NOT_SUPPORTED)
    return {
        "quantity": name,
        "networks": len(seeds),
        "first_mean": a.mean(),
        "first_sd": a.std(ddof=1),
        "second_mean": b.mean(),
        "second_sd": b.std(ddof=1),
        "difference": test.estimate,
        "ci_low": test.ci_low,
        "ci_high": test.ci_high,
        "margin": margin,
        "verdict": verdict,
        "nonzero": shown_nonzero,
        "networks_to_decide": (
            "-"
            if verdict in ("equivalent", "different")
            else networks_needed(differences, margin, rule.alpha)
        ),
    }


def format_rows(rows: list[dict], first: str, second: str) -> str:
    lines = [
        f"| quantity (per network) | networks | {first} mean (SD) | {second} mean (SD) | {second} - {first}, "
        "median [one-sided 95% bounds] | margin | verdict | networks to decide |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in rows:
        nonzero = ", differs from 0" if row["nonzero"] else ""
        lines.append(
            f"| {row['quantity']} | {row['networks']} | {row['first_mean']:.3f} ({row['first_sd']:.3f}) | "
            f"{row['second_mean']:.3f} ({row['second_sd']:.3f}) | {row['difference']:+.3f} "
            f"[{row['ci_low']:+.3f}, {row['ci_high']:+.3f}] | ±{row['margin']:g} | {row['verdict']}{nonzero} | "
            f"{row['networks_to_decide']} |"
        )
    return "\n".join(lines)


def verdict_table(fp32_claims: pd.DataFrame, bf16_claims: pd.DataFrame) -> str:
    lines = ["| claim | fp32 | bf16 |", "| --- | --- | --- |"]
    first, second = headline_claims(fp32_claims), headline_claims(bf16_claims)
    for claim in sorted(set(first["claim"]) | set(second["claim"])):
        cells = []
        for table in (first, second):
            row = table[table["claim"] == claim]
            if row.empty:
                cells.append("-")
                continue
            row = row.iloc[0]
            cells.append(
                f"{row['verdict']} ({row['test']} [{row['layer']}]: {row['effect_size']:.3g} "
                f"[{row['ci_low']:.3g}, {row['ci_high']:.3g}])"
            )
        lines.append(f"| {claim} | {cells[0]} | {cells[1]} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("fp32_run", type=Path, help="working directory of the fp32 run")
    parser.add_argument("bf16_run", type=Path, help="working directory of the bf16 run")
    parser.add_argument("--model", default="cnn7")
    parser.add_argument("--csv", type=Path, help="also write the comparison table to this CSV file")
    args = parser.parse_args()

    fp32, bf16 = read_run(args.fp32_run), read_run(args.bf16_run)
    (p1, s1, seeds1), (p2, s2, seeds2) = run_precision(args.fp32_run, fp32), run_precision(
        args.bf16_run, bf16
    )
    if (p1, p2) != ("fp32", "bf16"):
        raise SystemExit(
            f"expected an fp32 run and a bf16 run, got {p1} ({args.fp32_run}) and {p2} ({args.bf16_run})"
        )
    if s1 != s2:
        changed = sorted(key for key in set(s1) | set(s2) if s1.get(key) != s2.get(key))
        raise SystemExit(f"the runs differ in more than the precision: {changed}")
    if seeds1 != seeds2:
        raise SystemExit(f"the runs trained other seeds: {seeds1} and {seeds2}")

    roles = DEFAULT_LAYER_ROLES[args.model]
    settings = ClaimSettings(lower_layers=roles.lower, higher_layers=roles.higher)
    rule = settings.rule
    first = per_network_quantities(fp32, settings, args.model)
    second = {name: values for name, _, values in per_network_quantities(bf16, settings, args.model)}
    rows = [compare(name, family, values, second[name], rule) for name, family, values in first]
    overall = "equivalent" if all(row["verdict"] == "equivalent" for row in rows) else "not shown equivalent"

    # Control: what the test says of networks known to differ (fp32, middle vs last saved epoch).
    summary = reference_networks(fp32["summary"], settings)
    summary = summary[(summary["model"] == args.model) & (summary["checkpoint"] == "epoch")]
    saved = sorted(int(e) for e in summary["epoch"].unique() if e > 0)
    middle, last = min(saved, key=lambda e: abs(e - saved[-1] / 2)), saved[-1]
    network = ["model", "dataset", "label_corruption", "seed"]
    averaged = layer_average(summary, settings.lower_layers, measure="mean_gosi").set_index(network)
    control_rows = []
    for column, family, label in (
        ("test_accuracy", "accuracy", "test accuracy"),
        ("mean_gosi", "gosi", "lower-layer mean gOSI"),
    ):
        values = {epoch: by_seed(averaged[averaged["epoch"] == epoch][column]) for epoch in (middle, last)}
        control_rows.append(
            compare(
                f"control: {label}, fp32 epoch {middle} vs epoch {last}",
                family,
                values[middle],
                values[last],
                rule,
            )
        )

    print(
        f"{args.model}, {len(seeds1)} clean networks per precision (seeds {seeds1}), paired by seed; "
        f"fp32 run {args.fp32_run}, bf16 run {args.bf16_run}; {settings.confidence:.0%} intervals, "
        "equivalence = both one-sided 'not worse than' tests within the margin\n"
    )
    print(format_rows(rows, "fp32", "bf16"))
    print(
        f"\nOverall: {overall} ({sum(r['verdict'] == 'equivalent' for r in rows)} of {len(rows)} quantities equivalent).\n"
    )
    print("Control, a known difference (the same fp32 networks earlier and later in training):\n")
    print(format_rows(control_rows, f"epoch {middle}", f"epoch {last}"))
    print("\nMargins, fixed before the runs:")
    for family, (margin, why) in MARGINS.items():
        print(f"- ±{margin:g}: {why}")
    print("\nHeadline verdicts of the claims:\n")
    print(verdict_table(fp32["claims"], bf16["claims"]))
    if args.csv:
        pd.DataFrame(rows + control_rows).to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
