"""Figures of the workflow, each written to a PDF and a PNG.

Every ``plot_*`` function builds its figure with the matching ``*_figure`` function
(which tests inspect) and writes it with :func:`save_figure`. Figures are plain
:class:`matplotlib.figure.Figure` objects on the Agg canvas, never registered with
pyplot, so nothing stays open and no display is needed.

Conventions shared by all figures: layers run from shallow to deep (by ``layer_index``)
and layer names on an x axis are rotated by 45 degrees; conditions, stimulus sets,
orderings and label-corruption levels have fixed colours (the dictionaries below and
:func:`corruption_palette`); error bands and bars are t intervals (selectivity.statistics)
*across networks* (seeds) after averaging within each network (random draws, shift
directions), the same :func:`selectivity.statistics.mean_interval` the tables use
(handed to seaborn as its ``errorbar``). A figure of a single network (the
published VGG16) has no across-network interval; where the table has a standard error
over test images it is drawn instead. Every figure title says what is shown, which
networks, and what the bars or bands are. The causal figures and the selectivity
distributions show the networks of one label-corruption level (the clean networks the
claims use), never a pool of levels.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import textwrap
from typing import Callable, Mapping, Sequence

import matplotlib
import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FixedLocator, FormatStrFormatter, NullFormatter

from selectivity.io import atomic_path
from selectivity.statistics import correlation, interval_of_mean, mean_interval, regression_line_interval
from selectivity.summaries import (
    NETWORK_COLUMNS,
    per_network_means,
    PUBLISHED_CHECKPOINT,
    as_bool,
    require_columns,
    select_checkpoint,
)

logger = logging.getLogger(__name__)

_COLOURBLIND = sns.color_palette("colorblind")
CONDITION_COLOURS = {
    "intact": (0.0, 0.0, 0.0),
    "top": _COLOURBLIND[1],
    "bottom": _COLOURBLIND[0],
    "random": _COLOURBLIND[7],
}
STIMULUS_SET_COLOURS = {"gratings": _COLOURBLIND[0], "shuffled": _COLOURBLIND[7]}
STIMULUS_SET_LABELS = {"gratings": "gratings", "shuffled": "shuffled control"}
ORDERING_COLOURS = {
    "gosi_descending": _COLOURBLIND[1],
    "gosi_ascending": _COLOURBLIND[0],
    "class_selectivity_descending": _COLOURBLIND[2],
    "class_selectivity_ascending": _COLOURBLIND[4],
    "random": _COLOURBLIND[7],
}
ORDERING_LABELS = {
    "gosi_descending": "highest gOSI first",
    "gosi_ascending": "lowest gOSI first",
    "class_selectivity_descending": "highest class selectivity first",
    "class_selectivity_ascending": "lowest class selectivity first",
    "random": "random order",
}
#: The example units of the tuning-curve figure: (kind, colour, marker).
EXAMPLE_UNIT_STYLES = (
    ("most selective", _COLOURBLIND[1], "o"),
    ("median", _COLOURBLIND[0], "s"),
    ("least selective", _COLOURBLIND[7], "^"),
)
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
    "fraction_selective": "fraction of units selective",
    "test_accuracy": "test accuracy (fraction)",
    "test_loss": "test loss (nats/image)",
    "loss_increase_mean": "test loss increase (nats/image)",
    "accuracy_change": "test accuracy change (fraction)",
    "normalised_invariance_mean": "normalised invariance",
    "shift_correlation_mean": "shift correlation (raw)",
}
#: A value's standard error over test images, drawn when a figure holds a single network.
SEM_COLUMNS = {
    "loss_increase_mean": "loss_increase_sem",
    "normalised_invariance_mean": "normalised_invariance_sem",
    "shift_correlation_mean": "shift_correlation_sem",
}
PANEL_WIDTH, PANEL_HEIGHT = 3.0, 2.4
#: Panels of the figures built from blocks of grids (cumulative ablation, shift invariance).
GRID_PANEL_WIDTH, GRID_PANEL_HEIGHT = 2.7, 2.2
LEGEND_WIDTH = 1.8
DPI = 150
#: Font sizes of every figure (points): readable when a 12-inch figure is shrunk to a page.
STYLE = {
    "font.size": 9,
    "axes.titlesize": 9,
    "axes.labelsize": 9,
    "xtick.labelsize": 8,
    "ytick.labelsize": 8,
    "legend.fontsize": 8,
    "legend.title_fontsize": 9,
    "figure.titlesize": 10,
}
LAYER_TICK_ROTATION = 45
MAX_LAYERS_AT_45_DEGREES = 12


# ----------------------------------------------------------------------------- plumbing


def styled(build: Callable) -> Callable:
    """Run a figure builder under :data:`STYLE` (fonts are fixed when artists are created)."""

    @functools.wraps(build)
    def wrapper(*args, **kwargs):
        with matplotlib.rc_context(STYLE):
            return build(*args, **kwargs)

    return wrapper


def corruption_palette(levels) -> dict[float, tuple]:
    """A fixed colour per label-corruption fraction (the same in every figure)."""
    colour_map = matplotlib.colormaps[CORRUPTION_COLOURMAP]
    return {
        float(level): colour_map(_CORRUPTION_COLOUR_RANGE * float(level)) for level in sorted(set(levels))
    }


def new_figure(
    n_rows: int,
    n_cols: int,
    *,
    sharex: bool | str = False,
    sharey: bool | str = False,
    panel_width: float = PANEL_WIDTH,
    panel_height: float = PANEL_HEIGHT,
) -> tuple[Figure, np.ndarray]:
    """A figure on the Agg canvas with an (n_rows, n_cols) array of axes of about the given panel size."""
    figure = Figure(figsize=(panel_width * n_cols, panel_height * n_rows), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.subplots(n_rows, n_cols, squeeze=False, sharex=sharex, sharey=sharey)
    return figure, axes


def grid(n_panels: int, max_columns: int = 4) -> tuple[int, int]:
    """(rows, columns) of a grid holding ``n_panels`` with at most ``max_columns`` columns.

    Rows are filled evenly (7 panels in 4 columns: 2 rows of 4; 5 panels: 2 rows of 3).
    """
    if max_columns < 1:
        raise ValueError(f"max_columns must be at least 1, got {max_columns!r}")
    n_panels = max(n_panels, 1)
    n_rows = math.ceil(n_panels / max_columns)
    return n_rows, math.ceil(n_panels / n_rows)


def remove_unused(figure: Figure, axes: np.ndarray, n_used: int) -> None:
    for ax in axes.flat[n_used:]:
        figure.delaxes(ax)


def finish_grid(
    figure: Figure, axes: np.ndarray, n_used: int, xlabel: str | None = None, ylabel: str | None = None
) -> None:
    """Remove the unused axes of a grid filled row by row; label the outer axes only.

    The x label (and, with a shared x axis, the tick labels) goes to the lowest used axes
    of every column, also when the row below it is incomplete; the y label to the first column.
    """
    remove_unused(figure, axes, n_used)
    n_cols = axes.shape[1]
    for index, ax in enumerate(axes.flat[:n_used]):
        column = index % n_cols
        lowest_in_column = index + n_cols >= n_used
        if xlabel is not None:
            ax.set_xlabel(xlabel if lowest_in_column else "")
        if lowest_in_column:
            ax.xaxis.set_tick_params(labelbottom=True)
        if ylabel is not None:
            ax.set_ylabel(ylabel if column == 0 else "")


def save_figure(
    figure: Figure, pdf_path: str | os.PathLike, png_path: str | os.PathLike, dpi: int = DPI
) -> None:
    """Write ``figure`` to both paths (atomically) and release it."""
    logger.info("writing figure %s and %s", pdf_path, png_path)
    width, height = figure.get_size_inches() * dpi
    logger.info("figure size %.0f x %.0f px at %d dpi", width, height, dpi)
    with matplotlib.rc_context(STYLE):  # ticks made while drawing get the same fonts
        for path, file_format in ((pdf_path, "pdf"), (png_path, "png")):
            with atomic_path(path) as tmp:
                figure.savefig(tmp, format=file_format, dpi=dpi)
    figure.clear()


def layer_order(
    table: pd.DataFrame, layer_column: str = "layer", index_column: str = "layer_index"
) -> list[str]:
    """Layer names from shallow to deep (by ``index_column`` when present, else first appearance)."""
    if index_column in table.columns:
        pairs = table[[layer_column, index_column]].drop_duplicates().sort_values(index_column)
        return [str(layer) for layer in pairs[layer_column]]
    return [str(layer) for layer in pd.unique(table[layer_column])]


def set_layer_ticks(ax, positions: Sequence[float], layers: Sequence[str]) -> None:
    """Layer names as x tick labels, rotated so that they never overlap.

    45 degrees for up to :data:`MAX_LAYERS_AT_45_DEGREES` layers (cnn7, cnn11), vertical for
    more (VGG16's 20), where names at 45 degrees would need twice the width.
    """
    rotation = LAYER_TICK_ROTATION if len(layers) <= MAX_LAYERS_AT_45_DEGREES else 90
    ax.set_xticks(
        list(positions),
        list(layers),
        rotation=rotation,
        ha="right" if rotation < 90 else "center",
        rotation_mode="anchor" if rotation < 90 else "default",
    )


def layer_panel_width(n_layers: int, inches_per_layer: float = 0.2) -> float:
    """A panel wide enough for ``n_layers`` rotated layer names (or groups of bars) side by side."""
    return max(PANEL_WIDTH, 0.8 + inches_per_layer * n_layers)


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


def _networks_description(table: pd.DataFrame) -> str:
    """'30 networks (6 label-corruption levels x 5 seeds)', '5 networks (seeds)' or '1 network'."""
    networks = table[list(NETWORK_COLUMNS)].drop_duplicates()
    n_networks, n_levels = len(networks), networks["label_corruption"].nunique()
    n_seeds = networks["seed"].nunique()
    if n_networks == 1:
        return "1 network"
    if n_levels == 1:
        return f"{n_networks} networks (seeds)"
    if n_networks == n_levels * n_seeds:
        return f"{n_networks} networks ({n_levels} label-corruption levels x {n_seeds} seeds)"
    return f"{n_networks} networks over {n_levels} label-corruption levels"


def _is_published(table: pd.DataFrame) -> bool:
    return "checkpoint" in table.columns and set(table["checkpoint"]) == {PUBLISHED_CHECKPOINT}


def _checkpoint_description(table: pd.DataFrame) -> str:
    """Which checkpoint the rows come from, in words (e.g. 'best-validation checkpoint (epochs 31-57)')."""
    if "checkpoint" not in table.columns:
        return ""
    kinds = set(table["checkpoint"])
    epochs = (
        sorted(int(epoch) for epoch in pd.unique(table["epoch"].dropna())) if "epoch" in table.columns else []
    )
    epoch_range = (
        "" if not epochs else f"epoch {epochs[0]}" if len(epochs) == 1 else f"epochs {epochs[0]}-{epochs[-1]}"
    )
    if kinds == {PUBLISHED_CHECKPOINT}:
        return "published weights"
    if kinds == {"best"}:
        return f"best-validation checkpoint ({epoch_range})" if epoch_range else "best-validation checkpoint"
    if kinds == {"epoch"}:
        return f"last saved epoch ({epoch_range})"
    return " and ".join(sorted(kinds)) + " checkpoints"


def _corruption_description(label_corruption: float) -> str:
    return "clean labels" if label_corruption == 0 else f"label corruption {label_corruption:g}"


def select_label_corruption(
    table: pd.DataFrame, label_corruption: float | None, table_name: str
) -> pd.DataFrame:
    """The networks trained with ``label_corruption`` (all networks when None)."""
    if label_corruption is None:
        return table
    levels = table["label_corruption"].astype(float)
    rows = table[np.isclose(levels, float(label_corruption))]
    if rows.empty:
        raise ValueError(
            f"the {table_name} table has no networks with label corruption {label_corruption!r}; "
            f"it holds {sorted(set(levels))}"
        )
    return rows


def _selection_description(rows: pd.DataFrame, label_corruption: float | None) -> str:
    """'5 networks (seeds) with clean labels, best-validation checkpoint (...)' for a title."""
    parts = [_networks_description(rows)]
    if label_corruption is not None and not _is_published(rows):
        parts[0] += f" with {_corruption_description(float(label_corruption))}"
    checkpoint = _checkpoint_description(rows)
    if checkpoint:
        parts.append(checkpoint)
    return ", ".join(parts)


def _errorbar(confidence: float) -> Callable:
    """seaborn's ``errorbar=``: the t interval over networks that the tables use."""
    return interval_of_mean(confidence)


def _label(value: str) -> str:
    return VALUE_LABELS.get(value, value.replace("_", " "))


def _quantity(value: str) -> str:
    """A value's name without its unit, for titles ('test accuracy')."""
    return _label(value).split(" (")[0]


def _set_title(figure: Figure, headline: str, details: str = "") -> None:
    """Headline plus details wrapped to the figure's width; the figure grows by the title's height.

    About 12 characters of the 10-point title font fit in an inch.
    """
    width = max(40, int(figure.get_figwidth() * 12))
    lines = textwrap.wrap(headline, width) + (textwrap.wrap(details, width) if details else [])
    figure.suptitle("\n".join(lines))
    figure.set_figheight(figure.get_figheight() + 0.18 * len(lines))


def _with_corruption_label(table: pd.DataFrame) -> tuple[pd.DataFrame, dict]:
    """Rename label_corruption for legends; return the table and its palette."""
    table = table.rename(columns={"label_corruption": "label corruption"})
    table["label corruption"] = table["label corruption"].astype(float)
    return table, corruption_palette(table["label corruption"])


def _figure_legend(
    figure: Figure, axes: Sequence, rename: Mapping[str, str] | None = None, title: str | None = None
) -> None:
    """Replace the per-panel legends (all alike) by one legend to the right of the figure.

    ``rename`` maps table values to the words shown; ``title`` replaces the legend title.
    """
    legends = [ax.get_legend() for ax in np.ravel(axes) if ax.get_legend() is not None]
    if not legends:
        return
    first = legends[0]
    rename = rename or {}
    handles = first.legend_handles
    labels = [rename.get(text.get_text(), text.get_text()) for text in first.get_texts()]
    title = title if title is not None else first.get_title().get_text()
    for legend in legends:
        legend.remove()
    figure.legend(handles, labels, title=title or None, loc="outside right center", frameon=False)


# ----------------------------------------------------------------------------- stimuli


@styled
def stimulus_sample_figure(
    images: np.ndarray,
    titles: Sequence[str],
    max_columns: int = 8,
    *,
    title: str | None = None,
    panel_size: float = 1.6,
) -> Figure:
    """A grid of square stimuli, (n, 3, H, W) (or (n, 1, H, W)) with values in [0, 1].

    ``panel_size`` is the side of one image in inches; ``title`` becomes the figure title.
    """
    images = np.asarray(images, dtype=float)
    if images.ndim != 4 or images.shape[1] not in (1, 3):
        raise ValueError(f"images must have shape (n, 3, H, W) or (n, 1, H, W), got {images.shape}")
    if len(titles) != len(images):
        raise ValueError(f"got {len(titles)} titles for {len(images)} images")
    if images.size and (images.min() < 0.0 or images.max() > 1.0):
        raise ValueError(f"image values must lie in [0, 1], found [{images.min():.3g}, {images.max():.3g}]")
    n_rows, n_cols = grid(len(images), max_columns)
    figure, axes = new_figure(n_rows, n_cols, panel_width=panel_size, panel_height=panel_size + 0.3)
    for ax, image, image_title in zip(axes.flat, images, titles):
        pixels = image.transpose(1, 2, 0)
        # 'antialiased' filters when shrinking a 224-px grating (no moire) and keeps pixels sharp when enlarging
        ax.imshow(
            pixels[..., 0] if pixels.shape[-1] == 1 else pixels,
            cmap="gray",
            vmin=0.0,
            vmax=1.0,
            interpolation="antialiased",
        )
        ax.set_title(image_title, fontsize=8)
        ax.set_axis_off()
    remove_unused(figure, axes, len(images))
    if title:
        _set_title(figure, title)
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
LOSS_LABEL, ACCURACY_LABEL = "cross-entropy loss (nats/image)", "accuracy (fraction)"


def mean_with_network_interval(
    table: pd.DataFrame, x: str, value: str, confidence: float = 0.95
) -> pd.DataFrame:
    """Per ``x``, the mean of ``value`` over networks and its t interval (as in the tables).

    A network missing at some ``x`` is left out there; fewer than two networks give no
    interval (NaN). Columns: ``x, mean, low, high, n_networks``.
    """
    wide = table.pivot_table(index=list(NETWORK_COLUMNS), columns=x, values=value, aggfunc="mean")
    intervals = [mean_interval(wide[column].to_numpy(dtype=float), confidence) for column in wide.columns]
    return pd.DataFrame(
        {
            x: wide.columns.to_numpy(),
            "mean": [mean for mean, _, _ in intervals],
            "low": [low for _, low, _ in intervals],
            "high": [high for _, _, high in intervals],
            "n_networks": wide.notna().sum(axis=0).to_numpy(),
        }
    )


@styled
def training_curves_figure(metrics: pd.DataFrame, confidence: float = 0.95) -> Figure:
    """Loss (top row) and accuracy (bottom row) against epoch for train/validation/test.

    One line per label-corruption level: the mean over seeds with its t-interval band
    (:func:`mean_with_network_interval`).
    """
    _check_not_empty(metrics, "metrics")
    columns = [column for _, loss, accuracy in TRAINING_PANELS for column in (loss, accuracy)]
    require_columns(metrics, list(NETWORK_COLUMNS) + ["epoch"] + columns, "metrics")
    title = _model_dataset_title(metrics, "metrics")
    levels = sorted(metrics["label_corruption"].astype(float).unique())
    palette = corruption_palette(levels)
    figure, axes = new_figure(2, len(TRAINING_PANELS), sharex=True, sharey="row")
    for column, (panel, loss, accuracy) in enumerate(TRAINING_PANELS):
        for row, (value, ylabel) in enumerate(((loss, LOSS_LABEL), (accuracy, ACCURACY_LABEL))):
            ax = axes[row, column]
            for level in levels:
                networks = metrics[np.isclose(metrics["label_corruption"].astype(float), level)]
                curve = mean_with_network_interval(networks, "epoch", value, confidence)
                ax.plot(curve["epoch"], curve["mean"], color=palette[level], linewidth=1.5, label=str(level))
                ax.fill_between(
                    curve["epoch"], curve["low"], curve["high"], color=palette[level], alpha=0.2, linewidth=0
                )
            ax.set_title(panel if row == 0 else "")
            ax.set_xlabel("epoch" if row == 1 else "")
            ax.set_ylabel(ylabel if column == 0 else "")
    figure.legend(
        *axes[0, 0].get_legend_handles_labels(),
        title="label corruption",
        loc="outside right center",
        frameon=False,
    )
    n_networks = _network_count(metrics)
    _set_title(
        figure,
        f"Training of {title}: loss and accuracy per epoch (epoch 0 = initialisation)",
        f"{_networks_description(metrics)}; one line per label-corruption level: mean over its seeds"
        + (f", band: {100 * confidence:g}% t interval across seeds" if n_networks > 1 else ""),
    )
    return figure


def plot_training_curves(metrics: pd.DataFrame, pdf_path, png_path, **options) -> None:
    """Write :func:`training_curves_figure` (same options) to ``pdf_path`` and ``png_path``."""
    save_figure(training_curves_figure(metrics, **options), pdf_path, png_path)


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
        layer_rows = rows[rows["layer"] == layer]
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
        label_epoch_axis(ax, epochs, axis_width_inches=panel_width - 1.3)
        ax.set_title(layer)
        last_in_row = index % n_cols == n_cols - 1 or index == len(layers) - 1
        accuracy_ax.set_ylabel(_label("test_accuracy") if last_in_row else "")
        accuracy_ax.set_ylim(0.0, 1.0)
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


@styled
def half_ablation_figure(
    half_ablation: pd.DataFrame,
    values: Sequence[str] = ("loss_increase_mean", "accuracy_change"),
    confidence: float = 0.95,
    label_corruption: float | None = 0.0,
) -> Figure:
    """Per ranking (columns) and value (rows): bars per layer for top / bottom / random 50%.

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
    rankings = [
        ranking for ranking in ("gosi", "class_selectivity") if ranking in set(per_network["ranking"])
    ]
    rankings += sorted(set(per_network["ranking"]) - set(rankings))
    layers = layer_order(per_network)
    conditions = [
        condition for condition in ("top", "bottom", "random") if condition in set(per_network["condition"])
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
            sns.barplot(
                data=ranking_rows,
                x="layer",
                y=value,
                order=layers,
                hue="condition",
                hue_order=conditions,
                palette=CONDITION_COLOURS,
                saturation=1.0,
                err_kws={"linewidth": 1.2},
                errorbar=None if single_network else _errorbar(confidence),
                ax=ax,
            )
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
        rename={condition: f"{condition} {percentage}" for condition in conditions},
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
        f"Half ablation: test performance after ablating the top, bottom or a random {percentage} "
        f"of one layer's units, {title}",
        f"{_selection_description(rows, label_corruption)}; random: mean over draws within each network; "
        f"{interval}",
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
    present = set(per_network["ordering"])
    families = [
        (name, [o for o in orderings if o in present])
        for name, orderings in ORDERING_FAMILIES
        if present & set(orderings) - {"random"}
    ]
    families += [
        ("other orderings", sorted(present - {o for _, orderings in ORDERING_FAMILIES for o in orderings}))
    ]
    families = [(name, orderings) for name, orderings in families if orderings] or [("random", ["random"])]
    layers = layer_order(per_network)
    n_rows, n_cols = grid(len(layers), max_columns)
    figure = Figure(
        figsize=(
            GRID_PANEL_WIDTH * n_cols + LEGEND_WIDTH,
            (GRID_PANEL_HEIGHT * n_rows + 0.3) * len(families),
        ),
        layout="constrained",
    )
    FigureCanvasAgg(figure)
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
    handles, labels = {}, []
    for ax in all_axes:
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
    interval = (
        f"lines: mean over networks, bands: {100 * confidence:g}% t interval across networks"
        if n_networks > 1
        else "one network"
    )
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

    def ordered(names) -> list[str]:
        names = [str(name) for name in pd.unique(names)]
        if layer_order_deep is None:
            return names
        return sorted(
            names, key=lambda name: list(layer_order_deep).index(name) if name in layer_order_deep else 1e9
        )

    intact = per_network[per_network["condition"] == "intact"]
    ablated_rows = per_network[per_network["condition"] != "intact"]
    measured_layers = ordered(per_network["measured_layer"])
    ablated_layers = ordered(ablated_rows["ablated_layer"]) or ["none"]
    conditions = [condition for condition in CONDITION_COLOURS if condition in set(per_network["condition"])]
    shifts = sorted(per_network["shift_px"].unique())
    side_by_side = len(ablated_layers) <= 2
    n_rows, n_cols = len(measured_layers), len(ablated_layers)
    block_width, block_height = GRID_PANEL_WIDTH * n_cols, GRID_PANEL_HEIGHT * n_rows + 0.3
    figure = Figure(
        figsize=(
            block_width * (2 if side_by_side else 1) + LEGEND_WIDTH,
            block_height * (1 if side_by_side else 2),
        ),
        layout="constrained",
    )
    FigureCanvasAgg(figure)
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
                sns.lineplot(
                    data=panel_rows,
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
                if n_networks == 1 and SEM_COLUMNS[value] in panel_rows.columns:
                    _sem_bands(ax, panel_rows, value, conditions)
                ax.set_xticks(shifts)
                ax.set_title(f"{measured}, {ablated} ablated" if ablated != "none" else measured, fontsize=8)
                ax.set_xlabel("shift (px)" if row == n_rows - 1 else "")
                ax.set_ylabel(_label(value) if column == 0 else "")
                all_axes.append(ax)
        block.suptitle(INVARIANCE_BLOCK_TITLES[value], fontsize=9, fontweight="bold")
    _figure_legend(figure, all_axes, rename=INVARIANCE_CONDITION_LABELS, title="condition")
    if n_networks > 1:
        interval = f"lines: mean over networks, bands: {100 * confidence:g}% t interval across networks"
    else:
        interval = "one network: bands ± SEM over test images" if sem_columns else "one network"
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
