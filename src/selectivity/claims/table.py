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
from selectivity.regularisation import RegularisationStudy
from selectivity.tuning.features import DEFAULT_THRESHOLDS, THRESHOLD_RANGES
from selectivity.statistics import CORRELATION_METHODS, minimum_networks
from selectivity.tuning.summaries import (
    CHECKPOINT_CHOICES,
    NETWORK_COLUMNS,
)
from selectivity.claims.verdicts import (
    INCONCLUSIVE,
    NOT_APPLICABLE,
    NOT_SUPPORTED,
    SUPPORTED,
    SUPPORTED_NOT_SPECIFIC,
    TOO_FEW,
    Decision,
    VerdictRule,
    all_of,
    positive_effect,
    with_specificity,
)
from selectivity.claims.wording import (
    ABOVE,
    BELOW,
    NOT_A_CONTROL,
    claim_statements,
    verdict_rules,
)

logger = logging.getLogger(__name__)

CLAIM_IDS = ("C1", "C2", "C3", "C4", "C5", "C6")

CLAIM_COLUMNS = (
    "model",
    "dataset",
    "claim",
    # added with the claims by feature (claims method version 4, docs/method.md §6.3): the low-level
    # feature a row is about; "orientation" for the paper's C1-C6, "all" for a comparison across them
    "feature",
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
    # added with claims method version 4 (docs/method.md §6.2-§6.3): how to read each row
    "control",
    "null_value",
    "claimed_side",
    "unit",
    "reading",
)


@dataclass(frozen=True)
class ClaimSettings:
    """Everything a verdict depends on besides the tables.

    Checkpoints of the tuning summary ("best": lowest validation loss; "final": each
    network's last saved epoch): ``tuning_checkpoint`` for C1 (by default the one the
    causal analyses use), ``across_network_checkpoint`` for C3. ``equivalence_margin``
    is C6's margin in nats per image. ``ablation_fraction`` is the fraction of units the causal
    tables ablate (``causal.ablation.fraction``): the claims' words name it, the tests read
    whatever the tables hold.
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
    ablation_fraction: float = 0.5
    #: each other feature's threshold for "selective" (tuning.<feature threshold>; docs/method.md
    #: §3.9), as a mapping or (feature, threshold) pairs; missing ones take the defaults
    feature_thresholds: tuple[tuple[str, float], ...] = ()
    #: C7 (docs/method.md §6.3): the accuracy margin of "no worse" (claims.accuracy_margin) and the
    #: regularised networks (a RegularisationStudy or its record); None: no regulariser, no C7
    accuracy_margin: float = 0.01
    regularisation: RegularisationStudy | None = None

    def __post_init__(self):
        if isinstance(self.regularisation, Mapping):
            object.__setattr__(self, "regularisation", RegularisationStudy(**self.regularisation))
        if not 0.0 <= self.accuracy_margin <= 1.0:
            raise ValueError(f"accuracy_margin must lie in [0, 1], got {self.accuracy_margin!r}")
        # Settings read from YAML arrive as lists; keep the dataclass hashable and frozen.
        object.__setattr__(self, "lower_layers", tuple(self.lower_layers))
        object.__setattr__(self, "higher_layers", tuple(self.higher_layers))
        thresholds = {**DEFAULT_THRESHOLDS, **dict(self.feature_thresholds)}
        unknown = sorted(set(thresholds) - set(DEFAULT_THRESHOLDS))
        if unknown:
            raise ValueError(f"feature_thresholds: {unknown} are not features with a threshold")
        for feature, (low, high) in THRESHOLD_RANGES.items():
            if not low <= thresholds[feature] < high:
                raise ValueError(
                    f"feature_thresholds: the {feature} threshold {thresholds[feature]!r} must lie in [{low:g}, {high:g})"
                )
        object.__setattr__(self, "feature_thresholds", tuple(sorted(thresholds.items())))
        if not self.lower_layers or not self.higher_layers:
            raise ValueError(
                f"lower_layers and higher_layers must not be empty, got {self.lower_layers} and {self.higher_layers}"
            )
        if not 0.0 <= self.selectivity_threshold < 1.0:
            raise ValueError(f"selectivity_threshold must lie in [0, 1), got {self.selectivity_threshold!r}")
        if not self.equivalence_margin >= 0:
            raise ValueError(f"equivalence_margin must be at least 0, got {self.equivalence_margin!r}")
        if not 0.0 < self.ablation_fraction < 1.0:
            raise ValueError(
                f"ablation_fraction must lie strictly between 0 and 1, got {self.ablation_fraction!r}"
            )
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

    def threshold_of(self, feature: str) -> float:
        """The threshold for "selective" of ``feature`` (orientation: ``selectivity_threshold``)."""
        if feature == "orientation":
            return self.selectivity_threshold
        return dict(self.feature_thresholds)[feature]


@dataclass(frozen=True)
class FeatureView:
    """What a claim reads and says for one low-level feature (docs/method.md §6.3).

    The claims C1-C5 are about orientation (:data:`ORIENTATION`, read from the selectivity summary
    and the orientation causal tables); their analogues for the other features read the feature
    summary and the feature causal tables through the same functions
    (:mod:`selectivity.claims.evaluation`) with the feature's view
    (:func:`selectivity.claims.features.feature_view`).
    """

    feature: str
    #: how the text names the index ("gOSI", "F1/F0", ...)
    label: str
    #: the ``ranking`` value of its half-ablation rows
    ranking: str
    #: test names of C2 start with it ("gosi_vs_accuracy")
    test_prefix: str
    #: the threshold units are compared with in C1
    threshold: float
    #: C1's per-layer fraction, its comparison in words, and the summary's threshold column
    fraction_column: str = "fraction_selective"
    comparison: str = ">"
    threshold_column: str = "selectivity_threshold"
    #: C2 and C3's per-layer mean of the measured units, and how the text names it
    mean_column: str = "mean_gosi_responsive"
    mean_label: str = "mean gOSI (dead units excluded)"
    #: how C3's text names the units left out of that mean
    excluded_label: str = "Dead units excluded from the mean gOSI"


def orientation_view(settings: "ClaimSettings") -> FeatureView:
    """The paper's claims: orientation selectivity (gOSI) from the selectivity summary."""
    return FeatureView("orientation", "gOSI", "gosi", "gosi", threshold=settings.selectivity_threshold)


#: Each claim's statement and verdict rule in words, with the default settings (a run's own are in
#: its claims table: :func:`selectivity.claims.wording.claim_statements` and ``verdict_rules``).
CLAIM_STATEMENTS: dict[str, str] = claim_statements(ClaimSettings())
VERDICT_RULES: dict[str, str] = verdict_rules(ClaimSettings())


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
    #: a test of the claim ("none"), a specificity control or a comparison (selectivity.claims.wording)
    control: str = NOT_A_CONTROL

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
            control=self.control,
            null_value=test.null_value if test else 0.0,
            claimed_side=BELOW if self.decision is not None and self.decision.claimed == "less" else ABOVE,
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
    return TestRow(
        "claim", "all", f"Not applicable: {why}", verdict=NOT_APPLICABLE, headline=True, power=Power(note=why)
    )


def _part_verdict(part: TestRow) -> str:
    """'top_minus_random [pooled]: supported', with the reason where the test has no data."""
    why = f" ({part.power.note.rstrip('.')})" if part.decision is None and part.power.note else ""
    return f"{part.test} [{part.layer}]: {part.verdict}{why}"


def make_claim_row(
    layer: str,
    parts: list[TestRow],
    headline: bool,
    extra: str = "",
    specificity: Sequence[TestRow] = (),
    not_specific_when: str = NOT_SUPPORTED,
    specificity_required: bool = False,
) -> TestRow:
    """The verdict of a claim that needs all of ``parts``, with the effect, interval and p of the
    part that decides it: among the parts with the claim's own verdict, the weakest (lowest
    interval bound); where none has it, the weakest part.

    ``specificity``: the claim's specificity controls, combined with the parts' verdict by
    :func:`selectivity.claims.verdicts.with_specificity` (``not_specific_when``,
    ``specificity_required``: see there); a required one also counts as a part when the
    claim's verdict and its power are taken, one that is not only changes a supported verdict.
    """
    effect = all_of(part.verdict for part in parts)
    verdict = with_specificity(
        effect, [c.verdict for c in specificity], not_specific_when, specificity_required
    )
    names = ", ".join(_part_verdict(part) for part in parts)
    controls = ", ".join(_part_verdict(part) for part in specificity)
    if specificity_required and verdict != SUPPORTED_NOT_SPECIFIC:
        parts = [*parts, *specificity]
    decided = [
        part for part in parts if part.decision is not None and np.isfinite(part.decision.test.estimate)
    ]
    own_verdict = SUPPORTED if verdict == SUPPORTED_NOT_SPECIFIC else verdict
    deciding = [part for part in decided if part.verdict == own_verdict] or decided
    chosen = min(
        deciding,
        key=lambda part: part.decision.test.ci_low if np.isfinite(part.decision.test.ci_low) else -np.inf,
        default=None,
    )
    power = combined_power([part.power for part in parts], chosen.power if chosen else None)
    statistic = (
        f"Needs all of: {names}."
        + (f" Specificity {'test' if specificity_required else 'controls'}: {controls}." if controls else "")
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
    specificity: str | None = None,
) -> list[TestRow]:
    """For the pooled layers and for each layer: a positive-effect test per difference and a claim row.

    ``differences`` maps a test name to a (network, ``layer_level``)-indexed series. ``specificity``
    names the difference that makes the claim specific (C4, C5: top against matched random): a
    required specificity test of the claim row (:func:`make_claim_row`), which is inconclusive
    when the table lacks it.
    """
    rows = []
    for scope in ["pooled", *layers]:
        parts = []
        for name, series in differences.items():
            series = series.rename_axis(index={layer_level: "layer"})
            values = mean_over_layers(series, layers if scope == "pooled" else [scope])
            decision = positive_effect(values.to_numpy(float), settings.rule)
            parts.append(make_test_row(name, scope, decision, describe(name, scope), settings, values.index))
        effect = [part for part in parts if part.test != specificity]
        controls = [part for part in parts if part.test == specificity]
        if specificity is not None and not controls:
            controls = [missing_row(specificity, scope, "the table has no matched condition.")]
        claim = make_claim_row(
            scope,
            effect,
            scope == "pooled",
            specificity=controls,
            specificity_required=specificity is not None,
        )
        rows += [*parts, claim]
    return rows
