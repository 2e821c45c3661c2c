"""The verdict rules: from one value (or pair) per network to "supported" or not.

Every claim of :mod:`selectivity.claims.evaluation` is decided by one of three rules, and the
calibration simulation (``benchmarks/calibration.py``, ``tests/test_calibration.py``)
runs these same functions:

* :func:`positive_effect`: "in most networks the effect is above 0", i.e. the median
  over networks is above 0 (C1, C4, C5; C2 through :func:`positive_median`). Decided
  by the exact one-sided sign test at alpha = 1 - confidence, with the order-statistic
  bounds of the median that invert it: supported exactly when the lower bound is above
  0 (and the sign-test p is at most alpha, the same event); not supported by the mirror
  rule; inconclusive otherwise. The sign test's level holds for *any* distribution of
  per-network values (skewed, two clusters, infinite variance, ties), which no test of a
  mean can promise at 5-30 networks (docs/method.md §6.2).
* :func:`positive_correlation` / :func:`positive_within_strata_correlation`: the
  correlation is above 0: the Fisher-z interval above 0 **and** a permutation p-value
  (exact under exchangeability) at most alpha.
* :func:`not_worse_than`: "in most networks the effect is below ``margin``" (C6, an
  equivalence-type one-sided test: "not more harmful"): supported only when the upper
  order-statistic bound of the median is below the margin (the sign test against the
  margin at level alpha); not supported when the median is shown to exceed the margin;
  inconclusive otherwise, so that absence of evidence is never read as evidence of absence.

With fewer networks than :func:`selectivity.statistics.minimum_networks` (5 at 0.95),
no rule can reach its level and the verdict is :data:`TOO_FEW`.

A claim with a specificity control (C2, C4, C5; docs/method.md §6.2) whose effect is supported
but whose control shows that the effect is not about orientation selectivity gets
:data:`SUPPORTED_NOT_SPECIFIC` (:func:`with_specificity`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

import numpy as np

from selectivity.claims.power import CORRELATION, SIGN_TEST, WITHIN_STRATA
from selectivity.statistics import (
    DEFAULT_PERMUTATIONS,
    TestResult,
    check_confidence,
    correlation_test,
    median_test,
    minimum_networks,
    stratified_correlation_test,
)

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
TOO_FEW = "inconclusive (too few networks)"
#: the effect is supported, and a specificity control shows it is not about the feature
SUPPORTED_NOT_SPECIFIC = "supported, not specific"
VERDICTS = (SUPPORTED, SUPPORTED_NOT_SPECIFIC, NOT_SUPPORTED, INCONCLUSIVE, TOO_FEW)
#: A claim that the networks cannot be tested on (e.g. C2 of given weights: no training history);
#: not a verdict of a test, so not among VERDICTS.
NOT_APPLICABLE = "not applicable"


@dataclass(frozen=True)
class VerdictRule:
    """The level of every verdict and the permutations of the tests that are not exact."""

    confidence: float = 0.95
    n_permutations: int = DEFAULT_PERMUTATIONS
    seed: int = 0

    def __post_init__(self):
        check_confidence(self.confidence)
        if int(self.n_permutations) != self.n_permutations or self.n_permutations < 99:
            raise ValueError(f"n_permutations must be an integer of at least 99, got {self.n_permutations!r}")

    @property
    def alpha(self) -> float:
        return 1.0 - self.confidence

    @property
    def minimum_networks(self) -> int:
        return minimum_networks(self.confidence)


@dataclass(frozen=True)
class Decision:
    """A test over networks and the verdict the rule gives it."""

    test: TestResult
    verdict: str
    #: the direction "supported" claims: "greater" (above 0) or "less" (below a margin)
    claimed: str = "greater"
    #: which test decided (selectivity.claims.power's models): a sign test or a correlation
    kind: str = SIGN_TEST
    #: correlations: the method and the number of strata (label-corruption levels) pooled
    method: str = "spearman"
    strata: int = 1

    @property
    def p_value(self) -> float:
        """The one-sided p-value of the claimed direction (of the opposite one when not supported)."""
        less = (self.claimed == "less") != (self.verdict == NOT_SUPPORTED)
        return self.test.p_less if less else self.test.p_greater


def _above(test: TestResult, bound: float, rule: VerdictRule) -> bool:
    return test.ci_low > bound and test.p_greater <= rule.alpha


def _below(test: TestResult, bound: float, rule: VerdictRule) -> bool:
    return test.ci_high < bound and test.p_less <= rule.alpha


def decide_positive(test: TestResult, rule: VerdictRule, minimum: int, **kind) -> Decision:
    """Supported if ``test``'s interval lies above 0 and its "greater" p is at most alpha; the mirror
    rule for not supported; too few below ``minimum`` networks. ``kind``: Decision's kind fields."""
    if test.n < minimum:
        return Decision(test, TOO_FEW, **kind)
    if _above(test, 0.0, rule):
        return Decision(test, SUPPORTED, **kind)
    if _below(test, 0.0, rule):
        return Decision(test, NOT_SUPPORTED, **kind)
    return Decision(test, INCONCLUSIVE, **kind)


def decide_below_margin(test: TestResult, margin: float, rule: VerdictRule, **kind) -> Decision:
    """Supported if ``test`` is shown below ``margin`` (its interval's upper end and its "less" p against
    the margin), not supported if shown above it, too few below the minimum networks."""
    if test.n < rule.minimum_networks:
        return Decision(test, TOO_FEW, "less", **kind)
    if _below(test, margin, rule):
        return Decision(test, SUPPORTED, "less", **kind)
    if _above(test, margin, rule):
        return Decision(test, NOT_SUPPORTED, "less", **kind)
    return Decision(test, INCONCLUSIVE, "less", **kind)


def positive_effect(values, rule: VerdictRule) -> Decision:
    """Is the effect above 0 in most networks? Median of ``values`` (one per network), exact sign test.

    The order-statistic bounds that invert the sign test make "lower bound above 0" and
    "p at most alpha" one event, so interval and verdict always agree.
    """
    test = median_test(values, rule.confidence, 0.0)
    return decide_positive(test, rule, rule.minimum_networks)


def positive_median(values, rule: VerdictRule) -> Decision:
    """:func:`positive_effect` for a median of per-network correlations (C2): the same rule."""
    return positive_effect(values, rule)


def positive_correlation(x, y, rule: VerdictRule, method: str = "spearman") -> Decision:
    """Is the correlation across networks of ``x`` and ``y`` above 0? (Fisher z needs 4.)"""
    test = correlation_test(x, y, method, rule.confidence, rule.n_permutations, rule.seed)
    return decide_positive(test, rule, max(4, rule.minimum_networks), kind=CORRELATION, method=method)


def positive_within_strata_correlation(x, y, strata, rule: VerdictRule) -> Decision:
    """Is the within-stratum rank correlation of ``x`` and ``y`` above 0?"""
    test = stratified_correlation_test(x, y, strata, rule.confidence, rule.n_permutations, rule.seed)
    kept = _strata_of_two_or_more(x, y, strata)
    return decide_positive(test, rule, max(4, rule.minimum_networks), kind=WITHIN_STRATA, strata=kept)


def _strata_of_two_or_more(x, y, strata) -> int:
    """How many strata the within-strata correlation pools (those with 2 networks with both values)."""
    x, y = np.asarray(x, dtype=float).reshape(-1), np.asarray(y, dtype=float).reshape(-1)
    strata = np.asarray(strata).reshape(-1)
    _, counts = np.unique(strata[np.isfinite(x) & np.isfinite(y)], return_counts=True)
    return int((counts >= 2).sum())


def not_worse_than(values, margin: float, rule: VerdictRule) -> Decision:
    """Is the effect below ``margin`` in most networks? Median of ``values``, exact sign test against it."""
    if not margin >= 0:
        raise ValueError(f"the equivalence margin must be at least 0, got {margin!r}")
    test = median_test(values, rule.confidence, margin)
    return decide_below_margin(test, margin, rule)


def not_lower_than(values, margin: float, rule: VerdictRule) -> Decision:
    """Is the effect above ``-margin`` in most networks? ("no worse than" for a quantity where lower is
    worse, e.g. test accuracy: C7.) Median of ``values``, exact sign test against ``-margin``."""
    if not margin >= 0:
        raise ValueError(f"the margin must be at least 0, got {margin!r}")
    test = median_test(values, rule.confidence, -margin)
    if test.n < rule.minimum_networks:
        return Decision(test, TOO_FEW)
    if _above(test, -margin, rule):
        return Decision(test, SUPPORTED)
    if _below(test, -margin, rule):
        return Decision(test, NOT_SUPPORTED)
    return Decision(test, INCONCLUSIVE)


def all_of(verdicts: Iterable[str]) -> str:
    """The verdict of a claim that needs every one of its tests (an intersection-union test).

    Supported only if every test is; not supported if any test is; too few networks if
    any test had too few; inconclusive otherwise. Needing all tests at level alpha keeps
    the claim at level alpha without a multiplicity correction.
    """
    verdicts = list(verdicts)
    if not verdicts:
        return INCONCLUSIVE
    if all(v == SUPPORTED for v in verdicts):
        return SUPPORTED
    if any(v == NOT_SUPPORTED for v in verdicts):
        return NOT_SUPPORTED
    if any(v == TOO_FEW for v in verdicts):
        return TOO_FEW
    return INCONCLUSIVE


def with_specificity(effect: str, controls: Iterable[str], not_specific_when: str, required: bool) -> str:
    """A claim's verdict from the verdict of its effect and those of its specificity controls.

    ``effect`` is the verdict of the claim's own tests (:func:`all_of`); ``controls`` are the
    verdicts of its specificity controls, and a control whose verdict is ``not_specific_when``
    shows that the effect is not specific to the feature (C2: a control quantity, such as the
    mean response, also rises with accuracy, so ``SUPPORTED``; C4, C5: top minus a matched
    random half, so ``NOT_SUPPORTED``, the matched half does more). A supported effect then
    becomes :data:`SUPPORTED_NOT_SPECIFIC`. ``required``: the control is itself a test of the
    claim (C4, C5: "top beats matched" is what makes the claim about orientation selectivity),
    so a supported effect needs it supported, and a control that is undecided or missing
    leaves the claim undecided; an effect that is not supported is combined with it by
    :func:`all_of`. Not required (C2: the controls test other quantities, not the difference),
    the controls change only a supported effect.
    """
    controls = list(controls)
    if effect != SUPPORTED:
        return all_of([effect, *controls]) if required and controls else effect
    if any(verdict == not_specific_when for verdict in controls):
        return SUPPORTED_NOT_SPECIFIC
    if not required or (controls and all(verdict == SUPPORTED for verdict in controls)):
        return SUPPORTED
    return TOO_FEW if TOO_FEW in controls else INCONCLUSIVE
