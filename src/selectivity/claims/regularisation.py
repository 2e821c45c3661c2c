"""Claim C7: networks trained with less lower-layer selectivity generalize worse (docs/method.md §6.3).

The second causal test of the study: instead of removing selective units from finished networks
(C4), networks are trained with the selectivity regulariser (§2.10), which pushes the mean index of
their regularised layers down (coefficient c > 0) or up (c < 0). Every seed is trained at every
coefficient from the same initialisation, data order, augmentation and labels as the unregularised
network of that seed (coefficient 0), so the networks of one seed differ only by c: the seed is the
unit of replication, and the claim is decided on one value per seed.

Per clean seed, at the claims' checkpoint (``causal.checkpoint``), over the coefficients it was
trained at (0 included):

- ``accuracy_slope``: the least-squares slope of test accuracy on c; the claim puts it below 0
  (accuracy falls as selectivity is pushed down, and rises as it is pushed up);
- ``loss_slope``: the same for test loss (cross-entropy, nats per image), claimed above 0;
- ``selectivity_slope`` (the specificity test): the slope of the regularised layers' mean index for
  gratings minus for the shuffled control (§3.3), claimed below 0: the regulariser moved the
  selectivity it names, beyond chance. Required: without it, a change of accuracy is not shown to be
  about selectivity (inconclusive), and with the opposite shown it is "supported, not specific";
- for each c != 0, the per-seed differences against c = 0 (comparisons, deciding nothing): for
  c > 0 worse accuracy (below 0) and loss (above 0); for c < 0 "better or no worse", accuracy above
  -``claims.accuracy_margin`` and loss below +``claims.equivalence_margin``; and the selectivity
  difference on the side the coefficient pushes it.

Each is the median over seeds decided by the exact sign test with the order-statistic bounds that
invert it (§6.2): its level holds for any distribution of per-seed slopes. The claim row needs the
accuracy and the loss slopes (intersection-union) and the specificity test.
"""

from __future__ import annotations

import dataclasses
import logging
from types import SimpleNamespace

import numpy as np
import pandas as pd

from selectivity.claims.claim_tests import settings_for_model
from selectivity.claims.power import Power
from selectivity.claims.table import (
    ClaimSettings,
    TestRow,
    format_number,
    layer_list,
    make_claim_row,
    make_test_row,
    mean_over_layers,
    missing_row,
    reference_networks,
)
from selectivity.claims.verdicts import (
    NOT_SUPPORTED,
    SUPPORTED,
    SUPPORTED_NOT_SPECIFIC,
    not_lower_than,
    not_worse_than,
    positive_effect,
)
from selectivity.claims.wording import (
    COMPARISON,
    SPECIFICITY_CONTROL,
    checkpoint_words,
    reading_from_phrases,
)
from selectivity.identity import coefficient_label, model_regularisation
from selectivity.regularisation import REGULARISABLE_FEATURES, RegularisationStudy
from selectivity.tuning.summaries import NETWORK_COLUMNS, select_checkpoint

logger = logging.getLogger(__name__)

CLAIM = "C7"
#: The per-network columns of :func:`regularised_networks`.
NETWORK_VALUE_COLUMNS = ("coefficient", "test_accuracy", "test_loss", "selectivity", "selectivity_gratings")
#: How the claim names each feature's index.
INDEX_LABELS = {
    "orientation": "mean gOSI",
    "spatial_frequency": "mean SF selectivity",
    "phase": "mean F1/F0",
    "colour": "mean colour selectivity",
}
_QUANTITIES = {
    "accuracy": ("test accuracy", "test_accuracy", "accuracy (fraction)"),
    "loss": ("test loss", "test_loss", "nats per image"),
}


def index_of(feature: str, settings: ClaimSettings) -> tuple[str, str]:
    """(the summary kind that holds the feature's layer means, its column): gOSI from the selectivity
    summary (the author's mean, dead units as 0), the others from the feature summary (§6.4)."""
    return (
        ("selectivity_summary", "mean_gosi")
        if feature == "orientation"
        else ("feature_summary", "mean_index")
    )


def regularised_networks(
    table: pd.DataFrame, model: str, dataset: str, study: RegularisationStudy, settings: ClaimSettings
) -> pd.DataFrame:
    """One row per clean network of ``model`` and its regularised variants at the claims' checkpoint:
    its identifiers, coefficient, test accuracy and loss, and the regularised layers' mean index for
    gratings minus for the shuffled control (``selectivity``) and for gratings (``selectivity_gratings``).

    ``table``: the selectivity summary (orientation) or the feature summary (the other features).
    """
    _, column = index_of(study.feature, settings)
    models = [model, *study.variants_of(model)]
    rows = table[table["model"].isin(models) & (table["dataset"] == dataset)]
    if "feature" in rows.columns:
        rows = rows[rows["feature"] == study.feature]
    rows = select_checkpoint(reference_networks(rows, settings), settings.tuning_checkpoint)
    layers = list(study.layers_of(model))
    index = list(NETWORK_COLUMNS) + ["layer"]
    by_set = rows[rows["layer"].isin(layers)].pivot_table(
        index=index, columns="stimulus_set", values=column, aggfunc="mean"
    )
    columns = list(NETWORK_COLUMNS) + list(NETWORK_VALUE_COLUMNS)
    if not {"gratings", "shuffled"} <= set(by_set.columns):
        return pd.DataFrame(columns=columns)
    selectivity = mean_over_layers(by_set["gratings"] - by_set["shuffled"], layers)
    gratings = mean_over_layers(by_set["gratings"], layers)
    metrics = rows.groupby(list(NETWORK_COLUMNS))[["test_accuracy", "test_loss"]].first()
    networks = pd.DataFrame({"selectivity": selectivity, "selectivity_gratings": gratings}).join(metrics)
    networks = networks.reset_index()
    networks["coefficient"] = [_coefficient(m) for m in networks["model"]]
    return networks[columns].sort_values(["seed", "coefficient"]).reset_index(drop=True)


def _coefficient(model: str) -> float:
    regularisation = model_regularisation(model)
    return 0.0 if regularisation is None else regularisation.coefficient


def per_seed_slopes(networks: pd.DataFrame, value: str, model: str) -> pd.Series:
    """Per seed, the least-squares slope of ``value`` on the coefficient over that seed's networks
    (seeds with fewer than two coefficients are left out); indexed like a network of ``model``."""
    slopes = {}
    for key, rows in networks.dropna(subset=[value]).groupby(["dataset", "label_corruption", "seed"]):
        x, y = rows["coefficient"].to_numpy(float), rows[value].to_numpy(float)
        if np.unique(x).size < 2:
            continue
        slopes[(model, *key)] = least_squares_slope(x, y)
    return _series(slopes)


def least_squares_slope(x: np.ndarray, y: np.ndarray) -> float:
    """The least-squares slope of y on x; exactly 0 where the fitted change of y over the range of x is
    below 1e-12 of y's scale, i.e. y does not vary with x but for rounding (the sign test counts a value
    at 0 against the claim; a rounding error of either sign would count for one side)."""
    dx, dy = x - x.mean(), y - y.mean()
    slope = float((dx * dy).sum() / (dx * dx).sum())
    if abs(slope) * np.ptp(x) <= 1e-12 * max(np.abs(y).max(), np.finfo(float).tiny):
        return 0.0
    return slope


def per_seed_differences(networks: pd.DataFrame, value: str, coefficient: float, model: str) -> pd.Series:
    """Per seed, ``value`` at ``coefficient`` minus at 0 (seeds with both)."""
    wide = networks.pivot_table(
        index=["dataset", "label_corruption", "seed"], columns="coefficient", values=value, aggfunc="first"
    )
    if coefficient not in wide.columns or 0.0 not in wide.columns:
        return _series({})
    differences = (wide[coefficient] - wide[0.0]).dropna()
    return _series({(model, *key): float(v) for key, v in differences.items()})


def _series(values: dict) -> pd.Series:
    series = pd.Series(values, dtype=float)
    if len(series):
        series.index = pd.MultiIndex.from_tuples(series.index, names=list(NETWORK_COLUMNS))
    else:
        series.index = pd.MultiIndex.from_tuples([], names=list(NETWORK_COLUMNS))
    return series


def _group(layers, lower) -> str:
    """The claims table's layer of C7's rows: "lower" when the regularised layers are the lower ones."""
    return "lower" if list(layers) == list(lower) else "regularised"


def evaluate_regularisation_claim(
    table: pd.DataFrame, model: str, dataset: str, settings: ClaimSettings
) -> list[dict]:
    """The records of C7 for ``model`` (its rows of the claims table, without model and dataset)."""
    study = settings.regularisation
    feature, layers = study.feature, study.layers_of(model)
    group = _group(layers, settings.lower_layers)
    networks = regularised_networks(table, model, dataset, study, settings)
    levels = int(networks["coefficient"].nunique()) if len(networks) else 0
    label, checkpoint = INDEX_LABELS[feature], checkpoint_words(settings.tuning_checkpoint)
    words = {
        "accuracy": "test accuracy",
        "loss": "test loss",
        "selectivity": f"the {label} of {layer_list(layers)} for gratings minus for the shuffled control",
    }
    units = {
        "accuracy": "accuracy (fraction)",
        "loss": "nats per image",
        "selectivity": f"{label} (no unit)",
    }

    def finish(row: TestRow, test_values: pd.Series, unit: str, claimed: str, opposite: str) -> dict:
        networks_used = int(
            networks.merge(test_values.index.to_frame(index=False)[["seed"]], on="seed")["coefficient"].size
        )
        record = dict(
            claim=CLAIM,
            feature=feature,
            statement=statement(model, layers, settings),
            rule=rule(layers, settings),
            unit=unit,
            **row.record(),
        )
        record["n_networks"] = networks_used
        namespace = SimpleNamespace(**record)
        prefix = {
            SPECIFICITY_CONTROL: "Specificity test of C7. ",
            COMPARISON: "For comparison (decides no verdict). ",
        }.get(row.control, "")
        record["reading"] = reading_from_phrases(
            namespace, settings, claimed, opposite, "in most seeds, ", prefix
        )
        return record

    records, parts, specificity = [], {}, []
    if networks.empty:
        row = missing_row(
            "claim",
            group,
            f"no clean networks of {model} and its regularised variants with the {label} of {layer_list(layers)} "
            "for gratings and the shuffled control.",
            True,
        )
        return [finish(row, _series({}), "", "the claim holds", "it does not")]
    slopes = {name: per_seed_slopes(networks, column, model) for name, column in _columns().items()}
    tests = {
        "accuracy": (
            not_worse_than(slopes["accuracy"].to_numpy(float), 0.0, settings.rule),
            "falls",
            "rises",
        ),
        "loss": (positive_effect(slopes["loss"].to_numpy(float), settings.rule), "rises", "falls"),
        "selectivity": (
            not_worse_than(slopes["selectivity"].to_numpy(float), 0.0, settings.rule),
            "falls",
            "rises",
        ),
    }
    for name, (decision, claimed, opposite) in tests.items():
        what = (
            f"Per seed of clean networks (coefficients {_coefficient_list(networks)}, 0 = unregularised), the "
            f"least-squares slope of {words[name]} at {checkpoint} on the regularisation coefficient; median over seeds"
        )
        row = in_networks(
            make_test_row(f"{name}_slope", group, decision, what, settings, slopes[name].index), levels
        )
        if name == "selectivity":
            row = dataclasses.replace(row, control=SPECIFICITY_CONTROL)
            specificity.append(row)
        else:
            parts[name] = row
        records.append(
            finish(
                row,
                slopes[name],
                f"{units[name]} per unit coefficient",
                f"{words[name]} {claimed} as the coefficient rises",
                f"{words[name]} {opposite} as the coefficient rises",
            )
        )
    for coefficient in sorted(c for c in networks["coefficient"].unique() if c != 0):
        records += _pairwise_records(
            networks, coefficient, model, group, words, units, settings, finish, levels
        )
    claim_row = make_claim_row(
        group,
        list(parts.values()),
        True,
        specificity=specificity,
        not_specific_when=NOT_SUPPORTED,
        specificity_required=True,
    )
    claimed = (
        f"test accuracy falls and test loss rises as the coefficient rises (networks trained with less {label} in "
        f"{layer_list(layers)} generalize worse, and with more better)"
    )
    opposite = "test accuracy rises or test loss falls as the coefficient rises"
    record = finish(claim_row, slopes["accuracy"], "see the tests' units", claimed, opposite)
    if claim_row.verdict == SUPPORTED_NOT_SPECIFIC:
        record["reading"] = (
            "Supported, not specific: in most seeds test accuracy falls and test loss rises as the coefficient "
            f"rises, but the {label} of {layer_list(layers)} (beyond the shuffled control) rises with it, so the "
            "change is not shown to be about the regularised selectivity."
        )
    elif claim_row.verdict == SUPPORTED:
        record["reading"] += " The regulariser moved the selectivity it names (specificity test supported)."
    records.append(record)
    return records


def _columns() -> dict[str, str]:
    return {"accuracy": "test_accuracy", "loss": "test_loss", "selectivity": "selectivity"}


def _coefficient_list(networks: pd.DataFrame) -> str:
    return ", ".join(f"{c:g}" for c in sorted(networks["coefficient"].unique()))


def _pairwise_records(
    networks, coefficient, model, group, words, units, settings, finish, levels
) -> list[dict]:
    """The comparisons of one coefficient with 0: worse for c > 0, no worse (margins) for c < 0."""
    records = []
    label = coefficient_label(coefficient)
    for name, column in _columns().items():
        values = per_seed_differences(networks, column, coefficient, model)
        data = values.to_numpy(float)
        if coefficient > 0:
            decision = {
                "accuracy": not_worse_than(data, 0.0, settings.rule) if len(data) else None,
                "loss": positive_effect(data, settings.rule) if len(data) else None,
                "selectivity": not_worse_than(data, 0.0, settings.rule) if len(data) else None,
            }[name]
            claimed, opposite = {
                "accuracy": ("test accuracy is lower than at 0", "test accuracy is higher than at 0"),
                "loss": ("test loss is higher than at 0", "test loss is lower than at 0"),
                "selectivity": (f"{words[name]} is lower than at 0", f"{words[name]} is higher than at 0"),
            }[name]
        else:
            accuracy_margin, loss_margin = settings.accuracy_margin, settings.equivalence_margin
            decision = {
                "accuracy": not_lower_than(data, accuracy_margin, settings.rule) if len(data) else None,
                "loss": not_worse_than(data, loss_margin, settings.rule) if len(data) else None,
                "selectivity": positive_effect(data, settings.rule) if len(data) else None,
            }[name]
            claimed, opposite = {
                "accuracy": (
                    f"test accuracy is no worse than at 0 (above it minus the margin of {accuracy_margin:g})",
                    f"test accuracy is lower than at 0 by more than the margin of {accuracy_margin:g}",
                ),
                "loss": (
                    f"test loss is no worse than at 0 (below it plus the margin of {loss_margin:g} nats per image)",
                    f"test loss is higher than at 0 by more than the margin of {loss_margin:g} nats per image",
                ),
                "selectivity": (f"{words[name]} is higher than at 0", f"{words[name]} is lower than at 0"),
            }[name]
        test = f"{name}_at_{label}_minus_0"
        what = (
            f"Per seed of clean networks, {words[name]} of the network trained at coefficient {coefficient:g} minus of "
            "the unregularised one (the same initialisation, data order and labels); median over seeds"
            + (
                ""
                if coefficient > 0 or name == "selectivity"
                else f", p-value against the margin of {(settings.accuracy_margin if name == 'accuracy' else settings.equivalence_margin):g}"
            )
        )
        if decision is None:
            row = missing_row(test, group, f"no seed has networks at {coefficient:g} and at 0.")
        else:
            row = in_networks(make_test_row(test, group, decision, what, settings, values.index), levels)
        row = dataclasses.replace(row, control=COMPARISON)
        records.append(finish(row, values, units[name], claimed, opposite))
    return records


def in_networks(row: TestRow, levels: int) -> TestRow:
    """A C7 test decides on one value per seed, each from ``levels`` networks (its coefficients): its
    networks needed are the seeds needed times that (the column, the note and the statistic's words)."""
    if row.decision is not None:  # the sign test's values are seeds
        n = row.decision.test.n
        row = dataclasses.replace(
            row, statistic=row.statistic.replace(f", {n} networks; mean", f", {n} seeds; mean")
        )
    power = row.power
    if not np.isfinite(power.networks_needed) or levels < 1:
        return row
    seeds, networks = power.networks_needed, power.networks_needed * levels
    note = (
        power.note + "; " if power.note else ""
    ) + f"{seeds:g} seeds x {levels} coefficients (a network each)"
    statistic = row.statistic.replace(
        f"networks needed for the observed effect: {format_number(seeds)}",
        f"networks needed for the observed effect: {format_number(networks)} ({format_number(seeds)} seeds x "
        f"{levels} coefficients)",
    )
    return dataclasses.replace(
        row,
        statistic=statistic,
        power=Power(power.detectable_effect, networks, note, power.against_claim),
    )


# ----------------------------------------------------------------------------- words


def statement(model: str, layers, settings: ClaimSettings) -> str:
    study = settings.regularisation
    label = INDEX_LABELS[study.feature]
    index = REGULARISABLE_FEATURES[study.feature][0]
    where = "lower-layer" if list(layers) == list(settings.lower_layers) else f"{layer_list(layers)}"
    coefficients = ", ".join(f"{c:g}" for c in (0.0, *study.coefficients))
    return (
        f"Networks trained with less {where} {study.feature.replace('_', '-')} selectivity generalize worse, and with "
        f"more, better or no worse: {model} trained with c x the {label} of {layer_list(layers)} ({index}) added to "
        f"its loss (coefficients {coefficients}; c > 0 pushes that selectivity down, c < 0 up, every seed at every "
        f"coefficient from the same initialisation and data), in most seeds of clean networks at "
        f"{checkpoint_words(settings.tuning_checkpoint)}, test accuracy falls and test loss rises as c rises. "
        "Specific to that selectivity only if c moved it beyond the shuffled control (else inconclusive, or "
        "supported, not specific if it moved the other way)."
    )


def rule(layers, settings: ClaimSettings) -> str:
    alpha = f"{1 - settings.confidence:.3g}"
    return (
        "Per seed of clean networks (its networks differ only by the coefficient): the least-squares slopes of test "
        "accuracy and of test loss on the coefficient, over the coefficients trained (0 = unregularised); each the "
        f"median over seeds, decided by the exact one-sided sign test at level {alpha} with the one-sided "
        f"{100 * settings.confidence:g}% order-statistic bounds that invert it (accuracy slope claimed below 0, loss "
        "slope above 0; values at 0 count against the claim); fewer than "
        f"{settings.minimum_networks} seeds: inconclusive (too few networks). The claim's effect is supported only "
        "if both are (not supported if either is not). Specificity test (required): the slope of the regularised "
        f"layers' ({layer_list(layers)}) mean index for gratings minus for the shuffled control, by the same rule, "
        "claimed below 0; with the effect supported, the claim is supported if it is supported, supported, not "
        "specific if it is not supported, and inconclusive otherwise. Comparisons with coefficient 0, per seed, "
        f"decide nothing: for c > 0 lower accuracy and higher loss; for c < 0 accuracy above minus "
        f"{settings.accuracy_margin:g} and loss below plus {settings.equivalence_margin:g} nats per image (no worse), "
        "by the same sign test against the margin."
    )


def evaluate_regularisation_claims(
    summary: pd.DataFrame, feature_summary: pd.DataFrame | None, settings: ClaimSettings, layers_by_model=None
) -> list[dict]:
    """The C7 records of every regularised model and dataset (with model and dataset), or [] when the
    run trained no regularised networks (``settings.regularisation`` None)."""

    study = settings.regularisation
    if study is None:
        return []
    kind, _ = index_of(study.feature, settings)
    table = summary if kind == "selectivity_summary" else feature_summary
    records = []
    for model in study.architectures:
        if table is None or table.empty:
            datasets = [None]
        else:
            datasets = sorted(table.loc[table["model"] == model, "dataset"].unique()) or [None]
        model_settings = settings_for_model(settings, model, layers_by_model)
        for dataset in datasets:
            logger.info("evaluating C7 for %s / %s", model, dataset)
            if dataset is None:
                rows = [
                    dict(
                        claim=CLAIM,
                        feature=study.feature,
                        statement=statement(model, study.layers_of(model), model_settings),
                        rule=rule(study.layers_of(model), model_settings),
                        unit="",
                        **missing_row(
                            "claim", "lower", f"the {kind.replace('_', ' ')} has no rows of {model}.", True
                        ).record(),
                    )
                ]
                rows[0]["reading"] = "Inconclusive: not measured (the statistic says why)."
            else:
                rows = evaluate_regularisation_claim(table, model, dataset, model_settings)
            records += [dict(model=model, dataset=dataset, **row) for row in rows]
    return records
