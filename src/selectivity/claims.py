"""Verdicts on the claims of docs/method.md §6, computed afresh from the tables on every run.

Each claim reduces to one number per network, an across-network effect size with a
percentile bootstrap interval over networks (the unit of replication), and a verdict
by the rule in :data:`VERDICT_RULES`. Nothing here holds a target value: with other
tables the verdicts change.

Shared conventions (all in :class:`ClaimSettings`):

* "Lower" and "higher" layers are the configured names that are present in the table
  at hand; a network counts only if it has every one of them, so all networks are
  averaged over the same layers. The layers used are named in the ``statistic`` text.
* Claims about one kind of network (C1, C2, C4-C6) use the networks trained on clean
  labels (``reference_label_corruption``, 0 by default); C3 uses all corruption levels.
* A causal table (half ablation, shift invariance) must hold one checkpoint per network.
* With fewer than ``min_networks`` networks, or a table without the rows a claim needs,
  the verdict is "inconclusive" and ``statistic`` says why.
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from selectivity.statistics import (
    CORRELATION_METHODS,
    bootstrap_confidence_interval,
    bootstrap_correlation_ci,
    bootstrap_smallest_mean_ci,
    correlation,
    fisher_mean,
)
from selectivity.summaries import (
    CHECKPOINT_CHOICES,
    NETWORK_COLUMNS,
    layer_average,
    require_columns,
    select_checkpoint,
)

logger = logging.getLogger(__name__)

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
CLAIM_IDS = ("C1", "C2", "C3", "C4", "C5", "C6")

CLAIM_STATEMENTS: dict[str, str] = {
    "C1": "Orientation-selective units (gOSI above the threshold, beyond the shuffled-stimulus "
    "control) exist in lower and higher layers.",
    "C2": "During training, lower-layer orientation selectivity rises together with test accuracy.",
    "C3": "Across networks (label-corruption levels and seeds), better generalization goes with "
    "higher lower-layer orientation selectivity.",
    "C4": "Ablating the top-50% gOSI units of a lower layer raises test loss more than ablating the "
    "bottom 50% or a random 50%.",
    "C5": "Ablating the top-50% gOSI units of a lower layer lowers the shift invariance of higher "
    "layers more than ablating the bottom 50% or a random 50%.",
    "C6": "(Morcos contrast) Ablating the most class-selective 50% of units is not more harmful "
    "than ablating a random 50%.",
}

_POSITIVE_VERDICT = (
    " Supported if the lower bound of its bootstrap confidence interval over networks is above 0;"
    " not supported if the upper bound is at or below 0; inconclusive otherwise, or with fewer than"
    " min_networks networks."
)
_JOINT_RESAMPLING = (
    " The interval resamples networks jointly for both differences, so a lower bound above 0 implies"
    " that each difference's own interval lies above 0."
)

#: The verdict rule of every claim, in words (quoted by the claims table; docs/method.md §6).
#: "Clean" networks are those with label corruption ClaimSettings.reference_label_corruption (0).
VERDICT_RULES: dict[str, str] = {
    "C1": "Per clean network at the configured checkpoint: the fraction of units with gOSI above the "
    "threshold for gratings minus that for the shuffled control, averaged over the lower layers and, "
    "separately, over the higher layers; effect size = the smaller of the two across-network means."
    + _POSITIVE_VERDICT
    + _JOINT_RESAMPLING,
    "C2": "Per clean network: the Spearman (or the configured) correlation across its saved epochs (epoch 0 included) between "
    "the lower layers' mean gOSI and test accuracy; effect size = the Fisher-z mean over networks "
    "(networks with an undefined correlation left out)." + _POSITIVE_VERDICT,
    "C3": "Across all networks (label-corruption levels x seeds) at the configured checkpoint: the "
    "Spearman (or the configured) correlation between the lower layers' mean gOSI and test accuracy; "
    "effect size = that "
    "correlation, its interval from resampling networks." + _POSITIVE_VERDICT + " Also inconclusive when "
    "the networks span fewer than two label-corruption levels.",
    "C4": "Per clean network, over the lower layers: test-loss increase after ablating the top 50% of "
    "units by gOSI minus after the bottom 50%, and minus after a random 50% (mean over draws); effect "
    "size = the smaller of the two across-network means." + _POSITIVE_VERDICT + _JOINT_RESAMPLING,
    "C5": "Per clean network: normalised shift invariance of the higher layers after ablating the bottom "
    "50% of a lower layer's units by gOSI minus after the top 50%, and after a random 50% (mean over "
    "draws) minus after the top 50%, each averaged over measured layers, ablated layers, directions and "
    "shifts; effect size = the smaller of the two across-network means."
    + _POSITIVE_VERDICT
    + _JOINT_RESAMPLING,
    "C6": "Per clean network, over all layers of the half-ablation table: test-loss increase after "
    "ablating the top 50% of units by class selectivity minus after a random 50% (mean over draws); "
    "effect size = the across-network mean. Supported (not more harmful) if the lower bound of its "
    "bootstrap confidence interval over networks is at or below 0; not supported if it is above 0; "
    "inconclusive with fewer than min_networks networks.",
}

CLAIM_COLUMNS = (
    "model",
    "dataset",
    "claim",
    "statement",
    "statistic",
    "effect_size",
    "ci_low",
    "ci_high",
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
    causal analyses use), ``across_network_checkpoint`` for C3 (by default the trained-out
    networks, as in Morcos et al.). ``reference_label_corruption`` picks the networks for
    C1, C2, C4, C5 and C6.
    """

    lower_layers: tuple[str, ...] = ("conv1", "conv2")
    higher_layers: tuple[str, ...] = ("conv5", "conv6", "fc1")
    selectivity_threshold: float = 0.33
    confidence: float = 0.95
    n_resamples: int = 10000
    min_networks: int = 3
    seed: int = 0
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
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must lie strictly between 0 and 1, got {self.confidence!r}")
        if self.n_resamples < 1:
            raise ValueError(f"n_resamples must be positive, got {self.n_resamples!r}")
        if self.min_networks < 3:
            raise ValueError(
                f"min_networks must be at least 3 (a correlation needs 3 points), got {self.min_networks!r}"
            )
        for name in ("tuning_checkpoint", "across_network_checkpoint"):
            if getattr(self, name) not in CHECKPOINT_CHOICES:
                raise ValueError(f"{name} must be one of {CHECKPOINT_CHOICES}, got {getattr(self, name)!r}")
        if self.correlation_method not in CORRELATION_METHODS:
            raise ValueError(
                f"correlation_method must be one of {CORRELATION_METHODS}, got {self.correlation_method!r}"
            )


@dataclass(frozen=True)
class ClaimResult:
    """What one claim's evaluation found; becomes one row of the claims table."""

    statistic: str
    effect_size: float = float("nan")
    ci_low: float = float("nan")
    ci_high: float = float("nan")
    n_networks: int = 0
    n_seeds: int = 0
    verdict: str = INCONCLUSIVE


# ----------------------------------------------------------------------------- helpers


def _names(layers: Sequence[str]) -> str:
    return ", ".join(layers)


def _number(value: float) -> str:
    return "nan" if not np.isfinite(value) else f"{value:.3f}"


def _count_range(counts: pd.Series) -> str:
    low, high = int(counts.min()), int(counts.max())
    return str(low) if low == high else f"{low}-{high}"


def _interval(low: float, high: float, settings: ClaimSettings) -> str:
    return f"{100 * settings.confidence:g}% CI [{_number(low)}, {_number(high)}]"


def _bootstrap_note(settings: ClaimSettings) -> str:
    return f"percentile bootstrap over networks, {settings.n_resamples} resamples, seed {settings.seed}"


def _positive_verdict(ci_low: float, ci_high: float, n_networks: int, settings: ClaimSettings) -> str:
    """The verdict for claims of a positive effect (C1-C5)."""
    if n_networks < settings.min_networks or not (np.isfinite(ci_low) and np.isfinite(ci_high)):
        return INCONCLUSIVE
    if ci_low > 0:
        return SUPPORTED
    if ci_high <= 0:
        return NOT_SUPPORTED
    return INCONCLUSIVE


def _too_few(n_networks: int, settings: ClaimSettings) -> str:
    if n_networks < settings.min_networks:
        return f" Inconclusive: only {n_networks} networks, at least {settings.min_networks} needed."
    return ""


def _n_seeds(networks: pd.DataFrame) -> int:
    return int(networks["seed"].nunique()) if len(networks) else 0


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


def _two_difference_claim(
    per_network: pd.DataFrame, columns: tuple[str, str], settings: ClaimSettings
) -> tuple[float, float, float, list[tuple[float, float, float]]]:
    """Effect (smaller mean), its joint bootstrap CI, and each column's mean and own CI."""
    values = per_network[list(columns)].to_numpy(float)
    means = values.mean(axis=0) if len(values) else np.full(2, np.nan)
    ci_low, ci_high = bootstrap_smallest_mean_ci(
        values, confidence=settings.confidence, n_resamples=settings.n_resamples, seed=settings.seed
    )
    components = []
    for index in range(len(columns)):
        low, high = bootstrap_confidence_interval(
            values[:, index],
            confidence=settings.confidence,
            n_resamples=settings.n_resamples,
            seed=settings.seed,
        )
        components.append((float(means[index]), low, high))
    effect = float(np.min(means)) if len(values) else float("nan")
    return effect, ci_low, ci_high, components


# ----------------------------------------------------------------------------- claims


def claim_selective_units_exist(summary: pd.DataFrame, settings: ClaimSettings) -> ClaimResult:
    """C1: per clean network, fraction selective (gratings minus shuffled), lower and higher layers."""
    if summary.empty:
        return ClaimResult("No tuning summary rows.")
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
    rows = select_checkpoint(_reference_networks(summary, settings), settings.tuning_checkpoint)
    lower = _layers_present(settings.lower_layers, rows["layer"])
    higher = _layers_present(settings.higher_layers, rows["layer"])
    if not lower or not higher:
        return ClaimResult(
            f"Inconclusive: the {settings.tuning_checkpoint} checkpoints of networks with label corruption "
            f"{settings.reference_label_corruption} lack lower layers {list(settings.lower_layers)} or higher layers "
            f"{list(settings.higher_layers)}."
        )
    fractions = rows.pivot_table(
        index=list(NETWORK_COLUMNS) + ["layer"],
        columns="stimulus_set",
        values="fraction_selective",
        aggfunc="mean",
    )
    if not {"gratings", "shuffled"} <= set(fractions.columns):
        return ClaimResult("Inconclusive: the summary lacks the gratings or the shuffled stimulus set.")
    excess = (fractions["gratings"] - fractions["shuffled"]).rename("excess").reset_index().dropna()

    def layer_group_mean(layers: list[str], name: str) -> pd.Series:
        part = excess[excess["layer"].isin(layers)]
        grouped = part.groupby(list(NETWORK_COLUMNS))
        complete = grouped["layer"].nunique() == len(layers)
        return grouped["excess"].mean()[complete].rename(name)

    per_network = pd.concat(
        [layer_group_mean(lower, "lower"), layer_group_mean(higher, "higher")], axis=1, join="inner"
    ).reset_index()
    n = len(per_network)
    effect, ci_low, ci_high, ((lower_mean, lower_low, lower_high), (higher_mean, higher_low, higher_high)) = (
        _two_difference_claim(per_network, ("lower", "higher"), settings)
    )
    statistic = (
        f"Per network ({settings.tuning_checkpoint} checkpoint, label corruption {settings.reference_label_corruption}): "
        f"fraction of units with gOSI > {settings.selectivity_threshold} for gratings minus for the shuffled "
        f"control, averaged over lower layers {_names(lower)}: mean {_number(lower_mean)}, "
        f"{_interval(lower_low, lower_high, settings)}; over higher layers {_names(higher)}: mean {_number(higher_mean)}, "
        f"{_interval(higher_low, higher_high, settings)}. Effect size = the smaller mean; its CI by "
        f"{_bootstrap_note(settings)}, networks resampled jointly." + _too_few(n, settings)
    )
    return ClaimResult(
        statistic,
        effect,
        ci_low,
        ci_high,
        n,
        _n_seeds(per_network),
        _positive_verdict(ci_low, ci_high, n, settings),
    )


def claim_selectivity_rises_with_accuracy(summary: pd.DataFrame, settings: ClaimSettings) -> ClaimResult:
    """C2: per clean network, correlation across saved epochs of lower-layer mean gOSI with test accuracy."""
    if summary.empty:
        return ClaimResult("No tuning summary rows.")
    rows = _reference_networks(summary, settings)
    rows = rows[rows["checkpoint"] == "epoch"]
    lower = _layers_present(settings.lower_layers, rows["layer"])
    if not lower:
        return ClaimResult(f"Inconclusive: the summary lacks the lower layers {list(settings.lower_layers)}.")
    averaged = layer_average(rows, lower, measure="mean_gosi")
    records = []
    for network, epochs in averaged.groupby(list(NETWORK_COLUMNS), sort=True):
        r = correlation(epochs["mean_gosi"], epochs["test_accuracy"], method=settings.correlation_method)
        records.append(dict(zip(NETWORK_COLUMNS, network), correlation=r, n_epochs=len(epochs)))
    per_network = pd.DataFrame.from_records(
        records, columns=list(NETWORK_COLUMNS) + ["correlation", "n_epochs"]
    )
    defined = per_network.dropna(subset=["correlation"])
    n = len(defined)
    effect = fisher_mean(defined["correlation"])
    ci_low, ci_high = bootstrap_confidence_interval(
        defined["correlation"],
        statistic=fisher_mean,
        confidence=settings.confidence,
        n_resamples=settings.n_resamples,
        seed=settings.seed,
    )
    epochs_text = (
        f"its {_count_range(defined['n_epochs'])} saved epochs (epoch 0 included when saved)"
        if n
        else "its saved epochs"
    )
    statistic = (
        f"Per network (label corruption {settings.reference_label_corruption}): {settings.correlation_method.capitalize()} "
        f"correlation across {epochs_text} between the mean gOSI of lower layers {_names(lower)} and test accuracy. "
        f"Effect size = Fisher-z mean over networks; {_interval(ci_low, ci_high, settings)} by "
        f"{_bootstrap_note(settings)}. {len(per_network) - n} networks with an undefined correlation left out."
        + _too_few(n, settings)
    )
    return ClaimResult(
        statistic,
        effect,
        ci_low,
        ci_high,
        n,
        _n_seeds(defined),
        _positive_verdict(ci_low, ci_high, n, settings),
    )


def claim_selectivity_tracks_generalization(summary: pd.DataFrame, settings: ClaimSettings) -> ClaimResult:
    """C3: across all networks, correlation of lower-layer mean gOSI with test accuracy."""
    if summary.empty:
        return ClaimResult("No tuning summary rows.")
    rows = select_checkpoint(summary, settings.across_network_checkpoint)
    lower = _layers_present(settings.lower_layers, rows["layer"])
    if not lower:
        return ClaimResult(f"Inconclusive: the summary lacks the lower layers {list(settings.lower_layers)}.")
    networks = layer_average(rows, lower, measure="mean_gosi").dropna(subset=["mean_gosi", "test_accuracy"])
    n = len(networks)
    x, y = networks["mean_gosi"].to_numpy(float), networks["test_accuracy"].to_numpy(float)
    effect = correlation(x, y, method=settings.correlation_method)
    ci_low, ci_high = bootstrap_correlation_ci(
        x,
        y,
        method=settings.correlation_method,
        confidence=settings.confidence,
        n_resamples=settings.n_resamples,
        seed=settings.seed,
    )
    levels = sorted(float(level) for level in networks["label_corruption"].unique())
    verdict = _positive_verdict(ci_low, ci_high, n, settings)
    note = _too_few(n, settings)
    if len(levels) < 2:
        verdict = INCONCLUSIVE
        note += f" Inconclusive: the networks span only the label-corruption levels {levels}."
    statistic = (
        f"Across networks ({settings.across_network_checkpoint} checkpoint; label-corruption levels {levels} x seeds): "
        f"{settings.correlation_method.capitalize()} correlation between the mean gOSI of lower layers {_names(lower)} and test "
        f"accuracy; {_interval(ci_low, ci_high, settings)} by {_bootstrap_note(settings)} (pairs resampled)."
        + note
    )
    return ClaimResult(statistic, effect, ci_low, ci_high, n, _n_seeds(networks), verdict)


def _loss_increase_by_condition(
    half_ablation: pd.DataFrame, ranking: str, layers: Sequence[str]
) -> pd.DataFrame:
    """Per network and layer, the loss increase of each condition (random averaged over draws)."""
    rows = half_ablation[(half_ablation["ranking"] == ranking) & half_ablation["layer"].isin(list(layers))]
    return rows.pivot_table(
        index=list(NETWORK_COLUMNS) + ["layer"],
        columns="condition",
        values="loss_increase_mean",
        aggfunc="mean",
    )


def _mean_over_layers(per_layer: pd.Series, layers: Sequence[str]) -> pd.Series:
    """Average a (network, layer)-indexed series over layers, keeping networks that have all of them."""
    per_layer = per_layer.dropna()
    grouped = per_layer.groupby(level=list(NETWORK_COLUMNS))
    complete = grouped.size() == len(layers)
    return grouped.mean()[complete]


def _check_half_ablation(half_ablation: pd.DataFrame) -> None:
    require_columns(
        half_ablation,
        list(NETWORK_COLUMNS)
        + ["layer", "layer_index", "ranking", "condition", "draw", "loss_increase_mean"],
        "half ablation",
    )
    _check_one_checkpoint(half_ablation, "half ablation")


def claim_selective_ablation_hurts(half_ablation: pd.DataFrame, settings: ClaimSettings) -> ClaimResult:
    """C4: per clean network, loss increase of top-50% gOSI ablation minus bottom and minus random."""
    if half_ablation.empty:
        return ClaimResult("No half-ablation rows.")
    _check_half_ablation(half_ablation)
    rows = _reference_networks(half_ablation, settings)
    rows = rows[rows["ranking"] == "gosi"]
    lower = _layers_present(settings.lower_layers, rows["layer"])
    if not lower:
        return ClaimResult(
            f"Inconclusive: no gOSI-ranked half ablation of the lower layers {list(settings.lower_layers)}."
        )
    by_condition = _loss_increase_by_condition(rows, "gosi", lower)
    if not {"top", "bottom", "random"} <= set(by_condition.columns):
        return ClaimResult("Inconclusive: the half-ablation table lacks a top, bottom or random condition.")
    per_network = pd.concat(
        [
            _mean_over_layers(by_condition["top"] - by_condition["bottom"], lower).rename("top_minus_bottom"),
            _mean_over_layers(by_condition["top"] - by_condition["random"], lower).rename("top_minus_random"),
        ],
        axis=1,
        join="inner",
    ).reset_index()
    n = len(per_network)
    (
        effect,
        ci_low,
        ci_high,
        ((bottom_mean, bottom_low, bottom_high), (random_mean, random_low, random_high)),
    ) = _two_difference_claim(per_network, ("top_minus_bottom", "top_minus_random"), settings)
    statistic = (
        f"Per network (label corruption {settings.reference_label_corruption}), test cross-entropy increase "
        f"after ablating the top 50% of units by gOSI minus after the bottom 50%: mean {_number(bottom_mean)}, "
        f"{_interval(bottom_low, bottom_high, settings)}; minus after a random 50% (mean over draws): mean "
        f"{_number(random_mean)}, {_interval(random_low, random_high, settings)}; both averaged over lower "
        f"layers {_names(lower)}. Effect size = the smaller mean; its CI by {_bootstrap_note(settings)}, networks "
        f"resampled jointly." + _too_few(n, settings)
    )
    return ClaimResult(
        statistic,
        effect,
        ci_low,
        ci_high,
        n,
        _n_seeds(per_network),
        _positive_verdict(ci_low, ci_high, n, settings),
    )


def claim_selective_ablation_lowers_invariance(
    invariance: pd.DataFrame, settings: ClaimSettings
) -> ClaimResult:
    """C5: per clean network, normalised invariance after bottom/random ablation minus after top ablation."""
    if invariance.empty:
        return ClaimResult("No shift-invariance rows.")
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
        return ClaimResult(
            f"Inconclusive: no shift invariance of higher layers {list(settings.higher_layers)} under ablation "
            f"of lower layers {list(settings.lower_layers)}."
        )
    rows = rows[rows["measured_layer"].isin(measured) & rows["ablated_layer"].isin(ablated)]
    by_condition = rows.pivot_table(
        index=list(NETWORK_COLUMNS) + cell,
        columns="condition",
        values="normalised_invariance_mean",
        aggfunc="mean",
    )
    if not {"top", "bottom", "random"} <= set(by_condition.columns):
        return ClaimResult(
            "Inconclusive: the shift-invariance table lacks a top, bottom or random condition."
        )
    differences = pd.DataFrame(
        {
            "bottom_minus_top": by_condition["bottom"] - by_condition["top"],
            "random_minus_top": by_condition["random"] - by_condition["top"],
        }
    ).dropna()
    # Every network must contribute the same cells (layers x directions x shifts).
    cells_per_network = differences.groupby(level=list(NETWORK_COLUMNS)).size()
    n_cells = int(cells_per_network.max()) if len(cells_per_network) else 0
    complete = cells_per_network[cells_per_network == n_cells].index
    per_network = differences.groupby(level=list(NETWORK_COLUMNS)).mean().loc[complete].reset_index()
    n = len(per_network)
    (
        effect,
        ci_low,
        ci_high,
        ((bottom_mean, bottom_low, bottom_high), (random_mean, random_low, random_high)),
    ) = _two_difference_claim(per_network, ("bottom_minus_top", "random_minus_top"), settings)
    statistic = (
        f"Per network (label corruption {settings.reference_label_corruption}), normalised shift invariance of "
        f"higher layers {_names(measured)} after ablating 50% of lower layer {_names(ablated)} units: bottom minus top (by gOSI) "
        f"mean {_number(bottom_mean)}, {_interval(bottom_low, bottom_high, settings)}; random (mean over draws) "
        f"minus top mean {_number(random_mean)}, {_interval(random_low, random_high, settings)}; averaged over "
        f"{n_cells} measured-layer x ablated-layer x direction x shift cells. Effect size = the smaller mean; its "
        f"CI by {_bootstrap_note(settings)}, networks resampled jointly." + _too_few(n, settings)
    )
    return ClaimResult(
        statistic,
        effect,
        ci_low,
        ci_high,
        n,
        _n_seeds(per_network),
        _positive_verdict(ci_low, ci_high, n, settings),
    )


def claim_class_selective_ablation_not_worse(
    half_ablation: pd.DataFrame, settings: ClaimSettings
) -> ClaimResult:
    """C6: per clean network, loss increase of top-50% class-selectivity ablation minus random, all layers."""
    if half_ablation.empty:
        return ClaimResult("No half-ablation rows.")
    _check_half_ablation(half_ablation)
    rows = _reference_networks(half_ablation, settings)
    class_rows = rows[rows["ranking"] == "class_selectivity"]
    layers = [str(layer) for layer in class_rows.sort_values("layer_index")["layer"].unique()]
    if not layers:
        return ClaimResult("Inconclusive: no half ablation ranked by class selectivity.")

    def top_minus_random(ranking: str) -> pd.Series:
        by_condition = _loss_increase_by_condition(rows, ranking, layers)
        if not {"top", "random"} <= set(by_condition.columns):
            return pd.Series(dtype=float)
        return _mean_over_layers(by_condition["top"] - by_condition["random"], layers)

    per_network = top_minus_random("class_selectivity")
    n = len(per_network)
    effect = float(per_network.mean()) if n else float("nan")
    ci_low, ci_high = bootstrap_confidence_interval(
        per_network.to_numpy(float),
        confidence=settings.confidence,
        n_resamples=settings.n_resamples,
        seed=settings.seed,
    )
    gosi_counterpart = top_minus_random("gosi")
    gosi_low, gosi_high = bootstrap_confidence_interval(
        gosi_counterpart.to_numpy(float),
        confidence=settings.confidence,
        n_resamples=settings.n_resamples,
        seed=settings.seed,
    )
    if n < settings.min_networks or not np.isfinite(ci_low):
        verdict = INCONCLUSIVE
    else:
        verdict = NOT_SUPPORTED if ci_low > 0 else SUPPORTED
    statistic = (
        f"Per network (label corruption {settings.reference_label_corruption}), test cross-entropy increase after "
        f"ablating the top 50% of units by class selectivity minus after a random 50% (mean over draws), averaged "
        f"over layers {_names(layers)}: effect size = mean over networks, {_interval(ci_low, ci_high, settings)} by "
        f"{_bootstrap_note(settings)}. For comparison, the same with units ranked by gOSI: mean "
        f"{_number(float(gosi_counterpart.mean()) if len(gosi_counterpart) else float('nan'))}, "
        f"{_interval(gosi_low, gosi_high, settings)} over {len(gosi_counterpart)} networks."
        + _too_few(n, settings)
    )
    return ClaimResult(statistic, effect, ci_low, ci_high, n, _n_seeds(per_network.reset_index()), verdict)


# ----------------------------------------------------------------------------- entry point

_CLAIMS: dict[str, tuple[str, Callable[[pd.DataFrame, ClaimSettings], ClaimResult]]] = {
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
    """One row per claim C1..C6 (per model and dataset found in the tables).

    ``summary`` comes from :func:`selectivity.summaries.selectivity_summary` (all
    networks and checkpoints); ``half_ablation`` and ``invariance`` are the concatenated
    per-network causal tables with their identifier columns. A missing table is an
    empty DataFrame and makes its claims inconclusive. ``layers_by_model`` maps a model
    to its ``{"lower_layers": [...], "higher_layers": [...]}`` (architectures differ);
    models it does not name use ``settings``' layers. Columns: :data:`CLAIM_COLUMNS`.
    """
    tables = {"summary": summary, "half_ablation": half_ablation, "invariance": invariance}
    records = []
    for model, dataset in _model_dataset_pairs(tables):
        model_settings = settings_for_model(settings, model, layers_by_model)
        for claim, (table_name, evaluate) in _CLAIMS.items():
            logger.info("evaluating %s for %s / %s", claim, model, dataset)
            result = evaluate(_rows_of(tables[table_name], model, dataset), model_settings)
            records.append(
                dict(
                    model=model,
                    dataset=dataset,
                    claim=claim,
                    statement=CLAIM_STATEMENTS[claim],
                    statistic=result.statistic,
                    effect_size=result.effect_size,
                    ci_low=result.ci_low,
                    ci_high=result.ci_high,
                    n_networks=result.n_networks,
                    n_seeds=result.n_seeds,
                    verdict=result.verdict,
                    rule=VERDICT_RULES[claim],
                )
            )
    return pd.DataFrame.from_records(records, columns=list(CLAIM_COLUMNS))


def _layers_description(
    claims: pd.DataFrame, settings: ClaimSettings, layers_by_model: Mapping[str, Mapping] | None
) -> str:
    parts = []
    for model in dict.fromkeys(claims["model"]):
        model_settings = settings_for_model(settings, model, layers_by_model)
        prefix = f"{model}: " if model is not None and pd.notna(model) else ""
        parts.append(
            f"{prefix}lower layers {', '.join(model_settings.lower_layers)}, higher layers "
            f"{', '.join(model_settings.higher_layers)}"
        )
    return "; ".join(parts)


def claims_html(
    claims: pd.DataFrame, settings: ClaimSettings, layers_by_model: Mapping[str, Mapping] | None = None
) -> str:
    """The claims table as a self-contained HTML page for the Snakemake report."""
    from html import escape

    verdict_colours = {"supported": "#d9f2d9", "not supported": "#f8d7d7", "inconclusive": "#f2f2f2"}
    rows = []
    for row in claims.itertuples():
        interval = f"[{row.ci_low:.3g}, {row.ci_high:.3g}]" if pd.notna(row.ci_low) else "n/a"
        effect = f"{row.effect_size:.3g}" if pd.notna(row.effect_size) else "n/a"
        rows.append(
            f"<tr style='background:{verdict_colours.get(row.verdict, '#fff')}'>"
            f"<td>{escape(str(row.model))}</td><td><b>{row.claim}</b></td><td>{escape(row.statement)}</td>"
            f"<td>{escape(row.statistic)}</td><td>{effect}</td><td>{interval}</td>"
            f"<td>{row.n_networks}</td><td>{row.n_seeds}</td><td><b>{row.verdict}</b></td></tr>"
        )
    rules = "".join(f"<li><b>{claim}</b>: {escape(rule)}</li>" for claim, rule in VERDICT_RULES.items())
    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Claims C1-C6</title>"
        "<style>body{font-family:sans-serif;font-size:13px} table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:4px;vertical-align:top}</style></head><body>"
        f"<h2>Claims C1-C6: verdicts computed from this run</h2>"
        f"<p>{100 * settings.confidence:g}% percentile-bootstrap intervals over networks "
        f"({settings.n_resamples} resamples, seed {settings.seed}); at least {settings.min_networks} "
        f"networks per verdict; {_layers_description(claims, settings, layers_by_model)}; "
        f"gOSI threshold {settings.selectivity_threshold}.</p>"
        "<table><tr><th>model</th><th>claim</th><th>statement</th><th>statistic</th><th>effect size</th>"
        f"<th>{100 * settings.confidence:g}% CI</th><th>networks</th><th>seeds</th><th>verdict</th></tr>"
        + "".join(rows)
        + f"</table><h3>Verdict rules</h3><ul>{rules}</ul></body></html>\n"
    )
