"""Layer-level selectivity summaries and their relation to generalization.

:func:`selectivity_summary` condenses the per-unit tuning tables of many networks and
checkpoints into one row per network x checkpoint x layer x stimulus set, joined with
that epoch's accuracy and loss. The other functions relate a layer's selectivity to
test accuracy in the two ways of docs/method.md §2: across the epochs of one network
(:func:`correlations_across_epochs`, then :func:`summarise_across_seeds`) and across
networks that differ in label corruption and seed (:func:`correlations_across_networks`).
"""

from __future__ import annotations

import logging
from typing import Iterable, Sequence

import numpy as np
import pandas as pd

from selectivity.statistics import correlation, fisher_interval, mean_interval, median_interval

logger = logging.getLogger(__name__)

#: A network is one (model, dataset, label corruption, seed).
NETWORK_COLUMNS = ("model", "dataset", "label_corruption", "seed")
#: A checkpoint of a network; ``checkpoint`` is "epoch" or "best", ``epoch`` its real epoch.
CHECKPOINT_COLUMNS = NETWORK_COLUMNS + ("checkpoint", "epoch")
LAYER_COLUMNS = ("layer", "layer_index")
#: The metrics.csv columns copied into the summary for each checkpoint's epoch.
METRIC_COLUMNS = (
    "test_accuracy",
    "test_loss",
    "validation_accuracy",
    "validation_loss",
    "train_accuracy",
    "train_accuracy_true_labels",
)
SUMMARY_VALUE_COLUMNS = (
    "n_units",
    "mean_gosi",
    "median_gosi",
    "mean_osi",
    "median_osi",
    "fraction_selective",
    "fraction_dead",
    "n_dead",
    "mean_gosi_responsive",
    "mean_peak_response",
    "selectivity_threshold",
)
CHECKPOINT_CHOICES = ("final", "best")
#: The ``checkpoint`` value of a pretrained network's only weights (``epoch`` is empty).
PUBLISHED_CHECKPOINT = "published"


def require_columns(table: pd.DataFrame, columns: Iterable[str], table_name: str) -> None:
    """Raise a ValueError naming the columns ``table`` lacks."""
    missing = [column for column in columns if column not in table.columns]
    if missing:
        raise ValueError(f"the {table_name} table lacks columns {missing}; it has {list(table.columns)}")


def as_bool(column: pd.Series, name: str) -> pd.Series:
    """A boolean column as read back from CSV (bool, 0/1, or 'True'/'False' text)."""
    if column.dtype == bool:
        return column
    if pd.api.types.is_numeric_dtype(column) and column.isin([0, 1]).all():
        return column.astype(bool)
    text = column.astype(str).str.strip().str.lower()
    if text.isin(["true", "false"]).all():
        return text == "true"
    bad = column[~text.isin(["true", "false"])].iloc[0]
    raise ValueError(f"column {name!r} must be boolean, found the value {bad!r}")


def select_checkpoint(table: pd.DataFrame, checkpoint: str) -> pd.DataFrame:
    """The rows of one checkpoint per network: "best" or "final" (last saved epoch).

    "final" is the highest ``epoch`` among each network's ``checkpoint == "epoch"`` rows,
    so networks whose runs saved different epochs each contribute their own last one.
    Rows of a pretrained network (``checkpoint == "published"``) are kept for either choice.
    """
    if checkpoint not in CHECKPOINT_CHOICES:
        raise ValueError(f"checkpoint must be one of {CHECKPOINT_CHOICES}, got {checkpoint!r}")
    require_columns(table, CHECKPOINT_COLUMNS, "summary")
    # A pretrained network (VGG16) has only its published weights: they serve as any checkpoint.
    published = table[table["checkpoint"] == PUBLISHED_CHECKPOINT]
    if checkpoint == "best":
        return pd.concat([table[table["checkpoint"] == "best"], published]).copy()
    saved = table[table["checkpoint"] == "epoch"]
    final_epoch = saved.groupby(list(NETWORK_COLUMNS), dropna=False)["epoch"].transform("max")
    return pd.concat([saved[saved["epoch"] == final_epoch], published]).copy()


def _attach_metrics(summary: pd.DataFrame, metrics: pd.DataFrame) -> pd.DataFrame:
    """Left-join each checkpoint's epoch row of metrics.csv; warn about checkpoints without one."""
    key = list(NETWORK_COLUMNS) + ["epoch"]
    if metrics.empty:
        logger.warning("no metrics given: accuracy and loss columns of the summary are left empty")
        return summary.assign(**{column: np.nan for column in METRIC_COLUMNS})
    require_columns(metrics, key + list(METRIC_COLUMNS), "metrics")
    metrics = metrics[key + list(METRIC_COLUMNS)]
    duplicated = metrics.duplicated(key, keep=False)
    if duplicated.any():
        first = metrics[duplicated].iloc[0]
        raise ValueError(f"metrics has more than one row for network/epoch {dict(first[key])}")
    joined = summary.merge(metrics, on=key, how="left", validate="many_to_one")
    unmatched = joined.loc[joined["test_accuracy"].isna(), key].drop_duplicates()
    if len(unmatched):
        logger.warning(
            "%d checkpoints have no metrics row (accuracy left empty), e.g. %s",
            len(unmatched),
            dict(unmatched.iloc[0]),
        )
    return joined


def selectivity_summary(
    tuning: pd.DataFrame, metrics: pd.DataFrame, selectivity_threshold: float = 0.33
) -> pd.DataFrame:
    """One row per network x checkpoint x layer x stimulus set, with that epoch's metrics.

    ``tuning`` holds per-unit rows (tuning table columns plus the network identifiers and
    ``epoch``) of any number of networks and checkpoints; ``metrics`` the metrics.csv rows
    of those networks with their identifiers. Columns: identifiers, ``checkpoint, epoch,
    layer, layer_index, stimulus_set, n_units, mean_gosi, median_gosi, mean_osi,
    median_osi, fraction_selective, fraction_dead, selectivity_threshold`` and
    :data:`METRIC_COLUMNS`.

    Dead units (no response to any grating) stay in the author's averages with OSI =
    gOSI = 0, as docs/method.md §3 defines them, and never count as selective;
    ``fraction_dead`` and ``n_dead`` say how many there are, and ``mean_gosi_responsive``
    is the mean gOSI of the other units (what the claims correlate, so that units that
    died do not count as unselective ones). ``mean_peak_response`` (the mean over units
    of each unit's largest grating response) is the claims' activity control. A unit is selective when its gOSI exceeds
    ``selectivity_threshold`` (recorded in its own column so verdicts can check it).
    """
    if not 0.0 <= selectivity_threshold < 1.0:
        raise ValueError(f"selectivity_threshold must lie in [0, 1), got {selectivity_threshold!r}")
    group = list(CHECKPOINT_COLUMNS) + list(LAYER_COLUMNS) + ["stimulus_set"]
    require_columns(tuning, group + ["unit", "osi", "gosi", "dead", "peak_response"], "tuning")
    duplicated = tuning.duplicated(group + ["unit"], keep=False)
    if duplicated.any():
        first = tuning[duplicated].iloc[0]
        raise ValueError(f"tuning has more than one row for unit {dict(first[group + ['unit']])}")
    dead = as_bool(tuning["dead"], "dead")
    units = tuning[group + ["unit", "osi", "gosi", "peak_response"]].assign(
        dead=dead.astype(float),
        selective=(tuning["gosi"] > selectivity_threshold).astype(float),
        gosi_responsive=tuning["gosi"].where(~dead),
    )
    summary = (
        units.groupby(group, sort=True, dropna=False)
        .agg(
            n_units=("unit", "size"),
            mean_gosi=("gosi", "mean"),
            median_gosi=("gosi", "median"),
            mean_osi=("osi", "mean"),
            median_osi=("osi", "median"),
            fraction_selective=("selective", "mean"),
            fraction_dead=("dead", "mean"),
            n_dead=("dead", "sum"),
            mean_gosi_responsive=("gosi_responsive", "mean"),
            mean_peak_response=("peak_response", "mean"),
        )
        .reset_index()
    )
    summary["n_dead"] = summary["n_dead"].astype(int)
    summary["selectivity_threshold"] = float(selectivity_threshold)
    logger.info("summarised %d unit rows into %d layer rows", len(units), len(summary))
    summary = _attach_metrics(summary, metrics)
    return summary.sort_values(list(CHECKPOINT_COLUMNS) + ["layer_index", "stimulus_set"]).reset_index(
        drop=True
    )


def _check_summary(summary: pd.DataFrame, measure: str) -> None:
    require_columns(
        summary,
        list(CHECKPOINT_COLUMNS) + list(LAYER_COLUMNS) + ["stimulus_set", measure, "test_accuracy"],
        "summary",
    )


def correlations_across_epochs(
    summary: pd.DataFrame,
    method: str = "spearman",
    measure: str = "mean_gosi",
    stimulus_set: str = "gratings",
    include_initialisation: bool = True,
) -> pd.DataFrame:
    """Per network and layer, the correlation across saved epochs of ``measure`` with test accuracy.

    Uses the configured-epoch checkpoints (``checkpoint == "epoch"``); the best-validation
    checkpoint repeats one of them and is left out. Epoch 0 (the initialisation, at chance
    accuracy) is included by default, so the correlation describes training from its
    start. Columns: identifiers, ``layer, layer_index, measure, method, correlation,
    n_epochs`` (epochs with both values); the correlation is NaN when undefined (fewer
    than 3 epochs, or the measure or the accuracy never changed).
    """
    _check_summary(summary, measure)
    rows = summary[(summary["checkpoint"] == "epoch") & (summary["stimulus_set"] == stimulus_set)]
    if not include_initialisation:
        rows = rows[rows["epoch"] >= 1]
    records = []
    for key, group in rows.groupby(list(NETWORK_COLUMNS) + list(LAYER_COLUMNS), sort=True, dropna=False):
        pairs = group[[measure, "test_accuracy"]].dropna()
        records.append(
            dict(
                zip(list(NETWORK_COLUMNS) + list(LAYER_COLUMNS), key),
                measure=measure,
                method=method,
                correlation=correlation(pairs[measure], pairs["test_accuracy"], method=method),
                n_epochs=len(pairs),
            )
        )
    columns = list(NETWORK_COLUMNS) + list(LAYER_COLUMNS) + ["measure", "method", "correlation", "n_epochs"]
    return pd.DataFrame.from_records(records, columns=columns)


def summarise_across_seeds(
    per_network: pd.DataFrame,
    group_columns: Sequence[str] = ("model", "dataset", "label_corruption", "layer", "layer_index"),
    value: str = "correlation",
    average: str = "median",
    carry_columns: Sequence[str] = ("measure", "method"),
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Average a per-network value over the networks (seeds) of each group, with its interval.

    The intervals are those of :mod:`selectivity.statistics` that the claims use:
    ``average="median"`` (for correlations over a few epochs, which are bounded and
    often exactly 1) gives the median and its order-statistic interval, ``"mean"`` the
    mean and its t interval. Networks whose value is NaN (an undefined correlation) are
    left out and counted in ``n_undefined``. ``carry_columns`` present in the table must
    be constant within a group and are copied to the output. Columns: group columns,
    carried columns, ``value, average, estimate, ci_low, ci_high, n_networks, n_undefined``.
    """
    intervals = {
        "median": lambda values: median_interval(values, confidence)[:3],
        "mean": lambda values: mean_interval(values, confidence),
    }
    if average not in intervals:
        raise ValueError(f"average must be one of {sorted(intervals)}, got {average!r}")
    require_columns(per_network, list(group_columns) + [value], "per-network")
    carried = [column for column in carry_columns if column in per_network.columns]
    records = []
    for key, group in per_network.groupby(list(group_columns), sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        record = dict(zip(group_columns, key))
        for column in carried:
            values = group[column].unique()
            if len(values) != 1:
                raise ValueError(f"column {column!r} takes several values {list(values)} in group {record}")
            record[column] = values[0]
        finite = group[value].to_numpy(dtype=float)
        finite = finite[np.isfinite(finite)]
        estimate, ci_low, ci_high = intervals[average](finite)
        record.update(
            value=value,
            average=average,
            estimate=estimate,
            ci_low=ci_low,
            ci_high=ci_high,
            n_networks=int(finite.size),
            n_undefined=int(len(group) - finite.size),
        )
        records.append(record)
    columns = (
        list(group_columns)
        + carried
        + ["value", "average", "estimate", "ci_low", "ci_high", "n_networks", "n_undefined"]
    )
    return pd.DataFrame.from_records(records, columns=columns)


def correlations_across_networks(
    summary: pd.DataFrame,
    checkpoint: str = "final",
    method: str = "spearman",
    measure: str = "mean_gosi",
    stimulus_set: str = "gratings",
    confidence: float = 0.95,
) -> pd.DataFrame:
    """Per model, dataset and layer, the correlation across networks of ``measure`` with test accuracy.

    Each network (all label-corruption levels and seeds) contributes one point: its
    final saved epoch or its best-validation checkpoint (:func:`select_checkpoint`).
    The interval is Fisher's (:func:`selectivity.statistics.fisher_interval`). Columns:
    ``model, dataset, layer, layer_index, checkpoint, measure, method, correlation,
    ci_low, ci_high, n_networks, n_label_corruption_levels, n_seeds``.
    """
    _check_summary(summary, measure)
    rows = select_checkpoint(summary, checkpoint)
    rows = rows[rows["stimulus_set"] == stimulus_set].dropna(subset=[measure, "test_accuracy"])
    records = []
    for key, group in rows.groupby(["model", "dataset"] + list(LAYER_COLUMNS), sort=True, dropna=False):
        x, y = group[measure].to_numpy(float), group["test_accuracy"].to_numpy(float)
        r = correlation(x, y, method=method)
        ci_low, ci_high = fisher_interval(r, len(x), confidence, method)
        records.append(
            dict(
                zip(["model", "dataset"] + list(LAYER_COLUMNS), key),
                checkpoint=checkpoint,
                measure=measure,
                method=method,
                correlation=r,
                ci_low=ci_low,
                ci_high=ci_high,
                n_networks=len(group),
                n_label_corruption_levels=group["label_corruption"].nunique(),
                n_seeds=group["seed"].nunique(),
            )
        )
    columns = (
        ["model", "dataset"]
        + list(LAYER_COLUMNS)
        + [
            "checkpoint",
            "measure",
            "method",
            "correlation",
            "ci_low",
            "ci_high",
            "n_networks",
            "n_label_corruption_levels",
            "n_seeds",
        ]
    )
    return pd.DataFrame.from_records(records, columns=columns)


def layer_average(
    summary: pd.DataFrame,
    layers: Sequence[str],
    measure: str = "mean_gosi",
    stimulus_set: str = "gratings",
) -> pd.DataFrame:
    """Per network checkpoint, ``measure`` averaged over ``layers`` (all must be present).

    Used for claims about "the lower layers" as a whole. Checkpoints missing one of the
    layers are dropped (and logged). Columns: checkpoint identifiers, ``measure`` (holding
    the layer average) and the metric columns present in ``summary``.
    """
    _check_summary(summary, measure)
    if len(layers) == 0:
        raise ValueError("layers must name at least one layer")
    rows = summary[(summary["stimulus_set"] == stimulus_set) & summary["layer"].isin(list(layers))]
    key = list(CHECKPOINT_COLUMNS)
    metric_columns = [column for column in METRIC_COLUMNS if column in summary.columns]
    grouped = rows.groupby(key, sort=True, dropna=False)
    averaged = grouped.agg(
        **{measure: (measure, "mean")},
        n_layers=("layer", "nunique"),
        **{column: (column, "first") for column in metric_columns},
    ).reset_index()
    complete = averaged["n_layers"] == len(set(layers))
    if not complete.all():
        logger.warning(
            "%d checkpoints lack some of the layers %s and are left out", int((~complete).sum()), list(layers)
        )
    return averaged[complete].drop(columns="n_layers").reset_index(drop=True)


def per_network_means(table: pd.DataFrame, keys: Sequence[str], values: Sequence[str]) -> pd.DataFrame:
    """Average over random draws (and any other repeated rows) within each network first."""
    return (
        table.groupby(list(NETWORK_COLUMNS) + list(keys), dropna=False, sort=True)[list(values)]
        .mean()
        .reset_index()
    )


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
