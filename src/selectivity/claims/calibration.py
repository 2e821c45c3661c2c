"""Simulations with known truth that check the verdict rules as shipped.

Each scenario draws ``repetitions`` studies of ``n_networks`` networks from a
distribution whose true effect is known, runs the rule of :mod:`selectivity.claims.verdicts`
that the claims use for that kind of claim, and counts

* ``coverage``: how often the reported interval contains the true effect, and
* ``supported``: how often the verdict is "supported" (under a null truth this is the
  false-positive rate the rule promises to keep at most alpha = 1 - confidence).

``benchmarks/calibration.py`` prints the table the README quotes; the test suite
checks the promises at the 5 networks a default study has per corruption level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

from selectivity.claims.verdicts import (
    SUPPORTED,
    VerdictRule,
    not_worse_than,
    positive_correlation,
    positive_effect,
    positive_median,
    positive_within_strata_correlation,
)

#: claim kind -> what it simulates (the claims that use that rule)
CLAIM_KINDS = {
    "difference": "mean of a per-network difference (C1, C4, C5)",
    "correlation": "median of per-network correlations over saved epochs (C2)",
    "across_networks": "Spearman correlation across networks (C3, across levels)",
    "within_levels": "within-level rank correlation (C3, within levels)",
    "equivalence": "per-network difference against a margin (C6)",
}
#: Noise distributions of the per-network differences.
DISTRIBUTIONS = ("normal", "heavy_tailed", "skewed")
EPOCHS_PER_NETWORK = 5  # the saved epochs after 0 of config/cifar10_subset.yaml
EQUIVALENCE_MARGIN = 0.5  # in units of the between-network SD


@dataclass(frozen=True)
class CalibrationResult:
    kind: str
    distribution: str
    n_networks: int
    true_effect: float
    coverage: float
    supported: float
    repetitions: int


def _noise(generator: np.random.Generator, distribution: str, size) -> np.ndarray:
    """Zero-mean, unit-SD noise of the named shape."""
    if distribution == "normal":
        return generator.standard_normal(size)
    if distribution == "heavy_tailed":  # Student t with 5 df, scaled to unit SD
        return generator.standard_t(5, size) / np.sqrt(5 / 3)
    if distribution == "skewed":  # log-normal (sigma 0.5), centred and scaled
        sigma = 0.5
        mean, sd = np.exp(sigma**2 / 2), np.sqrt((np.exp(sigma**2) - 1) * np.exp(sigma**2))
        return (generator.lognormal(0.0, sigma, size) - mean) / sd
    raise ValueError(f"distribution must be one of {DISTRIBUTIONS}, got {distribution!r}")


def _per_network_correlations(generator, n_networks: int, slope: float) -> np.ndarray:
    """Spearman r over EPOCHS_PER_NETWORK epochs where selectivity = slope * accuracy + noise."""
    accuracy = np.sort(generator.uniform(size=(n_networks, EPOCHS_PER_NETWORK)), axis=1)
    selectivity = slope * accuracy + 0.3 * generator.standard_normal(accuracy.shape)
    ranks_a = scipy_stats.rankdata(accuracy, axis=1)
    ranks_s = scipy_stats.rankdata(selectivity, axis=1)
    ranks_a -= ranks_a.mean(axis=1, keepdims=True)
    ranks_s -= ranks_s.mean(axis=1, keepdims=True)
    return (ranks_a * ranks_s).sum(axis=1) / np.sqrt((ranks_a**2).sum(axis=1) * (ranks_s**2).sum(axis=1))


def true_median_correlation(slope: float, draws: int = 200_000, seed: int = 12345) -> float:
    """The population median of the per-network correlation (by a large simulation)."""
    return float(np.median(_per_network_correlations(np.random.default_rng(seed), draws, slope)))


def _bivariate(generator, n: int, rho: float) -> tuple[np.ndarray, np.ndarray]:
    x = generator.standard_normal(n)
    y = rho * x + np.sqrt(1 - rho**2) * generator.standard_normal(n)
    return x, y


def spearman_of_bivariate_normal(rho: float) -> float:
    """The population Spearman correlation of a bivariate normal with Pearson rho."""
    return float(6 / np.pi * np.arcsin(rho / 2))


def simulate(
    kind: str,
    n_networks: int,
    true_effect: float,
    distribution: str = "normal",
    repetitions: int = 2000,
    seed: int = 0,
    rule: VerdictRule = VerdictRule(n_permutations=999),
) -> CalibrationResult:
    """Coverage and rate of "supported" of the shipped rule for one claim kind.

    ``true_effect``: the mean difference in SDs (difference, equivalence: the margin is
    :data:`EQUIVALENCE_MARGIN`, so a true effect equal to it is the null), the slope of
    selectivity on accuracy (correlation), or the Pearson rho of a bivariate normal
    (across and within levels; the truth is the corresponding Spearman correlation).
    """
    generator = np.random.default_rng(seed)
    covered = supported = 0
    truth = true_effect
    if kind == "correlation":
        truth = true_median_correlation(true_effect)
    elif kind in ("across_networks", "within_levels"):
        truth = spearman_of_bivariate_normal(true_effect)
    for _ in range(repetitions):
        if kind in ("difference", "equivalence"):
            values = true_effect + _noise(generator, distribution, n_networks)
            decision = (
                positive_effect(values, rule)
                if kind == "difference"
                else not_worse_than(values, EQUIVALENCE_MARGIN, rule)
            )
        elif kind == "correlation":
            decision = positive_median(_per_network_correlations(generator, n_networks, true_effect), rule)
        elif kind == "across_networks":
            decision = positive_correlation(*_bivariate(generator, n_networks, true_effect), rule)
        elif kind == "within_levels":
            levels = np.arange(n_networks) % 3
            x, y = _bivariate(generator, n_networks, true_effect)
            # The level shifts both variables (as label corruption does), which the
            # across-network correlation would mistake for an association.
            x, y = x + 3.0 * levels, y + 3.0 * levels
            decision = positive_within_strata_correlation(x, y, levels, rule)
        else:
            raise ValueError(f"kind must be one of {sorted(CLAIM_KINDS)}, got {kind!r}")
        test = decision.test
        covered += bool(test.ci_low <= truth <= test.ci_high)
        supported += decision.verdict == SUPPORTED
    return CalibrationResult(
        kind,
        distribution,
        n_networks,
        float(truth),
        covered / repetitions,
        supported / repetitions,
        repetitions,
    )
