"""Summary statistics across networks: means, bootstrap intervals, correlations.

The unit of replication throughout is the *network* (one model, dataset, label
corruption and seed), so every bootstrap here resamples the values it is given,
which callers pass one per network. All resampling draws from
``numpy.random.default_rng(seed)``: the same inputs and seed give the same interval.

Missing values (NaN, e.g. a correlation that is undefined for a network whose
selectivity never changed) are dropped before anything is computed; the callers
report how many networks were left.
"""

from __future__ import annotations

import inspect
import warnings
from typing import Callable

import numpy as np
from scipy import stats as scipy_stats

CORRELATION_METHODS = ("spearman", "pearson")

# Fisher's z is infinite at |r| = 1; correlations are clipped to this before arctanh.
FISHER_CLIP = 0.999999


def _finite_1d(values, name: str = "values") -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {array.shape}")
    return array[np.isfinite(array)]


def _check_confidence(confidence: float) -> None:
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence!r}")


def _check_n_resamples(n_resamples: int) -> None:
    if int(n_resamples) != n_resamples or n_resamples < 1:
        raise ValueError(f"n_resamples must be a positive integer, got {n_resamples!r}")


def _check_method(method: str) -> None:
    if method not in CORRELATION_METHODS:
        raise ValueError(f"unknown correlation method {method!r}; choose one of {CORRELATION_METHODS}")


def _percentile_interval(distribution: np.ndarray, confidence: float) -> tuple[float, float]:
    distribution = distribution[np.isfinite(distribution)]
    if distribution.size == 0:
        return float("nan"), float("nan")
    alpha = 1.0 - confidence
    low, high = np.quantile(distribution, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def bootstrap_indices(n: int, n_resamples: int, seed: int) -> np.ndarray:
    """Row indices of ``n_resamples`` bootstrap samples of ``n`` units, shape (n_resamples, n)."""
    _check_n_resamples(n_resamples)
    return np.random.default_rng(seed).integers(0, n, size=(int(n_resamples), n))


def _accepts_axis(statistic: Callable) -> bool:
    try:
        return "axis" in inspect.signature(statistic).parameters
    except (TypeError, ValueError):  # builtins and some C functions have no signature
        return False


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


def bootstrap_confidence_interval(
    values,
    statistic: Callable = np.mean,
    confidence: float = 0.95,
    n_resamples: int = 10000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of ``statistic`` over the given units (networks).

    ``statistic`` maps a 1-D sample to a number; if it takes an ``axis`` keyword (as
    NumPy reductions and :func:`fisher_mean` do) all resamples are evaluated at once.
    NaNs are dropped first; fewer than two values give ``(nan, nan)``.
    """
    _check_confidence(confidence)
    finite = _finite_1d(values)
    if finite.size < 2:
        return float("nan"), float("nan")
    samples = finite[bootstrap_indices(finite.size, n_resamples, seed)]
    if _accepts_axis(statistic):
        distribution = np.asarray(statistic(samples, axis=1), dtype=float)
    else:
        distribution = np.array([statistic(sample) for sample in samples], dtype=float)
    return _percentile_interval(distribution, confidence)


def bootstrap_smallest_mean_ci(
    columns,
    confidence: float = 0.95,
    n_resamples: int = 10000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the smallest column mean, resampling rows jointly.

    ``columns`` has one row per network and one column per quantity that must all be
    positive for a claim (e.g. top-minus-bottom and top-minus-random). Resampling whole
    rows keeps each network's quantities paired; the lower bound is never above any
    single column's own bootstrap lower bound from the same resamples, so a lower bound
    above zero means every column's interval lies above zero. Rows with a NaN are
    dropped; fewer than two rows give ``(nan, nan)``.
    """
    _check_confidence(confidence)
    table = np.asarray(columns, dtype=float)
    if table.ndim != 2:
        raise ValueError(f"columns must be two-dimensional (networks x quantities), got shape {table.shape}")
    table = table[np.all(np.isfinite(table), axis=1)]
    if table.shape[0] < 2 or table.shape[1] == 0:
        return float("nan"), float("nan")
    samples = table[bootstrap_indices(table.shape[0], n_resamples, seed)]  # (resamples, n, k)
    distribution = samples.mean(axis=1).min(axis=1)
    return _percentile_interval(distribution, confidence)


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


def _rowwise_pearson(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Pearson correlation of each row of ``x`` with the same row of ``y``; NaN for constant rows."""
    xc = x - x.mean(axis=1, keepdims=True)
    yc = y - y.mean(axis=1, keepdims=True)
    denominator = np.sqrt((xc**2).sum(axis=1) * (yc**2).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (xc * yc).sum(axis=1) / denominator
    r[~(denominator > 0)] = np.nan
    return np.clip(r, -1.0, 1.0)


def bootstrap_correlation_ci(
    x,
    y,
    method: str = "spearman",
    confidence: float = 0.95,
    n_resamples: int = 10000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of a correlation, resampling (x, y) pairs (networks).

    Resamples in which the correlation is undefined (a variable constant, as happens
    when a few identical pairs are drawn) are left out of the percentiles. NaN pairs
    are dropped; fewer than 3 pairs give ``(nan, nan)``.
    """
    _check_method(method)
    _check_confidence(confidence)
    x, y = _paired_finite(x, y)
    if x.size < 3:
        return float("nan"), float("nan")
    indices = bootstrap_indices(x.size, n_resamples, seed)
    x_samples, y_samples = x[indices], y[indices]
    if method == "spearman":  # Spearman = Pearson of the (average-tie) ranks
        x_samples = scipy_stats.rankdata(x_samples, axis=1)
        y_samples = scipy_stats.rankdata(y_samples, axis=1)
    return _percentile_interval(_rowwise_pearson(x_samples, y_samples), confidence)


def fisher_mean(correlations, axis: int | None = None):
    """Mean of correlations taken on Fisher's z = arctanh(r) scale, transformed back.

    Correlations are clipped to +-0.999999 so that |r| = 1 stays finite; NaNs are
    ignored. Returns a float (NaN when nothing is left), or an array when ``axis``
    is given (used to evaluate many bootstrap resamples at once).
    """
    r = np.asarray(correlations, dtype=float)
    if axis is None:
        r = r[np.isfinite(r)]
        if r.size == 0:
            return float("nan")
        return float(np.tanh(np.arctanh(np.clip(r, -FISHER_CLIP, FISHER_CLIP)).mean()))
    z = np.arctanh(np.clip(r, -FISHER_CLIP, FISHER_CLIP))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", category=RuntimeWarning)  # an all-NaN slice gives NaN
        return np.tanh(np.nanmean(z, axis=axis))
