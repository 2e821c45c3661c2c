"""The claims by low-level feature (docs/method.md §6.3): the C1-C5 analogues of spatial-frequency
selectivity, colour selectivity and phase sensitivity, and the comparison across features (CF).

Each analogue is the orientation claim's own function of :mod:`selectivity.claims.evaluation`,
given the feature's :class:`~selectivity.claims.table.FeatureView` and the feature's tables (the
feature summary, the feature half-ablation and shift-invariance tables), so every verdict follows
the same rules (sign test, order-statistic bounds, detectable effect, networks needed). The rows
keep the claim ids C1-C5 with the feature in the ``feature`` column.

Phase is the exception in C1: the shuffled control of F1/F0 is high by construction (a few random
responses are strongly modulated, §3.9), so "more units above the threshold than the control"
cannot show phase structure; what random responses rarely have is phase *invariance*. The phase
C1 therefore counts the complex-like units, F1/F0 *below* the threshold, against the control and
against the untrained network.

CF: per lower layer and pooled over them, for every pair of measured features (orientation
always), the per-network difference of the test-loss increases after ablating the top half by
one feature and by the other, decided by the same sign test; a feature's claim row says whether
its top half costs more than every other feature's.
"""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

import pandas as pd

from selectivity.claims.claim_tests import (
    _check_half_ablation,
    claim_selective_ablation_hurts,
    claim_selective_ablation_lowers_invariance,
    claim_selective_units_exist,
    claim_selectivity_rises_with_accuracy,
    claim_selectivity_tracks_generalization,
    loss_increase_by_condition,
)
from selectivity.claims.wording import _ALL_OF, _difference_rule
from selectivity.claims.table import (
    ClaimSettings,
    FeatureView,
    TestRow,
    layer_list,
    layers_present,
    make_claim_row,
    make_test_row,
    not_applicable_row,
    mean_over_layers,
    missing_row,
    reference_networks,
)
from selectivity.claims.verdicts import positive_effect
from selectivity.tables import require_columns
from selectivity.tuning.features import FEATURE_INDEX_COLUMNS, FEATURES, RANKED_FEATURES

logger = logging.getLogger(__name__)

#: How claims and figures name each feature's index.
INDEX_LABELS = {
    "orientation": "gOSI",
    "spatial_frequency": "SF selectivity",
    "colour": "colour selectivity",
    "phase": "F1/F0",
}
#: How statements name the selective units of each feature in C1.
SELECTIVE_UNITS = {
    "spatial_frequency": "Spatial-frequency-selective units (SF selectivity above its threshold",
    "colour": "Colour-selective units (colour selectivity above its threshold",
    "phase": "Phase-invariant, complex-like units (F1/F0 below its threshold",
}
#: The claim id of the comparison across features.
COMPARISON = "CF"
#: The ``feature`` value of rows about the features together.
ALL_FEATURES = "all"
FEATURE_CLAIM_IDS = ("C1", "C2", "C3", "C4", "C5")


def feature_view(feature: str, threshold: float) -> FeatureView:
    """The view through which the claims read ``feature`` from the feature tables."""
    if feature not in RANKED_FEATURES:
        raise ValueError(f"feature claims are about one of {list(RANKED_FEATURES)}, got {feature!r}")
    label = INDEX_LABELS[feature]
    column = FEATURE_INDEX_COLUMNS[feature]
    phase = feature == "phase"
    return FeatureView(
        feature,
        label,
        ranking=column,
        test_prefix=column,
        threshold=float(threshold),
        fraction_column="fraction_below_threshold" if phase else "fraction_selective",
        comparison="<" if phase else ">",
        threshold_column="threshold",
        mean_column="mean_index_measured",
        mean_label=f"mean {label} (units without a measured {label} excluded)",
        excluded_label=f"Units without a measured {label} excluded from the mean",
    )


def feature_statements(feature: str) -> dict[str, str]:
    """The statements of the C1-C5 analogues of ``feature``."""
    label = INDEX_LABELS[feature]
    return {
        "C1": f"{SELECTIVE_UNITS[feature]}, beyond the shuffled-stimulus control and beyond the untrained "
        "network) exist in lower and higher layers.",
        "C2": f"During training, lower-layer {label} rises together with test accuracy.",
        "C3": f"Across networks, better generalization goes with higher lower-layer {label}, across "
        "label-corruption levels and within them.",
        "C4": f"Ablating the top-50% {label} units of a lower layer raises test loss more than ablating the "
        "bottom 50%, a random 50%, or a random 50% matched to the top half on the other low-level indices "
        "and mean output.",
        "C5": f"Ablating the top-50% {label} units of a lower layer lowers the shift invariance of higher "
        "layers more than ablating the bottom 50%, a random 50% or a matched random 50%.",
    }


def feature_rules(feature: str, settings: ClaimSettings) -> dict[str, str]:
    """The verdict rules of the C1-C5 analogues of ``feature``, in words (the orientation rules with
    the feature's index and the run's settings; docs/method.md §6.3)."""
    difference = _difference_rule(settings)
    label = INDEX_LABELS[feature]
    if feature == "phase":
        fraction = (
            "the fraction of units with F1/F0 below the threshold (phase-invariant, complex-like units: random "
            "responses are strongly modulated, so the shuffled control's F1/F0 is high and only phase invariance "
            "can exceed it)"
        )
    else:
        fraction = f"the fraction of units with {label} above the threshold"
    mean = f"the lower layers' mean {label} (units without a measured {label} excluded)"
    return {
        "C1": "Per clean network at the configured checkpoint, over the lower and over the higher layers: "
        f"{fraction} minus that for the shuffled control, and minus that of the same network at epoch 0 "
        "(untrained); " + difference + _ALL_OF,
        "C2": "Per clean network: Spearman (or the configured) correlation across its saved epochs after epoch 0 "
        f"between {mean} and test accuracy; median over networks with its order-statistic bounds and the exact "
        f"sign test, decided as a difference is. The same correlations of the shuffled-control {label} and of the "
        "mean grating response are reported beside it as controls.",
        "C3": f"At the configured checkpoint: the Spearman (or configured) correlation across all networks between "
        f"{mean} and test accuracy, with a Fisher-z interval and a permutation p-value (needs two label-corruption "
        "levels), and the within-level rank correlation; each supported if its interval lies above 0 and its "
        f"p-value is at most {1 - settings.confidence:.3g}." + _ALL_OF,
        "C4": "Per clean network, per lower layer and pooled over them: test-loss increase after ablating the top "
        f"50% of units by {label} minus after the bottom 50%, minus after a random 50% and minus after a random 50% "
        "matched on the other low-level indices and mean output (means over draws); " + difference + _ALL_OF,
        "C5": "Per clean network, per ablated lower layer and pooled: normalised shift invariance of the higher "
        "layers after ablating the bottom, a random and a matched random 50% minus after the top 50% by "
        f"{label}, averaged over measured layers, directions and shifts; " + difference + _ALL_OF,
    }


COMPARISON_STATEMENT = (
    "Per lower layer: ablating the top 50% of units by this feature's index raises test loss more than "
    "ablating the top 50% by every other measured low-level feature."
)
COMPARISON_RULE = (
    "Per clean network, per lower layer and pooled over them: test-loss increase after ablating the top "
    "50% of units by one feature's index minus after the top 50% by another's (the random halves of the "
    "two tables are the same draws, so this is also the difference of their top-minus-random effects); "
    "each pair is decided by the exact one-sided sign test with the order-statistic bounds of the median "
    "(supported: the first feature's top half costs more in most networks; not supported: the second's "
    "does). A feature's claim row is supported only if its top half costs more than every other's."
)


def top_loss_increase(half_ablation: pd.DataFrame, ranking: str, layers: Sequence[str]) -> pd.Series:
    """Per clean network and layer, the loss increase after ablating the top half by ``ranking``."""
    by_condition = loss_increase_by_condition(half_ablation, ranking, layers)
    if "top" not in by_condition.columns:
        return pd.Series(dtype=float)
    return by_condition["top"]


def claim_feature_comparison(
    tops: Mapping[str, pd.Series], settings: ClaimSettings, lower: list[str]
) -> list[tuple[str, TestRow]]:
    """CF: (feature, row) pairs; pair rows have feature "all", claim rows their feature.

    ``tops`` maps each feature to its per-network, per-layer top-half loss increases.
    """
    features = [feature for feature in FEATURES if feature in tops and len(tops[feature])]
    if len(features) < 2 or not lower:
        why = (
            f"fewer than two features have a top-half ablation of the lower layers {list(settings.lower_layers)} "
            f"(features with one: {features})."
        )
        return [(ALL_FEATURES, missing_row("claim", "pooled", why, True))]
    rows: list[tuple[str, TestRow]] = []
    for scope in ["pooled", *lower]:
        layers = lower if scope == "pooled" else [scope]
        decided: dict[tuple[str, str], TestRow] = {}
        for first_position, first in enumerate(features):
            for second in features[first_position + 1 :]:
                values = mean_over_layers(tops[first] - tops[second], layers)
                for a, b, signed in ((first, second, values), (second, first, -values)):
                    what = (
                        f"Per clean network, test cross-entropy increase after ablating the top 50% of units by "
                        f"{INDEX_LABELS[a]} minus after the top 50% by {INDEX_LABELS[b]}, "
                        f"{'mean over' if scope == 'pooled' else 'in'} layer(s) {layer_list(layers)}"
                    )
                    decision = positive_effect(signed.to_numpy(float), settings.rule)
                    decided[(a, b)] = make_test_row(
                        f"{a}_minus_{b}", scope, decision, what, settings, signed.index
                    )
                rows.append((ALL_FEATURES, decided[(first, second)]))
        for feature in features:
            parts = [decided[(feature, other)] for other in features if other != feature]
            rows.append((feature, make_claim_row(scope, parts, headline=scope == "pooled")))
    return rows


def evaluate_feature_claims(
    summary: pd.DataFrame,
    half_ablation: pd.DataFrame,
    invariance: pd.DataFrame,
    orientation_half_ablation: pd.DataFrame,
    settings: ClaimSettings,
    features: Sequence[str],
    not_applicable: Mapping[str, str] | None = None,
) -> list[dict]:
    """The records (claims-table rows without model and dataset) of every ranked feature's C1-C5
    and of CF, for one model and dataset. ``not_applicable`` (claim -> why) names the claims the
    model's networks cannot be tested on (a given network's C2 and C3: no training history; its
    C4, C5 and CF without test images): each gets one "not applicable" headline row.

    ``summary`` is the feature summary (:func:`selectivity.tuning.feature_summaries.feature_summary`),
    ``half_ablation`` and ``invariance`` the feature causal tables, ``orientation_half_ablation``
    the paper's half-ablation table (gOSI's top half, for CF); ``features`` the ranked features.
    """
    records = []
    reasons = dict(not_applicable or {})
    functions = {
        "C1": ("summary", claim_selective_units_exist),
        "C2": ("summary", claim_selectivity_rises_with_accuracy),
        "C3": ("summary", claim_selectivity_tracks_generalization),
        "C4": ("half_ablation", claim_selective_ablation_hurts),
        "C5": ("invariance", claim_selective_ablation_lowers_invariance),
    }
    for feature in [f for f in RANKED_FEATURES if f in features]:
        view = feature_view(feature, settings.threshold_of(feature))
        tables = {
            "summary": _rows_of_feature(summary, feature),
            "half_ablation": _rows_of_feature(half_ablation, feature),
            "invariance": _rows_of_feature(invariance, feature),
        }
        statements, rules = feature_statements(feature), feature_rules(feature, settings)
        for claim, (table_name, evaluate) in functions.items():
            logger.info("evaluating %s for %s", claim, feature)
            if claim in reasons:
                rows = [not_applicable_row(reasons[claim])]
            else:
                rows = evaluate(tables[table_name], settings, view)
            for row in rows:
                records.append(
                    dict(
                        claim=claim,
                        feature=feature,
                        statement=statements[claim],
                        rule=rules[claim],
                        **row.record(),
                    )
                )
    if "C4" in reasons:  # CF compares the features' ablations
        row = not_applicable_row(reasons["C4"])
        records.append(
            dict(
                claim=COMPARISON,
                feature="all",
                statement=COMPARISON_STATEMENT,
                rule=COMPARISON_RULE,
                **row.record(),
            )
        )
        return records
    tops = _top_loss_increases(half_ablation, orientation_half_ablation, settings, features)
    present = {layer for top in tops.values() for layer in top.index.get_level_values("layer")}
    lower = [
        layer
        for layer in settings.lower_layers
        if all(layer in top.index.get_level_values("layer") for top in tops.values())
    ]
    if len(lower) < len([layer for layer in settings.lower_layers if layer in present]):
        logger.warning("CF compares only the lower layers every feature has: %s", lower)
    for feature, row in claim_feature_comparison(tops, settings, lower):
        records.append(
            dict(
                claim=COMPARISON,
                feature=feature,
                statement=COMPARISON_STATEMENT,
                rule=COMPARISON_RULE,
                **row.record(),
            )
        )
    return records


def _rows_of_feature(table: pd.DataFrame, feature: str) -> pd.DataFrame:
    if table.empty:
        return table
    require_columns(table, ["feature"], "feature")
    return table[table["feature"] == feature]


def _top_loss_increases(
    half_ablation: pd.DataFrame,
    orientation_half_ablation: pd.DataFrame,
    settings: ClaimSettings,
    features: Sequence[str],
) -> dict[str, pd.Series]:
    """Per feature (orientation and the ranked ones), the clean networks' top-half loss increases
    in the lower layers, indexed by network and layer."""
    tops = {}
    sources = [("orientation", orientation_half_ablation, "gosi")]
    sources += [(f, half_ablation, FEATURE_INDEX_COLUMNS[f]) for f in RANKED_FEATURES if f in features]
    for feature, table, ranking in sources:
        if table.empty:
            continue
        _check_half_ablation(table)
        rows = reference_networks(table, settings)
        rows = rows[rows["ranking"] == ranking]
        lower = layers_present(settings.lower_layers, rows["layer"])
        if lower:
            tops[feature] = top_loss_increase(rows, ranking, lower)
    return tops
