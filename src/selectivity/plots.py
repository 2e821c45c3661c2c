"""Figures of the workflow, each written to a PDF and a PNG.

Every ``plot_*`` function builds its figure with the matching ``*_figure`` function
(which tests inspect) and writes it with :func:`save_figure`. Figures are plain
:class:`matplotlib.figure.Figure` objects on the Agg canvas, never registered with
pyplot, so nothing stays open and no display is needed.

Conventions shared by all figures: layers run from shallow to deep (by ``layer_index``);
conditions, stimulus sets, orderings and label-corruption levels have fixed colours
(the dictionaries below and :func:`corruption_palette`); error bands and bars are
bootstrap confidence intervals *across networks* (seeds) after averaging within each
network (random draws, shift directions), computed by seaborn with a fixed seed.
"""

from __future__ import annotations

import logging
import math
import os
from typing import Mapping, Sequence

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import ScalarFormatter

from selectivity.io import atomic_path
from selectivity.statistics import correlation
from selectivity.summaries import NETWORK_COLUMNS, as_bool, require_columns, select_checkpoint

logger = logging.getLogger(__name__)

_COLOURBLIND = sns.color_palette("colorblind")
CONDITION_COLOURS = {
    "intact": (0.0, 0.0, 0.0),
    "top": _COLOURBLIND[1],
    "bottom": _COLOURBLIND[0],
    "random": _COLOURBLIND[7],
}
STIMULUS_SET_COLOURS = {"gratings": _COLOURBLIND[0], "shuffled": _COLOURBLIND[7]}
ORDERING_COLOURS = {
    "gosi_descending": _COLOURBLIND[1],
    "gosi_ascending": _COLOURBLIND[0],
    "class_selectivity_descending": _COLOURBLIND[2],
    "class_selectivity_ascending": _COLOURBLIND[4],
    "random": _COLOURBLIND[7],
}
ACCURACY_COLOUR = (0.0, 0.0, 0.0)
CORRUPTION_COLOURMAP = "plasma"
# The colour map's bright yellow end is hard to see on white; corruption 1.0 maps to 85%.
_CORRUPTION_COLOUR_RANGE = 0.85
VALUE_LABELS = {
    "gosi": "gOSI",
    "osi": "OSI",
    "mean_gosi": "mean gOSI",
    "median_gosi": "median gOSI",
    "mean_osi": "mean OSI",
    "median_osi": "median OSI",
    "fraction_selective": "fraction selective",
    "test_accuracy": "test accuracy",
    "test_loss": "test loss",
    "loss_increase_mean": "test loss increase",
    "accuracy_change": "test accuracy change",
    "normalised_invariance_mean": "normalised invariance",
    "shift_correlation_mean": "shift correlation (raw)",
}
PANEL_WIDTH, PANEL_HEIGHT = 3.2, 2.6


# ----------------------------------------------------------------------------- plumbing


def corruption_palette(levels) -> dict[float, tuple]:
    """A fixed colour per label-corruption fraction (the same in every figure)."""
    colour_map = matplotlib.colormaps[CORRUPTION_COLOURMAP]
    return {float(level): colour_map(_CORRUPTION_COLOUR_RANGE * float(level)) for level in sorted(set(levels))}


def new_figure(n_rows: int, n_cols: int, *, sharex: bool = False, sharey: bool = False) -> tuple[Figure, np.ndarray]:
    """A figure on the Agg canvas with an (n_rows, n_cols) array of axes."""
    figure = Figure(figsize=(PANEL_WIDTH * n_cols, PANEL_HEIGHT * n_rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(n_rows, n_cols, squeeze=False, sharex=sharex, sharey=sharey)
    return figure, axes


def grid(n_panels: int, max_columns: int = 4) -> tuple[int, int]:
    n_cols = max(1, min(n_panels, max_columns))
    return math.ceil(max(n_panels, 1) / n_cols), n_cols


def remove_unused(figure: Figure, axes: np.ndarray, n_used: int) -> None:
    for ax in axes.flat[n_used:]:
        figure.delaxes(ax)


def save_figure(figure: Figure, pdf_path: str | os.PathLike, png_path: str | os.PathLike, dpi: int = 150) -> None:
    """Write ``figure`` to both paths (atomically) and release it."""
    logger.info("writing figure %s and %s", pdf_path, png_path)
    for path, file_format in ((pdf_path, "pdf"), (png_path, "png")):
        with atomic_path(path) as tmp:
            figure.savefig(tmp, format=file_format, dpi=dpi)
    figure.clear()


def layer_order(table: pd.DataFrame, layer_column: str = "layer", index_column: str = "layer_index") -> list[str]:
    """Layer names from shallow to deep (by ``index_column`` when present, else first appearance)."""
    if index_column in table.columns:
        pairs = table[[layer_column, index_column]].drop_duplicates().sort_values(index_column)
        return [str(layer) for layer in pairs[layer_column]]
    return [str(layer) for layer in pd.unique(table[layer_column])]


def _check_not_empty(table: pd.DataFrame, table_name: str) -> None:
    if table.empty:
        raise ValueError(f"the {table_name} table is empty: nothing to plot")


def _model_dataset_title(table: pd.DataFrame, table_name: str) -> str:
    """'model / dataset' of a table that must hold a single model and dataset."""
    require_columns(table, ["model", "dataset"], table_name)
    pairs = table[["model", "dataset"]].drop_duplicates()
    if len(pairs) != 1:
        raise ValueError(
            f"the {table_name} table mixes models/datasets {pairs.to_numpy().tolist()}; plot one at a time"
        )
    return f"{pairs.iloc[0]['model']} / {pairs.iloc[0]['dataset']}"


def _network_count(table: pd.DataFrame) -> int:
    return len(table[list(NETWORK_COLUMNS)].drop_duplicates())


def _errorbar(confidence: float) -> tuple[str, float]:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")
    return ("ci", 100.0 * confidence)


def _label(value: str) -> str:
    return VALUE_LABELS.get(value, value.replace("_", " "))


def _with_corruption_label(table: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Rename label_corruption for legends; return the table and its palette."""
    table = table.rename(columns={"label_corruption": "label corruption"})
    table["label corruption"] = table["label corruption"].astype(float)
    return table, corruption_palette(table["label corruption"])


def _figure_legend(figure: Figure, axes: np.ndarray) -> None:
    """Replace the per-panel legends (all alike) by one legend to the right of the figure."""
    legends = [ax.get_legend() for ax in axes.flat if ax.get_legend() is not None]
    if not legends:
        return
    first = legends[0]
    handles, labels = first.legend_handles, [text.get_text() for text in first.get_texts()]
    title = first.get_title().get_text()
    for legend in legends:
        legend.remove()
    figure.legend(handles, labels, title=title or None, loc="outside right center", frameon=False)


# ----------------------------------------------------------------------------- stimuli


def stimulus_sample_figure(images: np.ndarray, titles: Sequence[str], max_columns: int = 8) -> Figure:
    """A grid of stimuli, (n, 3, H, W) (or (n, 1, H, W)) with values in [0, 1]."""
    images = np.asarray(images, dtype=float)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (n, 3, H, W) or (n, 1, H, W), got {images.shape}")
    if len(titles) != len(images):
        raise ValueError(f"got {len(titles)} titles for {len(images)} images")
    if images.size and (images.min() < 0.0 or images.max() > 1.0):
        raise ValueError(f"image values must lie in [0, 1], found [{images.min():.3g}, {images.max():.3g}]")
    n_rows, n_cols = grid(len(images), max_columns)
    figure, axes = new_figure(n_rows, n_cols)
    for ax, image, title in zip(axes.flat, images, titles):
        pixels = image.transpose(1, 2, 0)
        ax.imshow(pixels[..., 0] if pixels.shape[-1] == 1 else pixels, cmap="gray", vmin=0.0, vmax=1.0,
                  interpolation="nearest")
        ax.set_title(title, fontsize=8)
        ax.set_axis_off()
    remove_unused(figure, axes, len(images))
    return figure


def plot_stimulus_sample(images: np.ndarray, titles: Sequence[str], pdf_path, png_path, **options) -> None:
    """Write :func:`stimulus_sample_figure` (same options) to ``pdf_path`` and ``png_path``."""
    save_figure(stimulus_sample_figure(images, titles, **options), pdf_path, png_path)


# ----------------------------------------------------------------------------- training

TRAINING_PANELS = (
    ("train (trained labels)", "train_loss", "train_accuracy"),
    ("train (true labels)", "train_loss_true_labels", "train_accuracy_true_labels"),
    ("validation", "validation_loss", "validation_accuracy"),
    ("test", "test_loss", "test_accuracy"),
)


def training_curves_figure(
    metrics: pd.DataFrame, confidence: float = 0.95, n_boot: int = 1000, seed: int = 0
) -> Figure:
    """Loss (top row) and accuracy (bottom row) against epoch for train/validation/test.

    One line per label-corruption level: the mean over seeds with a bootstrap band.
    """
    _check_not_empty(metrics, "metrics")
    columns = [column for _, loss, accuracy in TRAINING_PANELS for column in (loss, accuracy)]
    require_columns(metrics, list(NETWORK_COLUMNS) + ["epoch"] + columns, "metrics")
    title = _model_dataset_title(metrics, "metrics")
    data, palette = _with_corruption_label(metrics)
    figure, axes = new_figure(2, len(TRAINING_PANELS), sharex=True)
    for column, (panel, loss, accuracy) in enumerate(TRAINING_PANELS):
        for row, (value, ylabel) in enumerate(((loss, "cross-entropy loss"), (accuracy, "accuracy"))):
            ax = axes[row, column]
            sns.lineplot(data=data, x="epoch", y=value, hue="label corruption", palette=palette,
                         errorbar=_errorbar(confidence), n_boot=n_boot, seed=seed, ax=ax)
            ax.set_title(panel if row == 0 else "")
            ax.set_xlabel("epoch" if row == 1 else "")
            ax.set_ylabel(ylabel if column == 0 else "")
    _figure_legend(figure, axes)
    figure.suptitle(f"Training of {title} ({_network_count(metrics)} networks; mean and "
                    f"{100 * confidence:g}% CI over seeds)")
    return figure


def plot_training_curves(metrics: pd.DataFrame, pdf_path, png_path, **options) -> None:
    """Write :func:`training_curves_figure` (same options) to ``pdf_path`` and ``png_path``."""
    save_figure(training_curves_figure(metrics, **options), pdf_path, png_path)


# ----------------------------------------------------------------------------- tuning


def _example_units(layer_tuning: pd.DataFrame) -> list[tuple[str, pd.Series]]:
    """The most selective, the median and the least selective responsive unit."""
    alive = layer_tuning[~as_bool(layer_tuning["dead"], "dead")].sort_values(["gosi", "unit"])
    if alive.empty:
        return []
    picks = [("most selective", alive.iloc[-1]), ("median", alive.iloc[len(alive) // 2]),
             ("least selective", alive.iloc[0])]
    return picks


def example_tuning_curves_figure(
    curves: Mapping[str, np.ndarray], tuning: pd.DataFrame, orientations_deg: Sequence[float]
) -> Figure:
    """Per layer (rows), three example units' tuning curves at their preferred SF.

    ``curves[layer]`` is (units, n_sf, n_ori) after the maximum over phases; ``tuning``
    is the tuning table of the same single checkpoint. Curves are divided by their peak
    so shapes compare across units; the curve is closed at 180 deg (= 0 deg).
    """
    _check_not_empty(tuning, "tuning")
    require_columns(tuning, ["layer", "layer_index", "unit", "stimulus_set", "gosi", "dead",
                             "preferred_spatial_frequency"], "tuning")
    gratings = tuning[tuning["stimulus_set"] == "gratings"]
    if gratings.duplicated(["layer", "unit"]).any():
        raise ValueError("the tuning table holds several rows per unit: pass one checkpoint of one network")
    orientations = np.asarray(orientations_deg, dtype=float)
    layers = [layer for layer in layer_order(gratings) if layer in curves]
    if not layers:
        raise ValueError(f"no layer of the tuning table is among the curves {sorted(curves)}")
    figure, axes = new_figure(len(layers), 3, sharex=True)
    closed_orientations = np.append(orientations, 180.0)
    for row, layer in enumerate(layers):
        responses = np.asarray(curves[layer])
        if responses.ndim != 3 or responses.shape[2] != len(orientations):
            raise ValueError(
                f"curves[{layer!r}] must be (units, n_sf, {len(orientations)}), got shape {responses.shape}"
            )
        examples = _example_units(gratings[gratings["layer"] == layer])
        for column in range(3):
            ax = axes[row, column]
            ax.set_xticks([0, 45, 90, 135, 180])
            ax.set_xlabel("orientation (deg)" if row == len(layers) - 1 else "")
            ax.set_ylabel("response / peak" if column == 0 else "")
            if column >= len(examples):
                ax.set_title(f"{layer}: no responsive unit")
                continue
            kind, unit = examples[column]
            curve = responses[int(unit["unit"]), int(unit["preferred_spatial_frequency"])]
            curve = curve / curve.max()
            ax.plot(closed_orientations, np.append(curve, curve[0]), marker="o", markersize=3,
                    color=STIMULUS_SET_COLOURS["gratings"])
            ax.set_ylim(0.0, 1.05)
            ax.set_title(f"{layer} unit {int(unit['unit'])} ({kind}): gOSI {unit['gosi']:.2f}", fontsize=8)
    return figure


def plot_example_tuning_curves(curves, tuning, orientations_deg, pdf_path, png_path) -> None:
    """Write :func:`example_tuning_curves_figure` (same options) to ``pdf_path`` and ``png_path``."""
    save_figure(example_tuning_curves_figure(curves, tuning, orientations_deg), pdf_path, png_path)


def selectivity_distributions_figure(
    tuning: pd.DataFrame, value: str = "gosi", selectivity_threshold: float | None = 0.33, bins: int = 20
) -> Figure:
    """Per layer, the distribution of ``value`` (gosi or osi) for gratings vs the shuffled control."""
    if value not in ("gosi", "osi"):
        raise ValueError(f"value must be 'gosi' or 'osi', got {value!r}")
    _check_not_empty(tuning, "tuning")
    require_columns(tuning, ["layer", "layer_index", "stimulus_set", value], "tuning")
    layers = layer_order(tuning)
    data = tuning.rename(columns={"stimulus_set": "stimulus set"})
    n_rows, n_cols = grid(len(layers))
    figure, axes = new_figure(n_rows, n_cols, sharex=True)
    for ax, layer in zip(axes.flat, layers):
        sns.histplot(data=data[data["layer"] == layer], x=value, hue="stimulus set",
                     hue_order=list(STIMULUS_SET_COLOURS), palette=STIMULUS_SET_COLOURS, stat="density",
                     common_norm=False, element="step", bins=bins, binrange=(0.0, 1.0), ax=ax)
        if value == "gosi" and selectivity_threshold is not None:
            ax.axvline(selectivity_threshold, color="0.3", linestyle=":", linewidth=1)
        ax.set_title(layer)
        ax.set_xlabel(_label(value))
    remove_unused(figure, axes, len(layers))
    _figure_legend(figure, axes)
    figure.suptitle(f"{_label(value)} distribution per layer: gratings vs shuffled control")
    return figure


def plot_selectivity_distributions(tuning, pdf_path, png_path, *, value: str = "gosi", **options) -> None:
    """Write :func:`selectivity_distributions_figure` (same options) to ``pdf_path`` and ``png_path``."""
    save_figure(selectivity_distributions_figure(tuning, value=value, **options), pdf_path, png_path)


# ----------------------------------------------------------------------------- summaries


def selectivity_by_depth_figure(
    summary: pd.DataFrame,
    checkpoint: str = "final",
    measures: Sequence[str] = ("mean_gosi", "fraction_selective"),
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> Figure:
    """Each measure against layer depth: colour = label corruption, dashed = shuffled control."""
    _check_not_empty(summary, "summary")
    require_columns(summary, ["layer", "layer_index", "stimulus_set", *measures], "summary")
    title = _model_dataset_title(summary, "summary")
    rows = select_checkpoint(summary, checkpoint)
    layers = layer_order(rows)
    data, palette = _with_corruption_label(rows.rename(columns={"stimulus_set": "stimulus set"}))
    figure, axes = new_figure(1, len(measures))
    for ax, measure in zip(axes.flat, measures):
        sns.lineplot(data=data, x="layer_index", y=measure, hue="label corruption", palette=palette,
                     style="stimulus set", style_order=list(STIMULUS_SET_COLOURS), markers=True,
                     errorbar=_errorbar(confidence), n_boot=n_boot, seed=seed, ax=ax)
        ax.set_xticks(sorted(rows["layer_index"].unique()), layers)
        ax.set_xlabel("layer")
        ax.set_ylabel(_label(measure))
    _figure_legend(figure, axes)
    figure.suptitle(f"Selectivity by depth, {title}, {checkpoint} checkpoint ({_network_count(rows)} networks)")
    return figure


def plot_selectivity_by_depth(summary, pdf_path, png_path, **options) -> None:
    """Write :func:`selectivity_by_depth_figure` (same options) to ``pdf_path`` and ``png_path``."""
    save_figure(selectivity_by_depth_figure(summary, **options), pdf_path, png_path)


def selectivity_over_training_figure(
    summary: pd.DataFrame,
    measure: str = "mean_gosi",
    label_corruption: float = 0.0,
    stimulus_set: str = "gratings",
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> Figure:
    """Per layer, ``measure`` against epoch (mean and CI over seeds) with test accuracy on a twin axis.

    The epoch axis is symmetric-log so that the early epochs, where most change happens,
    stay visible next to epoch 0 (the initialisation).
    """
    _check_not_empty(summary, "summary")
    require_columns(summary, ["checkpoint", "epoch", "layer", "layer_index", "stimulus_set", measure,
                              "test_accuracy", "label_corruption"], "summary")
    title = _model_dataset_title(summary, "summary")
    rows = summary[(summary["checkpoint"] == "epoch") & (summary["stimulus_set"] == stimulus_set)
                   & np.isclose(summary["label_corruption"].astype(float), label_corruption)]
    if rows.empty:
        raise ValueError(f"the summary has no saved epochs of networks with label corruption {label_corruption}")
    layers = layer_order(rows)
    n_rows, n_cols = grid(len(layers))
    figure, axes = new_figure(n_rows, n_cols, sharex=True)
    for ax, layer in zip(axes.flat, layers):
        layer_rows = rows[rows["layer"] == layer]
        sns.lineplot(data=layer_rows, x="epoch", y=measure, color=STIMULUS_SET_COLOURS["gratings"], marker="o",
                     errorbar=_errorbar(confidence), n_boot=n_boot, seed=seed, ax=ax, label=_label(measure))
        accuracy_ax = ax.twinx()
        sns.lineplot(data=layer_rows, x="epoch", y="test_accuracy", color=ACCURACY_COLOUR, linestyle="--",
                     errorbar=_errorbar(confidence), n_boot=n_boot, seed=seed, ax=accuracy_ax,
                     label="test accuracy")
        ax.set_xscale("symlog", linthresh=1.0)
        ax.xaxis.set_major_formatter(ScalarFormatter())  # 0, 1, 10, 100 rather than powers of ten
        ax.set_title(layer)
        ax.set_ylabel(_label(measure))
        accuracy_ax.set_ylabel("test accuracy")
        accuracy_ax.set_ylim(0.0, 1.0)
        # one legend with both lines, on the first panel only
        handles = ax.get_legend_handles_labels()[0] + accuracy_ax.get_legend_handles_labels()[0]
        for axis in (ax, accuracy_ax):
            if axis.get_legend() is not None:
                axis.get_legend().remove()
    remove_unused(figure, axes, len(layers))
    figure.legend(handles=handles, loc="outside right center", frameon=False)
    figure.suptitle(f"{_label(measure)} over training, {title}, label corruption {label_corruption} "
                    f"({_network_count(rows)} seeds; mean and {100 * confidence:g}% CI)")
    return figure


def plot_selectivity_over_training(summary, pdf_path, png_path, **options) -> None:
    """Write :func:`selectivity_over_training_figure` (same options) to ``pdf_path`` and ``png_path``."""
    save_figure(selectivity_over_training_figure(summary, **options), pdf_path, png_path)


def selectivity_vs_accuracy_figure(
    summary: pd.DataFrame,
    checkpoint: str = "final",
    measure: str = "mean_gosi",
    method: str = "spearman",
    stimulus_set: str = "gratings",
    seed: int = 0,
) -> Figure:
    """Per layer, test accuracy against ``measure`` across networks, with a pooled regression line.

    Colour = label corruption; each panel's title gives the across-network correlation.
    """
    _check_not_empty(summary, "summary")
    require_columns(summary, ["layer", "layer_index", "stimulus_set", measure, "test_accuracy"], "summary")
    title = _model_dataset_title(summary, "summary")
    rows = select_checkpoint(summary, checkpoint)
    rows = rows[rows["stimulus_set"] == stimulus_set].dropna(subset=[measure, "test_accuracy"])
    layers = layer_order(rows)
    data, palette = _with_corruption_label(rows)
    n_rows, n_cols = grid(len(layers))
    figure, axes = new_figure(n_rows, n_cols, sharey=True)
    for ax, layer in zip(axes.flat, layers):
        layer_rows = data[data["layer"] == layer]
        sns.scatterplot(data=layer_rows, x=measure, y="test_accuracy", hue="label corruption", palette=palette,
                        ax=ax)
        if len(layer_rows) >= 2 and layer_rows[measure].nunique() > 1:
            sns.regplot(data=layer_rows, x=measure, y="test_accuracy", scatter=False, color="0.3", seed=seed, ax=ax)
        r = correlation(layer_rows[measure], layer_rows["test_accuracy"], method=method)
        ax.set_title(f"{layer}: {method.capitalize()} r = {r:.2f} (n = {len(layer_rows)})", fontsize=9)
        ax.set_xlabel(_label(measure))
        ax.set_ylabel("test accuracy")
    remove_unused(figure, axes, len(layers))
    _figure_legend(figure, axes)
    figure.suptitle(f"Selectivity vs generalization across networks, {title}, {checkpoint} checkpoint")
    return figure


def plot_selectivity_vs_accuracy(summary, pdf_path, png_path, **options) -> None:
    """Write :func:`selectivity_vs_accuracy_figure` (same options) to ``pdf_path`` and ``png_path``."""
    save_figure(selectivity_vs_accuracy_figure(summary, **options), pdf_path, png_path)


# ----------------------------------------------------------------------------- ablation


def half_ablation_figure(
    half_ablation: pd.DataFrame,
    values: Sequence[str] = ("loss_increase_mean", "accuracy_change"),
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> Figure:
    """Per ranking (columns) and value (rows): bars per layer for top / bottom / random 50%.

    Random draws are averaged within each network first; bars are means over networks.
    """
    _check_not_empty(half_ablation, "half ablation")
    require_columns(half_ablation, list(NETWORK_COLUMNS) + ["layer", "layer_index", "ranking", "condition",
                                                             *values], "half ablation")
    title = _model_dataset_title(half_ablation, "half ablation")
    per_network = (
        half_ablation.groupby(list(NETWORK_COLUMNS) + ["layer", "layer_index", "ranking", "condition"])[list(values)]
        .mean()
        .reset_index()
    )
    rankings = [ranking for ranking in ("gosi", "class_selectivity") if ranking in set(per_network["ranking"])]
    rankings += sorted(set(per_network["ranking"]) - set(rankings))
    layers = layer_order(per_network)
    conditions = [condition for condition in ("top", "bottom", "random") if condition in set(per_network["condition"])]
    figure, axes = new_figure(len(values), len(rankings), sharey="row")
    for column, ranking in enumerate(rankings):
        for row, value in enumerate(values):
            ax = axes[row, column]
            sns.barplot(data=per_network[per_network["ranking"] == ranking], x="layer", y=value, order=layers,
                        hue="condition", hue_order=conditions, palette=CONDITION_COLOURS, saturation=1.0,
                        errorbar=_errorbar(confidence), n_boot=n_boot, seed=seed, ax=ax)
            ax.axhline(0.0, color="0.5", linewidth=0.8)
            ax.set_title(f"ranked by {'gOSI' if ranking == 'gosi' else ranking.replace('_', ' ')}" if row == 0 else "")
            ax.set_xlabel("ablated layer" if row == len(values) - 1 else "")
            ax.set_ylabel(_label(value) if column == 0 else "")
    _figure_legend(figure, axes)
    figure.suptitle(f"Half ablation, {title} ({_network_count(per_network)} networks; mean and "
                    f"{100 * confidence:g}% CI over networks)")
    return figure


def plot_half_ablation(half_ablation, pdf_path, png_path, **options) -> None:
    """Write :func:`half_ablation_figure` (same options) to ``pdf_path`` and ``png_path``."""
    save_figure(half_ablation_figure(half_ablation, **options), pdf_path, png_path)


def cumulative_ablation_figure(
    curves: pd.DataFrame, value: str = "test_accuracy", confidence: float = 0.95, n_boot: int = 1000, seed: int = 0
) -> Figure:
    """Per layer, ``value`` against the fraction of units ablated, one line per ordering."""
    _check_not_empty(curves, "cumulative ablation")
    require_columns(curves, list(NETWORK_COLUMNS) + ["layer", "layer_index", "ordering", "fraction_ablated", value],
                    "cumulative ablation")
    title = _model_dataset_title(curves, "cumulative ablation")
    per_network = (
        curves.groupby(list(NETWORK_COLUMNS) + ["layer", "layer_index", "ordering", "fraction_ablated"])[value]
        .mean()
        .reset_index()
    )
    orderings = [ordering for ordering in ORDERING_COLOURS if ordering in set(per_network["ordering"])]
    layers = layer_order(per_network)
    n_rows, n_cols = grid(len(layers))
    figure, axes = new_figure(n_rows, n_cols, sharex=True, sharey=True)
    for ax, layer in zip(axes.flat, layers):
        sns.lineplot(data=per_network[per_network["layer"] == layer], x="fraction_ablated", y=value, hue="ordering",
                     hue_order=orderings, palette=ORDERING_COLOURS, errorbar=_errorbar(confidence), n_boot=n_boot,
                     seed=seed, ax=ax)
        ax.set_title(layer)
        ax.set_xlabel("fraction of units ablated")
        ax.set_ylabel(_label(value))
    remove_unused(figure, axes, len(layers))
    _figure_legend(figure, axes)
    figure.suptitle(f"Cumulative ablation, {title} ({_network_count(per_network)} networks)")
    return figure


def plot_cumulative_ablation(curves, pdf_path, png_path, **options) -> None:
    """Write :func:`cumulative_ablation_figure` (same options) to ``pdf_path`` and ``png_path``."""
    save_figure(cumulative_ablation_figure(curves, **options), pdf_path, png_path)


# ----------------------------------------------------------------------------- invariance

INVARIANCE_VALUES = ("normalised_invariance_mean", "shift_correlation_mean")


def shift_invariance_figure(
    invariance: pd.DataFrame,
    layer_order_deep: Sequence[str] | None = None,
    confidence: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> Figure:
    """Rows: measured layers; columns: per ablated layer, normalised invariance then raw correlation.

    Lines: intact (repeated in every panel as the reference), top, bottom and random
    50% ablated; directions and random draws are averaged within each network.
    ``layer_order_deep`` orders the layers (default: order of first appearance).
    """
    _check_not_empty(invariance, "shift invariance")
    require_columns(invariance, list(NETWORK_COLUMNS) + ["measured_layer", "ablated_layer", "condition",
                                                          "shift_px", *INVARIANCE_VALUES], "shift invariance")
    title = _model_dataset_title(invariance, "shift invariance")
    per_network = (
        invariance.groupby(list(NETWORK_COLUMNS) + ["measured_layer", "ablated_layer", "condition", "shift_px"])[
            list(INVARIANCE_VALUES)
        ]
        .mean()
        .reset_index()
    )

    def ordered(names) -> list[str]:
        names = [str(name) for name in pd.unique(names)]
        if layer_order_deep is None:
            return names
        return sorted(names, key=lambda name: list(layer_order_deep).index(name) if name in layer_order_deep else 1e9)

    intact = per_network[per_network["condition"] == "intact"]
    ablated_rows = per_network[per_network["condition"] != "intact"]
    measured_layers = ordered(invariance["measured_layer"])
    ablated_layers = ordered(ablated_rows["ablated_layer"]) or ["none"]
    conditions = [condition for condition in CONDITION_COLOURS if condition in set(per_network["condition"])]
    figure, axes = new_figure(len(measured_layers), len(ablated_layers) * len(INVARIANCE_VALUES), sharex=True)
    for row, measured in enumerate(measured_layers):
        for block, ablated in enumerate(ablated_layers):
            panel_rows = pd.concat([
                intact[intact["measured_layer"] == measured],
                ablated_rows[(ablated_rows["measured_layer"] == measured) & (ablated_rows["ablated_layer"] == ablated)],
            ])
            for offset, value in enumerate(INVARIANCE_VALUES):
                ax = axes[row, block * len(INVARIANCE_VALUES) + offset]
                sns.lineplot(data=panel_rows, x="shift_px", y=value, hue="condition", hue_order=conditions,
                             palette=CONDITION_COLOURS, marker="o", errorbar=_errorbar(confidence), n_boot=n_boot,
                             seed=seed, ax=ax)
                ax.set_xticks(sorted(per_network["shift_px"].unique()))
                ax.set_title(f"{measured}, {ablated} ablated" if ablated != "none" else measured, fontsize=9)
                ax.set_xlabel("shift (px)" if row == len(measured_layers) - 1 else "")
                ax.set_ylabel(_label(value))
    _figure_legend(figure, axes)
    figure.suptitle(f"Shift invariance, {title} ({_network_count(per_network)} networks; mean and "
                    f"{100 * confidence:g}% CI over networks)")
    return figure


def plot_shift_invariance(invariance, pdf_path, png_path, **options) -> None:
    """Write :func:`shift_invariance_figure` (same options) to ``pdf_path`` and ``png_path``."""
    save_figure(shift_invariance_figure(invariance, **options), pdf_path, png_path)
