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
from selectivity.tables import read_table

PathLike = str | os.PathLike


def read_model_rows(path: PathLike, model: str, kind: str) -> pd.DataFrame:
    """A combined table's rows of one model (tables of one network have one model anyway),
    read and checked as a table of ``kind`` (:func:`selectivity.tables.read_table`)."""
    table = read_table(path, kind)
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


def _interval(options: Mapping[str, Any]) -> dict[str, float]:
    """The confidence of the intervals across networks, where the workflow gives it (the claims')."""
    return {"confidence": float(options["confidence"])} if "confidence" in options else {}


def clean_label_corruption(table: pd.DataFrame) -> float:
    """The least label corruption in a table: the clean networks (0) that the claims use, when present."""
    return float(table["label_corruption"].astype(float).min())


def _training_curves(inputs, model, options, pdf_path, png_path) -> None:
    plots.plot_training_curves(
        read_model_rows(inputs["table"], model, "metrics"), pdf_path, png_path, **_interval(options)
    )


def read_tuning_curves(
    path: PathLike, tuning: pd.DataFrame, checkpoint_name: str
) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """The tuning curves of one checkpoint of a network's curves file, checked against its tuning rows.

    Each layer's curves must be finite and non-negative, one per unit of the table's gratings
    rows, over the file's orientations. Returns (layer -> curves, orientations in degrees).
    """
    from selectivity.tuning.analysis import curves_of_checkpoint

    try:
        with np.load(path, allow_pickle=False) as blob:
            arrays = {key: blob[key] for key in blob.files}
    except Exception as error:
        raise ValueError(f"cannot read tuning curves {path}: {error}") from error
    if "orientations_deg" not in arrays:
        raise ValueError(f"{path} lacks orientations_deg; it holds {sorted(arrays)}")
    orientations = arrays["orientations_deg"]
    try:
        layers = curves_of_checkpoint(arrays, checkpoint_name)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from None
    units = tuning[tuning["stimulus_set"] == "gratings"].groupby("layer")["unit"].size()
    for layer, curves in layers.items():
        if layer not in units.index:
            raise ValueError(f"{path} holds curves of {layer}, which its tuning table lacks")
        if curves.ndim != 3 or curves.shape[0] != units[layer] or curves.shape[2] != len(orientations):
            raise ValueError(
                f"{path}: the curves of {layer} have shape {curves.shape}, expected ({units[layer]} units, "
                f"spatial frequencies, {len(orientations)} orientations) as its tuning table says"
            )
        if not np.isfinite(curves).all() or (curves < 0).any():
            raise ValueError(f"{path}: the curves of {layer} hold negative or non-finite responses")
    return layers, orientations


def _example_tuning_curves(inputs, model, options, pdf_path, png_path) -> None:
    """One network's curves at one checkpoint (options: the checkpoint's file name)."""
    from selectivity.tuning.analysis import rows_of_checkpoint

    tuning = rows_of_checkpoint(read_model_rows(inputs["table"], model, "tuning"), options["checkpoint"])
    curves, orientations = read_tuning_curves(inputs["curves"], tuning, options["checkpoint"])
    plots.plot_example_tuning_curves(curves, tuning, orientations, pdf_path, png_path)


def _selectivity_distributions(value: str) -> Callable:
    def draw(inputs, model, options, pdf_path, png_path) -> None:
        tuning = select_checkpoint(read_model_rows(inputs["table"], model, "tuning"), options["checkpoint"])
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
        read_model_rows(inputs["table"], model, "selectivity_summary"),
        pdf_path,
        png_path,
        checkpoint=options["checkpoint"],
        **_interval(options),
    )


def _selectivity_over_training(inputs, model, options, pdf_path, png_path) -> None:
    summary = read_model_rows(inputs["table"], model, "selectivity_summary")
    plots.plot_selectivity_over_training(
        summary, pdf_path, png_path, label_corruption=clean_label_corruption(summary), **_interval(options)
    )


def _selectivity_vs_accuracy(inputs, model, options, pdf_path, png_path) -> None:
    plots.plot_selectivity_vs_accuracy(
        read_model_rows(inputs["table"], model, "selectivity_summary"),
        pdf_path,
        png_path,
        **_interval(options),
    )


def _half_ablation(inputs, model, options, pdf_path, png_path) -> None:
    table = read_model_rows(inputs["table"], model, "half_ablation")
    plots.plot_half_ablation(
        table, pdf_path, png_path, label_corruption=clean_label_corruption(table), **_interval(options)
    )


def _cumulative_ablation(inputs, model, options, pdf_path, png_path) -> None:
    table = read_model_rows(inputs["table"], model, "cumulative_ablation")
    plots.plot_cumulative_ablation(
        table, pdf_path, png_path, label_corruption=clean_label_corruption(table), **_interval(options)
    )


def _claims(inputs, model, options, pdf_path, png_path) -> None:
    from selectivity.claims.report import plot_claims

    plot_claims(read_table(inputs["table"], "claims"), pdf_path, png_path, model=model)


def model_layer_order(model: str) -> list[str] | None:
    """The analysed layers of ``model`` from shallow to deep (None for a model unknown here)."""
    try:
        return model_layer_names(model)
    except ConfigError:
        return None


def _shift_invariance(inputs, model, options, pdf_path, png_path) -> None:
    table = read_model_rows(inputs["table"], model, "shift_invariance")
    plots.plot_shift_invariance(
        table,
        pdf_path,
        png_path,
        layer_order_deep=model_layer_order(model),
        label_corruption=clean_label_corruption(table),
        **_interval(options),
    )


def _depth_profiles(inputs, model, options, pdf_path, png_path) -> None:
    plots.plot_depth_profiles(read_table(inputs["table"], "depth_profiles"), pdf_path, png_path)


def _feature_distributions(inputs, model, options, pdf_path, png_path) -> None:
    from selectivity.figures.feature_figures import plot_feature_distributions

    tuning = select_checkpoint(read_model_rows(inputs["table"], model, "tuning"), options["checkpoint"])
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

    summary = read_model_rows(inputs["table"], model, "feature_summary")
    plot_feature_development(summary, pdf_path, png_path, label_corruption=clean_label_corruption(summary))


def _feature_claims(inputs, model, options, pdf_path, png_path) -> None:
    from selectivity.claims.report import plot_claims

    plot_claims(read_table(inputs["table"], "claims"), pdf_path, png_path, model=model, by_feature=True)


def _feature_ablation(inputs, model, options, pdf_path, png_path) -> None:
    from selectivity.figures.feature_figures import plot_feature_ablation

    orientation = read_model_rows(inputs["orientation"], model, "half_ablation")
    features = read_model_rows(inputs["features"], model, "feature_half_ablation")
    plot_feature_ablation(
        orientation, features, pdf_path, png_path, label_corruption=clean_label_corruption(orientation)
    )


def _feature_depth_profiles(inputs, model, options, pdf_path, png_path) -> None:
    from selectivity.figures.architecture_figures import plot_feature_depth_profiles

    plot_feature_depth_profiles(read_table(inputs["table"], "depth_profiles"), pdf_path, png_path)


def _regularisation(name: str) -> Callable:
    def draw(inputs, model, options, pdf_path, png_path) -> None:
        from selectivity.figures import regularisation_figures

        plot = getattr(regularisation_figures, f"plot_{name}")
        plot(
            read_table(inputs["table"], "feature_summary"),
            pdf_path,
            png_path,
            model=model,
            feature=options["feature"],
            layers=options["layers"],
            checkpoint=options["checkpoint"],
        )

    return draw


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
    "selectivity_vs_coefficient": _regularisation("selectivity_vs_coefficient"),
    "accuracy_vs_selectivity": _regularisation("accuracy_vs_selectivity"),
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
