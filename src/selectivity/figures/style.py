"""Shared look and plumbing of every figure: colours, fonts, panel grids, titles, saving.

Conventions shared by all figures: layers run from shallow to deep (by ``layer_index``)
and layer names on an x axis are rotated by 45 degrees; conditions, stimulus sets,
orderings and label-corruption levels have fixed colours (the dictionaries below and
:func:`corruption_palette`); error bands and bars are t intervals (selectivity.statistics)
*across networks* (seeds) after averaging within each network (random draws, shift
directions), the same :func:`selectivity.statistics.mean_interval` the tables use
(handed to seaborn as its ``errorbar``). Every figure title says what is shown, which
networks, and what the bars or bands are (the ``_*_description`` helpers below, shared by
the figure modules of this package).
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

from selectivity.io import atomic_path
from selectivity.statistics import interval_of_mean
from selectivity.tuning.summaries import (
    NETWORK_COLUMNS,
    PUBLISHED_CHECKPOINT,
    require_columns,
)

logger = logging.getLogger(__name__)

_COLOURBLIND = sns.color_palette("colorblind")
CONDITION_COLOURS = {
    "intact": (0.0, 0.0, 0.0),
    "top": _COLOURBLIND[1],
    "bottom": _COLOURBLIND[0],
    "random": _COLOURBLIND[7],
    # the random units matched to the top units on preferred spatial frequency and mean output
    "matched": _COLOURBLIND[4],
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


def figure_on_canvas(width: float, height: float) -> Figure:
    """An empty figure of ``width`` x ``height`` inches with constrained layout, on the Agg canvas."""
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


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
    figure = figure_on_canvas(panel_width * n_cols, panel_height * n_rows)
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
                # no creation date in the PDF: the same figure gives the same bytes on every run
                metadata = {"CreationDate": None} if file_format == "pdf" else None
                figure.savefig(tmp, format=file_format, dpi=dpi, metadata=metadata)
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
