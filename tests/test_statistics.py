import itertools
import math

import numpy as np
import pytest
from scipy import stats as scipy_stats

from selectivity.statistics import (
    correlation,
    correlation_test,
    fisher_interval,
    interval_of_mean,
    mean_and_sem,
    mean_interval,
    mean_test,
    median_confidence_bounds,
    median_interval,
    median_test,
    minimum_networks,
    sign_flip_p_value,
    sign_test_p_value,
    stratified_correlation_test,
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


def test_t_interval_by_hand():
    values = [1.0, 2.0, 3.0, 4.0, 5.0]
    half_width = scipy_stats.t.ppf(0.975, 4) * np.std(values, ddof=1) / np.sqrt(5)
    assert mean_interval(values) == pytest.approx((3.0, 3.0 - half_width, 3.0 + half_width))
    mean, low, high = mean_interval([2.0, np.nan])
    assert mean == 2.0 and np.isnan(low) and np.isnan(high)
    assert mean_interval([0.5, 0.5, 0.5]) == pytest.approx((0.5, 0.5, 0.5))
    with pytest.raises(ValueError, match="1.5"):
        mean_interval(values, confidence=1.5)


def test_seaborn_errorbar_is_the_same_interval():
    values = [0.2, 0.5, 0.9, 0.4]
    assert interval_of_mean(0.9)(values) == pytest.approx(mean_interval(values, 0.9)[1:])
    assert interval_of_mean(0.9)([0.3]) == pytest.approx((0.3, 0.3))  # one network: no band


def test_sign_flip_p_value_enumerates_every_sign_pattern():
    values = np.array([0.5, 1.0, -0.2, 2.0, 0.1])
    means = [np.mean(values * np.array(signs)) for signs in itertools.product([-1, 1], repeat=5)]
    expected = np.mean(np.array(means) >= values.mean() - 1e-12)
    assert sign_flip_p_value(values, "greater") == pytest.approx(expected)
    assert sign_flip_p_value([1, 2, 3, 4, 5]) == pytest.approx(1 / 32)
    assert sign_flip_p_value([1, 2, 3, 4, 5], "less") == pytest.approx(1.0)
    assert sign_flip_p_value([0.0, 0.0]) == 1.0 and np.isnan(sign_flip_p_value([]))
    # against a null value: the same as shifting the data
    assert sign_flip_p_value(values + 0.3, null_value=0.3) == pytest.approx(expected)
    with pytest.raises(ValueError, match="sideways"):
        sign_flip_p_value(values, "sideways")


def test_sign_flip_p_value_is_reproducible_beyond_the_exact_limit():
    values = np.random.default_rng(0).normal(0.3, 1.0, size=30)
    first = sign_flip_p_value(values, seed=3)
    assert first == sign_flip_p_value(values, seed=3) and 0 < first < 1


def test_minimum_networks_is_where_the_exact_test_can_reach_its_level():
    assert minimum_networks(0.95) == 5  # 2**-5 = 0.031 <= 0.05 < 2**-4
    assert minimum_networks(0.99) == 7
    assert minimum_networks(0.8) == 3


def test_mean_test_collects_interval_and_both_p_values():
    result = mean_test([0.1, 0.2, 0.3, 0.4, 0.5, np.nan])
    assert result.n == 5 and result.estimate == pytest.approx(0.3)
    assert (result.ci_low, result.ci_high) == pytest.approx(mean_interval([0.1, 0.2, 0.3, 0.4, 0.5])[1:])
    assert result.p_greater == pytest.approx(1 / 32) and result.p_less == pytest.approx(1.0)


def test_median_interval_uses_order_statistics_with_their_exact_coverage():
    assert median_interval([5, 1, 4, 2, 3]) == pytest.approx((3, 1, 5, 1 - 2 / 32))
    # ten values: [x(2), x(9)] covers with 1 - 2 * P(B(10, 1/2) <= 1) = 0.9785 >= 0.95; [x(3), x(8)] would not
    median, low, high, coverage = median_interval(np.arange(10.0))
    assert (median, low, high) == (4.5, 1.0, 8.0)
    assert coverage == pytest.approx(1 - 2 * scipy_stats.binom.cdf(1, 10, 0.5))


def test_sign_test_by_hand():
    assert sign_test_p_value([1, 2, 3, 4, 5]) == pytest.approx(1 / 32)
    assert sign_test_p_value([1, 2, 3, 4, -5]) == pytest.approx(6 / 32)
    # values at the null count against the tested direction: 2 of 4 above 0
    assert sign_test_p_value([1, 2, 0, 0]) == pytest.approx(11 / 16)
    assert sign_test_p_value([1, 2, 0, 0], "less") == pytest.approx(1.0)
    assert sign_test_p_value([0.5, 0.5, 0.5], null_value=0.5) == 1.0 and np.isnan(sign_test_p_value([]))
    result = median_test([0.9, 1.0, 0.8, 1.0, 0.9])
    assert result.estimate == 0.9 and result.p_greater == pytest.approx(1 / 32)
    assert (result.ci_low, result.ci_high, result.coverage) == pytest.approx((0.8, 1.0, 1 - 2 / 32))
    assert result.mean == pytest.approx(0.92) and result.spread == pytest.approx(
        np.std([0.9, 1, 0.8, 1, 0.9], ddof=1)
    )


def test_sign_test_keeps_its_level_with_ties_at_the_null():
    """A discrete distribution with its median at 0 and most mass there: dropping the zeros would reject."""
    values = np.array([0.0] * 7 + [0.3])  # P(X = 0) large, P(X > 0) small: the median is 0
    assert sign_test_p_value(values) > 0.05
    assert sign_test_p_value(values[values != 0]) == 0.5  # what the textbook test that drops zeros sees


@pytest.mark.parametrize(
    "n, k", [(5, 1), (6, 1), (7, 1), (8, 2), (9, 2), (10, 2), (11, 3), (15, 4), (30, 11)]
)
def test_median_bounds_are_the_largest_order_statistics_at_the_level(n, k):
    values = np.arange(1.0, n + 1)
    median, low, high, coverage = median_confidence_bounds(values, 0.95)
    assert (low, high) == (float(k), float(n - k + 1)) and median == np.median(values)
    # each bound holds at the level: P(B(n, 1/2) <= k - 1) <= 0.05, and k + 1 would not
    assert scipy_stats.binom.cdf(k - 1, n, 0.5) <= 0.05 < scipy_stats.binom.cdf(k, n, 0.5)
    assert coverage == pytest.approx(1 - 2 * scipy_stats.binom.cdf(k - 1, n, 0.5))
    assert all(np.isnan(median_confidence_bounds([1.0])[1:]))


def test_median_bounds_and_sign_test_always_agree():
    """The bounds invert the sign test: bound beyond the null <=> p <= alpha, ties and all."""
    generator = np.random.default_rng(5)
    for _ in range(3000):
        n = int(generator.integers(5, 31))
        values = np.round(generator.normal(generator.normal(0, 0.6), 1.0, n), int(generator.integers(0, 3)))
        null = float(generator.choice([0.0, 0.5, np.median(values)]))
        result = median_test(values, 0.95, null)
        assert (result.ci_low > null) == (result.p_greater <= 0.05), (values, null)
        assert (result.ci_high < null) == (result.p_less <= 0.05), (values, null)


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


def test_fisher_interval_by_hand():
    z, quantile = math.atanh(0.5), scipy_stats.norm.ppf(0.975)
    se_pearson, se_spearman = 1 / math.sqrt(12), math.sqrt(1.125 / 12)
    assert fisher_interval(0.5, 15, method="pearson") == pytest.approx(
        (math.tanh(z - quantile * se_pearson), math.tanh(z + quantile * se_pearson))
    )
    assert fisher_interval(0.5, 15) == pytest.approx(
        (math.tanh(z - quantile * se_spearman), math.tanh(z + quantile * se_spearman))
    )
    assert all(np.isnan(fisher_interval(0.5, 3)))


def test_correlation_test_is_exact_for_few_networks():
    x, y = [1.0, 2.0, 3.0, 4.0, 5.0], [1.0, 3.0, 2.0, 5.0, 4.0]
    r = scipy_stats.spearmanr(x, y).statistic
    null = [scipy_stats.spearmanr(x, permuted).statistic for permuted in itertools.permutations(y)]
    result = correlation_test(x, y)
    assert result.estimate == pytest.approx(r)
    assert result.p_greater == pytest.approx(np.mean(np.array(null) >= r - 1e-12))
    assert (result.ci_low, result.ci_high) == pytest.approx(fisher_interval(r, 5))


def test_within_strata_correlation_removes_what_the_strata_drive():
    strata = np.repeat([0, 1, 2], 5)
    within = np.tile(np.arange(5.0), 3)
    # across strata both rise together, within strata they run opposite ways
    x = 10 * strata + within
    y = 10 * strata - within
    assert correlation(x, y) > 0.7
    result = stratified_correlation_test(x, y, strata, n_resamples=999, seed=0)
    assert result.estimate == pytest.approx(-1.0)
    assert result.p_less <= 0.01 and result.p_greater > 0.9 and result.n == 15
    assert result == stratified_correlation_test(x, y, strata, n_resamples=999, seed=0)


def test_within_strata_correlation_drops_strata_of_one_network():
    x, y, strata = [1.0, 2.0, 3.0, 1.0, 2.0, 5.0], [1.0, 2.0, 3.0, 2.0, 1.0, 0.0], [0, 0, 0, 1, 1, 2]
    result = stratified_correlation_test(x, y, strata, n_resamples=99)
    assert result.n == 5


def test_regression_band_by_hand():
    from selectivity.statistics import regression_line_interval

    x = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    y = np.array([0.1, 0.9, 2.2, 2.8, 4.1])
    slope, intercept = np.polyfit(x, y, 1)
    s = np.sqrt(np.sum((y - intercept - slope * x) ** 2) / 3)
    fit, low, high = regression_line_interval(x, y, [2.0, 4.0])
    assert fit == pytest.approx(intercept + slope * np.array([2.0, 4.0]))
    half_at_mean = scipy_stats.t.ppf(0.975, 3) * s / np.sqrt(5)  # x = mean(x): only the 1/n term
    assert (high[0] - fit[0]) == pytest.approx(half_at_mean)
    assert (high[1] - fit[1]) > (high[0] - fit[0])  # wider away from the mean
    with pytest.raises(ValueError, match="varying x"):
        regression_line_interval([1.0, 1.0, 1.0], [1.0, 2.0, 3.0], [1.0])


def test_sign_flip_p_value_of_a_single_network_is_one_half_or_one():
    # two sign patterns (+d, -d): the observed one is at least as extreme in one of the two
    assert sign_flip_p_value([0.3], "greater") == 0.5 and sign_flip_p_value([0.3], "less") == 1.0
    assert sign_flip_p_value([-0.3], "less") == 0.5 and sign_flip_p_value([-0.3], "greater") == 1.0


# ---------------------------------------------------------------- power: detectable effects, networks needed


def test_sign_test_critical_counts_by_brute_force():
    from selectivity.claims.power import sign_test_critical_count

    for n in range(1, 60):
        expected = min(c for c in range(n + 2) if c > n or scipy_stats.binom.sf(c - 1, n, 0.5) <= 0.05)
        assert sign_test_critical_count(n, 0.05) == expected
    np.testing.assert_array_equal(sign_test_critical_count(np.arange(4, 9), 0.05), [5, 5, 6, 7, 7])


def test_detectable_shift_is_detected_80_percent_of_the_time_by_the_shipped_rule():
    from selectivity.claims.power import sign_test_detectable_shift
    from selectivity.claims.verdicts import SUPPORTED, VerdictRule, positive_effect

    shift = sign_test_detectable_shift(8, 0.05)
    generator, studies = np.random.default_rng(3), 4000
    rule = VerdictRule()
    supported = np.mean(
        [positive_effect(generator.normal(shift, 1.0, 8), rule).verdict == SUPPORTED for _ in range(studies)]
    )
    assert supported == pytest.approx(0.8, abs=3 * np.sqrt(0.8 * 0.2 / studies))
    assert np.isinf(sign_test_detectable_shift(4, 0.05))  # 4 networks cannot reach 0.05


def test_networks_needed_are_the_fewest_from_which_power_stays_at_80_percent():
    from selectivity.claims.power import sign_test_networks_needed_at, sign_test_power

    probability = scipy_stats.norm.cdf(1.0)
    needed = int(sign_test_networks_needed_at(probability, 0.05))
    powers = sign_test_power(np.arange(1, 400), probability, 0.05)
    assert powers[needed - 2] < 0.8 and (powers[needed - 1 :] >= 0.8).all()
    assert sign_test_networks_needed_at(1.0, 0.05) == 5  # every network on one side: the minimum
    assert np.isinf(sign_test_networks_needed_at(0.5004, 0.05))  # beyond the 10,000 searched


def test_networks_needed_of_a_sign_test_come_from_the_networks_on_each_side_of_the_null():
    from selectivity.claims.power import sign_test_networks_needed_at, sign_test_power, sign_test_power_of

    def needed_by_brute_force(probability):
        powers = sign_test_power(np.arange(1, 2000), probability, 0.05)
        return 1 + int(np.flatnonzero(powers < 0.8)[-1]) + 1

    # 4 of 5 above 0: (4 + 1/2) / 6 = 0.75, whatever the sizes of the values (a skewed run included)
    for values in ([0.1, 0.2, 0.3, 0.4, -0.1], [0.01, 0.02, 0.03, 50.0, -0.1]):
        test = median_test(values)
        assert (test.above, test.below) == (4, 1)
        power = sign_test_power_of(
            test.estimate, 0.0, test.spread, 5, "greater", 0.05, test.above, test.below
        )
        assert (
            power.networks_needed == needed_by_brute_force(0.75) == sign_test_networks_needed_at(0.75, 0.05)
        )
        assert not power.against_claim
    # the claimed side "less" (C6) and an observed effect against the claim
    power = sign_test_power_of(0.3, 0.1, 0.2, 5, "less", 0.05, above=5, below=0)
    assert power.against_claim and power.networks_needed == needed_by_brute_force(5.5 / 6)
    assert "against the claim" in power.note
    # as many on each side, or most at the null: no number decides
    assert np.isnan(sign_test_power_of(0.0, 0.0, 1.0, 6, "greater", 0.05, above=3, below=3).networks_needed)
    assert np.isnan(sign_test_power_of(0.0, 0.0, 1.0, 6, "greater", 0.05, above=2, below=0).networks_needed)
    with pytest.raises(ValueError, match="do not fit"):
        sign_test_power_of(0.1, 0.0, 1.0, 5, "greater", 0.05, above=4, below=3)
    with pytest.raises(ValueError, match=r"\(1/2, 1\]"):
        sign_test_networks_needed_at(0.5, 0.05)


def test_a_supported_sign_test_never_needs_many_more_networks_than_it_had():
    """The networks needed agree with the verdict's evidence for any shape of values: a supported
    sign test (at least c(n) of n on the claimed side) has an estimated side probability of at
    least (c + 1/2) / (n + 1), however far one network lies from the others, so it never needs
    more networks than that probability does (5 of 5: 11)."""
    from selectivity.claims.power import (
        power_of,
        sign_test_critical_count,
        sign_test_networks_needed_at,
    )
    from selectivity.claims.verdicts import SUPPORTED, VerdictRule, positive_effect

    generator, rule = np.random.default_rng(11), VerdictRule()
    for n in (5, 8, 15):
        bound = sign_test_networks_needed_at((sign_test_critical_count(n, 0.05) + 0.5) / (n + 1), 0.05)
        supported = 0
        for _ in range(40):
            values = generator.lognormal(0.0, 2.0, n) - 0.2  # strongly skewed, mostly positive
            decision = positive_effect(values, rule)
            if decision.verdict == SUPPORTED:
                supported += 1
                assert power_of(decision, rule).networks_needed <= bound
        assert supported > 0
    assert sign_test_networks_needed_at(5.5 / 6, 0.05) == 11


def test_correlation_power_by_the_fisher_formula():
    from selectivity.claims.power import correlation_detectable, correlation_networks_needed

    z = scipy_stats.norm.ppf(0.975) + scipy_stats.norm.ppf(0.8)
    r = correlation_detectable(15, 0.95, "spearman")
    assert np.arctanh(r) == pytest.approx(z * np.sqrt((1 + r**2 / 2) / 12))
    assert correlation_detectable(15, 0.95, "pearson") == pytest.approx(np.tanh(z / np.sqrt(12)))
    n = correlation_networks_needed(0.5, 0.95, "pearson")
    assert n == np.ceil(3 + (z / np.arctanh(0.5)) ** 2)
    assert np.isinf(correlation_detectable(3, 0.95, "spearman"))
