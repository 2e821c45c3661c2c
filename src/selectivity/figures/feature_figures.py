"""Figures of the low-level features beyond orientation (report category "Low-level features").

- :func:`feature_distributions_figure`: per feature, each layer's distribution of the index for
  gratings and for the shuffled control (docs/method.md §3.5-§3.9);
- :func:`feature_development_figure`: per feature, each layer's mean index over the saved epochs;
- :func:`feature_ablation_figure`: per layer, the test-loss cost of ablating the top half by each
  feature's index beyond a random half (the claims' comparison across features, §6.3).

Every feature is drawn on its index's own scale (SF selectivity 0-1, colour selectivity -1-1,
F1/F0 0-2) with its threshold marked. Units whose index is not a measurement (undefined, or dead
for gOSI and SF selectivity) are left out and counted in the titles.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from selectivity.figures.style import (
    ACCURACY_COLOUR,
    GRID_PANEL_HEIGHT,
    STIMULUS_SET_COLOURS,
    STIMULUS_SET_LABELS,
    _COLOURBLIND,
    _check_not_empty,
    _model_dataset_title,
    _network_count,
    _networks_description,
    _selection_description,
    _set_title,
    layer_order,
    layer_panel_width,
    new_figure,
    save_figure,
    select_label_corruption,
    set_layer_ticks,
    styled,
)
from selectivity.statistics import median_confidence_bounds
from selectivity.tables import NETWORK_COLUMNS, as_bool, require_columns
from selectivity.tuning.features import FEATURE_INDEX_COLUMNS, FEATURES, RANKED_FEATURES, measured_index

#: How the figures name each feature's index, and the range its axis shows.
INDEX_LABELS = {
    "orientation": "gOSI",
    "spatial_frequency": "SF selectivity",
    "colour": "colour selectivity",
    "phase": "F1/F0",
}
INDEX_RANGES = {
    "orientation": (0.0, 1.0),
    "spatial_frequency": (0.0, 1.0),
    "colour": (-1.0, 1.0),
    "phase": (0.0, 2.0),
}
#: A fixed colour per feature, the same in every figure.
FEATURE_COLOURS = {
    "orientation": _COLOURBLIND[1],
    "spatial_frequency": _COLOURBLIND[2],
    "colour": _COLOURBLIND[3],
    "phase": _COLOURBLIND[4],
}


def _features_present(table: pd.DataFrame, features: Sequence[str] | None) -> list[str]:
    present = [f for f in RANKED_FEATURES if FEATURE_INDEX_COLUMNS[f] in table.columns]
    if features is not None:
        present = [f for f in present if f in features]
    if not present:
        raise ValueError("the tuning table holds no index of a low-level feature besides orientation")
    return present


@styled
def feature_distributions_figure(
    tuning: pd.DataFrame,
    thresholds: Mapping[str, float] | None = None,
    features: Sequence[str] | None = None,
    label_corruption: float | None = 0.0,
) -> Figure:
    """One panel per feature: per layer (x), split violins of the index for gratings (left) and
    the shuffled control (right), units pooled over the networks of ``label_corruption``.

    ``tuning`` holds one checkpoint per network; ``thresholds`` (feature -> threshold) draws
    each feature's threshold as a dotted line.
    """
    _check_not_empty(tuning, "tuning")
    require_columns(tuning, ["layer", "layer_index", "stimulus_set", "dead"], "tuning")
    title = _model_dataset_title(tuning, "tuning")
    tuning = select_label_corruption(tuning, label_corruption, "tuning")
    features = _features_present(tuning, features)
    layers = layer_order(tuning)
    dead = as_bool(tuning["dead"], "dead").to_numpy()
    figure, axes = new_figure(
        len(features), 1, sharex=True, panel_width=max(5.0, layer_panel_width(len(layers), 0.55))
    )
    for ax, feature in zip(axes[:, 0], features):
        values = measured_index(feature, tuning[FEATURE_INDEX_COLUMNS[feature]].to_numpy(float), dead)
        rows = tuning.assign(value=values).dropna(subset=["value"])
        low, high = INDEX_RANGES[feature]
        if rows.empty:
            ax.text(0.5, 0.5, "no unit has this index", ha="center", va="center", transform=ax.transAxes)
        else:
            sns.violinplot(
                data=rows,
                x="layer",
                y="value",
                order=layers,
                hue="stimulus_set",
                hue_order=list(STIMULUS_SET_COLOURS),
                palette=STIMULUS_SET_COLOURS,
                split=True,
                inner="quart",
                cut=0,
                density_norm="width",
                linewidth=0.6,
                legend=False,
                ax=ax,
            )
        if thresholds and feature in thresholds:
            ax.axhline(thresholds[feature], color="0.3", linestyle=":", linewidth=1)
        gratings = tuning[tuning["stimulus_set"] == "gratings"]
        unmeasured = int(
            np.isnan(
                measured_index(
                    feature,
                    gratings[FEATURE_INDEX_COLUMNS[feature]].to_numpy(float),
                    as_bool(gratings["dead"], "dead").to_numpy(),
                )
            ).sum()
        )
        ax.set_ylim(low, high)
        ax.set_ylabel(INDEX_LABELS[feature])
        ax.set_xlabel("")
        ax.set_title(
            f"{INDEX_LABELS[feature]}: {len(gratings) - unmeasured} units with a measured index"
            + (f" (+{unmeasured} without)" if unmeasured else ""),
            fontsize=8,
        )
    set_layer_ticks(axes[-1, 0], range(len(layers)), layers)
    handles = [
        Line2D([], [], color=colour, linewidth=6, label=STIMULUS_SET_LABELS[name])
        for name, colour in STIMULUS_SET_COLOURS.items()
    ]
    if thresholds:
        handles.append(Line2D([], [], color="0.3", linestyle=":", label="threshold"))
    figure.legend(handles=handles, title="stimulus set", loc="outside right center", frameon=False)
    _set_title(
        figure,
        f"Low-level feature indices per layer, {title}",
        f"{_selection_description(tuning, label_corruption)}; units"
        f"{' pooled over networks' if _network_count(tuning) > 1 else ''}; left half of each violin: gratings, "
        "right half: the shuffled-stimulus control (chance); lines: quartiles; F1/F0 above 1 = simple-like, "
        "below = complex-like (docs/method.md §3.6-§3.9)",
    )
    return figure


def plot_feature_distributions(tuning, pdf_path, png_path, **options) -> None:
    """Write :func:`feature_distributions_figure` (same options) to ``pdf_path`` and ``png_path``."""
    save_figure(feature_distributions_figure(tuning, **options), pdf_path, png_path)


@styled
def feature_development_figure(
    summary: pd.DataFrame, label_corruption: float = 0.0, features: Sequence[str] | None = None
) -> Figure:
    """One panel per feature: each layer's mean index (measured units; mean over networks) against
    the saved epochs, for gratings (solid, one colour per layer from shallow to deep) and the
    shuffled control averaged over layers (grey, dashed); test accuracy on a twin axis.

    ``summary`` is :func:`selectivity.tuning.feature_summaries.feature_summary`'s table.
    """
    from selectivity.figures.tuning_figures import label_epoch_axis

    _check_not_empty(summary, "feature summary")
    require_columns(
        summary,
        [
            "checkpoint",
            "epoch",
            "layer",
            "layer_index",
            "stimulus_set",
            "feature",
            "mean_index_measured",
            "test_accuracy",
            "label_corruption",
        ],
        "feature summary",
    )
    title = _model_dataset_title(summary, "feature summary")
    rows = summary[
        (summary["checkpoint"] == "epoch")
        & np.isclose(summary["label_corruption"].astype(float), label_corruption)
    ]
    if rows.empty:
        raise ValueError(
            f"the feature summary has no saved epochs of networks with label corruption {label_corruption}"
        )
    present = [f for f in FEATURES if f in set(rows["feature"]) and (features is None or f in features)]
    layers = layer_order(rows)
    palette = dict(zip(layers, sns.color_palette("viridis", len(layers))))
    epochs = sorted(rows["epoch"].unique())
    figure, axes = new_figure(len(present), 1, sharex=True, panel_width=5.0, panel_height=GRID_PANEL_HEIGHT)
    for ax, feature in zip(axes[:, 0], present):
        of_feature = rows[rows["feature"] == feature]
        means = of_feature.groupby(["stimulus_set", "layer", "epoch"])["mean_index_measured"].mean()
        for layer in layers:
            if ("gratings", layer) in means.index.droplevel("epoch"):
                line = means.loc[("gratings", layer)]
                ax.plot(
                    line.index, line.to_numpy(), marker="o", markersize=3, color=palette[layer], label=layer
                )
        if "shuffled" in means.index.get_level_values("stimulus_set"):
            control = means.loc["shuffled"].groupby("epoch").mean()
            ax.plot(
                control.index,
                control.to_numpy(),
                color=STIMULUS_SET_COLOURS["shuffled"],
                linestyle="--",
                linewidth=1.2,
            )
        accuracy = (
            of_feature.drop_duplicates(list(NETWORK_COLUMNS) + ["epoch"])
            .groupby("epoch")["test_accuracy"]
            .mean()
        )
        twin = ax.twinx()
        twin.plot(accuracy.index, accuracy.to_numpy(), color=ACCURACY_COLOUR, linestyle=":", linewidth=1)
        twin.set_ylim(0.0, 1.0)
        twin.set_ylabel("test accuracy", fontsize=8)
        label_epoch_axis(ax, epochs, axis_width_inches=3.8)
        ax.set_ylabel(f"mean {INDEX_LABELS[feature]}")
        ax.set_title(INDEX_LABELS[feature], fontsize=8)
    axes[-1, 0].set_xlabel("epoch")
    handles = [
        Line2D([], [], color=palette[layer], marker="o", markersize=3, label=layer) for layer in layers
    ]
    handles += [
        Line2D(
            [],
            [],
            color=STIMULUS_SET_COLOURS["shuffled"],
            linestyle="--",
            label="shuffled control\n(mean of layers)",
        ),
        Line2D([], [], color=ACCURACY_COLOUR, linestyle=":", label="test accuracy\n(right axis)"),
    ]
    figure.legend(handles=handles, title="layer", loc="outside right center", frameon=False)
    _set_title(
        figure,
        f"Low-level feature indices over training, {title}",
        f"{_networks_description(rows)} with label corruption {label_corruption:g}; mean index of the units with a "
        "measured index, averaged over networks; saved epochs (0 = initialisation; symmetric-log axis)",
    )
    return figure


def plot_feature_development(summary, pdf_path, png_path, **options) -> None:
    """Write :func:`feature_development_figure` (same options) to ``pdf_path`` and ``png_path``."""
    save_figure(feature_development_figure(summary, **options), pdf_path, png_path)


def top_minus_random(half_ablation: pd.DataFrame, ranking: str) -> pd.Series:
    """Per network and layer: loss increase of the top half by ``ranking`` minus the mean random half."""
    rows = half_ablation[half_ablation["ranking"] == ranking]
    by_condition = rows.pivot_table(
        index=list(NETWORK_COLUMNS) + ["layer"],
        columns="condition",
        values="loss_increase_mean",
        aggfunc="mean",
    )
    if not {"top", "random"} <= set(by_condition.columns):
        return pd.Series(dtype=float)
    return (by_condition["top"] - by_condition["random"]).dropna()


@styled
def feature_ablation_figure(
    orientation_half_ablation: pd.DataFrame,
    feature_half_ablation: pd.DataFrame,
    label_corruption: float = 0.0,
    confidence: float = 0.95,
) -> Figure:
    """Per layer (x) and feature (colour): each network's test-loss increase after ablating the top
    half by the feature's index minus after a random half (dots), and the median over networks with
    its one-sided ``confidence`` order-statistic bounds (bars), those of the claims (§6.3, CF)."""
    _check_not_empty(orientation_half_ablation, "half ablation")
    title = _model_dataset_title(orientation_half_ablation, "half ablation")
    tables = [
        (
            "orientation",
            select_label_corruption(orientation_half_ablation, label_corruption, "half ablation"),
            "gosi",
        )
    ]
    if not feature_half_ablation.empty:
        feature_rows = select_label_corruption(
            feature_half_ablation, label_corruption, "feature half ablation"
        )
        tables += [
            (f, feature_rows, FEATURE_INDEX_COLUMNS[f])
            for f in RANKED_FEATURES
            if f in set(feature_rows["feature"])
        ]
    layers = layer_order(tables[0][1])
    figure, axes = new_figure(
        1, 1, panel_width=max(5.0, layer_panel_width(len(layers), 0.75)), panel_height=3.2
    )
    ax = axes[0, 0]
    width = 0.8 / len(tables)
    for number, (feature, table, ranking) in enumerate(tables):
        values = top_minus_random(table, ranking)
        offset = (number - (len(tables) - 1) / 2) * width
        for position, layer in enumerate(layers):
            if layer not in values.index.get_level_values("layer"):
                continue
            per_network = values.xs(layer, level="layer").to_numpy(float)
            x = position + offset
            ax.plot(
                np.full(len(per_network), x),
                per_network,
                "o",
                color=FEATURE_COLOURS[feature],
                alpha=0.35,
                markersize=3,
            )
            median, low, high, _ = median_confidence_bounds(per_network, confidence)
            bars = np.nan_to_num([[median - low], [high - median]]).clip(min=0.0)
            ax.errorbar(
                [x],
                [median],
                yerr=bars,
                fmt="D",
                color=FEATURE_COLOURS[feature],
                markersize=5,
                capsize=3,
                linewidth=1.5,
            )
    ax.axhline(0.0, color="0.4", linestyle=":", linewidth=0.8)
    set_layer_ticks(ax, range(len(layers)), layers)
    ax.set_ylabel("test-loss increase, top half\nminus random half (nats/image)")
    handles = [
        Line2D([], [], color=FEATURE_COLOURS[f], marker="D", linestyle="", label=INDEX_LABELS[f])
        for f, _, _ in tables
    ]
    figure.legend(handles=handles, title="ranked by", loc="outside right center", frameon=False)
    networks = _network_count(tables[0][1])
    _set_title(
        figure,
        f"Which feature's most selective units cost the most when ablated, {title}",
        f"{networks} network{'s' if networks != 1 else ''} with label corruption {label_corruption:g}; dots: networks; "
        f"diamonds: median over networks with its one-sided {100 * confidence:g}% order-statistic bounds (the claims' "
        "CF rows decide the comparisons, per lower layer)",
    )
    return figure


def plot_feature_ablation(
    orientation_half_ablation, feature_half_ablation, pdf_path, png_path, **options
) -> None:
    """Write :func:`feature_ablation_figure` (same options) to ``pdf_path`` and ``png_path``."""
    save_figure(
        feature_ablation_figure(orientation_half_ablation, feature_half_ablation, **options),
        pdf_path,
        png_path,
    )
