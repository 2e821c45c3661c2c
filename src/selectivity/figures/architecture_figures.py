"""The claims across architectures: each claim's per-layer effect against relative depth."""

from __future__ import annotations

import textwrap

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from selectivity.figures.style import (
    GRID_PANEL_HEIGHT,
    GRID_PANEL_WIDTH,
    _COLOURBLIND,
    _check_not_empty,
    _set_title,
    finish_grid,
    grid,
    new_figure,
    save_figure,
    styled,
)

#: Marker per architecture (colour too), so the lines stay apart in grey print.
_MARKERS = ("o", "s", "^", "D", "v", "P", "X")


def _architecture_styles(models: list[str]) -> dict[str, tuple]:
    return {
        model: (_COLOURBLIND[i % len(_COLOURBLIND)], _MARKERS[i % len(_MARKERS)])
        for i, model in enumerate(models)
    }


@styled
def depth_profiles_figure(profiles: pd.DataFrame, feature: str = "orientation") -> Figure:
    """One panel per claim: per-layer effect (line and markers) with its interval (bars) per architecture.

    ``profiles`` is :func:`selectivity.claims.depth_profiles.depth_profiles`' table; ``feature`` picks
    the rows of one low-level feature (its ``feature`` column: the paper's claims are "orientation",
    the default). Panels share the relative-depth axis (0 = first analysed layer, 1 = last); a
    dotted line marks no effect. Each panel's y axis names the unit of its claim's quantity (the
    table's ``unit`` column).
    """
    _check_not_empty(profiles, "depth profiles")
    if "feature" in profiles.columns:
        available = sorted(set(profiles["feature"]))
        profiles = profiles[profiles["feature"] == feature]
        if profiles.empty:
            raise ValueError(
                f"the depth profiles have no rows of the feature {feature!r}; they have {available}"
            )
    confidence = float(profiles["confidence"].iloc[0])
    claims = sorted(profiles["claim"].unique())
    models = list(dict.fromkeys(profiles.sort_values("model")["model"]))
    styles = _architecture_styles(models)
    n_rows, n_cols = grid(len(claims), max_columns=3)
    figure, axes = new_figure(
        n_rows, n_cols, sharex=True, panel_width=GRID_PANEL_WIDTH * 1.2, panel_height=GRID_PANEL_HEIGHT * 1.1
    )
    for ax, claim in zip(axes.flat, claims):
        rows = profiles[profiles["claim"] == claim]
        for model in models:
            line = rows[rows["model"] == model].sort_values("relative_depth")
            if line.empty:
                continue
            colour, marker = styles[model]
            x, y = line["relative_depth"].to_numpy(float), line["estimate"].to_numpy(float)
            low, high = line["ci_low"].to_numpy(float), line["ci_high"].to_numpy(float)
            # no bar where the interval is undefined; rounding can put y a hair outside its interval
            bars = np.vstack([np.nan_to_num(y - low), np.nan_to_num(high - y)]).clip(min=0.0)
            ax.errorbar(
                x,
                y,
                yerr=bars,
                color=colour,
                marker=marker,
                markersize=4,
                linewidth=1.2,
                capsize=2,
                label=model,
            )
        if not np.isfinite(rows["estimate"].to_numpy(float)).any():
            # e.g. C3 with one corruption level of too few networks: say so rather than show nothing
            ax.text(
                0.5, 0.5, "not defined for these networks", ha="center", va="center", transform=ax.transAxes
            )
        ax.axhline(0.0, color="0.4", linestyle=":", linewidth=0.8)
        ax.set_xlim(-0.05, 1.05)
        ax.set_title(f"{claim}: " + "\n".join(textwrap.wrap(rows["quantity"].iloc[0], 38)), fontsize=8)
        if "unit" in rows.columns and isinstance(rows["unit"].iloc[0], str):
            ax.set_ylabel("\n".join(textwrap.wrap(rows["unit"].iloc[0], 24)), fontsize=8)
    finish_grid(figure, axes, len(claims), xlabel="relative depth (0 = first, 1 = last)")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    figure.legend(handles, labels, title="architecture", loc="outside right center", frameon=False)
    networks = profiles[profiles["claim"] != "C3"].groupby("model")["n_networks"].max()
    counts = ", ".join(f"{model} {int(networks.get(model, 0))}" for model in models)
    _set_title(
        figure,
        "Claims across architectures: each claim's effect per layer, on a common depth axis"
        + ("" if feature == "orientation" else f" ({feature.replace('_', ' ')})"),
        f"Relative depth: layer index / (analysed layers - 1), 0 = first, 1 = last. Clean networks per "
        f"architecture: {counts}. Points: median over networks with its one-sided "
        f"{100 * confidence:g}% order-statistic bounds, as in the claims (C3: correlation across "
        "all networks, Fisher-z interval). Descriptive: the verdicts are the claims table's, on each "
        "architecture's lower and higher layers.",
    )
    return figure


def plot_depth_profiles(profiles, pdf_path, png_path, **options) -> None:
    """Write :func:`depth_profiles_figure` (same options) to ``pdf_path`` and ``png_path``."""
    save_figure(depth_profiles_figure(profiles, **options), pdf_path, png_path)


@styled
def feature_depth_profiles_figure(profiles: pd.DataFrame) -> Figure:
    """One panel per claim C1-C5: each low-level feature's per-layer effect (colour) per architecture
    (marker) against relative depth, with its interval (bars): the depth profiles of every feature."""
    from selectivity.figures.feature_figures import FEATURE_COLOURS, INDEX_LABELS

    _check_not_empty(profiles, "depth profiles")
    profiles = profiles[profiles["claim"].isin(["C1", "C2", "C3", "C4", "C5"])]
    features = [feature for feature in FEATURE_COLOURS if feature in set(profiles["feature"])]
    models = list(dict.fromkeys(profiles.sort_values("model")["model"]))
    markers = {model: _MARKERS[i % len(_MARKERS)] for i, model in enumerate(models)}
    claims = sorted(profiles["claim"].unique())
    confidence = float(profiles["confidence"].iloc[0])
    n_rows, n_cols = grid(len(claims), max_columns=3)
    figure, axes = new_figure(
        n_rows, n_cols, sharex=True, panel_width=GRID_PANEL_WIDTH * 1.2, panel_height=GRID_PANEL_HEIGHT * 1.1
    )
    for ax, claim in zip(axes.flat, claims):
        for feature in features:
            for model in models:
                line = profiles[
                    (profiles["claim"] == claim)
                    & (profiles["feature"] == feature)
                    & (profiles["model"] == model)
                ].sort_values("relative_depth")
                if line.empty:
                    continue
                x, y = line["relative_depth"].to_numpy(float), line["estimate"].to_numpy(float)
                low, high = line["ci_low"].to_numpy(float), line["ci_high"].to_numpy(float)
                bars = np.vstack([np.nan_to_num(y - low), np.nan_to_num(high - y)]).clip(min=0.0)
                ax.errorbar(
                    x, y, yerr=bars, color=FEATURE_COLOURS[feature], marker=markers[model], markersize=4,
                    linewidth=1.1, capsize=2,
                )  # fmt: skip
        ax.axhline(0.0, color="0.4", linestyle=":", linewidth=0.8)
        ax.set_xlim(-0.05, 1.05)
        ax.set_title(f"{claim}: " + "\n".join(textwrap.wrap(_FEATURE_QUANTITIES[claim], 38)), fontsize=8)
    finish_grid(figure, axes, len(claims), xlabel="relative depth")
    from matplotlib.lines import Line2D

    handles = [Line2D([], [], color=FEATURE_COLOURS[f], linewidth=2, label=INDEX_LABELS[f]) for f in features]
    handles += [Line2D([], [], color="0.3", marker=markers[m], linestyle="", label=m) for m in models]
    figure.legend(handles=handles, title="feature, architecture", loc="outside right center", frameon=False)
    _set_title(
        figure,
        "Claims C1-C5 by low-level feature: each feature's effect per layer, on a common depth axis",
        f"Points: median over clean networks with its one-sided {100 * confidence:g}% order-statistic bounds "
        "(C3: correlation across networks, Fisher-z interval); each feature on its own index "
        "(C1 for F1/F0: fraction of phase-invariant units). Descriptive: the verdicts are the claims table's.",
    )
    return figure


#: Panel titles of :func:`feature_depth_profiles_figure` (the quantity with the feature left open).
_FEATURE_QUANTITIES = {
    "C1": "fraction selective, gratings minus shuffled control (median)",
    "C2": "correlation of the mean index with test accuracy over epochs (median)",
    "C3": "correlation of the mean index with test accuracy across networks",
    "C4": "test-loss increase, top-50% minus random-50% ablation (nats, median)",
    "C5": "shift invariance of higher layers, random-50% minus top-50% ablation (median)",
}


def plot_feature_depth_profiles(profiles, pdf_path, png_path) -> None:
    """Write :func:`feature_depth_profiles_figure` to ``pdf_path`` and ``png_path``."""
    save_figure(feature_depth_profiles_figure(profiles), pdf_path, png_path)
