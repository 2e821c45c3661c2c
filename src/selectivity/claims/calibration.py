"""Simulations with known truth that check the verdict rules as shipped.

Each scenario draws ``repetitions`` studies of ``n_networks`` networks from a
distribution whose true effect is known, runs the rule of :mod:`selectivity.claims.verdicts`
that the claims use for that kind of claim, and counts

* ``coverage``: how often the reported interval contains the true effect, and
* ``supported``: how often the verdict is "supported" (under a null truth this is the
  false-positive rate the rule promises to keep at most alpha = 1 - confidence).

The per-network values take the shapes of :data:`DISTRIBUTIONS`: normal, heavy-tailed,
skewed either way, two clusters (most networks unaffected, a few far off) either way,
and infinite variance (Cauchy; Pareto with tail index 1.5, either way). For the shipped
rules the null sits at the boundary of the claim as stated, a *median* of 0 (of the
margin for C6). ``verdict_rule="mean"`` runs instead the rule of claims method version 2
(mean, t interval and exact sign-flip test; null: a *mean* of 0 or of the margin), and
``"mean_and_sign"`` that rule with the sign test required to agree, to show why the
claims were restated instead (docs/method.md §6.2).

``benchmarks/calibration.py`` prints the tables docs/results.md quotes; the test suite
checks the promises at the 5 and 8 networks of a default study per corruption level.
"""

from __future__ import annotations

import functools
import itertools
import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
from scipy import optimize
from scipy import stats as scipy_stats

from selectivity.claims.power import sign_test_critical_count
from selectivity.statistics import median_confidence_bounds
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
    "difference": "median of a per-network difference (C1, C4, C5)",
    "correlation": "median of per-network correlations over saved epochs (C2)",
    "across_networks": "Spearman correlation across networks (C3, across levels)",
    "within_levels": "within-level rank correlation (C3, within levels)",
    "equivalence": "median of a per-network difference against a margin (C6)",
}
#: The shipped rule ("median"), the rule of claims method version 2 ("mean"), and the mean rule
#: that also needs the sign test to agree ("mean_and_sign", an option weighed in docs/method.md §6.2).
VERDICT_RULES = ("median", "mean", "mean_and_sign")
EPOCHS_PER_NETWORK = 5  # the saved epochs after 0 of config/cifar10_subset.yaml
EQUIVALENCE_MARGIN = 0.5  # in units of the between-network SD
#: Interquartile range of a unit normal: infinite-variance shapes are scaled to it.
NORMAL_IQR = float(scipy_stats.norm.ppf(0.75) - scipy_stats.norm.ppf(0.25))


@dataclass(frozen=True)
class Shape:
    """A distribution of per-network values: raw draws, their median and mean, and a unit of scale.

    ``scale`` is the SD, or for infinite variance the interquartile range over that of a
    unit normal, so that "1" is comparable across shapes. ``mean`` is NaN where there is none.
    """

    description: str
    draw: Callable[[np.random.Generator, object], np.ndarray]
    median: float
    mean: float
    scale: float

    def mirrored(self, description: str) -> "Shape":
        return Shape(description, lambda g, size: -self.draw(g, size), -self.median, -self.mean, self.scale)


def _lognormal(sigma: float, description: str) -> Shape:
    variance = (math.exp(sigma**2) - 1) * math.exp(sigma**2)
    return Shape(
        description,
        lambda g, size: g.lognormal(0.0, sigma, size),
        1.0,
        math.exp(sigma**2 / 2),
        math.sqrt(variance),
    )


# Two clusters: 80% of networks near 0 (SD 0.2), 20% far off at 3 (SD 0.5).
_CLUSTER_WEIGHTS, _CLUSTER_MEANS, _CLUSTER_SDS = (
    np.array([0.8, 0.2]),
    np.array([0.0, 3.0]),
    np.array([0.2, 0.5]),
)


def _two_clusters(description: str) -> Shape:
    def draw(generator, size):
        far = generator.random(size) < _CLUSTER_WEIGHTS[1]
        return np.where(
            far,
            generator.normal(_CLUSTER_MEANS[1], _CLUSTER_SDS[1], size),
            generator.normal(_CLUSTER_MEANS[0], _CLUSTER_SDS[0], size),
        )

    def cdf(x):
        return float(np.sum(_CLUSTER_WEIGHTS * scipy_stats.norm.cdf((x - _CLUSTER_MEANS) / _CLUSTER_SDS)))

    mean = float(np.sum(_CLUSTER_WEIGHTS * _CLUSTER_MEANS))
    variance = float(np.sum(_CLUSTER_WEIGHTS * (_CLUSTER_SDS**2 + _CLUSTER_MEANS**2))) - mean**2
    return Shape(
        description, draw, float(optimize.brentq(lambda x: cdf(x) - 0.5, -5, 5)), mean, math.sqrt(variance)
    )


_PARETO_INDEX = 1.5  # tail index < 2: infinite variance (the mean, 3, exists)


def _pareto(description: str) -> Shape:
    def quantile(p):
        return (1 - p) ** (-1 / _PARETO_INDEX)

    return Shape(
        description,
        lambda g, size: g.pareto(_PARETO_INDEX, size) + 1.0,
        quantile(0.5),
        _PARETO_INDEX / (_PARETO_INDEX - 1),
        (quantile(0.75) - quantile(0.25)) / NORMAL_IQR,
    )


_SKEWED_RIGHT = _lognormal(1.0, "log-normal (sigma 1), long right tail")
_TWO_CLUSTERS_HIGH = _two_clusters("two clusters: 80% near 0, 20% far above")
_PARETO_RIGHT = _pareto("Pareto, tail index 1.5 (infinite variance), long right tail")

#: Shapes of per-network values, by name.
DISTRIBUTIONS: dict[str, Shape] = {
    "normal": Shape("normal", lambda g, size: g.standard_normal(size), 0.0, 0.0, 1.0),
    "heavy_tailed": Shape(
        "Student t, 5 df", lambda g, size: g.standard_t(5, size), 0.0, 0.0, math.sqrt(5 / 3)
    ),
    "skewed": _lognormal(0.5, "log-normal (sigma 0.5), right tail"),
    "skewed_right": _SKEWED_RIGHT,
    "skewed_left": _SKEWED_RIGHT.mirrored("log-normal (sigma 1), long left tail"),
    "two_clusters_high": _TWO_CLUSTERS_HIGH,
    "two_clusters_low": _TWO_CLUSTERS_HIGH.mirrored("two clusters: 80% near 0, 20% far below"),
    "cauchy": Shape(
        "Cauchy (infinite variance, no mean)",
        lambda g, size: g.standard_cauchy(size),
        0.0,
        math.nan,
        2 / NORMAL_IQR,
    ),
    "pareto_right": _PARETO_RIGHT,
    "pareto_left": _PARETO_RIGHT.mirrored("Pareto, tail index 1.5, long left tail"),
}


@dataclass(frozen=True)
class CalibrationResult:
    kind: str
    distribution: str
    n_networks: int
    true_effect: float
    coverage: float
    supported: float
    repetitions: int
    verdict_rule: str = "median"


def noise(generator: np.random.Generator, distribution: str, size, centre: str = "median") -> np.ndarray:
    """Draws of the named shape, centred on its median (or mean) and divided by its scale.

    A shape without a mean (Cauchy) is centred on its median, its centre of symmetry.
    """
    if distribution not in DISTRIBUTIONS:
        raise ValueError(f"distribution must be one of {sorted(DISTRIBUTIONS)}, got {distribution!r}")
    if centre not in ("median", "mean"):
        raise ValueError(f"centre must be 'median' or 'mean', got {centre!r}")
    shape = DISTRIBUTIONS[distribution]
    middle = shape.mean if centre == "mean" and np.isfinite(shape.mean) else shape.median
    return (shape.draw(generator, size) - middle) / shape.scale


def _per_network_correlations(
    generator, n_networks: int, slope: float, distribution: str = "normal"
) -> np.ndarray:
    """Spearman r over EPOCHS_PER_NETWORK epochs where selectivity = slope * accuracy + noise of the shape."""
    accuracy = np.sort(generator.uniform(size=(n_networks, EPOCHS_PER_NETWORK)), axis=1)
    selectivity = slope * accuracy + 0.3 * noise(generator, distribution, accuracy.shape)
    ranks_a = scipy_stats.rankdata(accuracy, axis=1)
    ranks_s = scipy_stats.rankdata(selectivity, axis=1)
    ranks_a -= ranks_a.mean(axis=1, keepdims=True)
    ranks_s -= ranks_s.mean(axis=1, keepdims=True)
    return (ranks_a * ranks_s).sum(axis=1) / np.sqrt((ranks_a**2).sum(axis=1) * (ranks_s**2).sum(axis=1))


@functools.cache
def true_median_correlation(
    slope: float, distribution: str = "normal", draws: int = 200_000, seed: int = 12345
) -> float:
    """The population median of the per-network correlation (by a large simulation)."""
    return float(
        np.median(_per_network_correlations(np.random.default_rng(seed), draws, slope, distribution))
    )


#: A bivariate shape for C3 only: y = x**2 + noise, dependent but with a Spearman correlation of 0.
U_SHAPED = "u_shaped"


def _bivariate(generator, n: int, rho: float, distribution: str = "normal") -> tuple[np.ndarray, np.ndarray]:
    if distribution == U_SHAPED:
        if rho != 0:
            raise ValueError(f"the {U_SHAPED} pair has correlation 0 only, got rho {rho!r}")
        x = generator.standard_normal(n)
        return x, x**2 + 0.1 * generator.standard_normal(n)
    x = noise(generator, distribution, n)
    y = rho * x + np.sqrt(1 - rho**2) * noise(generator, distribution, n)
    return x, y


def spearman_of_bivariate_normal(rho: float) -> float:
    """The population Spearman correlation of a bivariate normal with Pearson rho."""
    return float(6 / np.pi * np.arcsin(rho / 2))


@functools.cache
def true_spearman(rho: float, distribution: str, draws: int = 200_000, seed: int = 12345) -> float:
    """The population Spearman correlation of :func:`_bivariate` (closed form for normal noise)."""
    if distribution == "normal" or rho == 0:
        return spearman_of_bivariate_normal(rho)
    x, y = _bivariate(np.random.default_rng(seed), draws, rho, distribution)
    return float(scipy_stats.spearmanr(x, y).statistic)


# ----------------------------------------------------------------------------- the mean rule (method version 2)


def _sign_patterns(n: int) -> np.ndarray:
    return np.array(list(itertools.product([-1.0, 1.0], repeat=n)))


def mean_rule_decisions(
    values: np.ndarray, null_value: float, claimed: str, rule: VerdictRule, seed: int = 0
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The verdict rule of claims method version 2 on many studies at once (rows of ``values``).

    Supported when the two-sided t interval of the mean lies beyond ``null_value`` in the
    ``claimed`` direction ("greater" or "less") and the one-sided sign-flip p-value is at
    most alpha: exact over all 2**n sign patterns up to 16 networks (the comparison with a
    relative tolerance of 100 machine epsilons, as ``scipy.stats.permutation_test``),
    ``rule.n_permutations`` random patterns (plus the observed one) beyond. Vectorised
    copy of ``selectivity.statistics.mean_test`` + the old decision, for the calibration
    only (``tests/test_calibration.py`` checks that they agree). Returns
    (supported, ci_low, ci_high) per study.
    """
    values = np.asarray(values, dtype=float)
    studies, n = values.shape
    mean = values.mean(axis=1)
    half = scipy_stats.t.ppf(0.5 + rule.confidence / 2, n - 1) * values.std(axis=1, ddof=1) / np.sqrt(n)
    low, high = mean - half, mean + half
    differences = values - null_value
    exact = n <= 16
    if exact:
        patterns = _sign_patterns(n)
    else:
        patterns = np.random.default_rng(seed).choice([-1.0, 1.0], size=(int(rule.n_permutations), n))
    sign = 1.0 if claimed == "greater" else -1.0
    p_values = np.empty(studies)
    chunk = max(1, 2_000_000 // len(patterns))
    for start in range(0, studies, chunk):
        block = sign * differences[start : start + chunk]
        observed = block.mean(axis=1)
        null = block @ patterns.T / n
        count = (null >= (observed - np.abs(100 * np.finfo(float).eps * observed))[:, None]).sum(axis=1)
        p_values[start : start + chunk] = (
            count / len(patterns) if exact else (count + 1) / (len(patterns) + 1)
        )
    beyond = low > null_value if claimed == "greater" else high < null_value
    supported = beyond & (p_values <= rule.alpha) & (n >= rule.minimum_networks)
    return supported, low, high


# ----------------------------------------------------------------------------- simulation


def simulate(
    kind: str,
    n_networks: int,
    true_effect: float,
    distribution: str = "normal",
    repetitions: int = 2000,
    seed: int = 0,
    rule: VerdictRule = VerdictRule(n_permutations=999),
    verdict_rule: str = "median",
) -> CalibrationResult:
    """Coverage and rate of "supported" of the shipped rule (or the old mean rule) for one claim kind.

    ``true_effect``: the median difference in units of the shape's scale (difference,
    equivalence: the margin is :data:`EQUIVALENCE_MARGIN`, so a true effect equal to it is
    the null), the slope of selectivity on accuracy (correlation), or the rho of
    :func:`_bivariate` (across and within levels; the truth is the population Spearman
    correlation). With ``verdict_rule="mean"`` or ``"mean_and_sign"`` (difference and
    equivalence only) the values are centred on their mean instead and the old rule decides
    (with the sign test required to agree); a shape without a mean has NaN coverage.
    """
    if kind not in CLAIM_KINDS:
        raise ValueError(f"kind must be one of {sorted(CLAIM_KINDS)}, got {kind!r}")
    if verdict_rule not in VERDICT_RULES:
        raise ValueError(f"verdict_rule must be one of {VERDICT_RULES}, got {verdict_rule!r}")
    generator = np.random.default_rng(seed)
    if verdict_rule != "median":
        return _simulate_mean_rule(
            kind, n_networks, true_effect, distribution, repetitions, generator, rule, verdict_rule
        )
    covered = supported = 0
    truth = true_effect
    if kind == "correlation":
        truth = true_median_correlation(true_effect, distribution)
    elif kind in ("across_networks", "within_levels"):
        truth = true_spearman(true_effect, distribution)
    for _ in range(repetitions):
        if kind in ("difference", "equivalence"):
            values = true_effect + noise(generator, distribution, n_networks)
            decision = (
                positive_effect(values, rule)
                if kind == "difference"
                else not_worse_than(values, EQUIVALENCE_MARGIN, rule)
            )
        elif kind == "correlation":
            correlations = _per_network_correlations(generator, n_networks, true_effect, distribution)
            decision = positive_median(correlations, rule)
        elif kind == "across_networks":
            decision = positive_correlation(
                *_bivariate(generator, n_networks, true_effect, distribution), rule
            )
        else:
            levels = np.arange(n_networks) % 3
            x, y = _bivariate(generator, n_networks, true_effect, distribution)
            # The level shifts both variables (as label corruption does), which the
            # across-network correlation would mistake for an association.
            x, y = x + 3.0 * levels, y + 3.0 * levels
            decision = positive_within_strata_correlation(x, y, levels, rule)
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


def _simulate_mean_rule(
    kind, n_networks, true_effect, distribution, repetitions, generator, rule, verdict_rule
):
    if kind not in ("difference", "equivalence"):
        raise ValueError(f"the mean rule decided only differences and equivalence, not {kind!r}")
    values = true_effect + noise(generator, distribution, (repetitions, n_networks), centre="mean")
    if kind == "difference":
        supported, low, high = mean_rule_decisions(values, 0.0, "greater", rule)
        sign_rule = functools.partial(positive_effect, rule=rule)
    else:
        supported, low, high = mean_rule_decisions(values, EQUIVALENCE_MARGIN, "less", rule)
        sign_rule = functools.partial(not_worse_than, margin=EQUIVALENCE_MARGIN, rule=rule)
    if verdict_rule == "mean_and_sign":
        supported = supported & np.array([sign_rule(study).verdict == SUPPORTED for study in values])
    has_mean = np.isfinite(DISTRIBUTIONS[distribution].mean)
    coverage = float(np.mean((low <= true_effect) & (true_effect <= high))) if has_mean else float("nan")
    return CalibrationResult(
        kind,
        distribution,
        n_networks,
        float(true_effect),
        coverage,
        float(supported.mean()),
        repetitions,
        verdict_rule,
    )


def exact_level(n_networks: int, rule: VerdictRule = VerdictRule()) -> float:
    """The shipped sign-test rule's rate of "supported" at a median exactly at the null, for any
    continuous distribution: P(Binomial(n, 1/2) >= c), c the sign test's critical count."""
    count = sign_test_critical_count(n_networks, rule.alpha)
    return float(scipy_stats.binom.sf(count - 1, n_networks, 0.5))


def exact_coverage(n_networks: int, rule: VerdictRule = VerdictRule()) -> float:
    """The coverage of the order-statistic bounds of the median for any continuous distribution."""
    return median_confidence_bounds(np.arange(float(n_networks)), rule.confidence)[3]
