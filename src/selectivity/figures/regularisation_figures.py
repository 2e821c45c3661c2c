"""The figures of the selectivity regulariser (docs/method.md §2.10, claim C7 of §6.3).

Both read the feature summary (§6.4; its orientation rows are the selectivity summary's mean gOSI)
of a model and its regularised variants at one checkpoint, clean networks only:

- :func:`selectivity_vs_coefficient_figure`: per analysed layer, the mean index of the regularised
  feature against the coefficient, one point per network, the median over seeds for gratings and for
  the shuffled control; the regularised layers are marked, so the effect on the other layers shows too;
- :func:`accuracy_vs_selectivity_figure`: test accuracy and test loss against the achieved mean
  index of the regularised layers, one point per network coloured by its coefficient, the networks of
  one seed (one initialisation, one data order) joined by a thin line.
"""

from __future__ import annotations

from typing import Sequence

import matplotlib
import numpy as np
import pandas as pd
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure

from selectivity.figures.style import (
    STIMULUS_SET_COLOURS,
    _check_not_empty,
    _checkpoint_description,
    _set_title,
    finish_grid,
    grid,
    layer_order,
    new_figure,
    save_figure,
    styled,
)
from selectivity.identity import architecture_of, model_regularisation
from selectivity.tables import require_columns
from selectivity.tuning.summaries import select_checkpoint

#: Colours of the coefficients: blue pushes selectivity up (c < 0), red down (c > 0), grey c = 0.
COEFFICIENT_COLOURMAP = "coolwarm"
#: How the figures name each feature's index (mean over a layer's units).
INDEX_LABELS = {
    "orientation": "mean gOSI",
    "spatial_frequency": "mean SF selectivity",
    "phase": "mean F1/F0",
    "colour": "mean colour selectivity",
}


def regularisation_rows(summary: pd.DataFrame, model: str, feature: str, checkpoint: str) -> pd.DataFrame:
    """The feature summary's rows of ``model`` and its regularised variants for ``feature``, clean
    networks at ``checkpoint``, with each network's ``coefficient`` (0: the model itself)."""
    require_columns(
        summary,
        [
            "model",
            "feature",
            "layer",
            "layer_index",
            "stimulus_set",
            "mean_index",
            "test_accuracy",
            "test_loss",
        ],
        "feature summary",
    )
    variants = summary["model"].astype(str)
    of_model = variants.map(architecture_of) == model
    rows = summary[of_model & (summary["feature"] == feature)]
    rows = rows[
        np.isclose(rows["label_corruption"].astype(float), rows["label_corruption"].astype(float).min())
    ]
    rows = select_checkpoint(rows, checkpoint)
    _check_not_empty(rows, f"feature summary of {model} ({feature}, {checkpoint} checkpoint)")
    regularisations = rows["model"].map(model_regularisation)
    coefficients = [0.0 if r is None else r.coefficient for r in regularisations]
    return rows.assign(coefficient=np.asarray(coefficients, dtype=float))


def coefficient_colours(coefficients: Sequence[float]) -> dict[float, tuple]:
    """A colour per coefficient, diverging around 0 (the same coefficient, the same colour in both figures)."""
    values = sorted(set(float(c) for c in coefficients))
    largest = max([abs(c) for c in values] + [1e-12])
    norm = TwoSlopeNorm(vcenter=0.0, vmin=-largest, vmax=largest)
    colour_map = matplotlib.colormaps[COEFFICIENT_COLOURMAP]
    return {c: colour_map(norm(c)) for c in values}


def _title_details(rows: pd.DataFrame, feature: str, layers: Sequence[str]) -> str:
    networks = rows[["model", "seed"]].drop_duplicates()
    coefficients = ", ".join(f"{c:g}" for c in sorted(rows["coefficient"].unique()))
    return (
        f"{len(networks)} clean networks ({networks['seed'].nunique()} seeds x coefficients {coefficients}; "
        f"c x {INDEX_LABELS[feature]} of {', '.join(layers)} added to the loss: c > 0 pushes it down, c < 0 up), "
        f"{_checkpoint_description(rows)}"
    )


@styled
def selectivity_vs_coefficient_figure(
    summary: pd.DataFrame,
    model: str,
    feature: str,
    layers: Sequence[str],
    checkpoint: str = "best",
    max_columns: int = 4,
) -> Figure:
    """Per analysed layer, the mean index against the regularisation coefficient (module docstring)."""
    rows = regularisation_rows(summary, model, feature, checkpoint)
    label = INDEX_LABELS[feature]
    all_layers = layer_order(rows)
    n_rows, n_cols = grid(len(all_layers), max_columns)
    figure, axes = new_figure(n_rows, n_cols, sharex=True)
    colours = coefficient_colours(rows["coefficient"])
    for ax, layer in zip(axes.flat, all_layers):
        of_layer = rows[rows["layer"] == layer]
        for stimulus_set, marker in (("shuffled", "x"), ("gratings", "o")):
            of_set = of_layer[of_layer["stimulus_set"] == stimulus_set].dropna(subset=["mean_index"])
            if of_set.empty:
                continue
            points = of_set.sort_values("coefficient")
            ax.scatter(
                points["coefficient"],
                points["mean_index"],
                c=[colours[c] for c in points["coefficient"]] if stimulus_set == "gratings" else "0.6",
                marker=marker,
                s=14,
                linewidths=0.8,
                zorder=3,
            )
            medians = points.groupby("coefficient")["mean_index"].median()
            ax.plot(
                medians.index,
                medians.to_numpy(),
                color=STIMULUS_SET_COLOURS[stimulus_set],
                linestyle="-" if stimulus_set == "gratings" else "--",
                linewidth=1.3,
                label=f"{stimulus_set if stimulus_set == 'gratings' else 'shuffled control'} (median over seeds)",
            )
        regularised = layer in layers
        ax.set_title(
            f"{layer} (regularised)" if regularised else layer, fontweight="bold" if regularised else None
        )
        ax.axvline(0.0, color="0.5", linewidth=0.7, linestyle=":")
    finish_grid(figure, axes, len(all_layers), xlabel="regularisation coefficient c", ylabel=label)
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, loc="outside lower center", frameon=False, ncol=2)
    _set_title(
        figure,
        f"{label} per layer against the regularisation coefficient, {model} / {rows['dataset'].iloc[0]}",
        _title_details(rows, feature, layers)
        + "; points: networks (gratings coloured by c, shuffled control grey crosses); lines: medians over seeds",
    )
    return figure


@styled
def accuracy_vs_selectivity_figure(
    summary: pd.DataFrame, model: str, feature: str, layers: Sequence[str], checkpoint: str = "best"
) -> Figure:
    """Test accuracy and loss against the achieved mean index of the regularised layers (module docstring)."""
    rows = regularisation_rows(summary, model, feature, checkpoint)
    label = INDEX_LABELS[feature]
    gratings = rows[(rows["stimulus_set"] == "gratings") & rows["layer"].isin(list(layers))]
    complete = gratings.groupby(["model", "seed"])["layer"].transform("nunique") == len(layers)
    networks = (
        gratings[complete]
        .groupby(["model", "seed"])
        .agg(
            selectivity=("mean_index", "mean"),
            test_accuracy=("test_accuracy", "first"),
            test_loss=("test_loss", "first"),
            coefficient=("coefficient", "first"),
        )
        .reset_index()
        .sort_values(["seed", "coefficient"])
    )
    _check_not_empty(networks, f"networks of {model} with every regularised layer {list(layers)}")
    colours = coefficient_colours(networks["coefficient"])
    figure, axes = new_figure(1, 2)
    for ax, value, y_label in (
        (axes[0, 0], "test_accuracy", "test accuracy"),
        (axes[0, 1], "test_loss", "test loss (nats per image)"),
    ):
        for _, seed_rows in networks.groupby("seed"):
            ax.plot(seed_rows["selectivity"], seed_rows[value], color="0.8", linewidth=0.7, zorder=1)
        for coefficient, of_coefficient in networks.groupby("coefficient"):
            ax.scatter(
                of_coefficient["selectivity"],
                of_coefficient[value],
                color=colours[coefficient],
                edgecolor="0.2",
                linewidths=0.4,
                s=28,
                zorder=3,
                label=f"c = {coefficient:g}",
            )
        ax.set_xlabel(f"{label} of {', '.join(layers)} (gratings)")
        ax.set_ylabel(y_label)
    handles, labels = axes[0, 0].get_legend_handles_labels()
    figure.legend(handles, labels, title="coefficient", loc="outside right center", frameon=False)
    _set_title(
        figure,
        f"Generalization against achieved {label} of the regularised layers, {model} / {rows['dataset'].iloc[0]}",
        _title_details(rows, feature, layers)
        + "; one point per network; grey lines join the networks of a seed",
    )
    return figure


def plot_selectivity_vs_coefficient(summary, pdf_path, png_path, **options) -> None:
    """Write :func:`selectivity_vs_coefficient_figure` to ``pdf_path`` and ``png_path``."""
    save_figure(selectivity_vs_coefficient_figure(summary, **options), pdf_path, png_path)


def plot_accuracy_vs_selectivity(summary, pdf_path, png_path, **options) -> None:
    """Write :func:`accuracy_vs_selectivity_figure` to ``pdf_path`` and ``png_path``."""
    save_figure(accuracy_vs_selectivity_figure(summary, **options), pdf_path, png_path)
