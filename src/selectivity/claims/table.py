"""The claims table: its columns, each claim's statement and verdict rule in words, the
settings every claim shares (:class:`ClaimSettings`), and how a test's decision becomes a row
(:class:`TestRow`). The tests themselves are in :mod:`selectivity.claims.evaluation`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from selectivity.claims.power import SIGN_TEST, Power, combined_power, power_of
from selectivity.statistics import CORRELATION_METHODS, minimum_networks
from selectivity.tuning.summaries import (
    CHECKPOINT_CHOICES,
    NETWORK_COLUMNS,
)
from selectivity.claims.verdicts import (
    INCONCLUSIVE,
    NOT_APPLICABLE,
    NOT_SUPPORTED,
    TOO_FEW,
    Decision,
    VerdictRule,
    all_of,
    positive_effect,
)

logger = logging.getLogger(__name__)

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
    "each test is about most networks: the median over networks, decided by the exact one-sided sign test "
    "at level 1 - confidence (values equal to 0 count against the claim), with the order-statistic "
    "confidence bounds of the median that invert it; supported if the lower bound lies above 0 (the same "
    "event as p <= 1 - confidence), not supported by the mirror rule, inconclusive otherwise; fewer than "
    "the minimum networks: inconclusive (too few networks). The mean and its t interval are reported "
    "beside it and decide nothing."
)
_ALL_OF = " The claim is supported only if every one of its tests is (not supported if any is not)."

#: The verdict rule of every claim, in words (quoted by the claims table; docs/method.md §6).
VERDICT_RULES: dict[str, str] = {
    "C1": "Per clean network at the configured checkpoint, over the lower and over the higher layers: "
    "the fraction of units with gOSI above the threshold minus that for the shuffled control, and minus "
    "that of the same network at epoch 0 (untrained); " + _DIFFERENCE_RULE + _ALL_OF,
    "C2": "Per clean network: Spearman (or the configured) correlation across its saved epochs after "
    "epoch 0 between the lower layers' mean gOSI (dead units excluded) and test accuracy; median over "
    "networks with its order-statistic bounds and the exact sign test, decided as a difference is. The same correlations of the shuffled-control gOSI and of the mean grating "
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
    "Supported (not more harmful in most networks) only if the upper order-statistic bound of the median "
    "is below the equivalence margin, i.e. the exact sign test of 'below the margin' gives p <= "
    "1 - confidence; not supported if the median is shown to exceed the margin; inconclusive otherwise.",
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
    # added with claims method version 3 (docs/method.md §6.2)
    "ci_coverage",
    "mean",
    "mean_ci_low",
    "mean_ci_high",
    "detectable_effect",
    "networks_needed",
    "n_levels",
    "power_note",
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
    power: Power = Power(note="no data")
    #: label-corruption levels the test's networks span (C3; 1 for the clean networks of the others)
    n_levels: int = 1

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
            ci_coverage=test.coverage if test else nan,
            mean=test.mean if test else nan,
            mean_ci_low=test.mean_ci_low if test else nan,
            mean_ci_high=test.mean_ci_high if test else nan,
            detectable_effect=self.power.detectable_effect,
            networks_needed=self.power.networks_needed,
            n_levels=self.n_levels,
            power_note=self.power.note,
        )


# ----------------------------------------------------------------------------- helpers


def layer_list(layers: Sequence[str]) -> str:
    return ", ".join(layers)


def format_number(value: float) -> str:
    return "nan" if not np.isfinite(value) else f"{value:.3g}"


def _describe(decision: Decision, settings: ClaimSettings, power: Power) -> str:
    test = decision.test
    if decision.kind == SIGN_TEST:
        text = (
            f"median {format_number(test.estimate)}, one-sided {100 * settings.confidence:g}% bounds "
            f"[{format_number(test.ci_low)}, {format_number(test.ci_high)}] (together covering the median with "
            f"{format_number(test.coverage)}), sign-test p = {format_number(decision.p_value)}, {test.n} networks; "
            f"mean {format_number(test.mean)}, {100 * settings.confidence:g}% t interval "
            f"[{format_number(test.mean_ci_low)}, {format_number(test.mean_ci_high)}] (descriptive)"
        )
    else:
        text = (
            f"estimate {format_number(test.estimate)}, {100 * settings.confidence:g}% CI "
            f"[{format_number(test.ci_low)}, {format_number(test.ci_high)}], p = {format_number(decision.p_value)}, "
            f"{test.n} networks"
        )
    if decision.verdict == TOO_FEW:
        text += f" (at least {settings.minimum_networks} needed)"
    text += (
        f"; detectable at 80% power: {format_number(power.detectable_effect)}; networks needed for the "
        f"observed effect: {format_number(power.networks_needed)}"
    )
    return text


def _seeds(index: pd.Index | pd.MultiIndex) -> int:
    if len(index) == 0:
        return 0
    return int(pd.Index(index.get_level_values("seed")).nunique())


def make_test_row(
    test: str, layer: str, decision: Decision, what: str, settings, index, headline=False, n_levels=1
) -> TestRow:
    power = power_of(decision, settings.rule)
    return TestRow(
        test,
        layer,
        f"{what}: {_describe(decision, settings, power)}.",
        decision,
        decision.verdict,
        _seeds(index),
        headline,
        power,
        n_levels,
    )


def missing_row(test: str, layer: str, why: str, headline: bool = False) -> TestRow:
    return TestRow(test, layer, f"Inconclusive: {why}", None, INCONCLUSIVE, 0, headline, Power(note=why))


def not_applicable_row(why: str) -> TestRow:
    """The one row of a claim these networks cannot be tested on, saying why (its headline)."""
    return TestRow("claim", "all", f"Not applicable: {why}", None, NOT_APPLICABLE, 0, True, Power(note=why))


def make_claim_row(layer: str, parts: list[TestRow], headline: bool, extra: str = "") -> TestRow:
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
    power = combined_power([part.power for part in parts], chosen.power if chosen else None)
    statistic = (
        f"Needs all of: {names}."
        + (f" Effect, CI, p and detectable effect: those of {chosen.test}." if chosen else "")
        + f" Networks needed: {format_number(power.networks_needed)} ({power.note})."
        + extra
    )
    return TestRow(
        "claim",
        layer,
        statistic,
        chosen.decision if chosen else None,
        verdict,
        max((part.n_seeds for part in parts), default=0),
        headline,
        power,
        max((part.n_levels for part in parts), default=1),
    )


def reference_networks(table: pd.DataFrame, settings: ClaimSettings) -> pd.DataFrame:
    return table[np.isclose(table["label_corruption"].astype(float), settings.reference_label_corruption)]


def layers_present(configured: Sequence[str], available) -> list[str]:
    available = set(available)
    present = [layer for layer in configured if layer in available]
    missing = [layer for layer in configured if layer not in available]
    if missing and present:
        logger.warning("layers %s are not in the table; using %s", missing, present)
    return present


def check_one_checkpoint(table: pd.DataFrame, table_name: str) -> None:
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


def controls_present(by_condition: pd.DataFrame) -> list[str]:
    """The controls a condition pivot holds; empty without a "top" column (nothing to compare)."""
    if "top" not in by_condition.columns:
        return []
    return [control for control in CONTROLS if control in by_condition.columns]


def without_matched(rows: list[TestRow], controls: list[str], test: str, table_name: str) -> list[TestRow]:
    """``rows``, with an inconclusive ``test`` row in front when the table has no matched condition."""
    if "matched" in controls:
        return rows
    return [missing_row(test, "pooled", f"the {table_name} table has no matched condition."), *rows]


def mean_over_layers(per_layer: pd.Series, layers: Sequence[str]) -> pd.Series:
    """Average a (network, layer)-indexed series over layers, keeping networks that have all of them."""
    per_layer = per_layer.dropna()
    per_layer = per_layer[per_layer.index.get_level_values("layer").isin(list(layers))]
    grouped = per_layer.groupby(level=list(NETWORK_COLUMNS))
    complete = grouped.size() == len(layers)
    return grouped.mean()[complete]


def difference_rows(
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
            values = mean_over_layers(series, layers if scope == "pooled" else [scope])
            decision = positive_effect(values.to_numpy(float), settings.rule)
            parts.append(make_test_row(name, scope, decision, describe(name, scope), settings, values.index))
        rows += [*parts, make_claim_row(scope, parts, headline=scope == "pooled")]
    return rows
