"""The conventions a Snakemake user expects, and the files that say how to install and cite.

What this file protects (issue 31; README "Two commands", "Running the paper-scale study",
"Rerunning only what changed"; docs/architecture.md "Workflow conventions"):

- the workflow runs from any directory with its default configuration (the config.yaml beside
  the Snakefile), and ``--configfile`` extends it;
- ``train_networks`` in ``--set-resources``/``--set-threads`` (command line or profile) reaches
  every training job, and ``--forcerun`` on the rules that ``--list-rules`` names retrains every
  network;
- a change of ``tuning.selectivity_threshold`` reruns the summary, the claims and the figures,
  and no tuning, causal or training job;
- dry-run reason lines stay short: the provenance page's param is a digest of the config;
- the conda environments pin exact versions, the ones CI installs (envs/pip-constraints.txt);
- LICENSE and CITATION.cff say how the software may be used and cited.

Plans after a change are read from a "finished" tiny run that costs no computation: every output
file of tests/configs/tiny.yaml is created empty and ``snakemake --touch`` records it as made
with the current params and code, as a real run would.
"""

from __future__ import annotations

import importlib.metadata
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from conftest import (
    REPO,
    SNAKEMAKE_ENV,
    TINY_CONFIG,
    TINY_CONFIG_FILE,
    merged_config,
    parse_detailed_summary,
    read_yaml,
    snakemake_command,
    write_config,
)
from selectivity.config import training_groups

DEFAULT_CONFIG = read_yaml(REPO / "config.yaml")
TINY = merged_config(DEFAULT_CONFIG, TINY_CONFIG)
TINY_TRAINING_RULES = {f"train_{group.name}" for group in training_groups(TINY)}
CAUSAL_RULES = {"class_selectivity", "half_ablation", "cumulative_ablation", "shift_invariance"}


def snakemake(cwd: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """The repository's workflow run in ``cwd`` (``--configfile`` only where ``args`` give it)."""
    command = snakemake_command() + ["--snakefile", str(REPO / "Snakefile"), *args]
    result = subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=cwd, env=SNAKEMAKE_ENV)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({result.returncode}): {' '.join(command)}\n{result.stderr[-6000:]}"
        )
    return result


def job_blocks(output: str) -> dict[str, list[str]]:
    """Rule name -> the text of each of its jobs in a dry run's job listing."""
    blocks: dict[str, list[str]] = {}
    for match in re.finditer(r"^rule (\S+):\n((?:    .*\n)+)", output, re.MULTILINE):
        blocks.setdefault(match.group(1), []).append(match.group(2))
    return blocks


def resources_of(block: str) -> dict[str, str]:
    line = next(line for line in block.splitlines() if line.strip().startswith("resources:"))
    return dict(item.split("=", 1) for item in line.split(":", 1)[1].strip().split(", "))


def threads_of(block: str) -> int:
    """A job's threads (Snakemake prints the line only for more than one)."""
    match = re.search(r"^\s+threads: (\d+)$", block, re.MULTILINE)
    return int(match.group(1)) if match else 1


# ------------------------------------------------------------------- a finished run


@pytest.fixture(scope="module")
def touched_run(tmp_path_factory) -> Path:
    """The tiny config's every output, empty, recorded by ``--touch`` as made now: plans nothing."""
    workdir = tmp_path_factory.mktemp("touched")
    configfile = ["--configfile", str(TINY_CONFIG_FILE)]
    plan = parse_detailed_summary(snakemake(workdir, "--dry-run", "--detailed-summary", *configfile).stdout)
    for path in plan.pending:
        (workdir / path).parent.mkdir(parents=True, exist_ok=True)
        (workdir / path).touch()
    snakemake(workdir, "--touch", "--cores", "1", *configfile)
    assert (
        parse_detailed_summary(
            snakemake(workdir, "--dry-run", "--detailed-summary", *configfile).stdout
        ).pending
        == {}
    )
    return workdir


def plan_of(workdir: Path, *args: str, change: dict | None = None):
    files = [str(TINY_CONFIG_FILE)]
    if change:
        files.append(str(write_config(workdir.parent, change, "change.yaml")))
    result = snakemake(workdir, "--dry-run", "--detailed-summary", *args, "--configfile", *files)
    return parse_detailed_summary(result.stdout), result


def test_a_threshold_change_reruns_no_tuning_or_causal_job(touched_run):
    plan, _ = plan_of(touched_run, change={"tuning": {"selectivity_threshold": 0.4}})
    assert plan.statuses("summarise_selectivity") == {"params changed"}
    assert {"evaluate_claims", "depth_profiles", "plot_tuning_figures"} <= plan.rules()
    assert not plan.rules("train_")
    assert not {"measure_tuning", "collect_table", *CAUSAL_RULES} & plan.rules(), plan.rules()


def test_dry_run_reasons_do_not_print_the_config(touched_run):
    change = {"claims": {"equivalence_margin": 0.2}}
    plan, _ = plan_of(touched_run, change=change)
    assert plan.statuses("provenance") == {"params changed"}
    files = [str(TINY_CONFIG_FILE), str(write_config(touched_run.parent, change, "change.yaml"))]
    result = snakemake(touched_run, "--dry-run", "--configfile", *files)
    reasons = [line.strip() for line in (result.stdout + result.stderr).splitlines() if "reason:" in line]
    digests = r"before: '[0-9a-f]{16}' now: '[0-9a-f]{16}'"
    (provenance,) = [line for line in reasons if re.search(digests, line)]
    assert len(provenance) < 200, provenance
    # no job's params hold the config's sections (narrow params: claims get their settings only)
    sections = [f"'{section}': {{" for section in DEFAULT_CONFIG]
    assert not [line for line in reasons if any(section in line for section in sections)]
