"""Figures of the inputs and of training: a sample of the stimuli, loss and accuracy per epoch."""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from selectivity.statistics import mean_interval
from selectivity.tuning.summaries import (
    NETWORK_COLUMNS,
    require_columns,
)

from selectivity.figures.style import (
    corruption_palette,
    grid,
    new_figure,
    remove_unused,
    save_figure,
    styled,
    _check_not_empty,
    _model_dataset_title,
    _network_count,
    _networks_description,
    _set_title,
)

logger = logging.getLogger(__name__)

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
