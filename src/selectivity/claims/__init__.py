"""Stage 5, claims: a computed verdict for each claim of the study.

Reads the combined tables of every network (selectivity summary, half ablation, shift
invariance); writes the claims table (one row per test, with effect, interval, p value,
verdict and controls), its HTML page, and the claims across architectures by relative depth.

Modules: :mod:`.verdicts` (the verdict rules), :mod:`.table` (claim statements, settings and
rows), :mod:`.claim_tests` (the tests of C1-C6), :mod:`.features` (the other features' claims
and CF), :mod:`.regularisation` (C7), :mod:`.evaluation` (all of them into one claims table),
:mod:`.power` (networks needed), :mod:`.wording`, :mod:`.depth_profiles`, :mod:`.report` (HTML and
the claims figure), :mod:`.calibration` (simulations that check the rules).
"""
