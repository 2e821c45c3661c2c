"""Across-network summaries of the causal tables (half ablation, shift invariance)."""

from __future__ import annotations

import pandas as pd

from selectivity.tables import NETWORK_COLUMNS, per_network_means, require_columns
from selectivity.tuning.summaries import summarise_across_seeds


def summarise_causal_table(
    table: pd.DataFrame,
    kind: str,
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Across-network means with t intervals of a combined causal table.

    ``kind`` is ``"half_ablation"`` (loss increase and accuracy change per layer, ranking and
    condition) or ``"shift_invariance"`` (normalised invariance and raw shift correlation per
    measured layer, ablated layer, condition, direction and shift). Random draws are averaged
    within each network first, so the unit of replication is the network. Columns: model, dataset, label_corruption, the condition columns, then those of
    :func:`summarise_across_seeds` (one row per value).
    """
    layouts = {
        "half_ablation": (
            ("layer", "layer_index", "ranking", "condition"),
            ("loss_increase_mean", "accuracy_change"),
        ),
        "shift_invariance": (
            ("measured_layer", "ablated_layer", "condition", "direction", "shift_px"),
            ("normalised_invariance_mean", "shift_correlation_mean"),
        ),
    }
    if kind not in layouts:
        raise ValueError(f"kind must be one of {sorted(layouts)}, got {kind!r}")
    keys, values = layouts[kind]
    require_columns(table, list(NETWORK_COLUMNS) + list(keys) + list(values), kind)
    per_network = per_network_means(table, keys, values)
    groups = ["model", "dataset", "label_corruption", *keys]
    return pd.concat(
        [
            summarise_across_seeds(
                per_network,
                group_columns=groups,
                value=value,
                average="mean",
                carry_columns=(),
                confidence=confidence,
            )
            for value in values
        ],
        ignore_index=True,
    )
