"""The tests of the paper's claims C1-C6 (docs/method.md §6), each a function of its tables.

Each claim reduces to one or more *tests*, each on one value (or pair) per network,
decided by a rule of :mod:`selectivity.claims.verdicts` (calibrated by simulation:
``benchmarks/calibration.py``). A claim's verdict needs every test it names (an
intersection-union test); controls are reported beside it. Nothing here holds a
target value: with other tables the verdicts change.

The claims table (:data:`CLAIM_COLUMNS`) has one row per test: ``test`` names what is
tested, ``layer`` the layer or the group of layers it pools ("lower", "higher",
"pooled" = the lower layers together, "all"), and ``headline`` marks the one row per
claim whose verdict is the claim's. C4 and C5 also give a verdict per lower layer
(rows with ``test == "claim"`` and a layer name).

Shared conventions (all in :class:`ClaimSettings`):

* "Lower" and "higher" layers are the configured names present in the table at hand;
  a network counts only if it has every one of them.
* Claims about one kind of network (C1, C2, C4-C6) use the networks trained on clean
  labels (``reference_label_corruption``); C3 uses all corruption levels.
* A causal table (half ablation, shift invariance) must hold one checkpoint per network.
* Given networks (a user's ``external_networks`` entry, one network per weights file) get the
  claims that need no training history: C1 against the constructor's random initialisation
  (their tuning checkpoint "untrained"), C4-C6 with test images; the others are one row with
  verdict "not applicable" and the reason (``not_applicable`` of
  :func:`selectivity.claims.evaluation.evaluate_claims`).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from selectivity.statistics import correlation
from selectivity.tuning.summaries import (
    NETWORK_COLUMNS,
    layer_average,
    require_columns,
    select_checkpoint,
)
from selectivity.claims.verdicts import (
    SUPPORTED,
    not_worse_than,
    positive_correlation,
    positive_effect,
    positive_median,
    positive_within_strata_correlation,
)

from selectivity.claims.wording import (
    COMPARISON,
    SPECIFICITY_CONTROL,
    SPECIFICITY_TESTS,
    checkpoint_words,
)
from selectivity.claims.table import (
    ClaimSettings,
    TestRow,
    layer_list,
    format_number,
    make_test_row,
    missing_row,
    make_claim_row,
    reference_networks,
    layers_present,
    check_one_checkpoint,
    controls_present,
    without_matched,
    mean_over_layers,
    difference_rows,
    FeatureView,
    orientation_view,
)

logger = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- claims


def _selective_fraction_tests(
    group: str,
    layers: list[str],
    fractions: pd.DataFrame,
    untrained: pd.Series,
    settings: ClaimSettings,
    view: FeatureView,
) -> list[TestRow]:
    """C1's two tests for one group of layers: beyond the shuffled control, beyond epoch 0."""

    def positive_effect_row(test: str, values: pd.Series, what: str) -> TestRow:
        return make_test_row(
            test, group, positive_effect(values, settings.rule), what, settings, values.index
        )

    parts = []
    if {"gratings", "shuffled"} <= set(fractions.columns):
        values = mean_over_layers(fractions["gratings"] - fractions["shuffled"], layers)
        what = (
            f"Fraction of units with {view.label} {view.comparison} {view.threshold} for gratings minus for the "
            f"shuffled control, at {checkpoint_words(settings.tuning_checkpoint)}, mean over {group} layers "
            f"{layer_list(layers)}"
        )
        parts.append(positive_effect_row("gratings_minus_shuffled", values, what))
    else:
        parts.append(
            missing_row("gratings_minus_shuffled", group, "the summary lacks the shuffled stimulus set.")
        )
    if len(untrained):
        values = mean_over_layers(fractions["gratings"] - untrained.reindex(fractions.index), layers)
        what = (
            f"Fraction of units with {view.label} {view.comparison} {view.threshold} (gratings) at "
            f"{checkpoint_words(settings.tuning_checkpoint)} minus at epoch 0 (untrained), mean over {group} "
            f"layers {layer_list(layers)}"
        )
        parts.append(positive_effect_row("trained_minus_untrained", values, what))
    else:
        parts.append(
            missing_row(
                "trained_minus_untrained",
                group,
                "epoch 0 is not saved; add 0 to training.checkpoint_epochs.",
            )
        )
    return parts


def claim_selective_units_exist(
    summary: pd.DataFrame, settings: ClaimSettings, view: FeatureView | None = None
) -> list[TestRow]:
    """C1: selective fraction beyond the shuffled control and beyond epoch 0, lower and higher layers.

    ``view`` (default gOSI from the selectivity summary) says which feature's fraction
    (:class:`~selectivity.claims.table.FeatureView`)."""
    view = view or orientation_view(settings)
    if summary.empty:
        return [missing_row("claim", "lower+higher", "no tuning summary rows.", True)]
    require_columns(
        summary,
        list(NETWORK_COLUMNS)
        + ["checkpoint", "epoch", "layer", "stimulus_set", view.fraction_column, view.threshold_column],
        "summary",
    )
    thresholds = summary[view.threshold_column].unique()
    if not np.allclose(thresholds, view.threshold):
        raise ValueError(
            f"the summary counted units as selective at {view.label} > {list(thresholds)}, "
            f"but the claim settings say {view.threshold}"
        )
    clean = reference_networks(summary, settings)
    rows = select_checkpoint(clean, settings.tuning_checkpoint)
    lower = layers_present(settings.lower_layers, rows["layer"])
    higher = layers_present(settings.higher_layers, rows["layer"])
    if not lower or not higher:
        return [
            missing_row(
                "claim",
                "lower+higher",
                f"the {settings.tuning_checkpoint} checkpoints of networks with label corruption "
                f"{settings.reference_label_corruption} lack lower layers {list(settings.lower_layers)} or higher "
                f"layers {list(settings.higher_layers)}.",
                True,
            )
        ]
    index = list(NETWORK_COLUMNS) + ["layer"]
    fractions = rows.pivot_table(
        index=index, columns="stimulus_set", values=view.fraction_column, aggfunc="mean"
    )
    # epoch 0 of a trained network; a given network's constructor, randomly initialised
    initialisation = ((clean["checkpoint"] == "epoch") & (clean["epoch"] == 0)) | (
        clean["checkpoint"] == "untrained"
    )
    untrained = clean[initialisation & (clean["stimulus_set"] == "gratings")]
    untrained = untrained.set_index(index)[view.fraction_column]
    parts = []
    for group, layers in (("lower", lower), ("higher", higher)):
        parts += _selective_fraction_tests(group, layers, fractions, untrained, settings, view)
    return [*parts, make_claim_row("lower+higher", parts, headline=True)]


def _per_network_epoch_correlations(averaged: pd.DataFrame, measure: str, method: str) -> pd.Series:
    values = {
        network: correlation(epochs[measure], epochs["test_accuracy"], method=method)
        for network, epochs in averaged.groupby(list(NETWORK_COLUMNS), sort=True)
    }
    series = pd.Series(values, dtype=float)
    if len(series):
        series.index = pd.MultiIndex.from_tuples(series.index, names=list(NETWORK_COLUMNS))
    return series


def claim_selectivity_rises_with_accuracy(
    summary: pd.DataFrame, settings: ClaimSettings, view: FeatureView | None = None
) -> list[TestRow]:
    """C2: per clean network, correlation over saved epochs after 0 of lower-layer gOSI (or
    ``view``'s index) with accuracy."""
    view = view or orientation_view(settings)
    main_test = f"{view.test_prefix}_vs_accuracy"
    if summary.empty:
        return [missing_row(main_test, "lower", "no tuning summary rows.", True)]
    rows = reference_networks(summary, settings)
    rows = rows[(rows["checkpoint"] == "epoch") & (rows["epoch"] >= 1)]
    lower = layers_present(settings.lower_layers, rows["layer"])
    if not lower:
        return [
            missing_row(
                main_test,
                "lower",
                f"the summary lacks the lower layers {list(settings.lower_layers)}.",
                True,
            )
        ]
    method = settings.correlation_method
    results = []
    tests = (
        (main_test, view.mean_column, "gratings", view.mean_label),
        (
            f"shuffled_{main_test}",
            view.mean_column,
            "shuffled",
            f"control: mean {view.label} for the shuffled stimuli",
        ),
        (
            "mean_response_vs_accuracy",
            "mean_peak_response",
            "gratings",
            "control: mean peak grating response",
        ),
    )
    for test, measure, stimulus_set, label in tests:
        averaged = layer_average(rows, lower, measure=measure, stimulus_set=stimulus_set)
        correlations = _per_network_epoch_correlations(averaged, measure, method)
        epochs = averaged.groupby(list(NETWORK_COLUMNS))["epoch"].nunique()
        defined = correlations.dropna()
        what = (
            f"Per clean network, {method.capitalize()} correlation across its {_count_range(epochs)} saved epochs "
            "after epoch 0 "
            f"between the {label} of lower layers {layer_list(lower)} and test accuracy; median over networks "
            f"({len(correlations) - len(defined)} networks with an undefined correlation left out)"
        )
        decision = positive_median(defined.to_numpy(float), settings.rule)
        row = make_test_row(test, "lower", decision, what, settings, defined.index)
        if test in SPECIFICITY_TESTS["C2"]:
            row = dataclasses.replace(row, control=SPECIFICITY_CONTROL)
        results.append(row)
    main, *controls = results
    control_text = (
        " Controls: "
        + "; ".join(f"{row.test} median {format_number(row.decision.test.estimate)}" for row in controls)
        + "."
    )
    # Supported with a supported control: the rise is not about orientation selectivity.
    claim = make_claim_row(
        "lower", [main], True, control_text, controls, not_specific_when=SUPPORTED, specificity_required=False
    )
    return [*results, claim]


def _count_range(counts: pd.Series) -> str:
    """'5' when every network has 5, '3 to 5' otherwise ('0' for none)."""
    if not len(counts):
        return "0"
    low, high = int(counts.min()), int(counts.max())
    return f"{low}" if low == high else f"{low} to {high}"


def claim_selectivity_tracks_generalization(
    summary: pd.DataFrame, settings: ClaimSettings, view: FeatureView | None = None
) -> list[TestRow]:
    """C3: across all networks and within label-corruption levels, lower-layer gOSI (or ``view``'s
    index) vs test accuracy."""
    view = view or orientation_view(settings)
    if summary.empty:
        return [missing_row("claim", "lower", "no tuning summary rows.", True)]
    rows = select_checkpoint(summary, settings.across_network_checkpoint)
    lower = layers_present(settings.lower_layers, rows["layer"])
    if not lower:
        return [
            missing_row(
                "claim", "lower", f"the summary lacks the lower layers {list(settings.lower_layers)}.", True
            )
        ]
    networks = layer_average(rows, lower, measure=view.mean_column).dropna(
        subset=[view.mean_column, "test_accuracy"]
    )
    index = networks.set_index(list(NETWORK_COLUMNS)).index
    gratings = rows[(rows["stimulus_set"] == "gratings") & rows["layer"].isin(lower)]
    if "n_dead" in gratings.columns:
        excluded = gratings["n_dead"].sum()
    elif "n_measured" in gratings.columns:
        excluded = (gratings["n_units"] - gratings["n_measured"]).sum()
    dead_text = (
        f" {view.excluded_label}: {int(excluded)} of "
        f"{int(gratings['n_units'].sum())} lower-layer units over all networks."
        if {"n_dead", "n_measured"} & set(gratings.columns)
        else ""
    )
    x, y = networks[view.mean_column].to_numpy(float), networks["test_accuracy"].to_numpy(float)
    levels = sorted(float(level) for level in networks["label_corruption"].unique())
    checkpoint = checkpoint_words(settings.across_network_checkpoint)
    what = (
        f"Across networks (at {checkpoint}; label-corruption levels {levels} x seeds): "
        f"{settings.correlation_method.capitalize()} correlation between the mean {view.label} of lower layers "
        f"{layer_list(lower)} and test accuracy"
    )
    if len(levels) < 2:
        across = missing_row(
            "across_levels", "lower", f"the networks span only the label-corruption levels {levels}."
        )
    else:
        decision = positive_correlation(x, y, settings.rule, settings.correlation_method)
        across = make_test_row(
            "across_levels", "lower", decision, what, settings, index, n_levels=len(levels)
        )
    within_decision = positive_within_strata_correlation(
        x, y, networks["label_corruption"].to_numpy(float), settings.rule
    )
    within = make_test_row(
        "within_levels",
        "lower",
        within_decision,
        f"Within label-corruption levels (at {checkpoint}): rank correlation of the same quantities, "
        f"ranked within each level and pooled, p-value by permuting within levels",
        settings,
        index,
        n_levels=len(levels),
    )
    return [across, within, make_claim_row("lower", [across, within], headline=True, extra=dead_text)]


def _check_half_ablation(half_ablation: pd.DataFrame) -> None:
    require_columns(
        half_ablation,
        list(NETWORK_COLUMNS)
        + ["layer", "layer_index", "ranking", "condition", "draw", "loss_increase_mean"],
        "half ablation",
    )
    check_one_checkpoint(half_ablation, "half ablation")


def loss_increase_by_condition(
    half_ablation: pd.DataFrame, ranking: str, layers: Sequence[str]
) -> pd.DataFrame:
    """Per network and layer, the loss increase of each condition (random and matched averaged over draws)."""
    rows = half_ablation[(half_ablation["ranking"] == ranking) & half_ablation["layer"].isin(list(layers))]
    return rows.pivot_table(
        index=list(NETWORK_COLUMNS) + ["layer"],
        columns="condition",
        values="loss_increase_mean",
        aggfunc="mean",
    )


def claim_selective_ablation_hurts(
    half_ablation: pd.DataFrame, settings: ClaimSettings, view: FeatureView | None = None
) -> list[TestRow]:
    """C4: per clean network and lower layer, loss increase of top-gOSI (or ``view``'s ranking)
    ablation minus each control."""
    view = view or orientation_view(settings)
    if half_ablation.empty:
        return [missing_row("claim", "pooled", "no half-ablation rows.", True)]
    _check_half_ablation(half_ablation)
    rows = reference_networks(half_ablation, settings)
    rows = rows[rows["ranking"] == view.ranking]
    lower = layers_present(settings.lower_layers, rows["layer"])
    if not lower:
        return [
            missing_row(
                "claim",
                "pooled",
                f"no {view.label}-ranked half ablation of the lower layers {list(settings.lower_layers)}.",
                True,
            )
        ]
    by_condition = loss_increase_by_condition(rows, view.ranking, lower)
    controls = controls_present(by_condition)
    if not controls:
        return [
            missing_row(
                "claim", "pooled", "the half-ablation table lacks the top condition or every control.", True
            )
        ]
    differences = {f"top_minus_{c}": by_condition["top"] - by_condition[c] for c in controls}

    def describe(name: str, scope: str) -> str:
        layers = layer_list(lower) if scope == "pooled" else scope
        control = name.removeprefix("top_minus_")
        return (
            f"Per clean network, test cross-entropy increase after ablating the top 50% of units by {view.label} "
            f"minus after the {control} 50% (mean over draws), {'mean over' if scope == 'pooled' else 'in'} "
            f"layer(s) {layers}"
        )

    test_rows = difference_rows(differences, "layer", lower, describe, settings, "top_minus_matched")
    return without_matched(test_rows, controls, "top_minus_matched", "half-ablation")


def claim_selective_ablation_lowers_invariance(
    invariance: pd.DataFrame, settings: ClaimSettings, view: FeatureView | None = None
) -> list[TestRow]:
    """C5: per clean network and ablated lower layer, invariance after each control minus after top
    ablation (by gOSI, or by ``view``'s ranking)."""
    view = view or orientation_view(settings)
    if invariance.empty:
        return [missing_row("claim", "pooled", "no shift-invariance rows.", True)]
    cell = ["measured_layer", "ablated_layer", "direction", "shift_px"]
    require_columns(
        invariance,
        list(NETWORK_COLUMNS) + cell + ["condition", "draw", "normalised_invariance_mean"],
        "shift invariance",
    )
    check_one_checkpoint(invariance, "shift invariance")
    rows = reference_networks(invariance, settings)
    measured = layers_present(settings.higher_layers, rows["measured_layer"])
    ablated = layers_present(settings.lower_layers, rows["ablated_layer"])
    if not measured or not ablated:
        return [
            missing_row(
                "claim",
                "pooled",
                f"no shift invariance of higher layers {list(settings.higher_layers)} under ablation of lower layers "
                f"{list(settings.lower_layers)}.",
                True,
            )
        ]
    rows = rows[rows["measured_layer"].isin(measured) & rows["ablated_layer"].isin(ablated)]
    by_condition = rows.pivot_table(
        index=list(NETWORK_COLUMNS) + cell,
        columns="condition",
        values="normalised_invariance_mean",
        aggfunc="mean",
    )
    controls = controls_present(by_condition)
    if not controls:
        return [
            missing_row(
                "claim",
                "pooled",
                "the shift-invariance table lacks the top condition or every control.",
                True,
            )
        ]
    per_cell = pd.DataFrame(
        {f"{c}_minus_top": by_condition[c] - by_condition["top"] for c in controls}
    ).dropna()
    # Each network contributes the mean over its measured-layer x direction x shift cells per ablated layer.
    per_layer = per_cell.groupby(level=list(NETWORK_COLUMNS) + ["ablated_layer"]).mean()
    differences = {name: per_layer[name] for name in per_layer.columns}

    def describe(name: str, scope: str) -> str:
        layers = layer_list(ablated) if scope == "pooled" else scope
        control = name.removesuffix("_minus_top")
        return (
            f"Per clean network, normalised shift invariance of higher layers {layer_list(measured)} after ablating the "
            f"{control} 50% minus after the top 50% by {view.label} of lower layer(s) {layers}, mean over measured "
            f"layers, directions and shifts"
        )

    test_rows = difference_rows(
        differences, "ablated_layer", ablated, describe, settings, "matched_minus_top"
    )
    return without_matched(test_rows, controls, "matched_minus_top", "shift-invariance")


def claim_class_selective_ablation_not_worse(
    half_ablation: pd.DataFrame, settings: ClaimSettings
) -> list[TestRow]:
    """C6: per clean network, loss increase of top-50% class-selectivity ablation minus random, all layers."""
    if half_ablation.empty:
        return [missing_row("class_top_minus_random", "all", "no half-ablation rows.", True)]
    _check_half_ablation(half_ablation)
    rows = reference_networks(half_ablation, settings)
    class_rows = rows[rows["ranking"] == "class_selectivity"]
    layers = [str(layer) for layer in class_rows.sort_values("layer_index")["layer"].unique()]
    if not layers:
        return [
            missing_row(
                "class_top_minus_random", "all", "no half ablation ranked by class selectivity.", True
            )
        ]

    def top_minus_random(ranking: str) -> pd.Series:
        by_condition = loss_increase_by_condition(rows, ranking, layers)
        if not {"top", "random"} <= set(by_condition.columns):
            return pd.Series(dtype=float)
        return mean_over_layers(by_condition["top"] - by_condition["random"], layers)

    values = top_minus_random("class_selectivity")
    decision = not_worse_than(values.to_numpy(float), settings.equivalence_margin, settings.rule)
    what = (
        f"Per clean network, test cross-entropy increase after ablating the top 50% of units by class selectivity "
        f"minus after a random 50% (mean over draws), mean over layers {layer_list(layers)}; equivalence margin "
        f"{settings.equivalence_margin:g} nats per image, p-value against the margin"
    )
    headline = make_test_row(
        "class_top_minus_random", "all", decision, what, settings, values.index, headline=True
    )
    gosi_values = top_minus_random("gosi")
    gosi = make_test_row(
        "gosi_top_minus_random",
        "all",
        positive_effect(gosi_values.to_numpy(float), settings.rule),
        "For comparison, the same with units ranked by gOSI (tested for a positive difference)",
        settings,
        gosi_values.index,
    )
    return [headline, dataclasses.replace(gosi, control=COMPARISON)]


#: Claim -> (the table it reads, the function that tests it), in the claims table's order.
PAPER_CLAIMS: dict[str, tuple[str, Callable[[pd.DataFrame, ClaimSettings], list[TestRow]]]] = {
    "C1": ("summary", claim_selective_units_exist),
    "C2": ("summary", claim_selectivity_rises_with_accuracy),
    "C3": ("summary", claim_selectivity_tracks_generalization),
    "C4": ("half_ablation", claim_selective_ablation_hurts),
    "C5": ("invariance", claim_selective_ablation_lowers_invariance),
    "C6": ("half_ablation", claim_class_selective_ablation_not_worse),
}


def settings_for_model(
    settings: ClaimSettings, model: str | None, layers_by_model: Mapping[str, Mapping] | None
) -> ClaimSettings:
    """``settings`` with ``model``'s own lower and higher layers, where ``layers_by_model`` names them."""
    if not layers_by_model or model not in layers_by_model:
        return settings
    layers = layers_by_model[model]
    return dataclasses.replace(
        settings, lower_layers=tuple(layers["lower_layers"]), higher_layers=tuple(layers["higher_layers"])
    )
