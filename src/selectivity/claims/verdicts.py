"""The verdict rules: from one value (or pair) per network to "supported" or not.

Every claim of :mod:`selectivity.claims.evaluation` is decided by one of three rules, and the
calibration simulation (``benchmarks/calibration.py``, ``tests/test_calibration.py``)
runs these same functions:

* :func:`positive_effect`: the effect is above 0. Supported when the two-sided t
  interval at ``confidence`` lies above 0 **and** the exact one-sided sign-flip
  p-value is at most alpha = 1 - confidence (the permutation test keeps the level
  when the values are not normal, the interval keeps the verdict and the reported
  interval consistent). Not supported by the mirror-image rule (effect below 0).
* :func:`positive_median`: the same rule for a median, with the distribution-free
  order-statistic interval and the exact sign test (per-network correlations, C2).
* :func:`positive_correlation` / :func:`positive_within_strata_correlation`: the same
  rule with the Fisher-z interval and a permutation p-value of a correlation.
* :func:`not_worse_than`: the effect is not above ``margin`` (an equivalence-type,
  one-sided test: "not more harmful"). Supported only when the interval's upper bound
  is below the margin and the sign-flip p-value against the margin is at most alpha;
  not supported when the effect is shown to exceed the margin; inconclusive otherwise,
  so that absence of evidence is never read as evidence of absence.

With fewer networks than :func:`selectivity.statistics.minimum_networks` (5 at 0.95),
no rule can reach its level and the verdict is :data:`TOO_FEW`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

from selectivity.statistics import (
    DEFAULT_PERMUTATIONS,
    TestResult,
    check_confidence,
    correlation_test,
    mean_test,
    median_test,
    minimum_networks,
    stratified_correlation_test,
)

SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE = "supported", "not supported", "inconclusive"
TOO_FEW = "inconclusive (too few networks)"
VERDICTS = (SUPPORTED, NOT_SUPPORTED, INCONCLUSIVE, TOO_FEW)


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

    @property
    def p_value(self) -> float:
        """The one-sided p-value of the claimed direction (of the opposite one when not supported)."""
        less = (self.claimed == "less") != (self.verdict == NOT_SUPPORTED)
        return self.test.p_less if less else self.test.p_greater


def _above(test: TestResult, bound: float, rule: VerdictRule) -> bool:
    return test.ci_low > bound and test.p_greater <= rule.alpha


def _below(test: TestResult, bound: float, rule: VerdictRule) -> bool:
    return test.ci_high < bound and test.p_less <= rule.alpha


def _decide_positive(test: TestResult, rule: VerdictRule, minimum: int) -> Decision:
    if test.n < minimum:
        return Decision(test, TOO_FEW)
    if _above(test, 0.0, rule):
        return Decision(test, SUPPORTED)
    if _below(test, 0.0, rule):
        return Decision(test, NOT_SUPPORTED)
    return Decision(test, INCONCLUSIVE)


def positive_effect(values, rule: VerdictRule) -> Decision:
    """Is the mean over networks of ``values`` (one per network) above 0?"""
    test = mean_test(values, rule.confidence, 0.0, rule.n_permutations, rule.seed)
    return _decide_positive(test, rule, rule.minimum_networks)


def positive_median(values, rule: VerdictRule) -> Decision:
    """Is the median over networks of ``values`` above 0? (Sign test, order-statistic interval.)

    For bounded, skewed values such as per-network correlations over a few epochs,
    where a t interval undercovers.
    """
    test = median_test(values, rule.confidence, 0.0)
    return _decide_positive(test, rule, rule.minimum_networks)


def positive_correlation(x, y, rule: VerdictRule, method: str = "spearman") -> Decision:
    """Is the correlation across networks of ``x`` and ``y`` above 0? (Fisher z needs 4.)"""
    test = correlation_test(x, y, method, rule.confidence, rule.n_permutations, rule.seed)
    return _decide_positive(test, rule, max(4, rule.minimum_networks))


def positive_within_strata_correlation(x, y, strata, rule: VerdictRule) -> Decision:
    """Is the within-stratum rank correlation of ``x`` and ``y`` above 0?"""
    test = stratified_correlation_test(x, y, strata, rule.confidence, rule.n_permutations, rule.seed)
    return _decide_positive(test, rule, max(4, rule.minimum_networks))


def not_worse_than(values, margin: float, rule: VerdictRule) -> Decision:
    """Is the mean over networks of ``values`` shown to be below ``margin``?"""
    if not margin >= 0:
        raise ValueError(f"the equivalence margin must be at least 0, got {margin!r}")
    test = mean_test(values, rule.confidence, margin, rule.n_permutations, rule.seed)
    if test.n < rule.minimum_networks:
        return Decision(test, TOO_FEW, "less")
    if _below(test, margin, rule):
        return Decision(test, SUPPORTED, "less")
    if _above(test, margin, rule):
        return Decision(test, NOT_SUPPORTED, "less")
    return Decision(test, INCONCLUSIVE, "less")


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
