"""Calibration of the shipped verdict rules: coverage and rate of "supported" by simulation.

For each kind of claim, network count, noise distribution and true effect, draws
``--repetitions`` seeded studies with known truth and runs the same rule the claims
use (:mod:`selectivity.claims.verdicts`, through :func:`selectivity.claims.calibration.simulate`).
Under a null truth the "supported" column is the false-positive rate, which the rules
promise to keep at most 1 - confidence = 0.05; "coverage" is how often the reported 95%
interval holds the truth. The README's calibration table is this script's output::

    python benchmarks/calibration.py --repetitions 4000
"""

from __future__ import annotations

import argparse
import time

from selectivity.claims.calibration import CLAIM_KINDS, EQUIVALENCE_MARGIN, simulate

# kind -> (network counts, distributions, (label, true effect) pairs)
SCENARIOS = {
    "difference": ((3, 5, 10), ("normal", "heavy_tailed", "skewed"), (("null", 0.0), ("effect 1 SD", 1.0))),
    "correlation": ((5, 10), ("normal",), (("null", 0.0), ("slope 1", 1.0))),
    "across_networks": ((15, 30), ("normal",), (("null", 0.0), ("rho 0.6", 0.6))),
    "within_levels": ((15, 30), ("normal",), (("null", 0.0), ("rho 0.6", 0.6))),
    "equivalence": (
        (5, 10),
        ("normal", "heavy_tailed", "skewed"),
        (("null: at the margin", EQUIVALENCE_MARGIN), ("effect 0.5 SD below 0", -0.5)),
    ),
}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repetitions", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    arguments = parser.parse_args()
    started = time.perf_counter()
    print("| claim kind | networks | noise | truth | coverage of 95% CI | rate of 'supported' |")
    print("| --- | --- | --- | --- | --- | --- |")
    for kind, (counts, distributions, effects) in SCENARIOS.items():
        for networks in counts:
            for distribution in distributions:
                for label, effect in effects:
                    result = simulate(
                        kind, networks, effect, distribution, arguments.repetitions, arguments.seed
                    )
                    print(
                        f"| {kind} ({CLAIM_KINDS[kind]}) | {networks} | {distribution} | {label} | "
                        f"{result.coverage:.3f} | {result.supported:.3f} |"
                    )
    print(
        f"\n{arguments.repetitions} studies per row, seed {arguments.seed}; {time.perf_counter() - started:.0f} s"
    )


if __name__ == "__main__":
    main()
