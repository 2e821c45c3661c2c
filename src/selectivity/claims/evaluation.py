"""Verdicts on the claims of docs/method.md §6, computed afresh from the tables on every run: the
paper's claims C1-C6 (:mod:`selectivity.claims.claim_tests`, whose docstring gives the shared
conventions), their analogues for the other low-level features and the comparison across features
(:mod:`selectivity.claims.features`), and claim C7 of the selectivity regulariser
(:mod:`selectivity.claims.regularisation`), in one claims table (:data:`CLAIM_COLUMNS`).
"""

from __future__ import annotations

import dataclasses
import logging
from types import SimpleNamespace
from typing import Mapping, Sequence

import pandas as pd

from selectivity.claims.claim_tests import PAPER_CLAIMS, settings_for_model
from selectivity.claims.features import evaluate_feature_claims
from selectivity.claims.regularisation import evaluate_regularisation_claims
from selectivity.claims.table import CLAIM_COLUMNS, ClaimSettings, not_applicable_row
from selectivity.claims.wording import claim_statements, effect_unit, row_reading, verdict_rules
from selectivity.identity import is_regularised
from selectivity.tuning.summaries import require_columns

logger = logging.getLogger(__name__)


def model_dataset_pairs(tables: dict[str, pd.DataFrame]) -> list[tuple[str | None, str | None]]:
    """The (model, dataset) pairs of the tables' rows; regularised variants (``cnn7+orientation-0.5``)
    are not models of their own: their networks enter claim C7 of their model only."""
    pairs: set[tuple[str, str]] = set()
    for name, table in tables.items():
        if table.empty:
            continue
        require_columns(table, ["model", "dataset"], name.replace("_", " "))
        pairs |= set(map(tuple, table[["model", "dataset"]].drop_duplicates().to_numpy().tolist()))
    return sorted(pair for pair in pairs if not is_regularised(pair[0])) or [(None, None)]


def rows_of(table: pd.DataFrame, model, dataset) -> pd.DataFrame:
    if table.empty or model is None:
        return table
    return table[(table["model"] == model) & (table["dataset"] == dataset)]


@dataclasses.dataclass(frozen=True)
class FeatureTables:
    """The combined tables of the claims by feature (docs/method.md §6.3): the feature summary
    and the feature half-ablation and shift-invariance tables, and the ranked features."""

    summary: pd.DataFrame
    half_ablation: pd.DataFrame
    invariance: pd.DataFrame
    features: tuple[str, ...]


def feature_tables_of(inputs, features: Sequence[str], models: Sequence[str]) -> FeatureTables | None:
    """The feature tables of a rule's inputs (``feature_summary``, ``feature_half_ablation``,
    ``feature_shift_invariance``; CSV paths), rows of ``models`` only; None without ranked features."""
    if not features:
        return None
    from selectivity.tables import read_table, rows_of_models

    def read(name: str) -> pd.DataFrame:
        return rows_of_models(read_table(getattr(inputs, name), name), models)

    return FeatureTables(
        read("feature_summary"),
        read("feature_half_ablation"),
        read("feature_shift_invariance"),
        tuple(features),
    )


def evaluate_claims(
    summary: pd.DataFrame,
    half_ablation: pd.DataFrame,
    invariance: pd.DataFrame,
    settings: ClaimSettings,
    layers_by_model: Mapping[str, Mapping] | None = None,
    feature_tables: FeatureTables | None = None,
    not_applicable: Mapping[str, Mapping[str, str]] | None = None,
) -> pd.DataFrame:
    """One row per test of each claim C1..C6 (per model and dataset found in the tables).

    ``summary`` comes from :func:`selectivity.tuning.summaries.selectivity_summary` (all
    networks and checkpoints); ``half_ablation`` and ``invariance`` are the concatenated
    per-network causal tables with their identifier columns. A missing table is an
    empty DataFrame and makes its claims inconclusive. ``layers_by_model`` maps a model
    to its ``{"lower_layers": [...], "higher_layers": [...]}``; models it does not name
    use ``settings``' layers. ``not_applicable`` maps a model to the claims its networks cannot be
    tested on and why (claim -> reason): each gets one headline row with verdict "not applicable".
    Columns: :data:`CLAIM_COLUMNS`; exactly one row per claim, feature and model has ``headline``
    True. With ``feature_tables``, the C1-C5 analogues of each ranked feature and the comparison
    across features follow the paper's claims
    (:func:`selectivity.claims.features.evaluate_feature_claims`). With ``settings.regularisation``
    (networks trained with the selectivity regulariser), claim C7 follows for each regularised model
    (:mod:`selectivity.claims.regularisation`), from the rows of the model's regularised variants.
    """
    tables = {"summary": summary, "half_ablation": half_ablation, "invariance": invariance}
    if feature_tables is not None:
        tables.update(
            feature_summary=feature_tables.summary,
            feature_half_ablation=feature_tables.half_ablation,
            feature_invariance=feature_tables.invariance,
        )
    records = []
    for model, dataset in model_dataset_pairs(tables):
        model_settings = settings_for_model(settings, model, layers_by_model)
        statements, rules = claim_statements(model_settings), verdict_rules(model_settings)
        reasons = (not_applicable or {}).get(model, {})
        for claim, (table_name, evaluate) in PAPER_CLAIMS.items():
            logger.info("evaluating %s for %s / %s", claim, model, dataset)
            if claim in reasons:
                rows = [not_applicable_row(reasons[claim])]
            else:
                rows = evaluate(rows_of(tables[table_name], model, dataset), model_settings)
            for row in rows:
                record = dict(
                    model=model,
                    dataset=dataset,
                    claim=claim,
                    feature="orientation",
                    statement=statements[claim],
                    rule=rules[claim],
                    unit=effect_unit(claim, model_settings),
                    **row.record(),
                )
                record["reading"] = row_reading(SimpleNamespace(**record), model_settings)
                records.append(record)
        if feature_tables is not None:
            for record in evaluate_feature_claims(
                rows_of(feature_tables.summary, model, dataset),
                rows_of(feature_tables.half_ablation, model, dataset),
                rows_of(feature_tables.invariance, model, dataset),
                rows_of(half_ablation, model, dataset),
                model_settings,
                feature_tables.features,
                reasons,
            ):
                record = dict(model=model, dataset=dataset, **record)
                record.setdefault(
                    "reading", row_reading(SimpleNamespace(**{"unit": None, **record}), model_settings)
                )
                records.append(record)
    records += evaluate_regularisation_claims(
        summary,
        feature_tables.summary if feature_tables is not None else None,
        settings,
        layers_by_model,
    )
    return pd.DataFrame.from_records(records, columns=list(CLAIM_COLUMNS))


def headline_claims(claims: pd.DataFrame) -> pd.DataFrame:
    """The one row per claim (feature and model) whose verdict is the claim's."""
    return claims[claims["headline"].astype(bool)].reset_index(drop=True)
