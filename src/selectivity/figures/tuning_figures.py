"""Figures of orientation tuning: example curves, distributions, selectivity by depth, over training and against accuracy."""

from __future__ import annotations

import logging
import math
from typing import Mapping, Sequence

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter

from selectivity.statistics import correlation, regression_line_interval
from selectivity.tuning.summaries import (
    as_bool,
    require_columns,
    select_checkpoint,
)

from selectivity.figures.style import (
    ACCURACY_COLOUR,
    EXAMPLE_UNIT_STYLES,
    finish_grid,
    grid,
    layer_order,
    layer_panel_width,
    new_figure,
    PANEL_WIDTH,
    save_figure,
    select_label_corruption,
    set_layer_ticks,
    STIMULUS_SET_COLOURS,
    STIMULUS_SET_LABELS,
    styled,
    _check_not_empty,
    _checkpoint_description,
    _corruption_description,
    _errorbar,
    _figure_legend,
    _is_published,
    _label,
    _model_dataset_title,
    _network_count,
    _networks_description,
    _selection_description,
    _set_title,
    _with_corruption_label,
)

logger = logging.getLogger(__name__)

# ----------------------------------------------------------------------------- tuning


def _example_units(layer_tuning: pd.DataFrame) -> list[tuple[str, pd.Series]]:
    """The most selective, the median and the least selective responsive unit (each unit once)."""
    alive = layer_tuning[~as_bool(layer_tuning["dead"], "dead")].sort_values(["gosi", "unit"])
    picks, shown = [], set()
    for kind, position in (("most selective", -1), ("median", len(alive) // 2), ("least selective", 0)):
        if alive.empty:
            break
        unit = alive.iloc[position]
        if int(unit["unit"]) not in shown:
            picks.append((kind, unit))
            shown.add(int(unit["unit"]))
    return picks


def _network_identity(table: pd.DataFrame) -> str:
    """'model / dataset, clean labels, seed 0, best-validation checkpoint (epoch 37)' of one network."""
    parts = []
    if {"model", "dataset"} <= set(table.columns):
        parts.append(_model_dataset_title(table, "tuning"))
    if not _is_published(table):
        if "label_corruption" in table.columns:
            parts.append(_corruption_description(float(table["label_corruption"].iloc[0])))
        if "seed" in table.columns:
            parts.append(f"seed {table['seed'].iloc[0]}")
    checkpoint = _checkpoint_description(table)
    if checkpoint:
        parts.append(checkpoint)
    return ", ".join(parts)


@styled
def example_tuning_curves_figure(
    curves: Mapping[str, np.ndarray],
    tuning: pd.DataFrame,
    orientations_deg: Sequence[float],
    max_columns: int = 5,
) -> Figure:
    """One panel per layer with three example units' tuning curves at their preferred SF.

    The examples are the layer's most selective, median and least selective responsive
    unit by gOSI (dead units are never shown). ``curves[layer]`` is (units, n_sf, n_ori)
    after the maximum over phases; ``tuning`` is the tuning table of the same single
    checkpoint. Curves are divided by their peak so shapes compare across units; the curve
    is closed at 180 deg (= 0 deg). One panel per layer keeps VGG16's 20 layers on a page.
    """
    _check_not_empty(tuning, "tuning")
    require_columns(
        tuning,
        ["layer", "layer_index", "unit", "stimulus_set", "gosi", "dead", "preferred_spatial_frequency"],
        "tuning",
    )
    gratings = tuning[tuning["stimulus_set"] == "gratings"]
    if gratings.duplicated(["layer", "unit"]).any():
        raise ValueError("the tuning table holds several rows per unit: pass one checkpoint of one network")
    orientations = np.asarray(orientations_deg, dtype=float)
    layers = [layer for layer in layer_order(gratings) if layer in curves]
    if not layers:
        raise ValueError(f"no layer of the tuning table is among the curves {sorted(curves)}")
    closed_orientations = np.append(orientations, 180.0)
    styles = {kind: (colour, marker) for kind, colour, marker in EXAMPLE_UNIT_STYLES}
    n_rows, n_cols = grid(len(layers), max_columns)
    figure, axes = new_figure(n_rows, n_cols, sharex=True, sharey=True, panel_width=2.5, panel_height=2.2)
    for ax, layer in zip(axes.flat, layers):
        responses = np.asarray(curves[layer])
        if responses.ndim != 3 or responses.shape[2] != len(orientations):
            raise ValueError(
                f"curves[{layer!r}] must be (units, n_sf, {len(orientations)}), got shape {responses.shape}"
            )
        examples = _example_units(gratings[gratings["layer"] == layer])
        for kind, unit in examples:
            curve = responses[int(unit["unit"]), int(unit["preferred_spatial_frequency"])]
            curve = curve / curve.max()
            colour, marker = styles[kind]
            ax.plot(
                closed_orientations,
                np.append(curve, curve[0]),
                marker=marker,
                markersize=3,
                linewidth=1.2,
                color=colour,
                label=kind,
            )
        ax.set_xticks([0, 45, 90, 135, 180])
        ax.set_ylim(0.0, 1.08)
        if examples:
            units = " / ".join(str(int(unit["unit"])) for _, unit in examples)
            gosis = " / ".join(f"{unit['gosi']:.2f}" for _, unit in examples)
            ax.set_title(f"{layer}: units {units}\ngOSI {gosis}", fontsize=8)
        else:
            ax.set_title(f"{layer}: no responsive unit", fontsize=8)
    finish_grid(figure, axes, len(layers), xlabel="orientation (deg)", ylabel="response / peak")
    handles = [
        Line2D([], [], color=colour, marker=marker, markersize=4, label=f"{kind} unit")
        for kind, colour, marker in EXAMPLE_UNIT_STYLES
    ]
    figure.legend(
        handles=handles, title="responsive unit\n(ranked by gOSI)", loc="outside right center", frameon=False
    )
    _set_title(
        figure,
        f"Example orientation tuning curves, {_network_identity(tuning)}",
        "per layer the most selective, median and least selective responsive unit; response at the unit's "
        "preferred spatial frequency, maximum over phases, divided by its peak",
    )
    return figure


def plot_example_tuning_curves(curves, tuning, orientations_deg, pdf_path, png_path, **options) -> None:
    """Write :func:`example_tuning_curves_figure` (same options) to ``pdf_path`` and ``png_path``."""
    save_figure(example_tuning_curves_figure(curves, tuning, orientations_deg, **options), pdf_path, png_path)


@styled
def selectivity_distributions_figure(
    tuning: pd.DataFrame,
    value: str = "gosi",
    selectivity_threshold: float | None = 0.33,
    bins: int = 20,
    label_corruption: float | None = 0.0,
    max_columns: int = 4,
) -> Figure:
    """Per layer, the distribution of ``value`` (gosi or osi) for gratings vs the shuffled control.

    Units are pooled over the networks with ``label_corruption`` (None: all networks) in
    ``tuning`` (pass one checkpoint per network). Dead units (gOSI = OSI = 0 by
    definition) are left out of the histograms and counted in the panel titles, so that
    a spike at 0 always means weakly tuned, never silent, units.
    """
    if value not in ("gosi", "osi"):
        raise ValueError(f"value must be 'gosi' or 'osi', got {value!r}")
    _check_not_empty(tuning, "tuning")
    require_columns(tuning, ["layer", "layer_index", "stimulus_set", "dead", value], "tuning")
    title = _model_dataset_title(tuning, "tuning")
    tuning = select_label_corruption(tuning, label_corruption, "tuning")
    layers = layer_order(tuning)
    dead = as_bool(tuning["dead"], "dead")
    responsive = tuning[~dead]
    n_rows, n_cols = grid(len(layers), max_columns)
    figure, axes = new_figure(n_rows, n_cols, sharex=True)
    for ax, layer in zip(axes.flat, layers):
        layer_rows = responsive[responsive["layer"] == layer]
        sns.histplot(
            data=layer_rows,
            x=value,
            hue="stimulus_set",
            hue_order=list(STIMULUS_SET_COLOURS),
            palette=STIMULUS_SET_COLOURS,
            stat="density",
            common_norm=False,
            element="step",
            bins=bins,
            binrange=(0.0, 1.0),
            legend=False,
            ax=ax,
        )
        if value == "gosi" and selectivity_threshold is not None:
            ax.axvline(selectivity_threshold, color="0.3", linestyle=":", linewidth=1)
        layer_units = tuning[(tuning["layer"] == layer) & (tuning["stimulus_set"] == "gratings")]
        n_dead = int(as_bool(layer_units["dead"], "dead").sum())
        dead_note = f" (+{n_dead} dead, not shown)" if n_dead else ""
        ax.set_title(f"{layer}: {len(layer_units) - n_dead} units{dead_note}", fontsize=8)
        ax.set_xlim(0.0, 1.0)
    finish_grid(figure, axes, len(layers), xlabel=_label(value), ylabel="density")
    handles = [
        Patch(
            facecolor=matplotlib.colors.to_rgba(colour, 0.25),
            edgecolor=colour,
            label=STIMULUS_SET_LABELS[name],
        )
        for name, colour in STIMULUS_SET_COLOURS.items()
    ]
    if value == "gosi" and selectivity_threshold is not None:
        handles.append(
            Line2D(
                [], [], color="0.3", linestyle=":", label=f"selectivity\nthreshold {selectivity_threshold:g}"
            )
        )
    figure.legend(handles=handles, title="stimulus set", loc="outside right center", frameon=False)
    _set_title(
        figure,
        f"{_label(value)} distribution per layer, {title}",
        f"{_selection_description(tuning, label_corruption)}; responsive units"
        f"{' pooled over networks' if _network_count(tuning) > 1 else ''}; gratings vs the shuffled-stimulus "
        f"control (chance)",
    )
    return figure


def plot_selectivity_distributions(tuning, pdf_path, png_path, *, value: str = "gosi", **options) -> None:
    """Write :func:`selectivity_distributions_figure` (same options) to ``pdf_path`` and ``png_path``."""
    save_figure(selectivity_distributions_figure(tuning, value=value, **options), pdf_path, png_path)


# ----------------------------------------------------------------------------- summaries


@styled
def selectivity_by_depth_figure(
    summary: pd.DataFrame,
    checkpoint: str = "final",
    measures: Sequence[str] = ("mean_gosi", "fraction_selective"),
    confidence: float = 0.95,
) -> Figure:
    """Each measure against layer depth: colour = label corruption, dashed = shuffled control.

    With a single label-corruption level (or the published VGG16) the lines are not
    coloured by corruption.
    """
    _check_not_empty(summary, "summary")
    require_columns(summary, ["layer", "layer_index", "stimulus_set", *measures], "summary")
    title = _model_dataset_title(summary, "summary")
    rows = select_checkpoint(summary, checkpoint)
    _check_not_empty(rows, f"{checkpoint}-checkpoint summary")
    layers = layer_order(rows)
    data, palette = _with_corruption_label(rows.rename(columns={"stimulus_set": "stimulus set"}))
    data["stimulus set"] = data["stimulus set"].map(lambda name: STIMULUS_SET_LABELS.get(name, name))
    style_order = [STIMULUS_SET_LABELS[name] for name in STIMULUS_SET_COLOURS]
    several_levels = len(palette) > 1
    colour = {} if several_levels else {"color": next(iter(palette.values()))}
    figure, axes = new_figure(1, len(measures), panel_width=layer_panel_width(len(layers)))
    for ax, measure in zip(axes.flat, measures):
        sns.lineplot(
            data=data,
            x="layer_index",
            y=measure,
            hue="label corruption" if several_levels else None,
            palette=palette if several_levels else None,
            style="stimulus set",
            style_order=style_order,
            markers=True,
            errorbar=_errorbar(confidence),
            ax=ax,
            **colour,
        )
        set_layer_ticks(ax, sorted(rows["layer_index"].unique()), layers)
        ax.set_xlabel("layer")
        ax.set_ylabel(_label(measure))
        ax.set_ylim(bottom=0.0)
    _figure_legend(figure, axes)
    n_networks = _network_count(rows)
    lines = (
        "one line per label-corruption level and stimulus set"
        if several_levels
        else "one line per stimulus set"
    )
    interval = (
        f" (mean over seeds with {100 * confidence:g}% t interval across seeds)" if n_networks > 1 else ""
    )
    threshold = rows["selectivity_threshold"].iloc[0] if "selectivity_threshold" in rows.columns else None
    shows_fraction = threshold is not None and "fraction_selective" in measures
    selective = f"; selective: gOSI > {threshold:g}" if shows_fraction else ""
    _set_title(
        figure,
        f"Orientation selectivity by depth, {title}",
        f"{_selection_description(rows, None)}; {lines}{interval}; dashed: shuffled-stimulus control"
        f"{selective}",
    )
    return figure


def plot_selectivity_by_depth(summary, pdf_path, png_path, **options) -> None:
    """Write :func:`selectivity_by_depth_figure` (same options) to ``pdf_path`` and ``png_path``."""
    save_figure(selectivity_by_depth_figure(summary, **options), pdf_path, png_path)


def _roundness(epoch: float) -> tuple[int, float]:
    """Sort key that puts round epochs first: 1, 10, 100 before 5, 50 before 2, 20 before the rest."""
    if epoch <= 0:
        return (0, epoch)
    mantissa = round(epoch / 10 ** math.floor(math.log10(epoch)), 6)
    return ({1.0: 1, 5.0: 2, 2.0: 3}.get(mantissa, 4), epoch)


def label_epoch_axis(
    ax, epochs: Sequence[float], axis_width_inches: float, fontsize: float = 8.0
) -> list[float]:
    """A symmetric-log epoch axis with a minor tick at every saved epoch and labels that never collide.

    The first and last saved epochs are always labelled; then the others, roundest first
    (1, 10, 100, then 5, 50, then 2, 20, ...), each only if it keeps half the widths of its
    neighbouring labels plus a gap clear of them (widths estimated from the digits and
    ``fontsize`` on an axis ``axis_width_inches`` wide). Returns the labelled epochs. The
    paper's epochs 0, 1, 2, 5, 10, 20, 50, 100, 150, 200 on a 2-inch axis get 0, 1, 2, 5,
    10, 50, 200; every saved epoch keeps its minor tick.
    """
    ax.set_xscale("symlog", linthresh=1.0)
    epochs = sorted({float(epoch) for epoch in epochs})
    positions = ax.xaxis.get_transform().transform(np.asarray(epochs))
    span = positions[-1] - positions[0] if len(epochs) > 1 else 1.0
    inches = {
        epoch: (position - positions[0]) / span * axis_width_inches
        for epoch, position in zip(epochs, positions)
    }

    def half_width(epoch: float) -> float:
        return len(f"{epoch:g}") * 0.64 * fontsize / 72 / 2

    labelled = sorted({epochs[0], epochs[-1]})
    for epoch in sorted(epochs[1:-1], key=_roundness):
        below = max(label for label in labelled if label < epoch)
        above = min(label for label in labelled if label > epoch)
        fits = all(
            abs(inches[epoch] - inches[neighbour]) >= half_width(epoch) + half_width(neighbour) + 0.06
            for neighbour in (below, above)
        )
        if fits:
            labelled = sorted(labelled + [epoch])
    ax.xaxis.set_major_locator(FixedLocator(labelled))
    ax.xaxis.set_major_formatter(FormatStrFormatter("%g"))
    ax.xaxis.set_minor_locator(FixedLocator(epochs))
    ax.xaxis.set_minor_formatter(NullFormatter())
    return labelled


def _draw_over_training_panel(
    ax,
    layer_rows: pd.DataFrame,
    measure: str,
    confidence: float,
    epochs: Sequence[float],
    axis_width_inches: float,
    label_accuracy_axis: bool,
) -> None:
    """One layer's ``measure`` (left axis) and test accuracy (right axis, dashed) against epoch."""
    sns.lineplot(
        data=layer_rows,
        x="epoch",
        y=measure,
        color=STIMULUS_SET_COLOURS["gratings"],
        marker="o",
        markersize=4,
        errorbar=_errorbar(confidence),
        legend=False,
        ax=ax,
    )
    accuracy_ax = ax.twinx()
    sns.lineplot(
        data=layer_rows,
        x="epoch",
        y="test_accuracy",
        color=ACCURACY_COLOUR,
        linestyle="--",
        errorbar=_errorbar(confidence),
        legend=False,
        ax=accuracy_ax,
    )
    label_epoch_axis(ax, epochs, axis_width_inches=axis_width_inches)
    accuracy_ax.set_ylabel(_label("test_accuracy") if label_accuracy_axis else "")
    accuracy_ax.set_ylim(0.0, 1.0)


@styled
def selectivity_over_training_figure(
    summary: pd.DataFrame,
    measure: str = "mean_gosi",
    label_corruption: float = 0.0,
    stimulus_set: str = "gratings",
    confidence: float = 0.95,
    max_columns: int = 4,
) -> Figure:
    """Per layer, ``measure`` against epoch (mean and CI over seeds) with test accuracy on a twin axis.

    The epoch axis is symmetric-log so that the early epochs, where most change happens,
    stay visible next to epoch 0 (the initialisation); every saved epoch has a tick.
    """
    _check_not_empty(summary, "summary")
    require_columns(
        summary,
        [
            "checkpoint",
            "epoch",
            "layer",
            "layer_index",
            "stimulus_set",
            measure,
            "test_accuracy",
            "label_corruption",
        ],
        "summary",
    )
    title = _model_dataset_title(summary, "summary")
    rows = summary[
        (summary["checkpoint"] == "epoch")
        & (summary["stimulus_set"] == stimulus_set)
        & np.isclose(summary["label_corruption"].astype(float), label_corruption)
    ]
    if rows.empty:
        raise ValueError(
            f"the summary has no saved epochs of networks with label corruption {label_corruption}"
        )
    layers = layer_order(rows)
    epochs = sorted(rows["epoch"].unique())
    n_rows, n_cols = grid(len(layers), max_columns)
    panel_width = PANEL_WIDTH + 0.3  # room for the twin axis
    figure, axes = new_figure(n_rows, n_cols, sharex=True, panel_width=panel_width)
    for index, (ax, layer) in enumerate(zip(axes.flat, layers)):
        last_in_row = index % n_cols == n_cols - 1 or index == len(layers) - 1
        _draw_over_training_panel(
            ax, rows[rows["layer"] == layer], measure, confidence, epochs, panel_width - 1.3, last_in_row
        )
        ax.set_title(layer)
    finish_grid(figure, axes, len(layers), xlabel="epoch", ylabel=_label(measure))
    handles = [
        Line2D(
            [],
            [],
            color=STIMULUS_SET_COLOURS["gratings"],
            marker="o",
            markersize=4,
            label=f"{_label(measure)}\n(left axis)",
        ),
        Line2D([], [], color=ACCURACY_COLOUR, linestyle="--", label="test accuracy\n(right axis)"),
    ]
    figure.legend(handles=handles, loc="outside right center", frameon=False)
    n_networks = _network_count(rows)
    interval = (
        f"lines: mean over seeds, bands: {100 * confidence:g}% t interval across seeds"
        if n_networks > 1
        else "one network"
    )
    set_name = (
        "" if stimulus_set == "gratings" else f" ({STIMULUS_SET_LABELS.get(stimulus_set, stimulus_set)})"
    )
    _set_title(
        figure,
        f"{_label(measure)}{set_name} and test accuracy over training, {title}",
        f"{_networks_description(rows)} with {_corruption_description(label_corruption)}; saved epochs "
        f"(0 = initialisation; symmetric-log axis); {interval}",
    )
    return figure


def plot_selectivity_over_training(summary, pdf_path, png_path, **options) -> None:
    """Write :func:`selectivity_over_training_figure` (same options) to ``pdf_path`` and ``png_path``."""
    save_figure(selectivity_over_training_figure(summary, **options), pdf_path, png_path)


@styled
def selectivity_vs_accuracy_figure(
    summary: pd.DataFrame,
    checkpoint: str = "final",
    measure: str = "mean_gosi",
    method: str = "spearman",
    stimulus_set: str = "gratings",
    confidence: float = 0.95,
    max_columns: int = 4,
) -> Figure:
    """Per layer, test accuracy against ``measure`` across networks, with a pooled regression line.

    Colour = label corruption; each panel's title gives the across-network correlation.
    """
    _check_not_empty(summary, "summary")
    require_columns(summary, ["layer", "layer_index", "stimulus_set", measure, "test_accuracy"], "summary")
    title = _model_dataset_title(summary, "summary")
    _errorbar(confidence)
    rows = select_checkpoint(summary, checkpoint)
    rows = rows[rows["stimulus_set"] == stimulus_set].dropna(subset=[measure, "test_accuracy"])
    _check_not_empty(rows, f"{checkpoint}-checkpoint summary (with test accuracy)")
    layers = layer_order(rows)
    data, palette = _with_corruption_label(rows)
    n_rows, n_cols = grid(len(layers), max_columns)
    figure, axes = new_figure(n_rows, n_cols, sharey=True)
    for ax, layer in zip(axes.flat, layers):
        layer_rows = data[data["layer"] == layer]
        sns.scatterplot(
            data=layer_rows, x=measure, y="test_accuracy", hue="label corruption", palette=palette, ax=ax
        )
        if len(layer_rows) >= 3 and layer_rows[measure].nunique() > 1:
            x = layer_rows[measure].to_numpy(float)
            at = np.linspace(x.min(), x.max(), 50)
            fit, low, high = regression_line_interval(x, layer_rows["test_accuracy"], at, confidence)
            ax.plot(at, fit, color="0.3", linewidth=1.2)
            ax.fill_between(at, low, high, color="0.3", alpha=0.15, linewidth=0)
        r = correlation(layer_rows[measure], layer_rows["test_accuracy"], method=method)
        ax.set_title(f"{layer}: {method.capitalize()} r = {r:.2f} (n = {len(layer_rows)})", fontsize=8)
    finish_grid(figure, axes, len(layers), xlabel=_label(measure), ylabel=_label("test_accuracy"))
    _figure_legend(figure, axes)
    _set_title(
        figure,
        f"Orientation selectivity vs generalization across networks, {title}",
        f"{_selection_description(rows, None)}; one point per network; grey: least-squares line with "
        f"{100 * confidence:g}% t interval band; r: {method.capitalize()} correlation across networks",
    )
    return figure


def plot_selectivity_vs_accuracy(summary, pdf_path, png_path, **options) -> None:
    """Write :func:`selectivity_vs_accuracy_figure` (same options) to ``pdf_path`` and ``png_path``."""
    save_figure(selectivity_vs_accuracy_figure(summary, **options), pdf_path, png_path)
