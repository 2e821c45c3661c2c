"""Verdicts on the claims of docs/method.md §6, computed afresh from the tables on every run.

Each claim reduces to one or more *tests*, each on one value (or pair) per network,
decided by a rule of :mod:`selectivity.verdicts` (calibrated by simulation:
``benchmarks/calibration.py``). A claim's verdict needs every test it names (an
intersection-union test); controls are reported beside it. Nothing here holds a
target value: with other tables the verdicts change.

The claims table (:data:`CLAIM_COLUMNS`) has one row per test: ``test`` names what is
tested, ``layer`` the layer or the group of layers it pools ("lower", "higher",
"pooled" = the lower layers together, "all"), and ``headline`` marks the one row per
claim whose verdict is the claim's. C4 and C5 also give a verdict per lower layer
(rows with ``test == "claim"`` and a layer name).

Shared conventions (all in :class:`ClaimSettings`):

* "Lower" and "higher" layers are the configured names present in the table at hand;
  a network counts only if it has every one of them.
* Claims about one kind of network (C1, C2, C4-C6) use the networks trained on clean
  labels (``reference_label_corruption``); C3 uses all corruption levels.
* A causal table (half ablation, shift invariance) must hold one checkpoint per network.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from selectivity.statistics import CORRELATION_METHODS, correlation, minimum_networks
from selectivity.summaries import (
    CHECKPOINT_CHOICES,
    NETWORK_COLUMNS,
    layer_average,
    require_columns,
    select_checkpoint,
)
from selectivity.verdicts import (
    INCONCLUSIVE,
    NOT_SUPPORTED,
    SUPPORTED,
    TOO_FEW,
    Decision,
    VerdictRule,
    all_of,
    not_worse_than,
    positive_correlation,
    positive_effect,
    positive_median,
    positive_within_strata_correlation,
)

logger = logging.getLogger(__name__)

__all__ = ["SUPPORTED", "NOT_SUPPORTED", "INCONCLUSIVE", "TOO_FEW"]

CLAIM_IDS = ("C1", "C2", "C3", "C4", "C5", "C6")

CLAIM_STATEMENTS: dict[str, str] = {
    "C1": "Orientation-selective units (gOSI above the threshold, beyond the shuffled-stimulus "
    "control and beyond the untrained network) exist in lower and higher layers.",
    "C2": "During training, lower-layer orientation selectivity rises together with test accuracy.",
    "C3": "Across networks, better generalization goes with higher lower-layer orientation "
    "selectivity, across label-corruption levels and within them.",
    "C4": "Ablating the top-50% gOSI units of a lower layer raises test loss more than ablating the "
    "bottom 50%, a random 50%, or a random 50% matched to the top half on preferred spatial "
    "frequency and mean output.",
    "C5": "Ablating the top-50% gOSI units of a lower layer lowers the shift invariance of higher "
    "layers more than ablating the bottom 50%, a random 50% or a matched random 50%.",
    "C6": "(Morcos contrast) Ablating the most class-selective 50% of units is not more harmful "
    "than ablating a random 50% (by more than the equivalence margin).",
}

_DIFFERENCE_RULE = (
    "each test: mean over networks with its two-sided t interval; supported if the interval lies above 0 "
    "and the exact one-sided sign-flip p-value is at most 1 - confidence, not supported by the mirror "
    "rule, inconclusive otherwise; fewer than the minimum networks: inconclusive (too few networks)."
)
_ALL_OF = " The claim is supported only if every one of its tests is (not supported if any is not)."

#: The verdict rule of every claim, in words (quoted by the claims table; docs/method.md §6).
VERDICT_RULES: dict[str, str] = {
    "C1": "Per clean network at the configured checkpoint, over the lower and over the higher layers: "
    "the fraction of units with gOSI above the threshold minus that for the shuffled control, and minus "
    "that of the same network at epoch 0 (untrained); " + _DIFFERENCE_RULE + _ALL_OF,
    "C2": "Per clean network: Spearman (or the configured) correlation across its saved epochs after "
    "epoch 0 between the lower layers' mean gOSI (dead units excluded) and test accuracy; median over "
    "networks with its distribution-free order-statistic interval and the exact sign test, decided as "
    "a difference is. The same correlations of the shuffled-control gOSI and of the mean grating "
    "response are reported beside it as controls.",
    "C3": "At the configured checkpoint: the Spearman (or configured) correlation across all networks "
    "between the lower layers' mean gOSI (dead units excluded) and test accuracy, with a Fisher-z "
    "interval and a permutation p-value (needs two label-corruption levels), and the within-level rank "
    "correlation (ranks within each label-corruption level, permuted within levels), which the "
    "corruption level cannot drive; each supported if its interval lies above 0 and its p-value is at "
    "most 1 - confidence." + _ALL_OF,
    "C4": "Per clean network, per lower layer and pooled over them: test-loss increase after ablating the "
    "top 50% of units by gOSI minus after the bottom 50%, minus after a random 50% and minus after a "
    "matched random 50% (means over draws); " + _DIFFERENCE_RULE + _ALL_OF,
    "C5": "Per clean network, per ablated lower layer and pooled: normalised shift invariance of the "
    "higher layers after ablating the bottom, a random and a matched random 50% minus after the top 50% "
    "by gOSI, averaged over measured layers, directions and shifts; " + _DIFFERENCE_RULE + _ALL_OF,
    "C6": "Per clean network, over all layers of the half-ablation table: test-loss increase after "
    "ablating the top 50% of units by class selectivity minus after a random 50% (mean over draws). "
    "Supported (not more harmful) only if the t interval's upper bound is below the equivalence margin "
    "and the sign-flip p-value against the margin is at most 1 - confidence; not supported if the "
    "difference is shown to exceed the margin; inconclusive otherwise.",
}

CLAIM_COLUMNS = (
    "model",
    "dataset",
    "claim",
    "test",
    "layer",
    "headline",
    "statement",
    "statistic",
    "effect_size",
    "ci_low",
    "ci_high",
    "p_value",
    "n_networks",
    "n_seeds",
    "verdict",
    "rule",
)


@dataclass(frozen=True)
class ClaimSettings:
    """Everything a verdict depends on besides the tables.

    Checkpoints of the tuning summary ("best": lowest validation loss; "final": each
    network's last saved epoch): ``tuning_checkpoint`` for C1 (by default the one the
    causal analyses use), ``across_network_checkpoint`` for C3. ``equivalence_margin``
    is C6's margin in nats per image.
    """

    lower_layers: tuple[str, ...] = ("conv1", "conv2")
    higher_layers: tuple[str, ...] = ("conv5", "conv6", "fc1")
    selectivity_threshold: float = 0.33
    confidence: float = 0.95
    n_permutations: int = 9999
    seed: int = 0
    equivalence_margin: float = 0.1
    tuning_checkpoint: str = "best"
    across_network_checkpoint: str = "final"
    reference_label_corruption: float = 0.0
    correlation_method: str = "spearman"

    def __post_init__(self):
        # Settings read from YAML arrive as lists; keep the dataclass hashable and frozen.
        object.__setattr__(self, "lower_layers", tuple(self.lower_layers))
        object.__setattr__(self, "higher_layers", tuple(self.higher_layers))
        if not self.lower_layers or not self.higher_layers:
            raise ValueError(
                f"lower_layers and higher_layers must not be empty, got {self.lower_layers} and {self.higher_layers}"
            )
        if not 0.0 <= self.selectivity_threshold < 1.0:
            raise ValueError(f"selectivity_threshold must lie in [0, 1), got {self.selectivity_threshold!r}")
        if not self.equivalence_margin >= 0:
            raise ValueError(f"equivalence_margin must be at least 0, got {self.equivalence_margin!r}")
        self.rule  # checks confidence and permutations
        for name in ("tuning_checkpoint", "across_network_checkpoint"):
            if getattr(self, name) not in CHECKPOINT_CHOICES:
                raise ValueError(f"{name} must be one of {CHECKPOINT_CHOICES}, got {getattr(self, name)!r}")
        if self.correlation_method not in CORRELATION_METHODS:
            raise ValueError(
                f"correlation_method must be one of {CORRELATION_METHODS}, got {self.correlation_method!r}"
            )

    @property
    def rule(self) -> VerdictRule:
        return VerdictRule(self.confidence, self.n_permutations, self.seed)

    @property
    def minimum_networks(self) -> int:
        return minimum_networks(self.confidence)


@dataclass(frozen=True)
class TestRow:
    """One test of a claim; becomes one row of the claims table."""

    test: str
    layer: str
    statistic: str
    decision: Decision | None = None
    verdict: str = INCONCLUSIVE
    n_seeds: int = 0
    headline: bool = False

    def record(self) -> dict:
        test = self.decision.test if self.decision is not None else None
        nan = float("nan")
        return dict(
            test=self.test,
            layer=self.layer,
            headline=self.headline,
            statistic=self.statistic,
            effect_size=test.estimate if test else nan,
            ci_low=test.ci_low if test else nan,
            ci_high=test.ci_high if test else nan,
            p_value=self.decision.p_value if self.decision is not None else nan,
            n_networks=test.n if test else 0,
            n_seeds=self.n_seeds,
            verdict=self.verdict,
        )


# ----------------------------------------------------------------------------- helpers


def _names(layers: Sequence[str]) -> str:
    return ", ".join(layers)


def _number(value: float) -> str:
    return "nan" if not np.isfinite(value) else f"{value:.3g}"


def _describe(decision: Decision, settings: ClaimSettings) -> str:
    test = decision.test
    text = (
        f"estimate {_number(test.estimate)}, {100 * settings.confidence:g}% CI "
        f"[{_number(test.ci_low)}, {_number(test.ci_high)}], p = {_number(decision.p_value)}, "
        f"{test.n} networks"
    )
    if decision.verdict == TOO_FEW:
        text += f" (at least {settings.minimum_networks} needed)"
    return text


def _seeds(index: pd.Index | pd.MultiIndex) -> int:
    if len(index) == 0:
        return 0
    return int(pd.Index(index.get_level_values("seed")).nunique())


def _test_row(
    test: str, layer: str, decision: Decision, what: str, settings, index, headline=False
) -> TestRow:
    return TestRow(
        test,
        layer,
        f"{what}: {_describe(decision, settings)}.",
        decision,
        decision.verdict,
        _seeds(index),
        headline,
    )


def _missing(test: str, layer: str, why: str, headline: bool = False) -> TestRow:
    return TestRow(test, layer, f"Inconclusive: {why}", None, INCONCLUSIVE, 0, headline)


def _claim_row(layer: str, parts: list[TestRow], headline: bool, extra: str = "") -> TestRow:
    """The verdict of a claim that needs all of ``parts``, with the effect, interval and p of the
    part that decides it: a part with the claim's own verdict when one says "not supported" or
    "too few", otherwise the weakest part (lowest interval bound)."""
    verdict = all_of(part.verdict for part in parts)
    decided = [
        part for part in parts if part.decision is not None and np.isfinite(part.decision.test.estimate)
    ]
    deciding = (
        [part for part in decided if part.verdict == verdict] if verdict in (NOT_SUPPORTED, TOO_FEW) else []
    )
    deciding = deciding or decided
    chosen = min(
        deciding,
        key=lambda part: part.decision.test.ci_low if np.isfinite(part.decision.test.ci_low) else -np.inf,
        default=None,
    )
    names = ", ".join(f"{part.test} [{part.layer}]: {part.verdict}" for part in parts)
    statistic = (
        f"Needs all of: {names}." + (f" Effect, CI and p: those of {chosen.test}." if chosen else "") + extra
    )
    return TestRow(
        "claim",
        layer,
        statistic,
        chosen.decision if chosen else None,
        verdict,
        max((part.n_seeds for part in parts), default=0),
        headline,
    )


def _reference_networks(table: pd.DataFrame, settings: ClaimSettings) -> pd.DataFrame:
    return table[np.isclose(table["label_corruption"].astype(float), settings.reference_label_corruption)]


def _layers_present(configured: Sequence[str], available) -> list[str]:
    available = set(available)
    present = [layer for layer in configured if layer in available]
    missing = [layer for layer in configured if layer not in available]
    if missing and present:
        logger.warning("layers %s are not in the table; using %s", missing, present)
    return present


def _check_one_checkpoint(table: pd.DataFrame, table_name: str) -> None:
    """Causal tables must describe one checkpoint per network, or networks would count twice."""
    checkpoint_columns = [column for column in ("checkpoint", "epoch") if column in table.columns]
    if not checkpoint_columns or table.empty:
        return
    counts = table.groupby(list(NETWORK_COLUMNS), dropna=False)[checkpoint_columns].apply(
        lambda rows: len(rows.drop_duplicates())
    )
    if (counts > 1).any():
        network = counts[counts > 1].index[0]
        raise ValueError(
            f"the {table_name} table holds several checkpoints of network {network}; pass one checkpoint per network"
        )


#: The controls the top half is compared with in C4 and C5 (the matched one last: optional in old tables).
CONTROLS = ("bottom", "random", "matched")


def _controls_present(by_condition: pd.DataFrame) -> list[str]:
    """The controls a condition pivot holds; empty without a "top" column (nothing to compare)."""
    if "top" not in by_condition.columns:
        return []
    return [control for control in CONTROLS if control in by_condition.columns]


def _without_matched(rows: list[TestRow], controls: list[str], test: str, table_name: str) -> list[TestRow]:
    """``rows``, with an inconclusive ``test`` row in front when the table has no matched condition."""
    if "matched" in controls:
        return rows
    return [_missing(test, "pooled", f"the {table_name} table has no matched condition."), *rows]


def _mean_over_layers(per_layer: pd.Series, layers: Sequence[str]) -> pd.Series:
    """Average a (network, layer)-indexed series over layers, keeping networks that have all of them."""
    per_layer = per_layer.dropna()
    per_layer = per_layer[per_layer.index.get_level_values("layer").isin(list(layers))]
    grouped = per_layer.groupby(level=list(NETWORK_COLUMNS))
    complete = grouped.size() == len(layers)
    return grouped.mean()[complete]


def _difference_rows(
    differences: Mapping[str, pd.Series],
    layer_level: str,
    layers: list[str],
    describe: Callable[[str, str], str],
    settings: ClaimSettings,
) -> list[TestRow]:
    """For the pooled layers and for each layer: a positive-effect test per difference and a claim row.

    ``differences`` maps a test name to a (network, ``layer_level``)-indexed series.
    """
    rows = []
    for scope in ["pooled", *layers]:
        parts = []
        for name, series in differences.items():
            series = series.rename_axis(index={layer_level: "layer"})
            values = _mean_over_layers(series, layers if scope == "pooled" else [scope])
            decision = positive_effect(values.to_numpy(float), settings.rule)
            parts.append(_test_row(name, scope, decision, describe(name, scope), settings, values.index))
        rows += [*parts, _claim_row(scope, parts, headline=scope == "pooled")]
    return rows


# ----------------------------------------------------------------------------- claims


def claim_selective_units_exist(summary: pd.DataFrame, settings: ClaimSettings) -> list[TestRow]:
    """C1: selective fraction beyond the shuffled control and beyond epoch 0, lower and higher layers."""
    if summary.empty:
        return [_missing("claim", "lower+higher", "no tuning summary rows.", True)]
    require_columns(
        summary,
        list(NETWORK_COLUMNS)
        + ["checkpoint", "epoch", "layer", "stimulus_set", "fraction_selective", "selectivity_threshold"],
        "summary",
    )
    thresholds = summary["selectivity_threshold"].unique()
    if not np.allclose(thresholds, settings.selectivity_threshold):
        raise ValueError(
            f"the summary counted units as selective at gOSI > {list(thresholds)}, "
            f"but the claim settings say {settings.selectivity_threshold}"
        )
    clean = _reference_networks(summary, settings)
    rows = select_checkpoint(clean, settings.tuning_checkpoint)
    lower = _layers_present(settings.lower_layers, rows["layer"])
    higher = _layers_present(settings.higher_layers, rows["layer"])
    if not lower or not higher:
        return [
            _missing(
                "claim",
                "lower+higher",
                f"the {settings.tuning_checkpoint} checkpoints of networks with label corruption "
                f"{settings.reference_label_corruption} lack lower layers {list(settings.lower_layers)} or higher "
                f"layers {list(settings.higher_layers)}.",
                True,
            )
        ]
    index = list(NETWORK_COLUMNS) + ["layer"]
    fractions = rows.pivot_table(
        index=index, columns="stimulus_set", values="fraction_selective", aggfunc="mean"
    )
    untrained = clean[
        (clean["checkpoint"] == "epoch") & (clean["epoch"] == 0) & (clean["stimulus_set"] == "gratings")
    ]
    untrained = untrained.set_index(index)["fraction_selective"]
    parts = []
    for group, layers in (("lower", lower), ("higher", higher)):
        if {"gratings", "shuffled"} <= set(fractions.columns):
            values = _mean_over_layers(fractions["gratings"] - fractions["shuffled"], layers)
            what = (
                f"Fraction of units with gOSI > {settings.selectivity_threshold} for gratings minus for the "
                f"shuffled control, {settings.tuning_checkpoint} checkpoint, mean over {group} layers {_names(layers)}"
            )
            parts.append(
                _test_row(
                    "gratings_minus_shuffled",
                    group,
                    positive_effect(values, settings.rule),
                    what,
                    settings,
                    values.index,
                )
            )
        else:
            parts.append(
                _missing("gratings_minus_shuffled", group, "the summary lacks the shuffled stimulus set.")
            )
        if len(untrained):
            values = _mean_over_layers(fractions["gratings"] - untrained.reindex(fractions.index), layers)
            what = (
                f"Fraction of units with gOSI > {settings.selectivity_threshold} (gratings) at the "
                f"{settings.tuning_checkpoint} checkpoint minus at epoch 0 (untrained), mean over {group} layers "
                f"{_names(layers)}"
            )
            parts.append(
                _test_row(
                    "trained_minus_untrained",
                    group,
                    positive_effect(values, settings.rule),
                    what,
                    settings,
                    values.index,
                )
            )
        else:
            parts.append(
                _missing(
                    "trained_minus_untrained",
                    group,
                    "epoch 0 is not saved; add 0 to training.checkpoint_epochs.",
                )
            )
    return [*parts, _claim_row("lower+higher", parts, headline=True)]


def _per_network_epoch_correlations(averaged: pd.DataFrame, measure: str, method: str) -> pd.Series:
    values = {
        network: correlation(epochs[measure], epochs["test_accuracy"], method=method)
        for network, epochs in averaged.groupby(list(NETWORK_COLUMNS), sort=True)
    }
    series = pd.Series(values, dtype=float)
    if len(series):
        series.index = pd.MultiIndex.from_tuples(series.index, names=list(NETWORK_COLUMNS))
    return series


def claim_selectivity_rises_with_accuracy(summary: pd.DataFrame, settings: ClaimSettings) -> list[TestRow]:
    """C2: per clean network, correlation over saved epochs after 0 of lower-layer gOSI with accuracy."""
    if summary.empty:
        return [_missing("gosi_vs_accuracy", "lower", "no tuning summary rows.", True)]
    rows = _reference_networks(summary, settings)
    rows = rows[(rows["checkpoint"] == "epoch") & (rows["epoch"] >= 1)]
    lower = _layers_present(settings.lower_layers, rows["layer"])
    if not lower:
        return [
            _missing(
                "gosi_vs_accuracy",
                "lower",
                f"the summary lacks the lower layers {list(settings.lower_layers)}.",
                True,
            )
        ]
    method = settings.correlation_method
    results = []
    tests = (
        ("gosi_vs_accuracy", "mean_gosi_responsive", "gratings", "mean gOSI (dead units excluded)"),
        (
            "shuffled_gosi_vs_accuracy",
            "mean_gosi_responsive",
            "shuffled",
            "control: mean gOSI for the shuffled stimuli",
        ),
        (
            "mean_response_vs_accuracy",
            "mean_peak_response",
            "gratings",
            "control: mean peak grating response",
        ),
    )
    for test, measure, stimulus_set, label in tests:
        averaged = layer_average(rows, lower, measure=measure, stimulus_set=stimulus_set)
        correlations = _per_network_epoch_correlations(averaged, measure, method)
        epochs = averaged.groupby(list(NETWORK_COLUMNS))["epoch"].nunique()
        epoch_text = f"{int(epochs.min())}-{int(epochs.max())}" if len(epochs) else "0"
        defined = correlations.dropna()
        what = (
            f"Per clean network, {method.capitalize()} correlation across its {epoch_text} saved epochs after epoch 0 "
            f"between the {label} of lower layers {_names(lower)} and test accuracy; median over networks "
            f"({len(correlations) - len(defined)} networks with an undefined correlation left out)"
        )
        decision = positive_median(defined.to_numpy(float), settings.rule)
        results.append(
            _test_row(
                test, "lower", decision, what, settings, defined.index, headline=test == "gosi_vs_accuracy"
            )
        )
    main, *controls = results
    control_text = (
        " Controls: "
        + "; ".join(f"{row.test} median {_number(row.decision.test.estimate)}" for row in controls)
        + "."
    )
    results[0] = dataclasses.replace(main, statistic=main.statistic + control_text)
    return results


def claim_selectivity_tracks_generalization(summary: pd.DataFrame, settings: ClaimSettings) -> list[TestRow]:
    """C3: across all networks and within label-corruption levels, lower-layer gOSI vs test accuracy."""
    if summary.empty:
        return [_missing("claim", "lower", "no tuning summary rows.", True)]
    rows = select_checkpoint(summary, settings.across_network_checkpoint)
    lower = _layers_present(settings.lower_layers, rows["layer"])
    if not lower:
        return [
            _missing(
                "claim", "lower", f"the summary lacks the lower layers {list(settings.lower_layers)}.", True
            )
        ]
    networks = layer_average(rows, lower, measure="mean_gosi_responsive").dropna(
        subset=["mean_gosi_responsive", "test_accuracy"]
    )
    index = networks.set_index(list(NETWORK_COLUMNS)).index
    gratings = rows[(rows["stimulus_set"] == "gratings") & rows["layer"].isin(lower)]
    dead_text = (
        f" Dead units excluded from the mean gOSI: {int(gratings['n_dead'].sum())} of "
        f"{int(gratings['n_units'].sum())} lower-layer units over all networks."
        if "n_dead" in gratings.columns
        else ""
    )
    x, y = networks["mean_gosi_responsive"].to_numpy(float), networks["test_accuracy"].to_numpy(float)
    levels = sorted(float(level) for level in networks["label_corruption"].unique())
    checkpoint = settings.across_network_checkpoint
    what = (
        f"Across networks ({checkpoint} checkpoint; label-corruption levels {levels} x seeds): "
        f"{settings.correlation_method.capitalize()} correlation between the mean gOSI of lower layers {_names(lower)} "
        f"and test accuracy"
    )
    if len(levels) < 2:
        across = _missing(
            "across_levels", "lower", f"the networks span only the label-corruption levels {levels}."
        )
    else:
        decision = positive_correlation(x, y, settings.rule, settings.correlation_method)
        across = _test_row("across_levels", "lower", decision, what, settings, index)
    within_decision = positive_within_strata_correlation(
        x, y, networks["label_corruption"].to_numpy(float), settings.rule
    )
    within = _test_row(
        "within_levels",
        "lower",
        within_decision,
        f"Within label-corruption levels ({checkpoint} checkpoint): rank correlation of the same quantities, "
        f"ranked within each level and pooled, p-value by permuting within levels",
        settings,
        index,
    )
    return [across, within, _claim_row("lower", [across, within], headline=True, extra=dead_text)]


def _check_half_ablation(half_ablation: pd.DataFrame) -> None:
    require_columns(
        half_ablation,
        list(NETWORK_COLUMNS)
        + ["layer", "layer_index", "ranking", "condition", "draw", "loss_increase_mean"],
        "half ablation",
    )
    _check_one_checkpoint(half_ablation, "half ablation")


def _loss_increase_by_condition(
    half_ablation: pd.DataFrame, ranking: str, layers: Sequence[str]
) -> pd.DataFrame:
    """Per network and layer, the loss increase of each condition (random and matched averaged over draws)."""
    rows = half_ablation[(half_ablation["ranking"] == ranking) & half_ablation["layer"].isin(list(layers))]
    return rows.pivot_table(
        index=list(NETWORK_COLUMNS) + ["layer"],
        columns="condition",
        values="loss_increase_mean",
        aggfunc="mean",
    )


def claim_selective_ablation_hurts(half_ablation: pd.DataFrame, settings: ClaimSettings) -> list[TestRow]:
    """C4: per clean network and lower layer, loss increase of top-gOSI ablation minus each control."""
    if half_ablation.empty:
        return [_missing("claim", "pooled", "no half-ablation rows.", True)]
    _check_half_ablation(half_ablation)
    rows = _reference_networks(half_ablation, settings)
    rows = rows[rows["ranking"] == "gosi"]
    lower = _layers_present(settings.lower_layers, rows["layer"])
    if not lower:
        return [
            _missing(
                "claim",
                "pooled",
                f"no gOSI-ranked half ablation of the lower layers {list(settings.lower_layers)}.",
                True,
            )
        ]
    by_condition = _loss_increase_by_condition(rows, "gosi", lower)
    controls = _controls_present(by_condition)
    if not controls:
        return [
            _missing(
                "claim", "pooled", "the half-ablation table lacks the top condition or every control.", True
            )
        ]
    differences = {f"top_minus_{c}": by_condition["top"] - by_condition[c] for c in controls}

    def describe(name: str, scope: str) -> str:
        layers = _names(lower) if scope == "pooled" else scope
        control = name.removeprefix("top_minus_")
        return (
            f"Per clean network, test cross-entropy increase after ablating the top 50% of units by gOSI minus "
            f"after the {control} 50% (mean over draws), {'mean over' if scope == 'pooled' else 'in'} layer(s) {layers}"
        )

    test_rows = _difference_rows(differences, "layer", lower, describe, settings)
    return _without_matched(test_rows, controls, "top_minus_matched", "half-ablation")


def claim_selective_ablation_lowers_invariance(
    invariance: pd.DataFrame, settings: ClaimSettings
) -> list[TestRow]:
    """C5: per clean network and ablated lower layer, invariance after each control minus after top ablation."""
    if invariance.empty:
        return [_missing("claim", "pooled", "no shift-invariance rows.", True)]
    cell = ["measured_layer", "ablated_layer", "direction", "shift_px"]
    require_columns(
        invariance,
        list(NETWORK_COLUMNS) + cell + ["condition", "draw", "normalised_invariance_mean"],
        "shift invariance",
    )
    _check_one_checkpoint(invariance, "shift invariance")
    rows = _reference_networks(invariance, settings)
    measured = _layers_present(settings.higher_layers, rows["measured_layer"])
    ablated = _layers_present(settings.lower_layers, rows["ablated_layer"])
    if not measured or not ablated:
        return [
            _missing(
                "claim",
                "pooled",
                f"no shift invariance of higher layers {list(settings.higher_layers)} under ablation of lower layers "
                f"{list(settings.lower_layers)}.",
                True,
            )
        ]
    rows = rows[rows["measured_layer"].isin(measured) & rows["ablated_layer"].isin(ablated)]
    by_condition = rows.pivot_table(
        index=list(NETWORK_COLUMNS) + cell,
        columns="condition",
        values="normalised_invariance_mean",
        aggfunc="mean",
    )
    controls = _controls_present(by_condition)
    if not controls:
        return [
            _missing(
                "claim",
                "pooled",
                "the shift-invariance table lacks the top condition or every control.",
                True,
            )
        ]
    per_cell = pd.DataFrame(
        {f"{c}_minus_top": by_condition[c] - by_condition["top"] for c in controls}
    ).dropna()
    # Each network contributes the mean over its measured-layer x direction x shift cells per ablated layer.
    per_layer = per_cell.groupby(level=list(NETWORK_COLUMNS) + ["ablated_layer"]).mean()
    differences = {name: per_layer[name] for name in per_layer.columns}

    def describe(name: str, scope: str) -> str:
        layers = _names(ablated) if scope == "pooled" else scope
        control = name.removesuffix("_minus_top")
        return (
            f"Per clean network, normalised shift invariance of higher layers {_names(measured)} after ablating the "
            f"{control} 50% minus after the top 50% by gOSI of lower layer(s) {layers}, mean over measured layers, "
            f"directions and shifts"
        )

    test_rows = _difference_rows(differences, "ablated_layer", ablated, describe, settings)
    return _without_matched(test_rows, controls, "matched_minus_top", "shift-invariance")


def claim_class_selective_ablation_not_worse(
    half_ablation: pd.DataFrame, settings: ClaimSettings
) -> list[TestRow]:
    """C6: per clean network, loss increase of top-50% class-selectivity ablation minus random, all layers."""
    if half_ablation.empty:
        return [_missing("class_top_minus_random", "all", "no half-ablation rows.", True)]
    _check_half_ablation(half_ablation)
    rows = _reference_networks(half_ablation, settings)
    class_rows = rows[rows["ranking"] == "class_selectivity"]
    layers = [str(layer) for layer in class_rows.sort_values("layer_index")["layer"].unique()]
    if not layers:
        return [
            _missing("class_top_minus_random", "all", "no half ablation ranked by class selectivity.", True)
        ]

    def top_minus_random(ranking: str) -> pd.Series:
        by_condition = _loss_increase_by_condition(rows, ranking, layers)
        if not {"top", "random"} <= set(by_condition.columns):
            return pd.Series(dtype=float)
        return _mean_over_layers(by_condition["top"] - by_condition["random"], layers)

    values = top_minus_random("class_selectivity")
    decision = not_worse_than(values.to_numpy(float), settings.equivalence_margin, settings.rule)
    what = (
        f"Per clean network, test cross-entropy increase after ablating the top 50% of units by class selectivity "
        f"minus after a random 50% (mean over draws), mean over layers {_names(layers)}; equivalence margin "
        f"{settings.equivalence_margin:g} nats per image, p-value against the margin"
    )
    headline = _test_row(
        "class_top_minus_random", "all", decision, what, settings, values.index, headline=True
    )
    gosi_values = top_minus_random("gosi")
    gosi = _test_row(
        "gosi_top_minus_random",
        "all",
        positive_effect(gosi_values.to_numpy(float), settings.rule),
        "For comparison, the same with units ranked by gOSI (tested for a positive difference)",
        settings,
        gosi_values.index,
    )
    return [headline, gosi]


# ----------------------------------------------------------------------------- entry point

_CLAIMS: dict[str, tuple[str, Callable[[pd.DataFrame, ClaimSettings], list[TestRow]]]] = {
    "C1": ("summary", claim_selective_units_exist),
    "C2": ("summary", claim_selectivity_rises_with_accuracy),
    "C3": ("summary", claim_selectivity_tracks_generalization),
    "C4": ("half_ablation", claim_selective_ablation_hurts),
    "C5": ("invariance", claim_selective_ablation_lowers_invariance),
    "C6": ("half_ablation", claim_class_selective_ablation_not_worse),
}


def _model_dataset_pairs(tables: dict[str, pd.DataFrame]) -> list[tuple[str | None, str | None]]:
    pairs: set[tuple[str, str]] = set()
    for name, table in tables.items():
        if table.empty:
            continue
        require_columns(table, ["model", "dataset"], name.replace("_", " "))
        pairs |= set(map(tuple, table[["model", "dataset"]].drop_duplicates().to_numpy().tolist()))
    return sorted(pairs) or [(None, None)]


def _rows_of(table: pd.DataFrame, model, dataset) -> pd.DataFrame:
    if table.empty or model is None:
        return table
    return table[(table["model"] == model) & (table["dataset"] == dataset)]


def settings_for_model(
    settings: ClaimSettings, model: str | None, layers_by_model: Mapping[str, Mapping] | None
) -> ClaimSettings:
    """``settings`` with ``model``'s own lower and higher layers, where ``layers_by_model`` names them."""
    if not layers_by_model or model not in layers_by_model:
        return settings
    layers = layers_by_model[model]
    return dataclasses.replace(
        settings, lower_layers=tuple(layers["lower_layers"]), higher_layers=tuple(layers["higher_layers"])
    )


def evaluate_claims(
    summary: pd.DataFrame,
    half_ablation: pd.DataFrame,
    invariance: pd.DataFrame,
    settings: ClaimSettings,
    layers_by_model: Mapping[str, Mapping] | None = None,
) -> pd.DataFrame:
    """One row per test of each claim C1..C6 (per model and dataset found in the tables).

    ``summary`` comes from :func:`selectivity.summaries.selectivity_summary` (all
    networks and checkpoints); ``half_ablation`` and ``invariance`` are the concatenated
    per-network causal tables with their identifier columns. A missing table is an
    empty DataFrame and makes its claims inconclusive. ``layers_by_model`` maps a model
    to its ``{"lower_layers": [...], "higher_layers": [...]}``; models it does not name
    use ``settings``' layers. Columns: :data:`CLAIM_COLUMNS`; exactly one row per claim
    and model has ``headline`` True.
    """
    tables = {"summary": summary, "half_ablation": half_ablation, "invariance": invariance}
    records = []
    for model, dataset in _model_dataset_pairs(tables):
        model_settings = settings_for_model(settings, model, layers_by_model)
        for claim, (table_name, evaluate) in _CLAIMS.items():
            logger.info("evaluating %s for %s / %s", claim, model, dataset)
            for row in evaluate(_rows_of(tables[table_name], model, dataset), model_settings):
                records.append(
                    dict(
                        model=model,
                        dataset=dataset,
                        claim=claim,
                        statement=CLAIM_STATEMENTS[claim],
                        rule=VERDICT_RULES[claim],
                        **row.record(),
                    )
                )
    return pd.DataFrame.from_records(records, columns=list(CLAIM_COLUMNS))


def headline_claims(claims: pd.DataFrame) -> pd.DataFrame:
    """The one row per claim (and model) whose verdict is the claim's."""
    return claims[claims["headline"].astype(bool)].reset_index(drop=True)
