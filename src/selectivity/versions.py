"""Method versions of the workflow's stages, and the version of the code that ran.

Snakemake reruns a job when its params change, but not when package code changes
(package modules are not rule inputs, so fixing a comment never retrains a network).
A change that alters what a stage computes must therefore bump that stage's entry in
:data:`METHOD_VERSIONS`: the version enters the params of the stage's rules, so the
next run reruns the stage and, through the changed files, everything downstream.

The rule for maintainers (docs/development.md "Rerunning only what changed"): bump the version of
the *earliest* stage whose results your change alters; never bump for refactoring,
comments, logging or speed-ups that leave the numbers unchanged.

Torch-free on purpose: the Snakemake controller imports it.
"""

from __future__ import annotations

import functools
import hashlib
import subprocess
from pathlib import Path

import selectivity

#: Stage -> method version. Stages: data (prepare/split), training, tuning, causal
#: (class selectivity, ablation, shift invariance), aggregate (tables, summaries,
#: correlations), claims (verdicts), figures.
METHOD_VERSIONS: dict[str, int] = {
    "data": 1,
    "training": 1,
    # 2: spatial-frequency, colour and phase columns (tuning.features); orientation columns unchanged.
    "tuning": 2,
    # 2: matched-random ablation condition; ablation losses clip probabilities at 1e-7.
    "causal": 2,
    # 2: t / order-statistic / Fisher intervals instead of bootstraps; dead units counted.
    "aggregate": 2,
    # 2: calibrated verdict rules, per-layer and control tests, C6 equivalence margin.
    # 3: claims about most networks (median, exact sign test, bounds that invert it); detectable
    #    effect and networks needed per row.
    # 4: "supported, not specific" from each claim's specificity control (C2's claim row, C4/C5's
    #    matched test); columns control, null_value, claimed_side, unit, reading; statements and rules
    #    from the settings; depth profiles' unit column; a feature column, the C1-C5 analogues of the
    #    other low-level features and the comparison across features (CF); orientation rows unchanged.
    # 5: a sign test's networks needed from the share of networks on each side of the null (the
    #    test's own statistic) instead of a normal model with the run's SD; verdicts unchanged.
    "claims": 5,
    # 2: bands are the tables' t intervals; the claims figure.
    # 3: claims figure with controls, units, margin and verdict words, the paper's claims
    #    (orientation rows); matched condition in the causal figures; intervals at
    #    claims.confidence; depth profiles' units; the low-level feature figures.
    "figures": 3,
}

PACKAGE_DIR = Path(selectivity.__file__).resolve().parent
REPOSITORY = PACKAGE_DIR.parents[1]


def method_version(stage: str) -> int:
    """The method version of ``stage`` (a key of :data:`METHOD_VERSIONS`)."""
    try:
        return METHOD_VERSIONS[stage]
    except KeyError:
        raise KeyError(f"unknown stage {stage!r}; stages are {sorted(METHOD_VERSIONS)}") from None


@functools.cache
def source_digest() -> str:
    """SHA-256 (16 hex digits) of the package's Python sources: changes with any code edit."""
    digest = hashlib.sha256()
    for path in sorted(PACKAGE_DIR.rglob("*.py")):
        digest.update(path.relative_to(PACKAGE_DIR).as_posix().encode())
        digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


@functools.cache
def git_commit() -> str:
    """The repository's commit (with ``-dirty`` for uncommitted changes), or ``"unknown"``."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(REPOSITORY), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(REPOSITORY), "status", "--porcelain", "--", "src", "workflow"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return f"{commit}-dirty" if status else commit or "unknown"


def code_version() -> dict[str, object]:
    """What provenance records about the code: package version, git commit, source digest, methods."""
    return {
        "package_version": selectivity.__version__,
        "git_commit": git_commit(),
        "source_digest": source_digest(),
        "method_versions": dict(METHOD_VERSIONS),
    }
