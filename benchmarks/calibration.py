"""Calibration of the shipped verdict rules: coverage and rate of "supported" by simulation.

For each kind of claim, network count, shape of the per-network values and true effect,
draws seeded studies with known truth and runs the same rule the claims use
(:mod:`selectivity.claims.verdicts`, through :func:`selectivity.claims.calibration.simulate`). Under a
null truth the "supported" column is the false-positive rate, which the rules promise to
keep at most 1 - confidence = 0.05; "coverage" is how often the reported bounds hold the
truth. Beside each shipped rule, the mean rule it replaced (claims method version 2: t
interval + exact sign-flip test, null at a mean of 0 or of the margin). The calibration
tables of docs/results.md are this script's output::

    python benchmarks/calibration.py --repetitions 2000 --correlation-repetitions 1000
"""

from __future__ import annotations

import argparse
import time

from selectivity.claims.calibration import (
    DISTRIBUTIONS,
    EQUIVALENCE_MARGIN,
    U_SHAPED,
    exact_coverage,
    exact_level,
    simulate,
)

NETWORKS = (5, 8, 15, 30)
# kind -> (null effect, (label, effect)): the effect 1 unit of scale beyond the null in the claim's direction
DIFFERENCES = {
    "difference": (0.0, ("median 1 unit above 0", 1.0)),
    "equivalence": (EQUIVALENCE_MARGIN, ("median 1 unit below the margin", EQUIVALENCE_MARGIN - 1.0)),
}
CORRELATION_SHAPES = ("normal", "skewed_left", "two_clusters_low", "cauchy", "pareto_left")
# kind -> (network counts, (label, effect))
CORRELATIONS = {
    "correlation": ((5, 8), ("slope 1", 1.0)),
    "across_networks": ((15, 30), ("rho 0.6", 0.6)),
    "within_levels": ((15, 30), ("rho 0.6", 0.6)),
}


def _cells(values) -> str:
    return " | ".join(values)


def difference_tables(repetitions: int, seed: int) -> list[str]:
    lines = []
    header = f"| shape | {_cells(f'{n} networks' for n in NETWORKS)} |"
    rule_line = f"| --- | {_cells('---' for _ in NETWORKS)} |"
    for kind, (null, (effect_label, effect)) in DIFFERENCES.items():
        boundary = "0" if kind == "difference" else f"the margin ({EQUIVALENCE_MARGIN} units)"
        results = {
            (name, n, rule, truth): simulate(kind, n, value, name, repetitions, seed, verdict_rule=rule)
            for name in DISTRIBUTIONS
            for n in NETWORKS
            for rule in ("median", "mean")
            for truth, value in (("null", null), ("effect", effect))
        }
        both = {
            (name, n): simulate(kind, n, null, name, repetitions, seed, verdict_rule="mean_and_sign")
            for name in DISTRIBUTIONS
            for n in NETWORKS
        }
        lines += [
            "",
            f'**{kind}**: rate of "supported" at the null, shipped rule (median at {boundary}) / '
            f"old mean rule (mean at {boundary}) / old mean rule and the sign test both (mean at {boundary})",
            "",
            header,
            rule_line,
            f"| exact level of the shipped rule, any continuous shape | "
            f"{_cells(f'{exact_level(n):.3f}' for n in NETWORKS)} |",
        ]
        for name, shape in DISTRIBUTIONS.items():
            cells = (
                f"{results[name, n, 'median', 'null'].supported:.3f} / {results[name, n, 'mean', 'null'].supported:.3f}"
                + f" / {both[name, n].supported:.3f}"
                for n in NETWORKS
            )
            lines.append(f"| {name}: {shape.description} | {_cells(cells)} |")
        lines += [
            "",
            f"**{kind}**: coverage of the shipped rule's one-sided 95% bounds of the median at the null "
            f"(/ coverage of the old t interval of the mean)",
            "",
            header,
            rule_line,
            f"| exact coverage of the bounds, any continuous shape | "
            f"{_cells(f'{exact_coverage(n):.3f}' for n in NETWORKS)} |",
        ]
        for name in DISTRIBUTIONS:
            cells = (
                f"{results[name, n, 'median', 'null'].coverage:.3f} / {results[name, n, 'mean', 'null'].coverage:.3f}"
                for n in NETWORKS
            )
            lines.append(f"| {name} | {_cells(cells)} |")
        lines += [
            "",
            f'**{kind}**: power, rate of "supported" with the {effect_label} (shipped) / the mean 1 unit '
            f"beyond (old)",
            "",
            header,
            rule_line,
        ]
        for name in DISTRIBUTIONS:
            cells = (
                f"{results[name, n, 'median', 'effect'].supported:.3f} / {results[name, n, 'mean', 'effect'].supported:.3f}"
                for n in NETWORKS
            )
            lines.append(f"| {name} | {_cells(cells)} |")
    return lines


def correlation_table(repetitions: int, seed: int) -> list[str]:
    lines = [
        "",
        '**C2 and C3** (shipped rules): coverage at the null / rate of "supported" at the null / with the effect',
        "",
        '| claim kind | networks | shape | coverage | "supported" at the null | "supported" with the effect |',
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for kind, (counts, (label, effect)) in CORRELATIONS.items():
        for n in counts:
            for name in CORRELATION_SHAPES:
                null = simulate(kind, n, 0.0, name, repetitions, seed)
                power = simulate(kind, n, effect, name, repetitions, seed)
                lines.append(
                    f"| {kind} | {n} | {name} | {null.coverage:.3f} | {null.supported:.3f} | "
                    f"{power.supported:.3f} ({label}) |"
                )
            if kind != "correlation":
                null = simulate(kind, n, 0.0, U_SHAPED, repetitions, seed)
                lines.append(
                    f"| {kind} | {n} | {U_SHAPED}: y = x^2 + noise (dependent, Spearman 0) | {null.coverage:.3f} | "
                    f"{null.supported:.3f} | - |"
                )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repetitions", type=int, default=2000, help="studies per cell (C1, C4-C6)")
    parser.add_argument(
        "--correlation-repetitions",
        type=int,
        default=1000,
        help="studies per row of C2 and C3 (permutation tests)",
    )
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    started = time.perf_counter()
    lines = difference_tables(arguments.repetitions, arguments.seed)
    lines += correlation_table(arguments.correlation_repetitions, arguments.seed)
    print("\n".join(lines))
    print(
        f"\n{arguments.repetitions} studies per cell (differences, equivalence), "
        f"{arguments.correlation_repetitions} per row (C2, C3), seed {arguments.seed}; "
        f"{time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
