"""Stage 5, claims: a computed verdict for each claim of the study.

Reads the combined tables of every network (selectivity summary, half ablation, shift
invariance); writes the claims table (one row per test, with effect, interval, p value,
verdict and controls), its HTML page, and the claims across architectures by relative depth.

Modules: :mod:`.verdicts` (the verdict rules), :mod:`.table` (claim statements, settings and
rows), :mod:`.evaluation` (the tests of C1-C6), :mod:`.depth_profiles`, :mod:`.report` (HTML and
the claims figure), :mod:`.calibration` (simulations that check the rules).
"""
