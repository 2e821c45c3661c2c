"""The tables that pass between rules: one declared schema per kind, and the one way to read them.

Every rule reads its tables with :func:`read_table` (``path``, ``kind``), which stops the job
with a :class:`TableError` naming the file, the column or unit, and what was expected, before
anything is computed from a damaged or misplaced table:

* the file: missing, empty (no header), header without rows, not parseable as CSV;
* columns: every column of the kind present (extra columns are allowed), each of its type
  (text, integer, number, true/false), within its range or set of values, finite, and NaN
  (empty) only where the schema allows it (e.g. a dead unit's preferred orientation);
* rows: one row per key (e.g. per checkpoint x layer x unit x stimulus set), plus the
  kind's own consistency rules (e.g. a unit is dead exactly when its peak response is 0);
* units: in per-unit tables, every layer holds units ``0..n-1`` once each, with ``n`` the
  architecture's count for the trained models and VGG16
  (:func:`selectivity.config.model_layer_units`) and, for a user's network, the same count
  in every checkpoint and stimulus set; every layer of the architecture is present; layer
  tables' ``n_units`` and every ``layer_index`` agree with the architecture;
* identity: a file under a network's folder holds only that network's rows (and a
  per-checkpoint file only that checkpoint's), read from its path
  (:func:`selectivity.identity.identity_from_path`), and the rows agree with ``expected``
  when the caller gives it.

:data:`SCHEMAS` also documents the tables: the "Table columns" section of
docs/architecture.md is generated from it (``python -m selectivity.tables docs/architecture.md``)
and a test checks that it is current.

The checks are hand-written rather than a DataFrame-schema library's (pandera): the column
checks they would replace are a short loop, while what matters most here (units per layer
from the architecture, NaN allowed only for dead units, identity from the path, messages
that name the file, layer and units) would be custom checks in pandera too, and pandera
would add a dependency with several of its own to both environments.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from selectivity.identity import describe_identity, identity_from_path, same_value

#: A network is one (model, dataset, label corruption, seed).
NETWORK_COLUMNS = ("model", "dataset", "label_corruption", "seed")
#: A checkpoint of a network; ``checkpoint`` is "epoch" or "best", ``epoch`` its real epoch.
CHECKPOINT_COLUMNS = NETWORK_COLUMNS + ("checkpoint", "epoch")
#: The ``checkpoint`` value of a given network's only weights (``epoch`` is empty).
PUBLISHED_CHECKPOINT = "published"
#: The ``checkpoint`` value of a user's given network at its constructor's random initialisation.
UNTRAINED_CHECKPOINT = "untrained"

#: Tolerance of range checks, for bounds that hold exactly in arithmetic but are computed in floats.
RANGE_TOLERANCE = 1e-9
#: How many units, lines or layers a message lists before "...".
LISTED = 8


class TableError(ValueError):
    """A table that must not be used: the message names the file, the column or unit, and what was expected."""


@dataclass(frozen=True)
class Where:
    """Rows whose ``column`` equals ``value``, or one of them for a tuple (where a column may be empty)."""

    column: str
    value: Any

    def mask(self, table: pd.DataFrame) -> pd.Series:
        column = table[self.column]
        if isinstance(self.value, bool):
            return _bool_values(column) == self.value
        if isinstance(self.value, tuple):
            return column.isin(self.value)
        return column == self.value

    def __str__(self) -> str:
        if isinstance(self.value, tuple):
            return f"only where {self.column} is {' or '.join(map(str, self.value))}"
        value = str(self.value).lower() if isinstance(self.value, bool) else self.value
        return f"only where {self.column} is {value}"


@dataclass(frozen=True)
class Column:
    """One column: its type (``str``, ``int``, ``float``, ``bool``), range, values and where it may be empty."""

    name: str
    dtype: str
    meaning: str
    low: float | None = None
    high: float | None = None
    interval: str = "[]"  # "[)" etc.: whether low and high are allowed
    values: tuple[str, ...] | None = None
    nan: bool | Where = False
    infinite: bool = False
    #: present only in some tables of the kind (e.g. the indices of the features a run measures);
    #: checked where present
    optional: bool = False

    def nan_text(self) -> str:
        return "allowed" if self.nan is True else ("none" if self.nan is False else str(self.nan))

    def range_text(self) -> str:
        if self.dtype == "bool":
            return "`True`, `False`"
        if self.values is not None:
            return ", ".join(f"`{value}`" for value in self.values)
        if self.low is None and self.high is None:
            return "any" + (" (or infinite)" if self.infinite else "")
        if self.high is None:
            return f"{'>' if self.interval[0] == '(' else '>='} {_number(self.low)}"
        if self.low is None:
            return f"{'<' if self.interval[1] == ')' else '<='} {_number(self.high)}"
        return f"{self.interval[0]}{_number(self.low)}, {_number(self.high)}{self.interval[1]}"


@dataclass(frozen=True)
class TableSchema:
    """What a table of one kind holds (see the module docstring for what is checked)."""

    kind: str
    title: str
    files: tuple[str, ...]
    row: str
    columns: tuple[Column, ...]
    key: tuple[str, ...]
    #: per-unit tables: the columns that identify one complete set of units (all layers x units)
    unit_groups: tuple[str, ...] | None = None
    #: layer tables: the column holding the layer's number of units
    layer_units_column: str | None = None
    #: columns naming layers of the network (besides "layer"), with values allowed besides layers
    other_layer_columns: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    #: the kind's own rules: (description, function giving the mask of rows that break it)
    rules: tuple[tuple[str, Callable[[pd.DataFrame], pd.Series]], ...] = ()
    #: whole-table rules: functions returning a message (without the file name) or None
    table_rules: tuple[Callable[[pd.DataFrame], str | None], ...] = ()
    #: whether ``layer`` names one layer of the model (the claims table names groups of layers)
    layer_is_a_layer: bool = True

    @property
    def column_names(self) -> list[str]:
        return [column.name for column in self.columns]


def _number(value: float) -> str:
    return f"{value:g}"


def _text(name, meaning, values=None, nan=False) -> Column:
    return Column(name, "str", meaning, values=tuple(values) if values is not None else None, nan=nan)


def _integer(name, meaning, low=None, high=None, nan=False) -> Column:
    return Column(name, "int", meaning, low, high, nan=nan)


def _number_column(
    name, meaning, low=None, high=None, interval="[]", nan=False, infinite=False, optional=False
) -> Column:
    return Column(name, "float", meaning, low, high, interval, nan=nan, infinite=infinite, optional=optional)


def _flag(name, meaning) -> Column:
    return Column(name, "bool", meaning)


# Values of the categorical columns (tests/test_tables.py checks them against the code that writes them).
STIMULUS_SETS = ("gratings", "shuffled")
RANKINGS = ("gosi", "class_selectivity")
HALF_ABLATION_CONDITIONS = ("top", "bottom", "random", "matched")
COMPARISONS = ("top_vs_bottom", "top_vs_random", "top_vs_matched")
ORDERINGS = (
    "gosi_descending",
    "gosi_ascending",
    "class_selectivity_descending",
    "class_selectivity_ascending",
    "random",
)
INVARIANCE_CONDITIONS = ("intact", "top", "bottom", "random", "matched")
DIRECTIONS = ("horizontal", "vertical")
CHECKPOINT_KINDS = ("epoch", "best", PUBLISHED_CHECKPOINT, UNTRAINED_CHECKPOINT)
CLAIM_IDS = ("C1", "C2", "C3", "C4", "C5", "C6")
VERDICTS = (
    "supported",
    "supported, not specific",
    "not supported",
    "inconclusive",
    "inconclusive (too few networks)",
    "not applicable",
)
PUBLISHED = Where("checkpoint", PUBLISHED_CHECKPOINT)
#: A given network's checkpoints: no training history (no metrics).
GIVEN_WEIGHTS = Where("checkpoint", (PUBLISHED_CHECKPOINT, UNTRAINED_CHECKPOINT))
DEAD = Where("dead", True)

NETWORK = (
    _text("model", "architecture (config name), `vgg16_imagenet`, or a user network's name"),
    _text(
        "dataset",
        "the dataset trained on (`imagenet` for VGG16; `none` for a user network without test images)",
    ),
    _number_column("label_corruption", "fraction of training labels replaced by random ones", 0, 1),
    _integer("seed", "the network's seed (0 for given weights)", 0),
)
CHECKPOINT = NETWORK + (
    _text(
        "checkpoint",
        "`epoch` (a saved epoch), `best` (lowest validation loss), `published` (given weights) or "
        "`untrained` (a given network's constructor, randomly initialised: epoch 0)",
        CHECKPOINT_KINDS,
    ),
    _integer(
        "epoch",
        "training epoch of the weights (0 = initialisation); empty for given weights",
        0,
        nan=PUBLISHED,
    ),
)
LAYER = (
    _text("layer", "analysed layer (docs/method.md §1)"),
    _integer("layer_index", "position of the layer, shallow to deep, from 0", 0),
)
ACCURACY = {"low": 0, "high": 1}
LOSS = {"low": 0}


def _dead_means_no_response(column: str) -> Callable[[pd.DataFrame], pd.Series]:
    return lambda table: _bool_values(table["dead"]) != (pd.to_numeric(table[column], errors="coerce") == 0)


def _epochs_complete(table: pd.DataFrame) -> str | None:
    """Each network's metrics hold every epoch 0..E (epoch 0 is the initialisation)."""
    for network, rows in table.groupby(list(NETWORK_COLUMNS), sort=False, dropna=False):
        epochs = set(pd.to_numeric(rows["epoch"], errors="coerce").dropna().astype(int))
        missing = sorted(set(range(max(epochs) + 1)) - epochs) if epochs else [0]
        if missing:
            identity = describe_identity(dict(zip(NETWORK_COLUMNS, network)))
            return f"{identity} lacks the metrics of epochs {_listed(missing)} (expected every epoch 0..{max(epochs, default=0)})"
    return None


TUNING = TableSchema(
    kind="tuning",
    title="tuning",
    files=("results/tuning/{net}/tuning.csv", "results/aggregate/tuning.csv"),
    row="one row per checkpoint x unit x stimulus set of every analysed layer (every layer of the architecture for the trained models and VGG16)",
    columns=CHECKPOINT
    + LAYER
    + (
        _integer("unit", "unit (channel of a conv layer, unit of an fc layer), 0..n-1", 0),
        _text(
            "stimulus_set", "`gratings`, or `shuffled` (the null control, docs/method.md §3)", STIMULUS_SETS
        ),
        _number_column("osi", "orientation selectivity index (0 for dead units)", 0, 1),
        _number_column(
            "gosi", "global orientation selectivity index, 1 - circular variance (0 for dead units)", 0, 1
        ),
        _number_column("preferred_orientation_deg", "preferred orientation", 0, 180, "[)", nan=DEAD),
        _integer("preferred_spatial_frequency", "index of the preferred spatial frequency", 0, nan=DEAD),
        _number_column(
            "preferred_period_px", "period of the preferred spatial frequency", 0, None, "(]", nan=DEAD
        ),
        _number_column(
            "peak_response", "largest grating response (phase maximum, preferred frequency)", **LOSS
        ),
        _flag("dead", "never responds to any grating"),
        _number_column(
            "orientation_consistency",
            "agreement of the preferred orientation across frequencies",
            0,
            1,
            nan=DEAD,
        ),
        _number_column(
            "spatial_frequency_selectivity",
            "sparseness of the SF curve at the preferred orientation (tuning.features spatial_frequency)",
            0,
            1,
            optional=True,
        ),
        _number_column(
            "colour_selectivity",
            "best isoluminant vs achromatic response (tuning.features colour; empty for units silent on the colour set)",
            -1,
            1,
            nan=True,
            optional=True,
        ),
        Column(
            "preferred_colour",
            "str",
            "colour direction of the largest response",
            values=("achromatic", "red_green", "blue_yellow"),
            nan=True,
            optional=True,
        ),
        _number_column(
            "phase_modulation",
            "F1/F0 over phase at the preferred grating's centre (tuning.features phase; empty where F0 is 0)",
            0,
            2,
            nan=True,
            optional=True,
        ),
    ),
    key=CHECKPOINT_COLUMNS + ("layer", "unit", "stimulus_set"),
    unit_groups=CHECKPOINT_COLUMNS + ("stimulus_set",),
    rules=(("a unit is dead exactly when its peak_response is 0", _dead_means_no_response("peak_response")),),
)

CLASS_SELECTIVITY = TableSchema(
    kind="class_selectivity",
    title="class selectivity",
    files=("results/causal/{net}/class_selectivity.csv", "results/aggregate/class_selectivity.csv"),
    row="one row per unit of every analysed layer, on the causal checkpoint",
    columns=CHECKPOINT
    + LAYER
    + (
        _integer("unit", "unit, 0..n-1", 0),
        _number_column("class_selectivity_index", "Morcos et al.'s index (0 for dead units)", 0, 1),
        _integer("preferred_class", "class with the largest mean response", 0),
        _number_column("mean_activation", "mean response over the test images", **LOSS),
        _flag("dead", "never responds to any test image"),
    ),
    key=CHECKPOINT_COLUMNS + ("layer", "unit"),
    unit_groups=CHECKPOINT_COLUMNS,
    rules=(
        ("a unit is dead exactly when its mean_activation is 0", _dead_means_no_response("mean_activation")),
    ),
)

METRICS = TableSchema(
    kind="metrics",
    title="metrics",
    files=("results/networks/{net}/metrics.csv", "results/aggregate/training_metrics.csv"),
    row="one row per network x epoch; epoch 0 is the initialisation; accuracies are fractions",
    columns=NETWORK
    + (
        _integer("epoch", "training epoch (0 = initialisation)", 0),
        _number_column(
            "train_loss", "loss on the training split, on the labels trained with (corrupted)", **LOSS
        ),
        _number_column("train_accuracy", "accuracy on the training split, labels trained with", **ACCURACY),
        _number_column("train_loss_true_labels", "loss on the training split, true labels", **LOSS),
        _number_column(
            "train_accuracy_true_labels", "accuracy on the training split, true labels", **ACCURACY
        ),
        _number_column("validation_loss", "loss on the validation split", **LOSS),
        _number_column("validation_accuracy", "accuracy on the validation split", **ACCURACY),
        _number_column("test_loss", "loss on the test set", **LOSS),
        _number_column("test_accuracy", "accuracy on the test set", **ACCURACY),
        _number_column("epoch_seconds", "training time of the epoch (0 for epoch 0)", **LOSS),
    ),
    key=NETWORK_COLUMNS + ("epoch",),
    table_rules=(_epochs_complete,),
)

HALF_ABLATION = TableSchema(
    kind="half_ablation",
    title="half ablation",
    files=(
        "results/causal/{net}/half_ablation.csv",
        "results/aggregate/half_ablation.csv",
    ),
    row="one row per ablated layer x ranking x condition x draw",
    columns=CHECKPOINT
    + LAYER
    + (
        _text("ranking", "the score units are ranked by", RANKINGS),
        _text(
            "condition",
            "which units are ablated (`matched` for the gOSI ranking only)",
            HALF_ABLATION_CONDITIONS,
        ),
        _integer("draw", "random or matched draw (0 for top and bottom)", 0),
        _integer("n_units", "units of the layer", 1),
        _integer("n_ablated", "units ablated", 0),
        _number_column("intact_loss", "mean test loss of the intact network", **LOSS),
        _number_column("intact_accuracy", "test accuracy of the intact network", **ACCURACY),
        _number_column("loss_increase_mean", "mean over test images of the loss increase"),
        _number_column("loss_increase_sem", "its standard error", **LOSS),
        _number_column("accuracy", "test accuracy after the ablation", **ACCURACY),
        _number_column("accuracy_change", "accuracy minus intact accuracy", -1, 1),
        _integer("n_images", "test images", 1),
    ),
    key=CHECKPOINT_COLUMNS + ("layer", "ranking", "condition", "draw"),
    layer_units_column="n_units",
    rules=(("n_ablated is at most n_units", lambda table: table["n_ablated"] > table["n_units"]),),
)

HALF_ABLATION_COMPARISONS = TableSchema(
    kind="half_ablation_comparisons",
    title="half ablation comparisons",
    files=(
        "results/causal/{net}/half_ablation_comparisons.csv",
        "results/aggregate/half_ablation_comparisons.csv",
    ),
    row="one row per ablated layer x ranking x comparison, paired over test images",
    columns=CHECKPOINT
    + LAYER
    + (
        _text("ranking", "the score units are ranked by", RANKINGS),
        _text("comparison", "top against which control", COMPARISONS),
        _number_column("mean_difference", "mean paired loss-increase difference"),
        _number_column("sem", "its standard error", **LOSS),
        _number_column(
            "t_statistic", "paired t statistic (undefined for constant differences)", nan=True, infinite=True
        ),
        _number_column("t_p_value", "its two-sided p-value", 0, 1, nan=True),
        _number_column("wilcoxon_p_value", "Wilcoxon signed-rank p-value", 0, 1, nan=True),
        _integer("n_images", "test images", 1),
    ),
    key=CHECKPOINT_COLUMNS + ("layer", "ranking", "comparison"),
)

CUMULATIVE_ABLATION = TableSchema(
    kind="cumulative_ablation",
    title="cumulative ablation",
    files=("results/causal/{net}/cumulative_ablation.csv", "results/aggregate/cumulative_ablation.csv"),
    row="one row per ablated layer x ordering x draw x fraction ablated",
    columns=CHECKPOINT
    + LAYER
    + (
        _text("ordering", "the order units are ablated in", ORDERINGS),
        _integer("draw", "random draw (0 for the score orders)", 0),
        _number_column("fraction_ablated", "nominal fraction of the layer's units ablated", 0, 1),
        _integer("n_ablated", "units ablated", 0),
        _number_column("test_loss", "mean test loss", **LOSS),
        _number_column("test_accuracy", "test accuracy", **ACCURACY),
    ),
    key=CHECKPOINT_COLUMNS + ("layer", "ordering", "draw", "fraction_ablated"),
)

CUMULATIVE_ABLATION_AUC = TableSchema(
    kind="cumulative_ablation_auc",
    title="cumulative ablation areas",
    files=(
        "results/causal/{net}/cumulative_ablation_auc.csv",
        "results/aggregate/cumulative_ablation_auc.csv",
    ),
    row="one row per ablated layer x ordering x draw",
    columns=CHECKPOINT
    + LAYER
    + (
        _text("ordering", "the order units are ablated in", ORDERINGS),
        _integer("draw", "random draw (0 for the score orders)", 0),
        _number_column(
            "auc_accuracy", "area under the accuracy curve (trapezoids over fraction_ablated)", **ACCURACY
        ),
        _number_column("auc_loss", "area under the loss curve", **LOSS),
    ),
    key=CHECKPOINT_COLUMNS + ("layer", "ordering", "draw"),
)

SHIFT_INVARIANCE = TableSchema(
    kind="shift_invariance",
    title="shift invariance",
    files=(
        "results/causal/{net}/shift_invariance.csv",
        "results/aggregate/shift_invariance.csv",
    ),
    row="one row per measured layer x ablated layer x condition x draw x direction x shift",
    columns=CHECKPOINT
    + (
        _text("measured_layer", "higher layer whose representation is compared"),
        _text("ablated_layer", "lower layer ablated (`none` when intact)"),
        _text("condition", "which units are ablated", INVARIANCE_CONDITIONS),
        _integer("draw", "random or matched draw (0 otherwise)", 0),
        _text("direction", "direction of the shift", DIRECTIONS),
        _integer("shift_px", "shift in pixels", 0),
        _number_column("shift_correlation_mean", "mean correlation of image and shifted image", -1, 1),
        _number_column("shift_correlation_sem", "its standard error", **LOSS),
        _number_column("other_correlation_mean", "mean correlation of unrelated images", -1, 1),
        _number_column(
            "normalised_invariance_mean",
            "(r_shift - r_other) / (1 - r_other), mean over images",
            None,
            1,
            nan=Where("other_correlation_mean", 1.0),
        ),
        _number_column(
            "normalised_invariance_sem",
            "its standard error",
            **LOSS,
            nan=Where("other_correlation_mean", 1.0),
        ),
        _integer("n_images", "test images", 1),
    ),
    key=CHECKPOINT_COLUMNS
    + ("measured_layer", "ablated_layer", "condition", "draw", "direction", "shift_px"),
    other_layer_columns={"measured_layer": (), "ablated_layer": ("none",)},
)

FEATURE_RANKINGS = (
    "spatial_frequency_selectivity",
    "colour_selectivity",
    "phase_modulation",
)
RANKED_FEATURE_NAMES = ("spatial_frequency", "colour", "phase")
_FEATURE = _text("feature", "the low-level feature whose index ranks the units", RANKED_FEATURE_NAMES)
_OVERLAP = _number_column(
    "overlap_with_top",
    "share of the ablated units that are also in the top set (empty when intact)",
    0,
    1,
    nan=True,
)


def _columns_replaced(columns: tuple[Column, ...], replacements: Mapping[str, Column]) -> tuple[Column, ...]:
    return tuple(replacements.get(column.name, column) for column in columns)


FEATURE_HALF_ABLATION = TableSchema(
    kind="feature_half_ablation",
    title="half ablation by feature",
    files=("results/causal/{net}/half_ablation_{feature}.csv", "results/aggregate/feature_half_ablation.csv"),
    row="one row per ablated layer x feature x condition x draw",
    columns=CHECKPOINT
    + LAYER
    + (_FEATURE,)
    + _columns_replaced(
        HALF_ABLATION.columns[len(CHECKPOINT) + len(LAYER) :],
        {
            "ranking": _text("ranking", "the feature's index column", FEATURE_RANKINGS),
            "condition": _text("condition", "which units are ablated", HALF_ABLATION_CONDITIONS),
        },
    )
    + (_integer("n_undefined", "units whose index is undefined (ranked lowest)", 0), _OVERLAP),
    key=CHECKPOINT_COLUMNS + ("layer", "feature", "condition", "draw"),
    layer_units_column="n_units",
    rules=HALF_ABLATION.rules,
)

FEATURE_HALF_ABLATION_COMPARISONS = TableSchema(
    kind="feature_half_ablation_comparisons",
    title="half ablation comparisons by feature",
    files=(
        "results/causal/{net}/half_ablation_comparisons_{feature}.csv",
        "results/aggregate/feature_half_ablation_comparisons.csv",
    ),
    row="one row per ablated layer x feature x comparison",
    columns=CHECKPOINT
    + LAYER
    + (_FEATURE,)
    + _columns_replaced(
        HALF_ABLATION_COMPARISONS.columns[len(CHECKPOINT) + len(LAYER) :],
        {"ranking": _text("ranking", "the feature's index column", FEATURE_RANKINGS)},
    ),
    key=CHECKPOINT_COLUMNS + ("layer", "feature", "comparison"),
)

FEATURE_SHIFT_INVARIANCE = TableSchema(
    kind="feature_shift_invariance",
    title="shift invariance by feature",
    files=(
        "results/causal/{net}/shift_invariance_{feature}.csv",
        "results/aggregate/feature_shift_invariance.csv",
    ),
    row="one row per feature x measured layer x ablated layer x condition x draw x direction x shift",
    columns=CHECKPOINT + (_FEATURE,) + SHIFT_INVARIANCE.columns[len(CHECKPOINT) :] + (_OVERLAP,),
    key=CHECKPOINT_COLUMNS
    + ("feature", "measured_layer", "ablated_layer", "condition", "draw", "direction", "shift_px"),
    other_layer_columns=SHIFT_INVARIANCE.other_layer_columns,
)

_METRIC_MEANINGS = {
    "test_accuracy": ACCURACY,
    "test_loss": LOSS,
    "validation_accuracy": ACCURACY,
    "validation_loss": LOSS,
    "train_accuracy": ACCURACY,
    "train_accuracy_true_labels": ACCURACY,
}

SELECTIVITY_SUMMARY = TableSchema(
    kind="selectivity_summary",
    title="selectivity summary",
    files=("results/aggregate/selectivity_summary.csv",),
    row="one row per checkpoint x layer x stimulus set, with that epoch's metrics",
    columns=CHECKPOINT
    + LAYER
    + (
        _text("stimulus_set", "`gratings` or `shuffled`", STIMULUS_SETS),
        _integer("n_units", "units of the layer", 1),
        _number_column("mean_gosi", "mean gOSI, dead units as 0 (the author's)", 0, 1),
        _number_column("median_gosi", "median gOSI", 0, 1),
        _number_column("mean_osi", "mean OSI", 0, 1),
        _number_column("median_osi", "median OSI", 0, 1),
        _number_column("fraction_selective", "fraction of units with gOSI above the threshold", 0, 1),
        _number_column("fraction_dead", "fraction of dead units", 0, 1),
        _integer("n_dead", "dead units", 0),
        _number_column(
            "mean_gosi_responsive",
            "mean gOSI of the units that are not dead",
            0,
            1,
            nan=Where("fraction_dead", 1.0),
        ),
        _number_column("mean_peak_response", "mean of the units' largest grating responses", **LOSS),
        _number_column("selectivity_threshold", "the gOSI threshold of `selective`", 0, 1, "[)"),
    )
    + tuple(
        _number_column(
            name, f"{name.replace('_', ' ')} of the checkpoint's epoch (metrics)", **bounds, nan=GIVEN_WEIGHTS
        )
        for name, bounds in _METRIC_MEANINGS.items()
    ),
    key=CHECKPOINT_COLUMNS + ("layer", "stimulus_set"),
    layer_units_column="n_units",
    rules=(("n_dead is at most n_units", lambda table: table["n_dead"] > table["n_units"]),),
)

FEATURE_SUMMARY = TableSchema(
    kind="feature_summary",
    title="feature summary",
    files=("results/aggregate/feature_summary.csv",),
    row="one row per checkpoint x layer x stimulus set x low-level feature measured (orientation included), with that epoch's metrics",
    columns=CHECKPOINT
    + LAYER
    + (
        _text("stimulus_set", "`gratings` or `shuffled`", STIMULUS_SETS),
        _text("feature", "the low-level feature", ("orientation",) + RANKED_FEATURE_NAMES),
        _text("index", "the feature's index column", ("gosi",) + FEATURE_RANKINGS),
        _number_column("threshold", "the feature's threshold for selective (tuning)"),
        _integer("n_units", "units of the layer", 1),
        _integer("n_measured", "units whose index is defined", 0),
        _number_column("mean_index", "mean index over the units (undefined ones excluded)", nan=True),
        _number_column("median_index", "median index", nan=True),
        _number_column("mean_index_measured", "mean index of the units with a defined index", nan=True),
        _number_column("fraction_selective", "fraction of units with the index above the threshold", 0, 1),
        _number_column(
            "fraction_below_threshold", "fraction of units with the index below the threshold", 0, 1
        ),
        _number_column("mean_peak_response", "mean of the units' largest grating responses", **LOSS),
    )
    + tuple(
        _number_column(
            name, f"{name.replace('_', ' ')} of the checkpoint's epoch (metrics)", **bounds, nan=GIVEN_WEIGHTS
        )
        for name, bounds in _METRIC_MEANINGS.items()
    ),
    key=CHECKPOINT_COLUMNS + ("layer", "stimulus_set", "feature"),
    layer_units_column="n_units",
    rules=(("n_measured is at most n_units", lambda table: table["n_measured"] > table["n_units"]),),
)

CLAIMS = TableSchema(
    kind="claims",
    title="claims",
    files=("results/claims.csv",),
    row="one row per model x dataset x claim x test; `headline` is true for the row whose verdict is the claim's",
    columns=(
        _text("model", "architecture"),
        _text("dataset", "dataset"),
        _text("claim", "claim of docs/method.md §6", CLAIM_IDS + ("CF", "C7")),
        _text(
            "feature",
            "the low-level feature the claim is about (`orientation` for C1-C6; `all` for CF's pairwise rows; "
            "the regularised feature for C7)",
        ),
        _text("test", "the test"),
        _text("layer", "the layers tested: a layer, or a group (`lower`, `higher`, `pooled`, ...)"),
        _flag("headline", "this row's verdict is the claim's"),
        _text("statement", "the claim in words"),
        _text("statistic", "what the effect size is"),
        _number_column("effect_size", "the estimate (empty when not tested)", nan=True),
        _number_column("ci_low", "lower end of its interval", nan=True, infinite=True),
        _number_column("ci_high", "upper end of its interval", nan=True, infinite=True),
        _number_column("p_value", "p-value of the verdict's test", 0, 1, nan=True),
        _integer("n_networks", "networks in the test", 0),
        _integer("n_seeds", "seeds in the test", 0),
        _text("verdict", "the verdict", VERDICTS),
        _text("rule", "the verdict rule in words"),
        _number_column("ci_coverage", "joint coverage of the interval's bounds", 0, 1, nan=True),
        _number_column("mean", "mean over networks (descriptive; does not decide)", nan=True),
        _number_column("mean_ci_low", "lower end of the mean's t interval", nan=True, infinite=True),
        _number_column("mean_ci_high", "upper end of the mean's t interval", nan=True, infinite=True),
        _number_column(
            "detectable_effect",
            "effect the test detects with 80% power with these networks",
            nan=True,
            infinite=True,
        ),
        _number_column(
            "networks_needed",
            "networks that would decide the observed effect with 80% power",
            0,
            nan=True,
            infinite=True,
        ),
        _number_column("n_levels", "label-corruption levels in the test", 0, nan=True),
        _text("power_note", "why a power column is empty, or how it was computed", nan=True),
        _text(
            "control",
            "what the row is: `none` (a test of the claim), `specificity` or `comparison`",
            ("none", "specificity", "comparison"),
        ),
        _number_column(
            "null_value",
            "the value the test's null hypothesis puts the effect at (0, or C6's margin)",
            nan=True,
        ),
        _text(
            "claimed_side", "which side of the null the claim puts the effect (`above`, `below`)", nan=True
        ),
        _text("unit", "unit of the effect", nan=True),
        _text(
            "reading", "the row in words, and why its interval and verdict disagree where they can", nan=True
        ),
    ),
    key=("model", "dataset", "claim", "feature", "test", "layer"),
    layer_is_a_layer=False,
)

DEPTH_PROFILES = TableSchema(
    kind="depth_profiles",
    title="depth profiles",
    files=("results/aggregate/depth_profiles.csv",),
    row="one row per model x dataset x claim x feature x layer, at the layer's relative depth (docs/method.md §6.5)",
    columns=(
        _text("model", "architecture"),
        _text("dataset", "dataset"),
        _text("claim", "claim", CLAIM_IDS),
        _text("feature", "the low-level feature (`orientation` for the paper's claims)"),
        _text("quantity", "what `estimate` is"),
    )
    + LAYER
    + (
        _number_column("relative_depth", "layer index / (analysed layers - 1)", 0, 1),
        _number_column("estimate", "the claim's per-layer statistic", nan=True),
        _number_column("ci_low", "lower end of its interval", nan=True, infinite=True),
        _number_column("ci_high", "upper end of its interval", nan=True, infinite=True),
        _integer("n_networks", "networks", 0),
        _number_column("confidence", "level of the interval", 0, 1, "()"),
        _text("unit", "unit of the estimate", nan=True),
    ),
    key=("model", "dataset", "claim", "feature", "layer"),
)

SCHEMAS: dict[str, TableSchema] = {
    schema.kind: schema
    for schema in (
        METRICS,
        TUNING,
        CLASS_SELECTIVITY,
        HALF_ABLATION,
        HALF_ABLATION_COMPARISONS,
        CUMULATIVE_ABLATION,
        CUMULATIVE_ABLATION_AUC,
        SHIFT_INVARIANCE,
        FEATURE_HALF_ABLATION,
        FEATURE_HALF_ABLATION_COMPARISONS,
        FEATURE_SHIFT_INVARIANCE,
        SELECTIVITY_SUMMARY,
        FEATURE_SUMMARY,
        CLAIMS,
        DEPTH_PROFILES,
    )
}
#: The kind of each table collect_table combines (its ``table`` wildcard).
COLLECTED_KINDS = {
    "tuning": "tuning",
    "training_metrics": "metrics",
    "class_selectivity": "class_selectivity",
    "half_ablation": "half_ablation",
    "half_ablation_comparisons": "half_ablation_comparisons",
    "cumulative_ablation": "cumulative_ablation",
    "cumulative_ablation_auc": "cumulative_ablation_auc",
    "shift_invariance": "shift_invariance",
    "feature_half_ablation": "feature_half_ablation",
    "feature_half_ablation_comparisons": "feature_half_ablation_comparisons",
    "feature_shift_invariance": "feature_shift_invariance",
}


# ------------------------------------------------------------------------------ reading


def read_table(path: str | os.PathLike, kind: str, expected: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Read a CSV table of ``kind`` (a key of :data:`SCHEMAS`) and check it (module docstring).

    ``expected``: identifier values every row must have (e.g.
    :func:`selectivity.identity.checkpoint_identity` of the job's network and checkpoint;
    None values match anything). Raises :class:`TableError` naming the file.
    """
    schema_of(kind)  # an unknown kind fails before the file is read
    try:
        table = pd.read_csv(path)
    except FileNotFoundError:
        raise TableError(f"{path} does not exist (a {kind} table was expected)") from None
    except pd.errors.EmptyDataError:
        raise TableError(f"{path} is empty (no header): a {kind} table was expected") from None
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as error:
        raise TableError(f"{path} cannot be read as a CSV {kind} table: {error}") from None
    validate_table(table, kind, str(path), expected)
    from_path = identity_from_path(path)
    if from_path:
        _check_identity(table, from_path, str(path), "its path names")
    return table


def schema_of(kind: str) -> TableSchema:
    if kind not in SCHEMAS:
        raise ValueError(f"unknown table kind {kind!r}; kinds are {sorted(SCHEMAS)}")
    return SCHEMAS[kind]


def validate_table(
    table: pd.DataFrame, kind: str, source: str = "table", expected: Mapping[str, Any] | None = None
) -> None:
    """Check a table of ``kind`` already in memory; ``source`` names it in messages."""
    schema = schema_of(kind)
    if table.empty:
        raise TableError(f"{source} has no rows (header only): a {kind} table needs {schema.row}")
    missing = [
        column.name for column in schema.columns if not column.optional and column.name not in table.columns
    ]
    if missing:
        raise TableError(
            f"{source} lacks column{'s' if len(missing) > 1 else ''} {', '.join(missing)} "
            f"(a {kind} table has {', '.join(schema.column_names)})"
        )
    for column in schema.columns:
        if column.name in table.columns:
            _check_column(table, column, source)
    _check_key(table, schema, source)
    for description, rule in schema.rules:
        broken = rule(table).fillna(False).astype(bool)
        if broken.any():
            raise TableError(
                f"{source}: the rule '{description}' is broken in {_rows(int(broken.sum()))} {_where(table, broken)}"
            )
    for rule in schema.table_rules:
        message = rule(table)
        if message:
            raise TableError(f"{source}: {message}")
    if expected:
        _check_identity(table, expected, source, "this job expects")
    _check_layers(table, schema, source)
    if schema.unit_groups is not None:
        _check_units(table, schema, source)
    if schema.layer_units_column is not None:
        _check_layer_units(table, schema, source)


def concatenate_tables(paths: Iterable[str | os.PathLike], kind: str) -> pd.DataFrame:
    """One tidy table from many files of one kind, each read with :func:`read_table`.

    The files must have the same columns, and no row key may appear in two files (the
    same network's table twice, say): the message names both files.
    """
    paths = [str(path) for path in paths]
    if not paths:
        raise ValueError("no tables to concatenate")
    tables = [read_table(path, kind) for path in paths]
    columns = list(tables[0].columns)
    for path, table in zip(paths, tables):
        if list(table.columns) != columns:
            raise TableError(f"{path} has columns {list(table.columns)}, but {paths[0]} has {columns}")
    combined = pd.concat(tables, ignore_index=True)
    key = list(schema_of(kind).key)
    repeated = combined.duplicated(key, keep=False)
    if repeated.any():
        origin = np.repeat(np.arange(len(paths)), [len(table) for table in tables])
        files = sorted({paths[i] for i in origin[repeated.to_numpy()]})
        first = combined[repeated].iloc[0]
        raise TableError(
            f"rows of {describe_identity(first.to_dict())} appear in more than one file: {', '.join(files[:LISTED])} "
            "(a table copied into another network's folder?)"
        )
    return combined


# ------------------------------------------------------------------------------ checks


def _bool_values(column: pd.Series) -> pd.Series:
    """True / False / NaN from a bool column, 0/1 numbers or 'True'/'False' text (others: NaN)."""
    if column.dtype == bool:
        return column
    text = column.astype(str).str.strip().str.lower()
    mapped = text.map({"true": True, "false": False, "1": True, "0": False, "1.0": True, "0.0": False})
    return mapped.where(column.notna())


def _allowed_nan(table: pd.DataFrame, column: Column) -> pd.Series:
    if column.nan is True:
        return pd.Series(True, index=table.index)
    if column.nan is False:
        return pd.Series(False, index=table.index)
    if column.nan.column not in table.columns:
        return pd.Series(False, index=table.index)
    return column.nan.mask(table).fillna(False).astype(bool)


def _check_column(table: pd.DataFrame, column: Column, source: str) -> None:
    values = table[column.name]
    empty = values.isna()
    bad_nan = empty & ~_allowed_nan(table, column)
    if bad_nan.any():
        count = int(bad_nan.sum())
        raise TableError(
            f"{source}: column {column.name} has {_percent(count, len(table))} NaN ({count} of {len(table)} rows; "
            f"allowed: {column.nan_text()}) {_where(table, bad_nan)}"
        )
    present = ~empty
    if column.dtype == "str":
        if column.values is not None:
            outside = present & ~values.astype(str).isin(column.values)
            if outside.any():
                raise TableError(
                    f"{source}: column {column.name} has the value {_shown(values[outside].iloc[0])} "
                    f"(allowed: {', '.join(column.values)}) {_where(table, outside)}"
                )
        return
    if column.dtype == "bool":
        flags = _bool_values(values)
        wrong = present & flags.isna()
        if wrong.any():
            raise TableError(
                f"{source}: column {column.name} must be true or false, found {_shown(values[wrong].iloc[0])} "
                f"{_where(table, wrong)}"
            )
        return
    if values.dtype == bool:
        raise TableError(f"{source}: column {column.name} must hold numbers, found true/false values")
    numbers = pd.to_numeric(values, errors="coerce")
    wrong = present & numbers.isna()
    if wrong.any():
        raise TableError(
            f"{source}: column {column.name} must hold numbers, found {_shown(values[wrong].iloc[0])} {_where(table, wrong)}"
        )
    infinite = present & np.isinf(numbers)
    if infinite.any() and not column.infinite:
        raise TableError(
            f"{source}: column {column.name} has infinite values (allowed: finite only) {_where(table, infinite)}"
        )
    finite = present & ~np.isinf(numbers)
    if column.dtype == "int":
        fractional = finite & (numbers != np.floor(numbers))
        if fractional.any():
            raise TableError(
                f"{source}: column {column.name} must hold whole numbers, found {_shown(values[fractional].iloc[0])} "
                f"{_where(table, fractional)}"
            )
    outside = pd.Series(False, index=table.index)
    if column.low is not None:
        low = column.low - RANGE_TOLERANCE
        outside |= finite & ((numbers <= column.low) if column.interval[0] == "(" else (numbers < low))
    if column.high is not None:
        high = column.high + RANGE_TOLERANCE
        outside |= finite & ((numbers >= column.high) if column.interval[1] == ")" else (numbers > high))
    if outside.any():
        raise TableError(
            f"{source}: column {column.name} has {_shown(values[outside].iloc[0])}, outside {column.range_text()}, "
            f"in {_rows(int(outside.sum()))} {_where(table, outside)}"
        )


def _check_key(table: pd.DataFrame, schema: TableSchema, source: str) -> None:
    repeated = table.duplicated(list(schema.key), keep=False)
    if repeated.any():
        first = table[repeated].iloc[0]
        key = ", ".join(
            f"{column} {_plain(first[column])}" for column in schema.key if column not in NETWORK_COLUMNS
        )
        raise TableError(
            f"{source}: {_rows(int(repeated.sum()))} repeat a key (one row per {', '.join(schema.key)} expected), "
            f"e.g. {key} {_where(table, repeated)}"
        )


def _check_identity(table: pd.DataFrame, expected: Mapping[str, Any], source: str, origin: str) -> None:
    keys = [key for key, value in expected.items() if value is not None and key in table.columns]
    for key in keys:
        uniques = table[key].unique()
        wrong_values = [value for value in uniques if not same_value(key, value, expected[key])]
        if wrong_values:
            wrong = table[key].isin(wrong_values)
            first = table[wrong].iloc[0]
            held = {
                name: first[name]
                for name in ("model", "dataset", "label_corruption", "seed", "checkpoint", "epoch")
                if name in table.columns
            }
            raise TableError(
                f"{source} holds rows of {describe_identity(held)}, but {origin} {describe_identity(expected)} "
                f"({int(wrong.sum())} of {len(table)} rows differ in {key}): the table of another network or "
                "checkpoint (copied or moved?)"
            )


def architecture_units(model: str) -> dict[str, int] | None:
    """Layer -> units of a model the package knows (trained models, VGG16); None for a user's network."""
    from selectivity.config import ConfigError, model_layer_units

    try:
        return model_layer_units(str(model))
    except ConfigError:
        return None


def _check_layers(table: pd.DataFrame, schema: TableSchema, source: str) -> None:
    """Layer names are the architecture's, and each layer has one layer_index (its position)."""
    if "model" not in table.columns:
        return
    layer_columns = {"layer": ()} if "layer" in table.columns and schema.layer_is_a_layer else {}
    layer_columns.update(schema.other_layer_columns)
    for model, rows in table.groupby("model", sort=False):
        units = architecture_units(model)
        for column, extra in layer_columns.items():
            names = set(rows[column].astype(str).unique()) - set(extra)
            if units is not None:
                unknown = sorted(names - set(units))
                if unknown:
                    wrong = (table["model"] == model) & table[column].astype(str).isin(unknown)
                    raise TableError(
                        f"{source}: column {column} names {', '.join(unknown[:LISTED])}, not a layer of {model} "
                        f"(its layers: {', '.join(units)}) {_where(table, wrong)}"
                    )
        if "layer" in table.columns and "layer_index" in table.columns:
            pairs = rows[["layer", "layer_index"]].drop_duplicates()
            if units is not None:
                positions = {layer: index for index, layer in enumerate(units)}
                wrong_index = pairs["layer_index"] != pairs["layer"].map(positions)
            else:
                wrong_index = pairs.duplicated("layer", keep=False)
            if wrong_index.any():
                layer = pairs[wrong_index].iloc[0]["layer"]
                indices = sorted(set(pairs.loc[pairs["layer"] == layer, "layer_index"]))
                wanted = f"{positions[layer]}, its position in {model}" if units is not None else "one index"
                raise TableError(
                    f"{source}: layer {layer} of {model} has layer_index {indices} (expected {wanted})"
                )


def _check_units(table: pd.DataFrame, schema: TableSchema, source: str) -> None:
    """Every layer of every unit group holds units 0..n-1 once each, n as the architecture says."""
    groups = list(schema.unit_groups)
    counts = (
        table.groupby(groups + ["layer"], dropna=False, sort=False)["unit"]
        .agg(n="size", low="min", high="max")
        .reset_index()
    )
    for model, rows in counts.groupby("model", sort=False):
        units = architecture_units(model)
        if units is not None:
            expected = rows["layer"].map(units)
            reason = f"{model}'s {{layer}} has {{n}} units"
            all_layers = list(units)
        else:
            expected = rows.groupby("layer")["n"].transform("max")
            reason = "{n} units in its other checkpoints or stimulus sets"
            all_layers = list(dict.fromkeys(rows["layer"]))
        wrong = (rows["n"] != expected) | (rows["low"] != 0) | (rows["high"] != expected - 1)
        if wrong.any():
            first = rows[wrong].iloc[0]
            n = int(expected[wrong].iloc[0])
            present = set(_rows_matching(table, first[groups + ["layer"]].to_dict())["unit"].astype(int))
            missing = sorted(set(range(n)) - present)
            beyond = sorted(present - set(range(n)))
            detail = []
            if missing:
                detail.append(f"units {_listed(missing)} missing")
            if beyond:
                detail.append(f"units {_listed(beyond)} beyond 0..{n - 1}")
            raise TableError(
                f"{source}: layer {first['layer']} has {int(first['n'])} unit rows at {_context(first)}, expected "
                f"units 0..{n - 1} ({reason.format(layer=first['layer'], n=n)}): {'; '.join(detail)}"
            )
        present_layers = rows.groupby(groups, dropna=False, sort=False)["layer"].agg(lambda names: set(names))
        for group, names in present_layers.items():
            absent = [layer for layer in all_layers if layer not in names]
            if absent:
                context = _context(
                    pd.Series(dict(zip(groups, group if isinstance(group, tuple) else (group,))))
                )
                raise TableError(
                    f"{source}: lacks layer{'s' if len(absent) > 1 else ''} {', '.join(absent[:LISTED])} at {context} "
                    f"(expected every layer of {model}: {', '.join(all_layers)})"
                )


def _check_layer_units(table: pd.DataFrame, schema: TableSchema, source: str) -> None:
    column = schema.layer_units_column
    for model, rows in table.groupby("model", sort=False):
        units = architecture_units(model)
        if units is not None:
            wrong = rows[column] != rows["layer"].map(units)
        else:
            wrong = rows.groupby("layer")[column].transform("nunique") > 1
        if wrong.any():
            first = rows[wrong].iloc[0]
            wanted = units[first["layer"]] if units is not None else "one count per layer"
            raise TableError(
                f"{source}: column {column} is {_plain(first[column])} for layer {first['layer']} of {model} "
                f"(expected {wanted}) {_where(table, table.index.isin(rows[wrong].index))}"
            )


# ------------------------------------------------------------------------------ messages


def _rows_matching(table: pd.DataFrame, values: Mapping[str, Any]) -> pd.DataFrame:
    mask = pd.Series(True, index=table.index)
    for column, value in values.items():
        mask &= table[column].isna() if pd.isna(value) else table[column] == value
    return table[mask]


def _plain(value: Any) -> Any:
    if isinstance(value, (float, np.floating)) and float(value).is_integer():
        return int(value)
    if isinstance(value, np.generic):
        return value.item()
    return value


def _shown(value: Any) -> str:
    """A value as a message shows it: 1.5, 180, 'high'."""
    return repr(_plain(value))


def _rows(count: int) -> str:
    return f"{count} row{'s' if count != 1 else ''}"


def _listed(values: Sequence[Any]) -> str:
    shown = ", ".join(str(_plain(value)) for value in values[:LISTED])
    return shown + (", ..." if len(values) > LISTED else "")


def _percent(count: int, total: int) -> str:
    share = 100 * count / total
    return f"{share:.0f}%" if share >= 1 else f"{share:.2g}%"


def _context(row: pd.Series) -> str:
    """Which network, checkpoint and stimulus set a row is of, as far as it says."""
    identity = {
        name: (None if pd.isna(row[name]) else row[name])
        for name in ("model", "dataset", "label_corruption", "seed", "checkpoint", "epoch")
        if name in row.index
    }
    text = describe_identity(identity)
    if "stimulus_set" in row.index:
        text += f", {row['stimulus_set']}"
    return text


def _where(table: pd.DataFrame, mask: pd.Series | np.ndarray) -> str:
    """Where the rows of ``mask`` are: layers and units, or CSV lines; plus the first row's network."""
    rows = table[np.asarray(mask, dtype=bool)]
    if rows.empty:
        return ""
    if "layer" in rows.columns and "unit" in rows.columns:
        parts = []
        for layer, group in rows.groupby("layer", sort=False, dropna=False):
            units = list(dict.fromkeys(group["unit"].tolist()))
            parts.append(f"layer {layer} unit{'s' if len(units) > 1 else ''} {_listed(units)}")
        text = "at " + "; ".join(parts[:3]) + ("; ..." if len(parts) > 3 else "")
    else:
        lines = [int(index) + 2 for index in rows.index[: LISTED + 1]]  # the header is line 1
        text = f"on line{'s' if len(rows) > 1 else ''} {_listed(lines)}"
    if any(name in rows.columns for name in ("model", "checkpoint", "stimulus_set")):
        text += f" (first: {_context(rows.iloc[0])})"
    return text


# ------------------------------------------------------------------------------ documentation

DOC_START = "<!-- table columns: generated from selectivity.tables.SCHEMAS by `python -m selectivity.tables docs/architecture.md` -->"
DOC_END = "<!-- end of generated table columns -->"
TYPE_NAMES = {"str": "text", "int": "integer", "float": "number", "bool": "true/false"}


def _column_rows(columns: Iterable[Column]) -> list[str]:
    lines = ["| column | type | empty (NaN) | values | meaning |", "| --- | --- | --- | --- | --- |"]
    for column in columns:
        lines.append(
            f"| `{column.name}` | {TYPE_NAMES[column.dtype]} | {column.nan_text()} | {column.range_text()} "
            f"| {column.meaning} |"
        )
    return lines


def schema_markdown() -> str:
    """The "Table columns" reference of docs/architecture.md, from :data:`SCHEMAS`."""
    identifiers = {column.name for column in CHECKPOINT}
    blocks = [
        "\n".join(
            [
                "Per-network tables start with the network's identifier columns, and tables of a checkpoint's",
                "weights also with the checkpoint's (the best-validation checkpoint carries its real epoch):",
                "",
                *_column_rows(CHECKPOINT),
            ]
        )
    ]
    for schema in SCHEMAS.values():
        names = schema.column_names
        if names[: len(CHECKPOINT)] == [column.name for column in CHECKPOINT]:
            starts = "the network and checkpoint identifiers, then"
        elif names[: len(NETWORK)] == [column.name for column in NETWORK]:
            starts = "the network identifiers, then"
        else:
            starts = ""
        own = [column for column in schema.columns if not (starts and column.name in identifiers)]
        lines = [
            f"#### {schema.title} (kind `{schema.kind}`)",
            "",
            f"{', '.join(f'`{path}`' for path in schema.files)}: {schema.row}. "
            f"Unique key: {', '.join(f'`{column}`' for column in schema.key)}."
            + (f" Columns: {starts}:" if starts else ""),
            "",
            *_column_rows(own),
        ]
        for description, _ in schema.rules:
            lines.append(f"\nRule: {description}.")
        if schema.unit_groups is not None:
            lines.append(
                f"\nUnits: per {', '.join(f'`{column}`' for column in schema.unit_groups)}, every layer of the "
                "architecture with units 0..n-1 once each (n from the architecture; for a user's network, the "
                "same n throughout)."
            )
        if schema.layer_units_column is not None:
            lines.append(
                f"\nUnits: `{schema.layer_units_column}` is the architecture's unit count of the layer."
            )
        for rule in schema.table_rules:
            lines.append(f"\nRule: {rule.__doc__.strip().rstrip('.')}.")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)


def document_block() -> str:
    return f"{DOC_START}\n\n{schema_markdown()}\n\n{DOC_END}"


def update_document(path: str | os.PathLike) -> bool:
    """Rewrite the generated block of ``path`` (between the markers); True if it changed."""
    path = Path(path)
    text = path.read_text()
    if DOC_START not in text or DOC_END not in text:
        raise ValueError(
            f"{path} lacks the markers of the generated table columns ({DOC_START} ... {DOC_END})"
        )
    start, end = text.index(DOC_START), text.index(DOC_END) + len(DOC_END)
    updated = text[:start] + document_block() + text[end:]
    if updated != text:
        path.write_text(updated)
    return updated != text


if __name__ == "__main__":  # python -m selectivity.tables docs/architecture.md
    for document in sys.argv[1:]:
        print(f"{document}: {'updated' if update_document(document) else 'up to date'}")


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


def per_network_means(table: pd.DataFrame, keys: Sequence[str], values: Sequence[str]) -> pd.DataFrame:
    """Average over random draws (and any other repeated rows) within each network first."""
    return (
        table.groupby(list(NETWORK_COLUMNS) + list(keys), dropna=False, sort=True)[list(values)]
        .mean()
        .reset_index()
    )


def rows_of_models(table: pd.DataFrame, models: Sequence[str]) -> pd.DataFrame:
    """The rows of ``models`` only (e.g. the trained models, whose claims need training history)."""
    if table.empty:
        return table
    require_columns(table, ["model"], "combined")
    return table[table["model"].isin(list(models))].reset_index(drop=True)
