"""The one statistics layer of the workflow: intervals and tests over networks.

The unit of replication is the *network* (one model, dataset, label corruption and
seed): every function here takes one value (or one pair) per network. The tables,
the figures and the claims all use these functions, so a band in a figure is the
interval in the table beside it.

* Medians (what the claims decide on, docs/method.md §6.1): the exact sign test
  (:func:`sign_test_p_value`), exact for *any* distribution of per-network values,
  and the distribution-free order-statistic bounds that invert it
  (:func:`median_confidence_bounds`), so that a bound beyond the null value and a
  sign-test p-value of at most alpha are the same event. :func:`median_interval` is
  the two-sided order-statistic interval of the summary tables.
* Means (descriptive): Student-t interval and the sign-flip permutation p-value
  (:func:`sign_flip_p_value`, through ``scipy.stats.permutation_test``), exact only
  when the values are symmetric about ``null_value``; no test of a mean keeps its
  level for every distribution at a few networks, which is why no verdict uses them.
* Correlations across networks: Spearman (or Pearson) with a Fisher-z interval
  (Bonett & Wright's standard error for Spearman) and a permutation p-value; within
  strata (e.g. label-corruption levels) by ranking within each stratum and permuting
  within strata (:func:`stratified_correlation_test`).

Missing values (NaN) are dropped first; callers report how many networks were left.
Resampling draws from ``numpy.random.default_rng(seed)``: same inputs, same result.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as scipy_stats

CORRELATION_METHODS = ("spearman", "pearson")
ALTERNATIVES = ("greater", "less")
#: Below this many networks the sign-flip test enumerates all 2**n sign patterns.
EXACT_SIGN_FLIP_LIMIT = 16
#: Monte-Carlo permutations where an exact enumeration would be too large.
DEFAULT_PERMUTATIONS = 9999


@dataclass(frozen=True)
class TestResult:
    """An estimate over networks with its two-sided interval and one-sided p-values.

    ``p_greater`` tests "the effect exceeds ``null_value``", ``p_less`` "it is below it".
    ``coverage`` is the probability with which [``ci_low``, ``ci_high``] holds the true
    effect (exact for the order-statistic bounds of a median, nominal for the others).
    ``mean``, ``mean_ci_low``, ``mean_ci_high`` (two-sided t interval) and ``spread``
    (SD, ddof 1) describe the per-network values of a median test; they decide nothing.
    ``above`` and ``below`` count the values strictly above and below ``null_value`` (a median
    test's; -1 for the others): the sign test's own statistic, which its power model reads
    (:mod:`selectivity.claims.power`).
    """

    estimate: float
    ci_low: float
    ci_high: float
    p_greater: float
    p_less: float
    n: int
    null_value: float = 0.0
    coverage: float = float("nan")
    mean: float = float("nan")
    mean_ci_low: float = float("nan")
    mean_ci_high: float = float("nan")
    spread: float = float("nan")
    above: int = -1
    below: int = -1


def _finite_1d(values, name: str = "values") -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array[np.isfinite(array)]


def check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")


def _check_method(method: str) -> None:
    if method not in CORRELATION_METHODS:
        raise ValueError(f"unknown correlation method {method!r}; choose one of {CORRELATION_METHODS}")


def _check_alternative(alternative: str) -> None:
    if alternative not in ALTERNATIVES:
        raise ValueError(f"alternative must be one of {ALTERNATIVES}, got {alternative!r}")


def minimum_networks(confidence: float) -> int:
    """The fewest networks with which the exact sign-flip test can reach its level.

    The smallest one-sided p-value of n networks is 2**-n, so at level
    alpha = 1 - confidence a verdict needs n >= log2(1 / alpha): 5 networks at 0.95.
    """
    check_confidence(confidence)
    return max(3, math.ceil(math.log2(1.0 / (1.0 - confidence)) - 1e-12))


def mean_and_sem(values) -> tuple[float, float]:
    """Mean and standard error of the mean (sample SD with ddof=1 over sqrt(n)).

    NaNs are dropped. With no values both are NaN; with one value the SEM is NaN.
    """
    finite = _finite_1d(values)
    if finite.size == 0:
        return float("nan"), float("nan")
    mean = float(finite.mean())
    if finite.size < 2:
        return mean, float("nan")
    return mean, float(finite.std(ddof=1) / np.sqrt(finite.size))


def mean_interval(values, confidence: float = 0.95) -> tuple[float, float, float]:
    """Mean and its two-sided Student-t interval: mean +- t(n-1) * SD / sqrt(n).

    Fewer than two values give a NaN interval; identical values a zero-width one.
    """
    check_confidence(confidence)
    finite = _finite_1d(values)
    mean, sem = mean_and_sem(finite)
    if finite.size < 2:
        return mean, float("nan"), float("nan")
    half_width = _t_quantile(0.5 + confidence / 2.0, finite.size - 1) * sem
    return mean, mean - half_width, mean + half_width


def interval_of_mean(confidence: float = 0.95):
    """``values -> (low, high)`` of :func:`mean_interval`, for seaborn's ``errorbar=``."""
    check_confidence(confidence)

    def interval(values) -> tuple[float, float]:
        _, low, high = mean_interval(values, confidence)
        if not np.isfinite(low):  # one network: no band, just the line
            mean = float(np.nanmean(np.asarray(values, dtype=float)))
            return mean, mean
        return low, high

    return interval


def sign_flip_p_value(
    values,
    alternative: str = "greater",
    null_value: float = 0.0,
    n_resamples: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
) -> float:
    """One-sided sign-flip permutation p-value of the mean of ``values`` against ``null_value``.

    Exact (all 2**n sign patterns) up to :data:`EXACT_SIGN_FLIP_LIMIT` values, Monte
    Carlo with ``n_resamples`` otherwise. NaN with no values.
    """
    _check_alternative(alternative)
    differences = _finite_1d(values) - null_value
    if differences.size == 0:
        return float("nan")
    if not differences.any():
        return 1.0
    if differences.size == 1:  # two sign patterns, +d and -d; scipy needs two values
        in_direction = differences[0] > 0 if alternative == "greater" else differences[0] < 0
        return 0.5 if in_direction else 1.0
    exact = differences.size <= EXACT_SIGN_FLIP_LIMIT
    result = scipy_stats.permutation_test(
        (differences,),
        lambda x, axis: np.mean(x, axis=axis),
        permutation_type="samples",
        vectorized=True,
        n_resamples=np.inf if exact else int(n_resamples),
        alternative=alternative,
        random_state=None if exact else np.random.default_rng(seed),
    )
    return float(result.pvalue)


def mean_test(
    values,
    confidence: float = 0.95,
    null_value: float = 0.0,
    n_resamples: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
) -> TestResult:
    """Mean over networks, its t interval and both one-sided sign-flip p-values.

    Not a verdict's test (the sign-flip test is exact only for values symmetric about
    ``null_value``): the claims' rule until claims method version 2, kept for the
    calibration's comparison (:mod:`selectivity.claims.calibration`).
    """
    finite = _finite_1d(values)
    mean, low, high = mean_interval(finite, confidence)
    return TestResult(
        estimate=mean,
        ci_low=low,
        ci_high=high,
        p_greater=sign_flip_p_value(finite, "greater", null_value, n_resamples, seed),
        p_less=sign_flip_p_value(finite, "less", null_value, n_resamples, seed),
        n=int(finite.size),
        null_value=null_value,
        coverage=confidence,
        mean=mean,
        mean_ci_low=low,
        mean_ci_high=high,
        spread=float(finite.std(ddof=1)) if finite.size > 1 else float("nan"),
    )


def median_interval(values, confidence: float = 0.95) -> tuple[float, float, float, float]:
    """Median, its distribution-free order-statistic interval, and that interval's coverage.

    The interval [x(k), x(n-k+1)] of the sorted values covers the population median
    with probability 1 - 2 * P(Binomial(n, 1/2) < k) for any continuous distribution
    (at least that for a discrete one). The largest k that reaches ``confidence`` is
    used; where none does (5 values at 0.95: [min, max] covers with 0.9375) the
    interval is [min, max] and the returned coverage says how much it reaches.
    """
    check_confidence(confidence)
    finite = np.sort(_finite_1d(values))
    n = finite.size
    if n < 2:
        return (float(finite[0]) if n else float("nan")), float("nan"), float("nan"), float("nan")
    k = 1
    while k + 1 <= n // 2 and 1 - 2 * scipy_stats.binom.cdf(k, n, 0.5) >= confidence:
        k += 1
    coverage = float(1 - 2 * scipy_stats.binom.cdf(k - 1, n, 0.5))
    return float(np.median(finite)), float(finite[k - 1]), float(finite[n - k]), coverage


def median_confidence_bounds(values, confidence: float = 0.95) -> tuple[float, float, float, float]:
    """Median and its one-sided ``confidence`` order-statistic bounds, with their joint coverage.

    The lower bound is x(k) of the sorted values, with the largest k for which
    P(Binomial(n, 1/2) <= k - 1) <= alpha = 1 - confidence; the upper bound is x(n-k+1).
    Each is a one-sided ``confidence`` bound of the population median for *any*
    continuous distribution (at least that for a discrete one), and each inverts the
    one-sided sign test of :func:`sign_test_p_value` at level alpha: the lower bound
    lies above a value m exactly when that test of "median > m" gives p <= alpha
    (the upper one likewise for "median < m"). Together they cover the median with
    probability 1 - 2 * P(Binomial(n, 1/2) <= k - 1), the fourth value returned (at
    least 1 - 2 * alpha; 0.9375 for 5 values at 0.95). With too few values for any
    bound at that level (fewer than 5 at 0.95) the bounds are [min, max] and the
    coverage says how much less they reach. Fewer than 2 values: NaN bounds.
    """
    check_confidence(confidence)
    finite = np.sort(_finite_1d(values))
    n = finite.size
    if n < 2:
        return (float(finite[0]) if n else float("nan")), float("nan"), float("nan"), float("nan")
    k, coverage = _bound_rank(n, confidence)
    return float(np.median(finite)), float(finite[k - 1]), float(finite[n - k]), coverage


# The calibration runs these rules on tens of thousands of simulated studies: the few
# distribution values they need are cached rather than recomputed by scipy each time.
@functools.lru_cache(maxsize=None)
def _bound_rank(n: int, confidence: float) -> tuple[int, float]:
    """The rank k of the lower order-statistic bound of :func:`median_confidence_bounds`, and its coverage."""
    alpha = 1.0 - confidence
    k = 1
    while k + 1 <= (n + 1) // 2 and scipy_stats.binom.cdf(k, n, 0.5) <= alpha:
        k += 1
    return k, float(1 - 2 * scipy_stats.binom.cdf(k - 1, n, 0.5))


@functools.lru_cache(maxsize=None)
def _half_binomial_tail(count: int, n: int) -> float:
    """P(Binomial(n, 1/2) >= count)."""
    return float(scipy_stats.binom.sf(count - 1, n, 0.5))


@functools.lru_cache(maxsize=None)
def _t_quantile(probability: float, degrees_of_freedom: int) -> float:
    return float(scipy_stats.t.ppf(probability, degrees_of_freedom))


def sign_test_p_value(values, alternative: str = "greater", null_value: float = 0.0) -> float:
    """Exact one-sided sign-test p-value of the median against ``null_value``.

    ``greater``: P(Binomial(n, 1/2) >= number of values above ``null_value``), n all
    values; ``less`` likewise with the values below it. Values equal to ``null_value``
    count *against* the tested direction (they are not dropped): the test then keeps
    its level for any distribution whose median is at the null, discrete ones (ties)
    included, and it is the test that :func:`median_confidence_bounds` inverts. NaN
    with no values.
    """
    _check_alternative(alternative)
    differences = _finite_1d(values) - null_value
    if differences.size == 0:
        return float("nan")
    in_direction = int((differences > 0).sum() if alternative == "greater" else (differences < 0).sum())
    return _half_binomial_tail(in_direction, int(differences.size))


def median_test(values, confidence: float = 0.95, null_value: float = 0.0) -> TestResult:
    """Median over networks, its one-sided order-statistic bounds and both one-sided sign-test p-values.

    The bounds invert the sign tests (:func:`median_confidence_bounds`). The mean with
    its two-sided t interval and the SD are carried along to describe the values.
    """
    finite = _finite_1d(values)
    median, low, high, coverage = median_confidence_bounds(finite, confidence)
    mean, mean_low, mean_high = mean_interval(finite, confidence)
    return TestResult(
        estimate=median,
        ci_low=low,
        ci_high=high,
        p_greater=sign_test_p_value(finite, "greater", null_value),
        p_less=sign_test_p_value(finite, "less", null_value),
        n=int(finite.size),
        null_value=null_value,
        coverage=coverage,
        mean=mean,
        mean_ci_low=mean_low,
        mean_ci_high=mean_high,
        spread=float(finite.std(ddof=1)) if finite.size > 1 else float("nan"),
        above=int((finite > null_value).sum()),
        below=int((finite < null_value).sum()),
    )


def _paired_finite(x, y) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(x, dtype=float).reshape(-1)
    y = np.asarray(y, dtype=float).reshape(-1)
    if x.shape != y.shape:
        raise ValueError(f"x and y must have the same length, got {x.size} and {y.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    return x[keep], y[keep]


def correlation(x, y, method: str = "spearman") -> float:
    """Spearman (rank) or Pearson correlation of paired values.

    Pairs with a NaN are dropped. NaN when undefined: fewer than 3 pairs, or either
    variable constant.
    """
    _check_method(method)
    x, y = _paired_finite(x, y)
    if x.size < 3 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    if method == "spearman":
        return float(scipy_stats.spearmanr(x, y).statistic)
    return float(scipy_stats.pearsonr(x, y).statistic)


def fisher_interval(r: float, n_effective: int, confidence: float = 0.95, method: str = "spearman"):
    """Fisher-z interval of a correlation from ``n_effective`` pairs (NaN below 4).

    Pearson: SE(z) = 1 / sqrt(n - 3); Spearman: Bonett & Wright (2000),
    SE(z) = sqrt((1 + r**2 / 2) / (n - 3)).
    """
    check_confidence(confidence)
    _check_method(method)
    if not np.isfinite(r) or n_effective < 4:
        return float("nan"), float("nan")
    variance = (1.0 + r * r / 2.0) if method == "spearman" else 1.0
    se = math.sqrt(variance / (n_effective - 3))
    z = math.atanh(min(max(r, -0.999999), 0.999999))
    quantile = float(scipy_stats.norm.ppf(0.5 + confidence / 2.0))
    return math.tanh(z - quantile * se), math.tanh(z + quantile * se)


def _ranks_within(values: np.ndarray, strata: np.ndarray) -> np.ndarray:
    """Average ranks within each stratum, centred on the stratum's mean rank."""
    ranks = np.empty_like(values, dtype=float)
    for stratum in np.unique(strata):
        members = strata == stratum
        stratum_ranks = scipy_stats.rankdata(values[members])
        ranks[members] = stratum_ranks - stratum_ranks.mean()
    return ranks


def _pearson(x: np.ndarray, y: np.ndarray, axis: int = -1) -> np.ndarray:
    xc = x - x.mean(axis=axis, keepdims=True)
    yc = y - y.mean(axis=axis, keepdims=True)
    denominator = np.sqrt((xc**2).sum(axis=axis) * (yc**2).sum(axis=axis))
    with np.errstate(invalid="ignore", divide="ignore"):
        return (xc * yc).sum(axis=axis) / denominator


def correlation_test(
    x,
    y,
    method: str = "spearman",
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
) -> TestResult:
    """Correlation across networks, its Fisher-z interval and permutation p-values.

    The p-values permute x against a fixed y (``scipy.stats.permutation_test``, exact
    when n! is at most ``n_resamples``).
    """
    x, y = _paired_finite(x, y)
    r = correlation(x, y, method)
    low, high = fisher_interval(r, x.size, confidence, method)
    if not np.isfinite(r):
        return TestResult(r, low, high, float("nan"), float("nan"), int(x.size))
    if method == "spearman":
        x, y = scipy_stats.rankdata(x), scipy_stats.rankdata(y)
    p_values = {}
    for alternative in ALTERNATIVES:
        # Permuting x alone against a fixed y: n! distinct pairings (exact when few).
        result = scipy_stats.permutation_test(
            (x,),
            lambda a, axis: _pearson(a, np.broadcast_to(y, a.shape), axis=axis),
            permutation_type="pairings",
            vectorized=True,
            n_resamples=int(n_resamples),
            alternative=alternative,
            random_state=np.random.default_rng(seed),
        )
        p_values[alternative] = float(result.pvalue)
    return TestResult(r, low, high, p_values["greater"], p_values["less"], int(x.size), coverage=confidence)


def stratified_correlation_test(
    x,
    y,
    strata,
    confidence: float = 0.95,
    n_resamples: int = DEFAULT_PERMUTATIONS,
    seed: int = 0,
) -> TestResult:
    """Within-stratum rank correlation, pooled over strata.

    Both variables are ranked within each stratum and centred there, and the pooled
    correlation of those ranks measures the association that the strata (e.g. label
    corruption levels, which drive both variables) cannot explain. The p-values permute
    x within each stratum (Monte Carlo, ``n_resamples``); the interval is Fisher's with
    one pair lost per stratum beyond the first. Strata with fewer than 2 networks are
    dropped.
    """
    check_confidence(confidence)
    x = np.asarray(x, dtype=float).reshape(-1)
    y = np.asarray(y, dtype=float).reshape(-1)
    strata = np.asarray(strata).reshape(-1)
    if not (x.shape == y.shape == strata.shape):
        raise ValueError(f"x, y and strata must have the same length, got {x.size}, {y.size}, {strata.size}")
    keep = np.isfinite(x) & np.isfinite(y)
    x, y, strata = x[keep], y[keep], strata[keep]
    labels, counts = np.unique(strata, return_counts=True)
    kept_strata = labels[counts >= 2]
    members = np.isin(strata, kept_strata)
    x, y, strata = x[members], y[members], strata[members]
    n = int(x.size)
    nan = float("nan")
    if n < 3:
        return TestResult(nan, nan, nan, nan, nan, n)
    rank_x, rank_y = _ranks_within(x, strata), _ranks_within(y, strata)
    if not (rank_x.any() and rank_y.any()):
        return TestResult(nan, nan, nan, nan, nan, n)
    r = float(_pearson(rank_x, rank_y))
    low, high = fisher_interval(r, n - (len(kept_strata) - 1), confidence, "spearman")
    generator = np.random.default_rng(seed)
    permuted = np.tile(rank_x, (int(n_resamples), 1))
    for stratum in kept_strata:
        columns = np.flatnonzero(strata == stratum)
        permuted[:, columns] = generator.permuted(permuted[:, columns], axis=1)
    null = _pearson(permuted, rank_y[None, :], axis=1)
    # The observed statistic counts as one of the permutations (Phipson & Smyth 2010).
    p_greater = float((1 + np.sum(null >= r - 1e-12)) / (n_resamples + 1))
    p_less = float((1 + np.sum(null <= r + 1e-12)) / (n_resamples + 1))
    return TestResult(r, low, high, p_greater, p_less, n, coverage=confidence)


def regression_line_interval(x, y, at, confidence: float = 0.95) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Least-squares line of y on x at the points ``at``, with the t interval of its mean.

    ``fit +- t(n-2) * s * sqrt(1/n + (at - mean(x))**2 / Sxx)``, s the residual SD; the
    band a figure draws around a regression line (no bootstrap). Needs 3 pairs and a
    non-constant x (else ValueError).
    """
    check_confidence(confidence)
    x, y = _paired_finite(x, y)
    at = np.asarray(at, dtype=float)
    if x.size < 3 or np.ptp(x) == 0:
        raise ValueError(f"a regression line needs at least 3 pairs with varying x, got {x.size}")
    slope, intercept = np.polyfit(x, y, 1)
    residuals = y - (intercept + slope * x)
    s = math.sqrt(float(residuals @ residuals) / (x.size - 2))
    sxx = float(((x - x.mean()) ** 2).sum())
    fit = intercept + slope * at
    half = (
        float(scipy_stats.t.ppf(0.5 + confidence / 2.0, x.size - 2))
        * s
        * np.sqrt(1 / x.size + (at - x.mean()) ** 2 / sxx)
    )
    return fit, fit - half, fit + half
