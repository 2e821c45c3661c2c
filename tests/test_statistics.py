import numpy as np
import pytest
from scipy import stats as scipy_stats

from selectivity.statistics import (
    bootstrap_confidence_interval,
    bootstrap_correlation_ci,
    bootstrap_indices,
    bootstrap_smallest_mean_ci,
    correlation,
    fisher_mean,
    mean_and_sem,
)


def test_mean_and_sem_known_values():
    mean, sem = mean_and_sem([1.0, 2.0, 3.0, 4.0])
    assert mean == pytest.approx(2.5)
    assert sem == pytest.approx(np.sqrt(5.0 / 3.0) / 2.0)  # sd (ddof=1) = sqrt(5/3), n = 4


def test_mean_and_sem_drops_nan_and_handles_tiny_samples():
    assert mean_and_sem([2.0, np.nan, 4.0]) == pytest.approx((3.0, 1.0))  # sd sqrt(2), n 2
    mean, sem = mean_and_sem([7.0])
    assert mean == 7.0 and np.isnan(sem)
    assert all(np.isnan(mean_and_sem([])))


def test_bootstrap_ci_of_two_points_is_exact():
    # Resampled means of [0, 1] are 0, 0.5, 1 with probabilities 1/4, 1/2, 1/4.
    assert bootstrap_confidence_interval([0.0, 1.0], n_resamples=4000, seed=1) == (0.0, 1.0)
    assert bootstrap_confidence_interval([0.0, 1.0], confidence=0.4, n_resamples=4000, seed=1) == (0.5, 0.5)


def test_bootstrap_ci_matches_normal_theory_for_a_large_sample():
    values = np.random.default_rng(3).normal(10.0, 2.0, size=400)
    low, high = bootstrap_confidence_interval(values, n_resamples=4000, seed=0)
    half_width = 1.96 * values.std(ddof=0) / np.sqrt(values.size)
    assert low == pytest.approx(values.mean() - half_width, abs=0.1 * half_width)
    assert high == pytest.approx(values.mean() + half_width, abs=0.1 * half_width)


def test_bootstrap_ci_is_reproducible_and_depends_on_seed():
    values = np.random.default_rng(0).normal(size=15)
    assert bootstrap_confidence_interval(values, seed=5, n_resamples=500) == bootstrap_confidence_interval(
        values, seed=5, n_resamples=500
    )
    assert bootstrap_confidence_interval(values, seed=5, n_resamples=500) != bootstrap_confidence_interval(
        values, seed=6, n_resamples=500
    )


def test_bootstrap_ci_loop_and_vectorised_paths_agree():
    values = np.random.default_rng(1).normal(size=12)
    vectorised = bootstrap_confidence_interval(values, statistic=np.median, n_resamples=300, seed=2)
    looped = bootstrap_confidence_interval(
        values, statistic=lambda sample: np.median(sample), n_resamples=300, seed=2
    )
    assert vectorised == pytest.approx(looped)


def test_bootstrap_ci_undefined_for_fewer_than_two_values_and_checks_arguments():
    assert all(np.isnan(bootstrap_confidence_interval([1.0, np.nan])))
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_confidence_interval([1.0, 2.0], confidence=95)
    with pytest.raises(ValueError, match="n_resamples"):
        bootstrap_confidence_interval([1.0, 2.0], n_resamples=0)


def test_smallest_mean_ci_equals_the_binding_columns_ci():
    rng = np.random.default_rng(4)
    small = rng.normal(0.1, 0.05, size=10)
    large = small + 5.0  # always larger, so the smaller mean is always column 0's
    joint = bootstrap_smallest_mean_ci(np.column_stack([small, large]), n_resamples=700, seed=3)
    assert joint == pytest.approx(bootstrap_confidence_interval(small, n_resamples=700, seed=3))


def test_smallest_mean_ci_is_never_above_either_columns_ci():
    rng = np.random.default_rng(5)
    columns = rng.normal(0.2, 0.3, size=(12, 2))
    joint_low, _ = bootstrap_smallest_mean_ci(columns, n_resamples=800, seed=0)
    for column in columns.T:
        assert joint_low <= bootstrap_confidence_interval(column, n_resamples=800, seed=0)[0]
    with pytest.raises(ValueError, match="two-dimensional"):
        bootstrap_smallest_mean_ci(columns[:, 0])


def test_correlation_known_answers():
    x = np.arange(1.0, 8.0)
    assert correlation(x, np.exp(x)) == pytest.approx(1.0)  # monotone: Spearman 1
    assert correlation(x, -(x**3)) == pytest.approx(-1.0)
    # Centred: x = (-1, 0, 1), y = (-4/3, -1/3, 5/3); r = 3 / sqrt(2 * 42/9).
    assert correlation([1.0, 2.0, 3.0], [1.0, 2.0, 4.0], method="pearson") == pytest.approx(
        3.0 / np.sqrt(2 * 42 / 9)
    )


def test_correlation_undefined_cases_and_nan_pairs():
    assert np.isnan(correlation([1.0, 2.0], [3.0, 4.0]))
    assert np.isnan(correlation([1.0, 1.0, 1.0, 1.0], [1.0, 2.0, 3.0, 4.0]))
    assert correlation([1.0, 2.0, np.nan, 3.0, 4.0], [2.0, 4.0, 0.0, 6.0, 8.0]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="kendall"):
        correlation([1, 2, 3], [1, 2, 3], method="kendall")
    with pytest.raises(ValueError, match="same length"):
        correlation([1, 2, 3], [1, 2])


def test_fisher_mean_known_values():
    assert fisher_mean([0.5, -0.5]) == pytest.approx(0.0)
    assert fisher_mean([0.2, 0.6, np.nan]) == pytest.approx(np.tanh((np.arctanh(0.2) + np.arctanh(0.6)) / 2))
    assert fisher_mean([1.0, 1.0]) == pytest.approx(0.999999)  # clipped, stays finite
    assert np.isnan(fisher_mean([np.nan]))


def test_fisher_mean_along_an_axis_matches_rows():
    rows = np.array([[0.1, 0.5, 0.9], [-0.3, 0.0, np.nan]])
    np.testing.assert_allclose(fisher_mean(rows, axis=1), [fisher_mean(rows[0]), fisher_mean(rows[1])])


def test_bootstrap_correlation_ci_matches_scipy_resample_by_resample():
    rng = np.random.default_rng(7)
    x = rng.normal(size=9)
    y = x + rng.normal(size=9)
    n_resamples = 300
    reference = []
    for index in bootstrap_indices(x.size, n_resamples, seed=11):
        xs, ys = x[index], y[index]
        if np.ptp(xs) > 0 and np.ptp(ys) > 0:
            reference.append(scipy_stats.spearmanr(xs, ys).statistic)
    expected = tuple(np.quantile(reference, [0.025, 0.975]))
    assert bootstrap_correlation_ci(x, y, n_resamples=n_resamples, seed=11) == pytest.approx(expected)


def test_bootstrap_correlation_ci_of_a_perfect_relation_and_tiny_samples():
    x = np.arange(10.0)
    assert bootstrap_correlation_ci(x, x**2, n_resamples=500) == pytest.approx((1.0, 1.0))
    assert bootstrap_correlation_ci(x, -x, method="pearson", n_resamples=500) == pytest.approx((-1.0, -1.0))
    assert all(np.isnan(bootstrap_correlation_ci([1.0, 2.0], [1.0, 2.0])))
