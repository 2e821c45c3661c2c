"""The verdict rules as shipped keep their promises in simulations with known truth.

Each scenario runs the rule that the claims use for that kind of claim on 2000 seeded
simulated studies of the size a default study runs (5 clean networks; 15 networks across
3 corruption levels for C3). ``benchmarks/calibration.py`` prints the full table.
"""

import pytest

from selectivity.claims.calibration import EQUIVALENCE_MARGIN, simulate

CASES = [
    # kind, networks, null effect, distribution
    ("difference", 5, 0.0, "normal"),
    ("difference", 5, 0.0, "heavy_tailed"),
    ("correlation", 5, 0.0, "normal"),
    ("across_networks", 15, 0.0, "normal"),
    ("within_levels", 15, 0.0, "normal"),
    ("equivalence", 5, EQUIVALENCE_MARGIN, "normal"),
    ("equivalence", 5, EQUIVALENCE_MARGIN, "heavy_tailed"),
]


@pytest.mark.parametrize("kind, networks, null, distribution", CASES)
def test_false_supported_rate_under_the_null_is_at_most_alpha(kind, networks, null, distribution):
    result = simulate(kind, networks, null, distribution, repetitions=2000, seed=11)
    assert result.supported <= 0.05
    assert result.coverage >= 0.93


@pytest.mark.parametrize(
    "kind, networks, effect",
    [("difference", 5, 1.0), ("correlation", 5, 1.0), ("across_networks", 15, 0.6), ("equivalence", 5, -0.5)],
)
def test_coverage_and_power_with_a_real_effect(kind, networks, effect):
    result = simulate(kind, networks, effect, repetitions=2000, seed=12)
    assert result.coverage >= 0.93
    assert result.supported >= 0.2  # the rule can detect a large effect at this size
