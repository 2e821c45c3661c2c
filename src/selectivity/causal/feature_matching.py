"""Units ranked by a low-level feature index, and the matched control of the feature ablations.

docs/method.md §4.1, §4.2 and §4.6. The orientation ablations (gOSI ranking, claims C4 and C5) keep
their own matched control (:mod:`selectivity.causal.matching`: preferred-SF half x mean-output
tercile). The ablations ranked by spatial-frequency selectivity, colour selectivity or F1/F0
(§3.6-§3.8) use the control here:

* **ranking**: an index that is undefined for a unit (NaN: colour for a unit silent on the colour
  set, F1/F0 where the map centre is silent) ranks below every defined value
  (:func:`ranking_scores`), i.e. the unit counts as the least selective, as it never counts as
  selective (:func:`selectivity.tuning.features.selective_units`);
* **strata**: for the ranking feature F, every unit falls in the half of its layer of each *other*
  measured index (gOSI and the other listed features; units where that index is not a measurement
  form a group of their own) x the half of its mean output at the ablation point
  (:func:`feature_strata`); a matched draw then takes from each stratum as many units as the top
  half by F has there (:func:`selectivity.causal.matching.matched_draws`, the same generator);
* **diagnostic**: :func:`overlap_with_top` says how much of an ablated set is the top half itself,
  so a table can show how often a matched draw collapses onto the top set.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
from scipy import stats

#: Quantile bins per layer of each covariate index and of the mean output: halves. With three
#: covariate indices and output terciles, the 32-unit lower layers of trained cnn7s had strata so
#: fine that a matched draw shared up to 0.86 of its units with the top half and equalled it in up
#: to 5% of draws; with output halves at most 0.80 and 0.9% (benchmarks/matched_strata.py,
#: docs/method.md §4.6).
INDEX_BINS = 2
ACTIVATION_BINS = 2


def ranking_scores(index: np.ndarray) -> np.ndarray:
    """The scores units are ranked by: the index, with NaN (undefined) below every defined value.

    -inf keeps the order of :func:`selectivity.causal.ablation.unit_order` (a stable sort by
    (score, unit index)), so units with an undefined index are the first of the bottom half and
    the last candidates of the top half, in unit order among themselves.
    """
    index = np.asarray(index, dtype=np.float64)
    if index.ndim != 1:
        raise ValueError(f"a feature index must be one value per unit, got shape {index.shape}")
    if np.isposinf(index).any():
        raise ValueError("a feature index is finite or NaN (undefined); got +inf")
    return np.where(np.isnan(index), -np.inf, index)


def quantile_bins(values: np.ndarray, bins: int) -> np.ndarray:
    """Each unit's quantile bin 0..bins-1 within its layer by rank (ties share their average rank);
    units whose value is NaN get the bin ``bins`` of their own."""
    values = np.asarray(values, dtype=np.float64)
    defined = np.isfinite(values)
    result = np.full(len(values), bins, dtype=np.int64)
    if defined.any():
        ranks = stats.rankdata(values[defined], method="average")
        result[defined] = np.minimum(((ranks - 0.5) * bins) // defined.sum(), bins - 1).astype(np.int64)
    return result


def feature_strata(
    covariates: Mapping[str, np.ndarray],
    mean_output: np.ndarray,
    index_bins: int = INDEX_BINS,
    activation_bins: int = ACTIVATION_BINS,
) -> np.ndarray:
    """One integer stratum per unit: the bin of every covariate index x the mean-output bin.

    ``covariates`` maps each other feature to its index per unit, NaN where the index is not a
    measurement (see :func:`selectivity.causal.feature_tests.measured_index`). Index bins are
    quantiles within the layer (:func:`quantile_bins`, NaN its own bin); the mean output is
    binned by rank as in :func:`selectivity.causal.matching.unit_strata`.
    """
    mean_output = np.asarray(mean_output, dtype=np.float64)
    if mean_output.ndim != 1 or not np.isfinite(mean_output).all():
        raise ValueError(f"mean outputs must be one finite value per unit, got shape {mean_output.shape}")
    units = len(mean_output)
    stratum = ((stats.rankdata(mean_output, method="ordinal") - 1) * activation_bins) // units
    stratum = stratum.astype(np.int64)
    for name in sorted(covariates):
        values = np.asarray(covariates[name], dtype=np.float64)
        if values.shape != mean_output.shape:
            raise ValueError(f"covariate {name!r} has {values.shape} values, the layer has {units} units")
        stratum = stratum * (index_bins + 1) + quantile_bins(values, index_bins)
    # Renumber 0..k-1 (the product above can be large; only equality matters).
    return np.unique(stratum, return_inverse=True)[1].astype(np.int64)


def overlap_with_top(ablated: Sequence[int], top: Sequence[int]) -> float:
    """The fraction of an ablated set's units that are in the top set (1 = the top set itself
    when both have the same size)."""
    ablated = np.asarray(ablated, dtype=np.int64)
    if ablated.size == 0:
        return float("nan")
    return float(np.isin(ablated, np.asarray(top, dtype=np.int64)).mean())
