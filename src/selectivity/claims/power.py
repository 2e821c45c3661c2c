"""How far a verdict is from a decision: the detectable effect and the networks needed (docs/method.md §6.2).

For each test of the claims table, from that run's own values:

* **detectable effect**: the effect (on the scale of the row's ``effect_size``) at which
  the test, with the networks the run had, would say "supported" with probability
  :data:`POWER` (80%);
* **networks needed**: how many networks the test would need to decide with 80%
  power if the true effect were the one observed: "supported" when the observed effect
  points the claim's way, "not supported" when it points against it (the note says so).

Models (stated in docs/method.md §6.2):

* Medians (the sign test of C1, C2, C4-C6): the power of the exact one-sided sign test
  at level alpha with n networks, when each network lies on the claimed side with
  probability p, is exactly P(Binomial(n, p) >= c(n)), c(n) its critical count.
  The sign test's power is not monotone in n (the critical count moves in steps), so
  the networks needed are the fewest from which the power stays at least 80% (checked
  up to :data:`MAXIMUM_NETWORKS`).

  - *Networks needed*: p is estimated from the sign test's own statistic, the count k
    of the run's n networks on the observed side of the null: (k + 1/2) / (n + 1)
    (the add-one-half rule, which keeps 5 of 5 networks from reading as certainty).
    Distribution-free like the test, so it cannot contradict the verdict's evidence the
    way a normal model with a skewed run's SD did (claims method version 5).
  - *Detectable effect*: an effect on the scale of the values needs a scale, so here the
    values are taken as normal with the run's own SD, shifted: p = Phi(shift / SD).
* Correlations across networks (C3): Fisher's z with the standard error the interval
  uses (Bonett & Wright's for Spearman); a verdict needs the two-sided interval above 0,
  so atanh(r) must exceed (z_{(1+confidence)/2} + z_{power}) standard errors. Within
  label-corruption levels one network per level beyond the first is lost.

A quantity that is undefined (too few networks for any decision, no spread, a zero
effect) is NaN, and :attr:`Power.note` says why.
"""

from __future__ import annotations

import argparse
import functools
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import optimize
from scipy import stats as scipy_stats

#: The power at which effects are called detectable and networks needed.
POWER = 0.8
#: Networks needed are searched up to this many; beyond it they are reported as infinite.
MAXIMUM_NETWORKS = 10_000

#: Decision kinds (``selectivity.claims.verdicts.Decision.kind``) and their power models.
SIGN_TEST, CORRELATION, WITHIN_STRATA = "sign test", "correlation", "within-strata correlation"


@dataclass(frozen=True)
class Power:
    """The detectable effect and the networks needed of one test (NaN where undefined, with a note)."""

    detectable_effect: float = float("nan")
    networks_needed: float = float("nan")
    note: str = ""
    #: the observed effect points against the claim, so the networks needed are those that would show that
    against_claim: bool = False


# ----------------------------------------------------------------------------- sign test


def sign_test_critical_count(n, alpha: float):
    """Smallest count c with P(Binomial(n, 1/2) >= c) <= alpha; n + 1 where none is (no rejection possible).

    Vectorised over ``n``.
    """
    n = np.asarray(n, dtype=int)
    count = np.asarray(scipy_stats.binom.isf(alpha, n, 0.5), dtype=int) + 1
    # isf works in floating point: step to the exact critical count
    count = np.where(scipy_stats.binom.sf(count - 1, n, 0.5) > alpha, count + 1, count)
    count = np.where(scipy_stats.binom.sf(count - 2, n, 0.5) <= alpha, count - 1, count)
    return np.minimum(count, n + 1) if count.ndim else int(min(count, n + 1))


def sign_test_power(n, probability_in_direction: float, alpha: float):
    """Power of the exact one-sided sign test with ``n`` networks when each value lies on the claimed
    side of the null with probability ``probability_in_direction``. Vectorised over ``n``."""
    return _power_at_counts(sign_test_critical_count(n, alpha), n, probability_in_direction)


def _power_at_counts(count, n, probability_in_direction: float):
    return scipy_stats.binom.sf(np.asarray(count) - 1, n, probability_in_direction)


@functools.lru_cache(maxsize=8)
def _critical_counts_up_to_maximum(alpha: float) -> np.ndarray:
    """The critical counts of 1 .. MAXIMUM_NETWORKS networks (read-only): computed once per level,
    because every row's networks needed asks for them all (33 ms of its 35 ms without this cache)."""
    counts = sign_test_critical_count(np.arange(1, MAXIMUM_NETWORKS + 1), alpha)
    counts.flags.writeable = False
    return counts


def sign_test_detectable_shift(n: int, alpha: float, power: float = POWER) -> float:
    """The shift of a normal median from the null, in SDs, that the sign test detects with ``power``.

    P(Binomial(n, p) >= c) = P(Beta(c, n - c + 1) <= p), so p* is that Beta's ``power``
    quantile and the shift is Phi^-1(p*). Infinite where n networks cannot reach level alpha.
    """
    count = sign_test_critical_count(n, alpha)
    if count > n:
        return math.inf
    return float(scipy_stats.norm.ppf(scipy_stats.beta.ppf(power, count, n - count + 1)))


def sign_test_networks_needed_at(
    probability_in_direction: float, alpha: float, power: float = POWER
) -> float:
    """The fewest networks from which the sign test's power stays at least ``power`` when each
    network lies on the claimed side with ``probability_in_direction`` (> 1/2).

    Infinite beyond :data:`MAXIMUM_NETWORKS`.
    """
    if not 0.5 < probability_in_direction <= 1.0:
        raise ValueError(f"the probability must lie in (1/2, 1], got {probability_in_direction!r}")
    networks = np.arange(1, MAXIMUM_NETWORKS + 1)
    powers = _power_at_counts(
        _critical_counts_up_to_maximum(float(alpha)), networks, probability_in_direction
    )
    short = np.flatnonzero(powers < power)
    if not short.size:
        return 1.0
    if short[-1] == networks.size - 1:
        return math.inf
    return float(networks[short[-1] + 1])


def estimated_side_probability(count: int, n: int) -> float:
    """The probability that a network lies on a side of the null, from ``count`` of ``n`` networks
    that did: (count + 1/2) / (n + 1)."""
    if not 0 <= count <= n:
        raise ValueError(f"a count of networks must lie in [0, {n}], got {count!r}")
    return (count + 0.5) / (n + 1)


def sign_test_power_of(
    estimate: float,
    null_value: float,
    spread: float,
    n: int,
    claimed: str,
    alpha: float,
    above: int,
    below: int,
) -> Power:
    """:class:`Power` of a median's sign test from the run's median, SD, number of networks and the
    counts of networks ``above`` and ``below`` the null (module docstring)."""
    direction = 1.0 if claimed == "greater" else -1.0
    if n < 2 or not np.isfinite(spread) or not np.isfinite(estimate):
        return Power(note=f"{n} networks: a spread needs at least 2")
    notes = []
    shift = sign_test_detectable_shift(n, alpha)
    if math.isinf(shift):
        detectable = float("nan")
        notes.append(f"with {n} networks the exact sign test cannot reach level {alpha:.3g}")
    else:
        detectable = null_value + direction * shift * spread
    if spread == 0:
        notes.append("the networks' values do not vary")
    if not (0 <= above and 0 <= below and above + below <= n):
        raise ValueError(f"counts above ({above}) and below ({below}) the null do not fit {n} networks")
    in_direction, against_direction = (above, below) if direction > 0 else (below, above)
    if in_direction == against_direction:
        notes.append(
            f"as many networks on each side of the null ({in_direction}): no number of networks decides it"
        )
        return Power(detectable, float("nan"), "; ".join(notes))
    against = against_direction > in_direction
    probability = estimated_side_probability(max(in_direction, against_direction), n)
    if probability <= 0.5:  # values at the null count against both sides (e.g. 2 above, 1 below of 5)
        notes.append(
            "at most half the networks lie on either side of the null: no number of networks decides it"
        )
        return Power(detectable, float("nan"), "; ".join(notes))
    needed = sign_test_networks_needed_at(probability, alpha)
    if math.isinf(needed):
        notes.append(f"more than {MAXIMUM_NETWORKS} networks needed")
    if against:
        notes.append(
            "the observed effect points against the claim: networks needed to show that (not supported)"
        )
    return Power(detectable, needed, "; ".join(notes), bool(against))


# ----------------------------------------------------------------------------- correlations


def _fisher_variance(r: float, method: str) -> float:
    return 1.0 + r * r / 2.0 if method == "spearman" else 1.0


def _fisher_z_needed(confidence: float, power: float) -> float:
    return float(scipy_stats.norm.ppf(0.5 + confidence / 2.0) + scipy_stats.norm.ppf(power))


def correlation_detectable(n_effective: int, confidence: float, method: str, power: float = POWER) -> float:
    """The correlation whose Fisher interval lies above 0 with ``power`` from ``n_effective`` pairs."""
    if n_effective <= 3:
        return math.inf
    z = _fisher_z_needed(confidence, power)

    def gap(r: float) -> float:
        return math.atanh(r) - z * math.sqrt(_fisher_variance(r, method) / (n_effective - 3))

    if gap(1 - 1e-12) < 0:
        return math.inf
    return float(optimize.brentq(gap, 0.0, 1 - 1e-12))


def correlation_networks_needed(r: float, confidence: float, method: str, power: float = POWER) -> float:
    """Pairs with which a true correlation ``r`` has its Fisher interval beyond 0 with ``power``."""
    if abs(r) >= 1:
        return 4.0
    z = _fisher_z_needed(confidence, power)
    return float(max(4, math.ceil(3 + _fisher_variance(r, method) * (z / math.atanh(abs(r))) ** 2)))


def correlation_power_of(
    r: float, n: int, strata: int, method: str, confidence: float, minimum_networks: int
) -> Power:
    """:class:`Power` of a correlation test (across networks, or within ``strata`` > 1 levels)."""
    lost = max(strata - 1, 0)
    minimum = max(4, minimum_networks)
    notes = []
    if n < minimum:
        detectable = float("nan")
        notes.append(f"{n} networks: a verdict needs at least {minimum}")
    else:
        detectable = correlation_detectable(n - lost, confidence, method)
        if math.isinf(detectable):
            detectable = float("nan")
            notes.append(f"{n} networks in {strata} levels leave too few pairs for a Fisher interval")
    if not np.isfinite(r) or r == 0:
        notes.append("the correlation is 0 or undefined: no number of networks decides it")
        return Power(detectable, float("nan"), "; ".join(notes))
    needed = max(minimum, correlation_networks_needed(r, confidence, method) + lost)
    against = r < 0
    if against:
        notes.append(
            "the observed correlation points against the claim: networks needed to show that (not supported)"
        )
    return Power(detectable, float(needed), "; ".join(notes), against)


# ----------------------------------------------------------------------------- decisions and claims


def power_of(decision, rule) -> Power:
    """:class:`Power` of a :class:`selectivity.claims.verdicts.Decision` under ``rule`` (a VerdictRule)."""
    test = decision.test
    if decision.kind == SIGN_TEST:
        return sign_test_power_of(
            test.estimate,
            test.null_value,
            test.spread,
            test.n,
            decision.claimed,
            rule.alpha,
            test.above,
            test.below,
        )
    if decision.kind in (CORRELATION, WITHIN_STRATA):
        return correlation_power_of(
            test.estimate, test.n, decision.strata, decision.method, rule.confidence, rule.minimum_networks
        )
    raise ValueError(f"no power model for a decision of kind {decision.kind!r}")


def combined_power(parts: list[Power], chosen: Power | None) -> Power:
    """The power columns of a claim that needs every one of ``parts``.

    Detectable effect: that of ``chosen`` (the part whose effect the claim row shows).
    Networks needed: where every part points the claim's way, the most any part needs
    (each at 80% power); where some point against it, the fewest with which one of those
    would show it ("not supported" decides the claim).
    """
    detectable = chosen.detectable_effect if chosen is not None else float("nan")
    against = [part for part in parts if part.against_claim]
    if not parts:
        return Power(detectable, float("nan"), "no test has data")
    if against:
        needed = min(part.networks_needed for part in against)
        return Power(
            detectable,
            needed,
            "a test points against the claim: the fewest networks with which one would show it (not supported)",
            True,
        )
    needs = [part.networks_needed for part in parts]
    if any(np.isnan(needs)):
        return Power(detectable, float("nan"), "a test's networks needed are undefined")
    return Power(detectable, max(needs), "the most networks any of its tests needs (each at 80% power)")


#: Columns of :func:`networks_needed_table`.
NETWORKS_NEEDED_COLUMNS = (
    "model",
    "dataset",
    "claim",
    "feature",
    "test",
    "layer",
    "verdict",
    "n_networks",
    "n_levels",
    "effect_size",
    "detectable_effect",
    "networks_needed",
    "networks_needed_per_level",
    "power_note",
)


def networks_needed_table(claims: pd.DataFrame) -> pd.DataFrame:
    """Per claim and feature (its headline row), the networks per label-corruption level it would need to decide.

    Reads the claims table (:data:`selectivity.claims.table.CLAIM_COLUMNS`);
    ``networks_needed_per_level`` divides the networks needed over the levels the test
    spans (C3), rounding up.
    """
    if "feature" not in claims.columns:  # a table of the paper's claims only (claims method version 3)
        claims = claims.assign(feature="orientation")
    missing = sorted(set(NETWORKS_NEEDED_COLUMNS) - {"networks_needed_per_level"} - set(claims.columns))
    if missing:
        raise ValueError(
            f"the claims table lacks the columns {missing}; it was written before claims method version 3: "
            "rerun evaluate_claims"
        )
    headline = claims[claims["headline"].astype(bool)].copy()
    levels = headline["n_levels"].clip(lower=1)
    headline["networks_needed_per_level"] = np.ceil(headline["networks_needed"] / levels)
    return headline[list(NETWORKS_NEEDED_COLUMNS)].reset_index(drop=True)


def format_networks_needed(table: pd.DataFrame) -> str:
    """The networks-needed table as aligned text, one line per claim, for a log or a terminal."""
    lines = [
        f"{'model':<10} {'claim':<5} {'feature':<17} {'verdict':<32} {'networks':>8} {'needed/level':>12} "
        f"{'effect':>10} {'detectable':>10}  note"
    ]
    for row in table.itertuples():
        needed = "n/a" if pd.isna(row.networks_needed_per_level) else f"{row.networks_needed_per_level:g}"
        lines.append(
            f"{str(row.model):<10} {row.claim:<5} {row.feature:<17} {row.verdict:<32} {row.n_networks:>8} {needed:>12} "
            f"{row.effect_size:>10.3g} {row.detectable_effect:>10.3g}  {row.power_note if isinstance(row.power_note, str) else ''}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """``python -m selectivity.claims.power results/claims.csv``: print the networks each claim would need."""
    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument("claims", help="a claims table (results/claims.csv of a finished run)")
    arguments = parser.parse_args(argv)
    print(format_networks_needed(networks_needed_table(pd.read_csv(arguments.claims))))


if __name__ == "__main__":
    main()
