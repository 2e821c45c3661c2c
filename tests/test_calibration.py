"""The verdict rules as shipped keep their promises in simulations with known truth.

Each scenario runs the rule that the claims use for that kind of claim on seeded
simulated studies of the size a default study runs (5 and 8 clean networks; 15 networks
across 3 corruption levels for C3), for every shape of per-network values of
:data:`selectivity.claims.calibration.DISTRIBUTIONS` (skewed either way, two clusters either way,
infinite variance). ``benchmarks/calibration.py`` prints the full table (15 and 30
networks too).

Tolerances: a rate estimated from R studies has the binomial standard error
sqrt(p (1 - p) / R). At the null the shipped sign-test rule says "supported" with an
exactly known probability for any continuous shape (1/32 = 0.031 at 5 networks, 9/256 =
0.035 at 8), so the simulated rate must lie within 3 standard errors of it (0.008 at
R = 4000) and at most alpha = 0.05, which is more than 5 standard errors above it: the
bound itself is never loosened.
"""

import numpy as np
import pytest

from selectivity.claims.calibration import (
    DISTRIBUTIONS,
    EQUIVALENCE_MARGIN,
    exact_coverage,
    exact_level,
    mean_rule_decisions,
    simulate,
)
from selectivity.statistics import mean_test
from selectivity.claims.verdicts import SUPPORTED, VerdictRule, decide_below_margin, decide_positive

ALPHA = 0.05
REPETITIONS = 4000
NULLS = {"difference": 0.0, "equivalence": EQUIVALENCE_MARGIN}


def standard_error(rate: float, repetitions: int = REPETITIONS) -> float:
    return float(np.sqrt(rate * (1 - rate) / repetitions))


@pytest.mark.parametrize("distribution", sorted(DISTRIBUTIONS))
@pytest.mark.parametrize("networks", [5, 8])
@pytest.mark.parametrize("kind", ["difference", "equivalence"])
def test_false_supported_rate_at_the_claims_boundary_is_at_most_alpha_for_every_shape(
    kind, networks, distribution
):
    """C1, C4, C5 (median above 0) and C6 (median below the margin), the null at the boundary."""
    result = simulate(kind, networks, NULLS[kind], distribution, repetitions=REPETITIONS, seed=11)
    level = exact_level(networks)
    assert level == pytest.approx({5: 1 / 32, 8: 9 / 256}[networks])
    assert result.supported <= ALPHA
    assert abs(result.supported - level) <= 3 * standard_error(level)
    coverage = exact_coverage(networks)  # 0.9375 at 5, 0.930 at 8: each bound a one-sided 95% bound
    assert abs(result.coverage - coverage) <= 3 * standard_error(coverage)


@pytest.mark.parametrize(
    "kind, distribution", [("difference", "pareto_left"), ("equivalence", "two_clusters_high")]
)
def test_the_old_mean_rule_breaks_where_the_median_rule_holds(kind, distribution):
    """Why the claims changed: with the mean at the boundary and a long tail on the far side, most
    networks lie on the claimed side, and the mean rule says "supported" far more often than alpha."""
    old = simulate(kind, 5, NULLS[kind], distribution, repetitions=REPETITIONS, seed=11, verdict_rule="mean")
    assert old.supported > ALPHA + 3 * standard_error(ALPHA)


def test_the_old_rule_in_the_calibration_is_the_shipped_mean_test():
    rule = VerdictRule(n_permutations=999)
    values = np.random.default_rng(2).normal(0.5, 0.7, size=(200, 6))
    supported, _, _ = mean_rule_decisions(values, 0.0, "greater", rule)
    expected = [decide_positive(mean_test(v, 0.95, 0.0, 999), rule, 5).verdict == SUPPORTED for v in values]
    np.testing.assert_array_equal(supported, expected)
    supported, _, _ = mean_rule_decisions(values, 0.5, "less", rule)
    expected = [
        decide_below_margin(mean_test(v, 0.95, 0.5, 999), 0.5, rule).verdict == SUPPORTED for v in values
    ]
    np.testing.assert_array_equal(supported, expected)


CORRELATION_CASES = [
    # kind, networks, shape, repetitions
    ("correlation", 5, "normal", 2000),
    ("correlation", 8, "two_clusters_low", 2000),
    ("across_networks", 15, "normal", 2000),
    ("across_networks", 15, "cauchy", 1000),
    ("within_levels", 15, "normal", 2000),
    ("within_levels", 15, "skewed_left", 1000),
]


@pytest.mark.parametrize("kind, networks, distribution, repetitions", CORRELATION_CASES)
def test_correlation_rules_keep_their_level(kind, networks, distribution, repetitions):
    """C2 (median of per-network correlations) and C3 (permutation tests, exact under independence)."""
    result = simulate(kind, networks, 0.0, distribution, repetitions=repetitions, seed=11)
    assert result.supported <= ALPHA
    assert result.coverage >= 0.95 - 3 * standard_error(0.95, repetitions)


@pytest.mark.parametrize(
    "kind, networks, effect",
    [("difference", 5, 1.0), ("correlation", 5, 1.0), ("across_networks", 15, 0.6), ("equivalence", 5, -0.5)],
)
def test_coverage_and_power_with_a_real_effect(kind, networks, effect):
    result = simulate(kind, networks, effect, repetitions=2000, seed=12)
    assert result.coverage >= 0.93 - 3 * standard_error(0.93, 2000)
    assert result.supported >= 0.2  # the rule can detect a large effect at this size
