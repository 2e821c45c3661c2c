"""The causal tests with units ranked by a low-level feature index other than orientation.

docs/method.md §4.6 and §5.3: half ablation (top / bottom / random / matched random) and the
shift-invariance test, as for gOSI, with units ranked by spatial-frequency selectivity, colour
selectivity or F1/F0 (§3.6-§3.8), one feature per job. The orientation tests (gOSI and class
selectivity, claims C4-C6) are :func:`selectivity.causal.ablation.half_ablation` and
:func:`selectivity.causal.invariance.shift_invariance` with their own matched control; the
feature tests call the same functions with:

* the feature's index as the ranking (the table's ``ranking`` column names the index column),
  NaN ranked lowest (:func:`selectivity.causal.feature_matching.ranking_scores`);
* the matched control of :mod:`selectivity.causal.feature_matching` (the halves of every other
  measured index x mean-output half);
* the random draws of the orientation tests (same seeds and layer generators), so a feature's
  top half and gOSI's top half are compared against the very same random units.

The tables gain the columns ``feature`` and ``overlap_with_top`` (the fraction of an ablated
set's units that are in the top set: 1 for a matched draw that collapsed onto it), and the half
ablation ``n_undefined`` (units of the layer whose index is NaN).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from selectivity.causal.ablation import (
    AblationSettings,
    LossEvaluator,
    half_ablation,
    per_image_losses,
    random_unit_orders,
    rank_units,
    units_to_ablate,
)
from selectivity.causal.feature_matching import feature_strata, overlap_with_top, ranking_scores
from selectivity.causal.invariance import InvarianceSettings, shift_invariance
from selectivity.causal.matching import matched_draws, unit_mean_outputs
from selectivity.networks.loaded import LoadedNetwork
from selectivity.tables import as_bool
from selectivity.tuning.features import FEATURE_INDEX_COLUMNS, FEATURES, RANKED_FEATURES, measured_index


@dataclass(frozen=True)
class FeatureScores:
    """What the tests of one feature need from a checkpoint's tuning rows, per layer.

    ``ranking``: the feature's index turned into ranking scores (NaN as -inf); ``undefined``:
    how many units have no index; ``covariates``: every other measured feature's index, NaN
    where it is not a measurement (the matched control's covariates).
    """

    feature: str
    ranking: dict[str, np.ndarray]
    undefined: dict[str, int]
    covariates: dict[str, dict[str, np.ndarray]]

    @property
    def ranking_name(self) -> str:
        """The ``ranking`` value of the tables: the feature's index column."""
        return FEATURE_INDEX_COLUMNS[self.feature]


def feature_scores_from_table(tuning: pd.DataFrame, feature: str, features: Sequence[str]) -> FeatureScores:
    """The rankings and covariates of ``feature`` from one checkpoint's tuning rows.

    ``features`` are the features measured in the table (tuning.features); the covariates are
    the others, orientation (gOSI) always among them. Raises a ValueError naming a missing column.
    """
    if feature not in RANKED_FEATURES:
        raise ValueError(f"feature tests rank by one of {list(RANKED_FEATURES)}, got {feature!r}")
    measured = [f for f in FEATURES if f in features or f == "orientation"]
    if feature not in measured:
        raise ValueError(f"{feature!r} is not among the measured features {list(features)}")
    gratings = tuning[tuning["stimulus_set"] == "gratings"]
    if gratings.empty:
        raise ValueError("the tuning table has no gratings rows to rank units by")
    columns = [FEATURE_INDEX_COLUMNS[f] for f in measured]
    missing = [column for column in columns + ["dead"] if column not in gratings.columns]
    if missing:
        raise ValueError(
            f"the tuning table lacks the columns {missing} of the features {measured}; "
            "was it made with another tuning.features?"
        )
    ranking, undefined, covariates = {}, {}, {}
    for layer, rows in gratings.groupby("layer", sort=False):
        rows = rows.sort_values("unit")
        units = rows["unit"].to_numpy()
        if list(units) != list(range(len(units))):
            raise ValueError(
                f"the tuning rows of layer {layer} must hold each unit 0..n-1 exactly once (one checkpoint)"
            )
        index = rows[FEATURE_INDEX_COLUMNS[feature]].to_numpy(dtype=np.float64)
        ranking[layer] = ranking_scores(index)
        undefined[layer] = int(np.isnan(index).sum())
        dead = as_bool(rows["dead"], "dead").to_numpy()
        covariates[layer] = {
            other: measured_index(other, rows[FEATURE_INDEX_COLUMNS[other]].to_numpy(dtype=np.float64), dead)
            for other in measured
            if other != feature
        }
    return FeatureScores(feature, ranking, undefined, covariates)


def feature_layer_strata(
    network: LoadedNetwork,
    images: torch.Tensor,
    scores: FeatureScores,
    layers: Sequence[str],
    batch_size: int = 500,
) -> dict[str, np.ndarray]:
    """The matched control's strata of every unit of ``layers`` (docs/method.md §4.6)."""
    missing = [layer for layer in layers if layer not in scores.covariates]
    if missing:
        raise KeyError(f"no {scores.feature} scores for layers {missing}; have {sorted(scores.covariates)}")
    means = unit_mean_outputs(network, images, layers, batch_size)
    return {layer: feature_strata(scores.covariates[layer], means[layer]) for layer in layers}


def ablated_sets(
    ranking: np.ndarray,
    strata: np.ndarray | None,
    fraction: float,
    draws: int,
    seed: int,
    layer_index: int,
) -> dict[tuple[str, int], np.ndarray]:
    """The units each condition of one layer ablates, by (condition, draw): the same sets
    :func:`half_ablation` and :func:`shift_invariance` draw with these settings."""
    units = len(ranking)
    count = units_to_ablate(fraction, units)
    top = rank_units(ranking, fraction, "top", None)
    sets = {("top", 0): top, ("bottom", 0): rank_units(ranking, fraction, "bottom", None)}
    for draw, order in enumerate(random_unit_orders(units, draws, seed, layer_index)):
        sets[("random", draw)] = order[:count]
    if strata is not None:
        for draw, units_drawn in enumerate(matched_draws(top, strata, draws, seed, layer_index)):
            sets[("matched", draw)] = units_drawn
    return sets


def _overlaps(
    table: pd.DataFrame,
    layer_column: str,
    scores: FeatureScores,
    strata: Mapping[str, np.ndarray] | None,
    fraction: float,
    draws: int,
    seed: int,
    layer_indices: Mapping[str, int],
) -> pd.Series:
    """``overlap_with_top`` of every row (NaN for the intact network)."""
    cache: dict[str, dict[tuple[str, int], np.ndarray]] = {}
    values = []
    for layer, condition, draw in table[[layer_column, "condition", "draw"]].itertuples(index=False):
        if layer not in scores.ranking:
            values.append(np.nan)
            continue
        if layer not in cache:
            cache[layer] = ablated_sets(
                scores.ranking[layer],
                None if strata is None else strata[layer],
                fraction,
                draws,
                seed,
                layer_indices[layer],
            )
        sets = cache[layer]
        values.append(overlap_with_top(sets[(condition, int(draw))], sets[("top", 0)]))
    return pd.Series(values, index=table.index, dtype=float)


def half_ablation_by_feature(
    network: LoadedNetwork,
    images: torch.Tensor,
    labels: torch.Tensor,
    scores: FeatureScores,
    settings: AblationSettings,
    identifiers: dict,
    *,
    strata: Mapping[str, np.ndarray] | None = None,
    progress: bool = False,
    loss_evaluator: LossEvaluator = per_image_losses,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Half ablation of every layer of ``settings`` with units ranked by ``scores.feature``.

    The columns of :func:`half_ablation` (``ranking`` = the feature's index column) with
    ``feature``, ``n_undefined`` and ``overlap_with_top`` added; the comparisons with ``feature``.
    """
    ranking = scores.ranking_name
    table, comparisons = half_ablation(
        network,
        images,
        labels,
        {ranking: scores.ranking},
        settings,
        identifiers,
        strata=strata,
        progress=progress,
        loss_evaluator=loss_evaluator,
        matched_ranking=ranking,
    )
    layer_indices = {layer: network.model.layer_index(layer) for layer in settings.layers}
    table.insert(table.columns.get_loc("ranking"), "feature", scores.feature)
    table["n_undefined"] = table["layer"].map(scores.undefined).astype(int)
    table["overlap_with_top"] = _overlaps(
        table, "layer", scores, strata, settings.fraction, settings.random_draws, settings.seed, layer_indices
    )
    comparisons.insert(comparisons.columns.get_loc("ranking"), "feature", scores.feature)
    return table, comparisons


def shift_invariance_by_feature(
    network: LoadedNetwork,
    images: torch.Tensor,
    scores: FeatureScores,
    settings: InvarianceSettings,
    identifiers: dict,
    *,
    strata: Mapping[str, np.ndarray] | None = None,
    progress: bool = False,
) -> pd.DataFrame:
    """The shift-invariance test with the ablated layers' units ranked by ``scores.feature``.

    The columns of :func:`shift_invariance` with ``feature`` and ``overlap_with_top`` added.
    """
    table = shift_invariance(
        network,
        images,
        scores.ranking,
        settings,
        identifiers,
        strata=strata,
        progress=progress,
        ranking=scores.ranking_name,
    )
    layer_indices = {layer: network.model.layer_index(layer) for layer in settings.ablated_layers}
    table.insert(table.columns.get_loc("measured_layer"), "feature", scores.feature)
    table["overlap_with_top"] = _overlaps(
        table,
        "ablated_layer",
        scores,
        strata,
        settings.fraction,
        settings.random_draws,
        settings.seed,
        layer_indices,
    )
    return table
