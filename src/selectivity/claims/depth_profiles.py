"""Claims across architectures: each claim's effect per layer, on a common depth axis.

The claims table decides each claim on the configured lower (and higher) layers of one model.
To compare architectures of different depth, this module computes the same per-network
differences for every layer that has them and places each layer at its *relative depth*
(layer index / (number of analysed layers - 1): 0 is the first analysed layer, 1 the last),
so that a 7-layer CNN and a 10-layer ResNet share one axis (docs/method.md §6.5).

One row per model, dataset, claim, feature and layer (:data:`DEPTH_PROFILE_COLUMNS`): the
statistic the claim's verdict uses, per layer (for the paper's claims, ``feature`` "orientation";
with the feature tables also the C1-C5 analogues of every other low-level feature, §6.3): the median over clean networks with its one-sided
order-statistic bounds, those of the claims' sign test (C3: the across-network correlation
with its Fisher-z interval). These are descriptions, not verdicts: the verdicts are the
claims table's.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import pandas as pd

from selectivity.claims.table import ClaimSettings, FeatureView, orientation_view, reference_networks
from selectivity.claims.wording import effect_unit, percent
from selectivity.claims.claim_tests import loss_increase_by_condition, settings_for_model
from selectivity.claims.evaluation import FeatureTables, model_dataset_pairs, rows_of
from selectivity.claims.features import INDEX_LABELS, feature_view
from selectivity.config import ConfigError, model_layer_names
from selectivity.statistics import correlation, fisher_interval, median_confidence_bounds
from selectivity.tuning.features import FEATURES
from selectivity.tuning.summaries import NETWORK_COLUMNS, layer_average, select_checkpoint

DEPTH_PROFILE_COLUMNS = (
    "model",
    "dataset",
    "claim",
    "feature",
    "quantity",
    "layer",
    "layer_index",
    "relative_depth",
    "estimate",
    "ci_low",
    "ci_high",
    "n_networks",
    "confidence",
    # added with claims method version 4: the unit of estimate and its interval (the figure's y axis)
    "unit",
)


def quantities(settings: ClaimSettings) -> dict[str, str]:
    """What each claim's panel shows, per layer (the panel titles of the figure), with the run's fraction."""
    p = percent(settings.ablation_fraction)
    return {
        "C1": "fraction selective, gratings minus shuffled control (median)",
        "C2": "correlation of mean gOSI with test accuracy over epochs (median)",
        "C3": "correlation of mean gOSI with test accuracy across networks",
        "C4": f"test-loss increase, top-{p} gOSI minus random-{p} ablation (median)",
        "C5": f"shift invariance of higher layers, random-{p} minus top-{p} gOSI ablation (median)",
        "C6": f"test-loss increase, top-{p} class-selective minus random-{p} ablation (median)",
    }


#: The quantities with the default settings.
QUANTITIES: dict[str, str] = quantities(ClaimSettings())


def relative_depths(model: str, layer_indices: pd.Series) -> pd.Series:
    """Layer index / (analysed layers - 1); the model's layer count from its architecture if known."""
    try:
        n_layers = len(model_layer_names(model))
    except ConfigError:  # a model the package does not know: its deepest layer in the table is 1
        n_layers = int(layer_indices.max()) + 1
    return layer_indices.astype(float) / max(n_layers - 1, 1)


PROFILE_COLUMNS = ["layer", "estimate", "ci_low", "ci_high", "n_networks"]


def _per_layer_intervals(per_network: pd.Series, confidence: float) -> pd.DataFrame:
    """Per layer, the median over networks with its one-sided order-statistic bounds (those of the
    claims' sign test) of a (network..., layer)-indexed series."""
    rows = []
    if per_network.empty:  # e.g. a table without the class-selectivity ranking
        return pd.DataFrame(rows, columns=PROFILE_COLUMNS)
    for layer, values in per_network.dropna().groupby(level="layer", sort=False):
        values = values.to_numpy(float)
        estimate, low, high, _ = median_confidence_bounds(values, confidence)
        rows.append(dict(layer=layer, estimate=estimate, ci_low=low, ci_high=high, n_networks=len(values)))
    return pd.DataFrame(rows, columns=PROFILE_COLUMNS)


def selective_fraction_profile(
    summary: pd.DataFrame, settings: ClaimSettings, fraction: str = "fraction_selective"
) -> pd.Series:
    """C1 per layer: fraction with gOSI (or another index, column ``fraction``) above threshold for
    gratings minus for shuffled stimuli."""
    rows = select_checkpoint(reference_networks(summary, settings), settings.tuning_checkpoint)
    fractions = rows.pivot_table(
        index=list(NETWORK_COLUMNS) + ["layer"], columns="stimulus_set", values=fraction
    )
    if not {"gratings", "shuffled"} <= set(fractions.columns):
        return pd.Series(dtype=float)
    return fractions["gratings"] - fractions["shuffled"]


def epoch_correlation_profile(
    summary: pd.DataFrame, settings: ClaimSettings, mean: str = "mean_gosi_responsive"
) -> pd.Series:
    """C2 per layer: each clean network's correlation over saved epochs >= 1 of mean gOSI (or the
    column ``mean``) with accuracy."""
    rows = reference_networks(summary, settings)
    rows = rows[(rows["checkpoint"] == "epoch") & (rows["epoch"] >= 1) & (rows["stimulus_set"] == "gratings")]
    values = {}
    for key, epochs in rows.groupby(list(NETWORK_COLUMNS) + ["layer"], sort=False):
        values[key] = correlation(epochs[mean], epochs["test_accuracy"], method=settings.correlation_method)
    return _series(values, list(NETWORK_COLUMNS) + ["layer"])


def network_correlation_profile(
    summary: pd.DataFrame, settings: ClaimSettings, mean: str = "mean_gosi_responsive"
) -> pd.DataFrame:
    """C3 per layer: correlation across all networks of mean gOSI (or the column ``mean``) with test
    accuracy, Fisher-z interval."""
    rows = select_checkpoint(summary, settings.across_network_checkpoint)
    rows = rows[rows["stimulus_set"] == "gratings"]
    records = []
    for layer, networks in rows.groupby("layer", sort=False):
        averaged = layer_average(networks, [layer], measure=mean, stimulus_set="gratings")
        finite = averaged[[mean, "test_accuracy"]].dropna()
        r = correlation(finite[mean], finite["test_accuracy"], method=settings.correlation_method)
        low, high = fisher_interval(r, len(finite), settings.confidence, settings.correlation_method)
        records.append(dict(layer=layer, estimate=r, ci_low=low, ci_high=high, n_networks=len(finite)))
    return pd.DataFrame(records, columns=PROFILE_COLUMNS)


def ablation_profile(half_ablation: pd.DataFrame, settings: ClaimSettings, ranking: str) -> pd.Series:
    """C4 (ranking gosi) and C6 (class_selectivity) per layer: top-50% minus random-50% loss increase."""
    rows = reference_networks(half_ablation, settings)
    by_condition = loss_increase_by_condition(rows, ranking, list(rows["layer"].unique()))
    if not {"top", "random"} <= set(by_condition.columns):
        return pd.Series(dtype=float)
    return by_condition["top"] - by_condition["random"]


def invariance_profile(invariance: pd.DataFrame, settings: ClaimSettings) -> pd.Series:
    """C5 per ablated layer: invariance of the higher layers after random minus after top-50% ablation."""
    rows = reference_networks(invariance, settings)
    rows = rows[rows["measured_layer"].isin(list(settings.higher_layers)) & (rows["ablated_layer"] != "none")]
    cell = list(NETWORK_COLUMNS) + ["ablated_layer", "measured_layer", "direction", "shift_px"]
    by_condition = rows.pivot_table(index=cell, columns="condition", values="normalised_invariance_mean")
    if not {"top", "random"} <= set(by_condition.columns):
        return pd.Series(dtype=float)
    per_cell = (by_condition["random"] - by_condition["top"]).dropna()
    # as in C5: each network's mean over measured layers, directions and shifts, per ablated layer
    per_layer = per_cell.groupby(level=list(NETWORK_COLUMNS) + ["ablated_layer"]).mean()
    return per_layer.rename_axis(index={"ablated_layer": "layer"})


def _series(values: dict, names: list[str]) -> pd.Series:
    series = pd.Series(values, dtype=float)
    if len(series):
        series.index = pd.MultiIndex.from_tuples(series.index, names=names)
    return series


def _layer_indices(*tables: pd.DataFrame) -> dict[str, int]:
    indices: dict[str, int] = {}
    for table in tables:
        if {"layer", "layer_index"} <= set(table.columns):
            indices.update(zip(table["layer"], table["layer_index"].astype(int)))
    return indices


def _model_profiles(
    summary, half_ablation, invariance, settings: ClaimSettings, view: FeatureView | None = None
) -> dict[str, pd.DataFrame]:
    """Each claim's per-layer profile of one model: the paper's (``view`` None: gOSI and class
    selectivity) or a feature's C1-C5 analogues (its view, its feature tables)."""
    orientation = view is None
    view = view or orientation_view(settings)
    profiles = {}
    if not summary.empty:
        profiles["C1"] = _per_layer_intervals(
            selective_fraction_profile(summary, settings, view.fraction_column), settings.confidence
        )
        profiles["C2"] = _per_layer_intervals(
            epoch_correlation_profile(summary, settings, view.mean_column), settings.confidence
        )
        profiles["C3"] = network_correlation_profile(summary, settings, view.mean_column)
    if not half_ablation.empty:
        profiles["C4"] = _per_layer_intervals(
            ablation_profile(half_ablation, settings, view.ranking), settings.confidence
        )
        if orientation:
            profiles["C6"] = _per_layer_intervals(
                ablation_profile(half_ablation, settings, "class_selectivity"), settings.confidence
            )
    if not invariance.empty:
        profiles["C5"] = _per_layer_intervals(invariance_profile(invariance, settings), settings.confidence)
    return profiles


def feature_quantities(feature: str) -> dict[str, str]:
    """:data:`QUANTITIES` of a feature's C1-C5 analogues."""
    label = INDEX_LABELS[feature]
    fraction = f"fraction {label} < threshold" if feature == "phase" else f"fraction {label}-selective"
    return {
        "C1": f"{fraction}, gratings minus shuffled control (median)",
        "C2": f"correlation of mean {label} with test accuracy over epochs (median)",
        "C3": f"correlation of mean {label} with test accuracy across networks",
        "C4": f"test-loss increase, top-50% {label} minus random-50% ablation (nats, median)",
        "C5": f"shift invariance of higher layers, random-50% minus top-50% {label} ablation (median)",
    }


def depth_profiles(
    summary: pd.DataFrame,
    half_ablation: pd.DataFrame,
    invariance: pd.DataFrame,
    settings: ClaimSettings,
    layers_by_model: Mapping[str, Mapping] | None = None,
    feature_tables: FeatureTables | None = None,
) -> pd.DataFrame:
    """Every claim's per-layer effect for every model and dataset in the tables (see the module docstring).

    The tables are those :func:`selectivity.claims.evaluation.evaluate_claims` reads; ``layers_by_model``
    gives each model's higher layers (C5 measures invariance there), as for the claims. With
    ``feature_tables`` each ranked feature's C1-C5 profiles follow (``feature`` column).
    """
    tables = {"summary": summary, "half_ablation": half_ablation, "invariance": invariance}
    sources: list[tuple[str, list[pd.DataFrame], FeatureView | None]] = []
    features: Sequence[str] = () if feature_tables is None else feature_tables.features
    if feature_tables is not None:
        tables.update(
            feature_summary=feature_tables.summary,
            feature_half_ablation=feature_tables.half_ablation,
            feature_invariance=feature_tables.invariance,
        )
    records = []
    for model, dataset in model_dataset_pairs(tables):
        if model is None:  # every table is empty
            break
        model_settings = settings_for_model(settings, model, layers_by_model)
        sources = [("orientation", [rows_of(tables[name], model, dataset) for name in TABLES], None)]
        for feature in features:
            of_feature = [
                _of_feature(rows_of(tables[f"feature_{name}"], model, dataset), feature) for name in TABLES
            ]
            sources.append((feature, of_feature, feature_view(feature, model_settings.threshold_of(feature))))
        for feature, of_model, view in sources:
            indices = _layer_indices(*of_model)
            labels = quantities(settings) if view is None else feature_quantities(feature)
            for claim, profile in sorted(_model_profiles(*of_model, model_settings, view).items()):
                if profile.empty:
                    continue
                profile = profile.assign(
                    model=model,
                    dataset=dataset,
                    claim=claim,
                    feature=feature,
                    quantity=labels[claim],
                    confidence=settings.confidence,
                    unit=effect_unit(claim, settings),
                )
                profile["layer_index"] = profile["layer"].map(indices)
                profile["relative_depth"] = relative_depths(model, profile["layer_index"])
                records.append(profile)
    if not records:
        return pd.DataFrame(columns=list(DEPTH_PROFILE_COLUMNS))
    result = pd.concat(records, ignore_index=True)[list(DEPTH_PROFILE_COLUMNS)]
    order = {feature: number for number, feature in enumerate(FEATURES)}
    result = result.assign(_order=result["feature"].map(order))
    return (
        result.sort_values(["_order", "claim", "model", "dataset", "layer_index"], kind="stable")
        .drop(columns="_order")
        .reset_index(drop=True)
    )


#: The tables of the paper's claims, in :func:`_model_profiles`' order; the feature tables are
#: "feature_" + these names.
TABLES = ("summary", "half_ablation", "invariance")


def _of_feature(table: pd.DataFrame, feature: str) -> pd.DataFrame:
    return table if table.empty else table[table["feature"] == feature]
