"""The study's figures, drawn from the workflow's tables (one model at a time; the claims by
relative depth for all trained models together).

Each entry of :data:`FIGURES` reads the files a figure rule gets, keeps one model's rows
and calls the matching function of :mod:`selectivity.figures.plots`. The workflow's figure rules
only call :func:`draw_figure`. The selectivity distributions, the causal figures and the
selectivity-over-training figure show the networks with the least label corruption (the
clean networks the claims use); the others show every network.
"""

from __future__ import annotations

import os
from typing import Any, Callable, Mapping

import numpy as np
import pandas as pd

import selectivity.figures.plots as plots
from selectivity.config import ConfigError, model_layer_names
from selectivity.tuning.summaries import select_checkpoint

PathLike = str | os.PathLike


def read_model_rows(path: PathLike, model: str) -> pd.DataFrame:
    """A combined table's rows of one model (tables of one network have one model anyway)."""
    table = pd.read_csv(path)
    if "model" in table.columns:
        table = table[table["model"] == model]
    if table.empty:
        raise ValueError(f"{path} has no rows for model {model!r}")
    return table


def _stimuli(inputs, model, options, pdf_path, png_path) -> None:
    from selectivity.tuning.stimuli import grating_stimuli

    # Only phase 0 is shown: generating one phase (the same image as phase 0 of the full set)
    # keeps the 224-px VGG16 set small.
    stimuli = grating_stimuli(
        options["image_size"], options["orientations"], 1, options["spatial_frequencies"]
    )
    n_sf, n_ori = stimuli.images.shape[:2]
    # Rows: the lowest, a middle and the highest spatial frequency; columns: four orientations 45 deg apart.
    orientation_picks = sorted({round(i * n_ori / 4) for i in range(4)})
    sf_picks = sorted({0, n_sf // 2, n_sf - 1})
    images, titles = [], []
    for sf in sf_picks:
        for ori in orientation_picks:
            images.append(stimuli.images[sf, ori, 0].numpy())
            titles.append(f"{stimuli.orientations_deg[ori]:g} deg, period {stimuli.periods_px[sf]:.1f} px")
    title = (
        f"Grating stimuli, {options['image_size']} px: {n_ori} orientations x {options['phases']} phases x "
        f"{n_sf} spatial frequencies; shown: phase 0, lowest, middle and highest spatial frequency (rows)"
    )
    plots.plot_stimulus_sample(
        np.stack(images), titles, pdf_path, png_path, max_columns=len(orientation_picks), title=title
    )


def clean_label_corruption(table: pd.DataFrame) -> float:
    """The least label corruption in a table: the clean networks (0) that the claims use, when present."""
    return float(table["label_corruption"].astype(float).min())


def _training_curves(inputs, model, options, pdf_path, png_path) -> None:
    plots.plot_training_curves(read_model_rows(inputs["table"], model), pdf_path, png_path)


def _example_tuning_curves(inputs, model, options, pdf_path, png_path) -> None:
    """One network's curves at one checkpoint (options: the checkpoint's file name)."""
    from selectivity.tuning.analysis import curves_of_checkpoint, rows_of_checkpoint

    with np.load(inputs["curves"]) as blob:
        arrays = {key: blob[key] for key in blob.files}
    curves = curves_of_checkpoint(arrays, options["checkpoint"])
    tuning = rows_of_checkpoint(read_model_rows(inputs["table"], model), options["checkpoint"])
    plots.plot_example_tuning_curves(curves, tuning, arrays["orientations_deg"], pdf_path, png_path)


def _selectivity_distributions(value: str) -> Callable:
    def draw(inputs, model, options, pdf_path, png_path) -> None:
        tuning = select_checkpoint(read_model_rows(inputs["table"], model), options["checkpoint"])
        plots.plot_selectivity_distributions(
            tuning,
            pdf_path,
            png_path,
            value=value,
            selectivity_threshold=options["selectivity_threshold"],
            label_corruption=clean_label_corruption(tuning),
        )

    return draw


def _selectivity_by_depth(inputs, model, options, pdf_path, png_path) -> None:
    plots.plot_selectivity_by_depth(
        read_model_rows(inputs["table"], model), pdf_path, png_path, checkpoint=options["checkpoint"]
    )


def _selectivity_over_training(inputs, model, options, pdf_path, png_path) -> None:
    summary = read_model_rows(inputs["table"], model)
    plots.plot_selectivity_over_training(
        summary, pdf_path, png_path, label_corruption=clean_label_corruption(summary)
    )


def _selectivity_vs_accuracy(inputs, model, options, pdf_path, png_path) -> None:
    plots.plot_selectivity_vs_accuracy(read_model_rows(inputs["table"], model), pdf_path, png_path)


def _half_ablation(inputs, model, options, pdf_path, png_path) -> None:
    table = read_model_rows(inputs["table"], model)
    plots.plot_half_ablation(table, pdf_path, png_path, label_corruption=clean_label_corruption(table))


def _cumulative_ablation(inputs, model, options, pdf_path, png_path) -> None:
    table = read_model_rows(inputs["table"], model)
    plots.plot_cumulative_ablation(table, pdf_path, png_path, label_corruption=clean_label_corruption(table))


def _claims(inputs, model, options, pdf_path, png_path) -> None:
    from selectivity.claims.report import plot_claims

    plot_claims(pd.read_csv(inputs["table"]), pdf_path, png_path, model=model)


def model_layer_order(model: str) -> list[str] | None:
    """The analysed layers of ``model`` from shallow to deep (None for a model unknown here)."""
    try:
        return model_layer_names(model)
    except ConfigError:
        return None


def _shift_invariance(inputs, model, options, pdf_path, png_path) -> None:
    table = read_model_rows(inputs["table"], model)
    plots.plot_shift_invariance(
        table,
        pdf_path,
        png_path,
        layer_order_deep=model_layer_order(model),
        label_corruption=clean_label_corruption(table),
    )


def _depth_profiles(inputs, model, options, pdf_path, png_path) -> None:
    plots.plot_depth_profiles(pd.read_csv(inputs["table"]), pdf_path, png_path)


def _feature_distributions(inputs, model, options, pdf_path, png_path) -> None:
    from selectivity.figures.feature_figures import plot_feature_distributions

    tuning = select_checkpoint(read_model_rows(inputs["table"], model), options["checkpoint"])
    plot_feature_distributions(
        tuning,
        pdf_path,
        png_path,
        thresholds=options["thresholds"],
        features=list(options["thresholds"]),
        label_corruption=clean_label_corruption(tuning),
    )


def _feature_development(inputs, model, options, pdf_path, png_path) -> None:
    from selectivity.figures.feature_figures import plot_feature_development

    summary = read_model_rows(inputs["table"], model)
    plot_feature_development(summary, pdf_path, png_path, label_corruption=clean_label_corruption(summary))


def _feature_claims(inputs, model, options, pdf_path, png_path) -> None:
    from selectivity.claims.report import plot_claims

    plot_claims(pd.read_csv(inputs["table"]), pdf_path, png_path, model=model, by_feature=True)


def _feature_ablation(inputs, model, options, pdf_path, png_path) -> None:
    from selectivity.figures.feature_figures import plot_feature_ablation

    orientation = read_model_rows(inputs["orientation"], model)
    features = read_model_rows(inputs["features"], model)
    plot_feature_ablation(
        orientation, features, pdf_path, png_path, label_corruption=clean_label_corruption(orientation)
    )


def _feature_depth_profiles(inputs, model, options, pdf_path, png_path) -> None:
    from selectivity.figures.architecture_figures import plot_feature_depth_profiles

    plot_feature_depth_profiles(pd.read_csv(inputs["table"]), pdf_path, png_path)


FIGURES: dict[str, Callable] = {
    "claims": _claims,
    "stimuli": _stimuli,
    "training_curves": _training_curves,
    "example_tuning_curves": _example_tuning_curves,
    "gosi_distributions": _selectivity_distributions("gosi"),
    "osi_distributions": _selectivity_distributions("osi"),
    "selectivity_by_depth": _selectivity_by_depth,
    "selectivity_over_training": _selectivity_over_training,
    "selectivity_vs_accuracy": _selectivity_vs_accuracy,
    "half_ablation": _half_ablation,
    "cumulative_ablation": _cumulative_ablation,
    "shift_invariance": _shift_invariance,
    "depth_profiles": _depth_profiles,
    "feature_distributions": _feature_distributions,
    "feature_development": _feature_development,
    "feature_claims": _feature_claims,
    "feature_ablation": _feature_ablation,
    "feature_depth_profiles": _feature_depth_profiles,
}


def draw_figure(
    figure: str,
    inputs: Mapping[str, PathLike],
    model: str,
    options: Mapping[str, Any],
    pdf_path: PathLike,
    png_path: PathLike,
) -> None:
    """Draw one of :data:`FIGURES` for ``model`` into ``pdf_path`` and ``png_path``."""
    if figure not in FIGURES:
        raise ValueError(f"unknown figure {figure!r}; known figures are {sorted(FIGURES)}")
    FIGURES[figure](inputs, model, options, pdf_path, png_path)
