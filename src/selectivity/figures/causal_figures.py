"""Figures of the causal tests: half ablation, cumulative ablation and the shift invariance of higher layers."""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from selectivity.tables import NETWORK_COLUMNS, per_network_means, require_columns

from selectivity.figures.style import (
    CONDITION_COLOURS,
    figure_on_canvas,
    finish_grid,
    grid,
    GRID_PANEL_HEIGHT,
    GRID_PANEL_WIDTH,
    layer_order,
    layer_panel_width,
    LEGEND_WIDTH,
    new_figure,
    ORDERING_COLOURS,
    ORDERING_LABELS,
    save_figure,
    select_label_corruption,
    SEM_COLUMNS,
    set_layer_ticks,
    styled,
    _check_not_empty,
    _errorbar,
    _figure_legend,
    _label,
    _model_dataset_title,
    _network_count,
    _quantity,
    _selection_description,
    _set_title,
)

logger = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- ablation


def _ablated_percentage(table: pd.DataFrame) -> str:
    """'50%' from n_ablated / n_units when the table has them, else 'half'."""
    if not {"n_ablated", "n_units"} <= set(table.columns):
        return "half"
    fractions = (table["n_ablated"] / table["n_units"]).dropna()
    return f"{100 * fractions.median():.0f}%" if len(fractions) else "half"


def _sem_error_bars(
    ax, per_network: pd.DataFrame, value: str, layers: Sequence[str], conditions: Sequence[str]
) -> None:
    """± SEM over test images on the bars of a single network (x = layer, one bar container per condition)."""
    sem = SEM_COLUMNS[value]
    present = [condition for condition in conditions if condition in set(per_network["condition"])]
    for container, condition in zip(ax.containers, present):
        for bar in container:
            layer = layers[int(round(bar.get_x() + bar.get_width() / 2))]
            match = per_network[(per_network["layer"] == layer) & (per_network["condition"] == condition)]
            if len(match):
                ax.errorbar(
                    bar.get_x() + bar.get_width() / 2,
                    match[value].iloc[0],
                    yerr=match[sem].iloc[0],
                    color="0.2",
                    linewidth=1.2,
                    capsize=0,
                )


def _in_preferred_order(values: pd.Series, preferred: Sequence[str]) -> list[str]:
    """The distinct ``values``: those in ``preferred`` in its order, then the others sorted."""
    present = set(values)
    ordered = [value for value in preferred if value in present]
    return ordered + sorted(present - set(ordered))


def _draw_half_ablation_bars(
    ax, rows: pd.DataFrame, value: str, layers: Sequence[str], conditions: Sequence[str], errorbar
) -> None:
    """Bars of ``value`` per layer, one colour per condition (top / bottom / random)."""
    sns.barplot(
        data=rows,
        x="layer",
        y=value,
        order=layers,
        hue="condition",
        hue_order=conditions,
        palette=CONDITION_COLOURS,
        saturation=1.0,
        err_kws={"linewidth": 1.2},
        errorbar=errorbar,
        ax=ax,
    )


@styled
def half_ablation_figure(
    half_ablation: pd.DataFrame,
    values: Sequence[str] = ("loss_increase_mean", "accuracy_change"),
    confidence: float = 0.95,
    label_corruption: float | None = 0.0,
) -> Figure:
    """Per ranking (columns) and value (rows): bars per layer for top / bottom / random (/ matched) 50%.

    Only the networks with ``label_corruption`` (None: all) are shown. Random draws are
    averaged within each network first; bars are means over networks with t intervals.
    A single network (VGG16) gets ± SEM over test images where the table has it.
    """
    _check_not_empty(half_ablation, "half ablation")
    require_columns(
        half_ablation,
        list(NETWORK_COLUMNS) + ["layer", "layer_index", "ranking", "condition", *values],
        "half ablation",
    )
    title = _model_dataset_title(half_ablation, "half ablation")
    rows = select_label_corruption(half_ablation, label_corruption, "half ablation")
    sem_values = [value for value in values if SEM_COLUMNS.get(value) in rows.columns]
    per_network = per_network_means(
        rows,
        ["layer", "layer_index", "ranking", "condition"],
        list(values) + [SEM_COLUMNS[value] for value in sem_values],
    )
    single_network = _network_count(per_network) == 1
    rankings = _in_preferred_order(per_network["ranking"], ("gosi", "class_selectivity"))
    layers = layer_order(per_network)
    conditions = [
        condition
        for condition in ("top", "bottom", "random", "matched")
        if condition in set(per_network["condition"])
    ]
    figure, axes = new_figure(
        len(values),
        len(rankings),
        sharey="row",
        panel_width=layer_panel_width(len(layers), inches_per_layer=0.3),
    )
    for column, ranking in enumerate(rankings):
        ranking_rows = per_network[per_network["ranking"] == ranking]
        for row, value in enumerate(values):
            ax = axes[row, column]
            errorbar = None if single_network else _errorbar(confidence)
            _draw_half_ablation_bars(ax, ranking_rows, value, layers, conditions, errorbar)
            if single_network and value in sem_values:
                _sem_error_bars(ax, ranking_rows, value, layers, conditions)
            ax.axhline(0.0, color="0.5", linewidth=0.8)
            ax.set_title(
                f"ranked by {'gOSI' if ranking == 'gosi' else ranking.replace('_', ' ')}" if row == 0 else ""
            )
            set_layer_ticks(ax, range(len(layers)), layers)
            ax.set_xlabel("ablated layer" if row == len(values) - 1 else "")
            ax.set_ylabel(_label(value) if column == 0 else "")
    percentage = _ablated_percentage(rows)
    _figure_legend(
        figure,
        axes,
        rename={
            condition: f"{'matched random' if condition == 'matched' else condition} {percentage}"
            for condition in conditions
        },
        title="units ablated\n(by the ranking)",
    )
    if single_network:
        interval = (
            f"one network: error bars ± SEM over test images ({', '.join(_label(v) for v in sem_values)})"
            if sem_values
            else "one network: no interval across networks"
        )
    else:
        interval = f"bars: mean over networks, error bars: {100 * confidence:g}% t interval across networks"
    _set_title(
        figure,
        "Half ablation: test performance after ablating the top, bottom"
        + (", a random or a matched random" if "matched" in conditions else " or a random")
        + f" {percentage} of one layer's units, {title}",
        f"{_selection_description(rows, label_corruption)}; random"
        + (
            " and matched random (matched to the top units on preferred spatial frequency and mean output)"
            if "matched" in conditions
            else ""
        )
        + f": mean over draws within each network; {interval}",
    )
    return figure


def plot_half_ablation(half_ablation, pdf_path, png_path, **options) -> None:
    """Write :func:`half_ablation_figure` (same options) to ``pdf_path`` and ``png_path``."""
    save_figure(half_ablation_figure(half_ablation, **options), pdf_path, png_path)


#: The orderings of cumulative ablation, grouped by the ranking they test (random is the reference of both).
ORDERING_FAMILIES = (
    ("gOSI", ("gosi_descending", "gosi_ascending", "random")),
    ("class selectivity", ("class_selectivity_descending", "class_selectivity_ascending", "random")),
)


def _ordering_families(present: set[str]) -> list[tuple[str, list[str]]]:
    """(ranking, orderings) blocks of the cumulative figure: each ranking's orderings with random."""
    families = [
        (name, [o for o in orderings if o in present])
        for name, orderings in ORDERING_FAMILIES
        if present & set(orderings) - {"random"}
    ]
    families += [
        ("other orderings", sorted(present - {o for _, orderings in ORDERING_FAMILIES for o in orderings}))
    ]
    return [(name, orderings) for name, orderings in families if orderings] or [("random", ["random"])]


def _ordering_legend(figure: Figure, axes: Sequence) -> None:
    """One legend of every ordering seen in any panel, replacing the panels' own legends."""
    handles = {}
    for ax in axes:
        legend = ax.get_legend()
        if legend is not None:
            for handle, text in zip(legend.legend_handles, legend.get_texts()):
                handles.setdefault(text.get_text(), handle)
            legend.remove()
    order = [o for o in ORDERING_COLOURS if o in handles] + sorted(set(handles) - set(ORDERING_COLOURS))
    figure.legend(
        [handles[o] for o in order],
        [ORDERING_LABELS.get(o, o) for o in order],
        title="ablation order",
        loc="outside right center",
        frameon=False,
    )


def _band_description(n_networks: int, confidence: float, single_network: str) -> str:
    """What the lines and bands of a figure are, for its title."""
    if n_networks > 1:
        return f"lines: mean over networks, bands: {100 * confidence:g}% t interval across networks"
    return single_network


def _same_y_limits(axes: Sequence) -> None:
    lows, highs = zip(*(ax.get_ylim() for ax in axes))
    for ax in axes:
        ax.set_ylim(min(lows), max(highs))


@styled
def cumulative_ablation_figure(
    curves: pd.DataFrame,
    value: str = "test_accuracy",
    confidence: float = 0.95,
    label_corruption: float | None = 0.0,
    max_columns: int = 4,
) -> Figure:
    """Per layer, ``value`` against the fraction of units ablated, one line per ordering.

    One block of panels per ranking (gOSI, class selectivity), each with the random order
    as reference, so that no panel holds more than three lines. Only the networks with
    ``label_corruption`` (None: all) are shown; random draws are averaged within each network.
    """
    _check_not_empty(curves, "cumulative ablation")
    require_columns(
        curves,
        list(NETWORK_COLUMNS) + ["layer", "layer_index", "ordering", "fraction_ablated", value],
        "cumulative ablation",
    )
    title = _model_dataset_title(curves, "cumulative ablation")
    rows = select_label_corruption(curves, label_corruption, "cumulative ablation")
    per_network = per_network_means(rows, ["layer", "layer_index", "ordering", "fraction_ablated"], [value])
    families = _ordering_families(set(per_network["ordering"]))
    layers = layer_order(per_network)
    n_rows, n_cols = grid(len(layers), max_columns)
    figure = figure_on_canvas(
        GRID_PANEL_WIDTH * n_cols + LEGEND_WIDTH, (GRID_PANEL_HEIGHT * n_rows + 0.3) * len(families)
    )
    blocks = figure.subfigures(len(families), 1, squeeze=False)[:, 0]
    n_networks = _network_count(per_network)
    all_axes = []
    for block, (family, orderings) in zip(blocks, families):
        axes = block.subplots(n_rows, n_cols, squeeze=False, sharex=True, sharey=True)
        for ax, layer in zip(axes.flat, layers):
            sns.lineplot(
                data=per_network[per_network["layer"] == layer],
                x="fraction_ablated",
                y=value,
                hue="ordering",
                hue_order=orderings,
                palette=ORDERING_COLOURS,
                errorbar=_errorbar(confidence) if n_networks > 1 else None,
                ax=ax,
            )
            ax.set_title(layer)
        finish_grid(
            block, axes, len(layers), xlabel="fraction of the layer's units ablated", ylabel=_label(value)
        )
        if len(families) > 1:
            block.suptitle(f"ordered by {family}", fontsize=9, fontweight="bold")
        all_axes += list(axes.flat[: len(layers)])
    _same_y_limits(all_axes)
    _ordering_legend(figure, all_axes)
    interval = _band_description(n_networks, confidence, "one network")
    _set_title(
        figure,
        f"Cumulative ablation: {_quantity(value)} as more of one layer's units are ablated, {title}",
        f"{_selection_description(rows, label_corruption)}; random order: mean over draws within each "
        f"network; {interval}",
    )
    return figure


def plot_cumulative_ablation(curves, pdf_path, png_path, **options) -> None:
    """Write :func:`cumulative_ablation_figure` (same options) to ``pdf_path`` and ``png_path``."""
    save_figure(cumulative_ablation_figure(curves, **options), pdf_path, png_path)


# ----------------------------------------------------------------------------- invariance

INVARIANCE_VALUES = ("normalised_invariance_mean", "shift_correlation_mean")
INVARIANCE_BLOCK_TITLES = {
    "normalised_invariance_mean": "normalised invariance (r_shift - r_other) / (1 - r_other)",
    "shift_correlation_mean": "raw shift correlation r_shift (also rises when representations grow alike)",
}
INVARIANCE_CONDITION_LABELS = {
    "intact": "intact (nothing ablated)",
    "top": "top-gOSI units ablated",
    "bottom": "bottom-gOSI units ablated",
    "random": "random units ablated",
    "matched": "matched random units ablated",
}


def _sem_bands(ax, rows: pd.DataFrame, value: str, conditions: Sequence[str]) -> None:
    """Mean ± SEM over test images of a single network, one band per condition."""
    sem = SEM_COLUMNS[value]
    for condition in conditions:
        condition_rows = rows[rows["condition"] == condition].sort_values("shift_px")
        if len(condition_rows):
            ax.fill_between(
                condition_rows["shift_px"],
                condition_rows[value] - condition_rows[sem],
                condition_rows[value] + condition_rows[sem],
                color=CONDITION_COLOURS[condition],
                alpha=0.2,
                linewidth=0,
            )


def _in_layer_order(names, layer_order_deep: Sequence[str] | None) -> list[str]:
    """The distinct layer ``names`` in ``layer_order_deep`` (unknown ones last), else as first seen."""
    names = [str(name) for name in pd.unique(names)]
    if layer_order_deep is None:
        return names
    return sorted(
        names, key=lambda name: list(layer_order_deep).index(name) if name in layer_order_deep else 1e9
    )


def _draw_invariance_panel(
    ax, rows: pd.DataFrame, value: str, conditions: Sequence[str], n_networks: int, confidence: float
) -> None:
    """``value`` against shift, one line per condition (intact, top, bottom, random)."""
    sns.lineplot(
        data=rows,
        x="shift_px",
        y=value,
        hue="condition",
        hue_order=conditions,
        palette=CONDITION_COLOURS,
        marker="o",
        markersize=4,
        errorbar=_errorbar(confidence) if n_networks > 1 else None,
        ax=ax,
    )
    if n_networks == 1 and SEM_COLUMNS[value] in rows.columns:
        _sem_bands(ax, rows, value, conditions)


@styled
def shift_invariance_figure(
    invariance: pd.DataFrame,
    layer_order_deep: Sequence[str] | None = None,
    confidence: float = 0.95,
    label_corruption: float | None = 0.0,
) -> Figure:
    """Two blocks (normalised invariance, raw correlation); in each, rows = measured layers, columns = ablated layers.

    Lines: intact (repeated in every panel as the reference), top, bottom and random
    50% ablated; directions and random draws are averaged within each network. The blocks
    sit side by side for up to two ablated layers, else one above the other.
    ``layer_order_deep`` orders the layers (default: order of first appearance). Only the
    networks with ``label_corruption`` (None: all) are shown.
    """
    _check_not_empty(invariance, "shift invariance")
    require_columns(
        invariance,
        list(NETWORK_COLUMNS)
        + ["measured_layer", "ablated_layer", "condition", "shift_px", *INVARIANCE_VALUES],
        "shift invariance",
    )
    title = _model_dataset_title(invariance, "shift invariance")
    rows = select_label_corruption(invariance, label_corruption, "shift invariance")
    sem_columns = [SEM_COLUMNS[value] for value in INVARIANCE_VALUES if SEM_COLUMNS[value] in rows.columns]
    per_network = per_network_means(
        rows,
        ["measured_layer", "ablated_layer", "condition", "shift_px"],
        list(INVARIANCE_VALUES) + sem_columns,
    )
    n_networks = _network_count(per_network)

    intact = per_network[per_network["condition"] == "intact"]
    ablated_rows = per_network[per_network["condition"] != "intact"]
    measured_layers = _in_layer_order(per_network["measured_layer"], layer_order_deep)
    ablated_layers = _in_layer_order(ablated_rows["ablated_layer"], layer_order_deep) or ["none"]
    conditions = [condition for condition in CONDITION_COLOURS if condition in set(per_network["condition"])]
    shifts = sorted(per_network["shift_px"].unique())
    side_by_side = len(ablated_layers) <= 2
    n_rows, n_cols = len(measured_layers), len(ablated_layers)
    block_width, block_height = GRID_PANEL_WIDTH * n_cols, GRID_PANEL_HEIGHT * n_rows + 0.3
    figure = figure_on_canvas(
        block_width * (2 if side_by_side else 1) + LEGEND_WIDTH, block_height * (1 if side_by_side else 2)
    )
    blocks = figure.subfigures(1, 2) if side_by_side else figure.subfigures(2, 1)
    all_axes = []
    for block, value in zip(np.ravel(blocks), INVARIANCE_VALUES):
        axes = block.subplots(n_rows, n_cols, squeeze=False, sharex=True, sharey="row")
        for row, measured in enumerate(measured_layers):
            for column, ablated in enumerate(ablated_layers):
                ax = axes[row, column]
                panel_rows = pd.concat(
                    [
                        intact[intact["measured_layer"] == measured],
                        ablated_rows[
                            (ablated_rows["measured_layer"] == measured)
                            & (ablated_rows["ablated_layer"] == ablated)
                        ],
                    ]
                )
                _draw_invariance_panel(ax, panel_rows, value, conditions, n_networks, confidence)
                ax.set_xticks(shifts)
                ax.set_title(f"{measured}, {ablated} ablated" if ablated != "none" else measured, fontsize=8)
                ax.set_xlabel("shift (px)" if row == n_rows - 1 else "")
                ax.set_ylabel(_label(value) if column == 0 else "")
                all_axes.append(ax)
        block.suptitle(INVARIANCE_BLOCK_TITLES[value], fontsize=9, fontweight="bold")
    _figure_legend(figure, all_axes, rename=INVARIANCE_CONDITION_LABELS, title="condition")
    interval = _band_description(
        n_networks, confidence, "one network: bands ± SEM over test images" if sem_columns else "one network"
    )
    _set_title(
        figure,
        f"Shift invariance of higher layers after ablating lower-layer units, {title}",
        f"{_selection_description(rows, label_corruption)}; panel: measured layer, ablated layer; per image "
        f"the Pearson correlation of the representations of the image and of the image shifted by d px, "
        f"averaged over horizontal and vertical shifts and random draws; {interval}",
    )
    return figure


def plot_shift_invariance(invariance, pdf_path, png_path, **options) -> None:
    """Write :func:`shift_invariance_figure` (same options) to ``pdf_path`` and ``png_path``."""
    save_figure(shift_invariance_figure(invariance, **options), pdf_path, png_path)
