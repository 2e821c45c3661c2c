"""Layer-level summaries of every low-level feature index (docs/method.md §6.4).

:func:`feature_summary` condenses the per-unit tuning tables into one row per network x
checkpoint x layer x stimulus set x feature (orientation's gOSI included), joined with that
epoch's accuracy and loss, for the claims about each feature (§6.3) and the figures of the
report's "Low-level features" category. It is to the feature indices what
:func:`selectivity.tuning.summaries.selectivity_summary` is to gOSI; the orientation rows repeat
that summary's numbers under the columns below (tested).
"""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

import numpy as np
import pandas as pd

from selectivity.tables import CHECKPOINT_COLUMNS, as_bool, require_columns
from selectivity.tuning.features import (
    FEATURE_INDEX_COLUMNS,
    FEATURES,
    THRESHOLD_RANGES,
    measured_index,
    selective_units,
)
from selectivity.tuning.summaries import LAYER_COLUMNS, _attach_metrics

logger = logging.getLogger(__name__)

#: Orientation's threshold range (gOSI is in [0, 1]), beside those of the other features.
INDEX_RANGES = {"orientation": (0.0, 1.0), **THRESHOLD_RANGES}

FEATURE_SUMMARY_VALUE_COLUMNS = (
    "index",
    "threshold",
    "n_units",
    "n_measured",
    "mean_index",
    "median_index",
    "mean_index_measured",
    "fraction_selective",
    "fraction_below_threshold",
    "mean_peak_response",
)


def feature_summary(
    tuning: pd.DataFrame,
    metrics: pd.DataFrame,
    thresholds: Mapping[str, float],
    features: Sequence[str] | None = None,
) -> pd.DataFrame:
    """One row per network x checkpoint x layer x stimulus set x feature, with that epoch's metrics.

    ``thresholds`` maps each feature to its threshold for "selective" (orientation: the gOSI
    threshold); ``features`` are those to summarise (default: every feature whose index column
    the table has). Columns: the checkpoint identifiers, ``layer, layer_index, stimulus_set,
    feature`` and :data:`FEATURE_SUMMARY_VALUE_COLUMNS`, then the metrics of
    :func:`selectivity.tuning.summaries.selectivity_summary`:

    - ``index``: the index column summarised; ``threshold``: the threshold applied;
    - ``n_measured``: units whose index is a measurement (not NaN, and for gOSI and SF selectivity
      not dead: :func:`selectivity.tuning.features.measured_index`);
    - ``mean_index``, ``median_index``: over units with a defined index (gOSI and SF selectivity:
      every unit, dead ones with their 0, as the author averages gOSI);
    - ``mean_index_measured``: over the measured units only (what the claims correlate);
    - ``fraction_selective``: units with the index above the threshold, over all units (an
      undefined index never counts as selective);
    - ``fraction_below_threshold``: units with a defined index below the threshold, over all
      units (for F1/F0 the phase-invariant, complex-like units: the phase claim C1, §6.3);
    - ``mean_peak_response``: the mean over units of each unit's largest grating response.
    """
    group = list(CHECKPOINT_COLUMNS) + list(LAYER_COLUMNS) + ["stimulus_set"]
    require_columns(tuning, group + ["unit", "dead", "peak_response"], "tuning")
    if features is None:
        features = [f for f in FEATURES if FEATURE_INDEX_COLUMNS[f] in tuning.columns]
    features = [f for f in FEATURES if f in features]
    require_columns(tuning, [FEATURE_INDEX_COLUMNS[f] for f in features], "tuning")
    for feature in features:
        if feature not in thresholds:
            raise ValueError(
                f"no threshold given for the feature {feature!r}; thresholds: {dict(thresholds)}"
            )
        low, high = INDEX_RANGES[feature]
        if not low <= thresholds[feature] < high:
            raise ValueError(
                f"the {feature} threshold {thresholds[feature]!r} must lie in [{low:g}, {high:g})"
            )
    duplicated = tuning.duplicated(group + ["unit"], keep=False)
    if duplicated.any():
        first = tuning[duplicated].iloc[0]
        raise ValueError(f"tuning has more than one row for unit {dict(first[group + ['unit']])}")
    dead = as_bool(tuning["dead"], "dead").to_numpy()
    summaries = []
    for feature in features:
        column, threshold = FEATURE_INDEX_COLUMNS[feature], float(thresholds[feature])
        index = tuning[column].to_numpy(dtype=np.float64)
        with np.errstate(invalid="ignore"):
            below = np.isfinite(index) & (index < threshold)
        units = tuning[group + ["unit", "peak_response"]].assign(
            index_value=index,
            measured=measured_index(feature, index, dead),
            selective=selective_units(index, threshold).astype(float),
            below=below.astype(float),
        )
        summary = (
            units.groupby(group, sort=True, dropna=False)
            .agg(
                n_units=("unit", "size"),
                n_measured=("measured", "count"),
                mean_index=("index_value", "mean"),
                median_index=("index_value", "median"),
                mean_index_measured=("measured", "mean"),
                fraction_selective=("selective", "mean"),
                fraction_below_threshold=("below", "mean"),
                mean_peak_response=("peak_response", "mean"),
            )
            .reset_index()
        )
        summary.insert(len(group), "feature", feature)
        summary.insert(len(group) + 1, "index", column)
        summary.insert(len(group) + 2, "threshold", threshold)
        summaries.append(summary)
    if not summaries:
        raise ValueError("no feature to summarise")
    summary = pd.concat(summaries, ignore_index=True)
    summary = summary[group + ["feature"] + list(FEATURE_SUMMARY_VALUE_COLUMNS)]
    logger.info("summarised %d features into %d layer rows", len(features), len(summary))
    summary = _attach_metrics(summary, metrics)
    order = {feature: number for number, feature in enumerate(FEATURES)}
    return (
        summary.assign(_order=summary["feature"].map(order))
        .sort_values(list(CHECKPOINT_COLUMNS) + ["layer_index", "stimulus_set", "_order"])
        .drop(columns="_order")
        .reset_index(drop=True)
    )
