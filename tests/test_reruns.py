"""Reruns: after a finished run, Snakemake plans exactly the jobs that a change affects.

What this file protects: every setting that changes a result reaches the rules it affects
through ``params:`` (and nothing else does), so that

- an analysis setting reruns its analyses and what depends on them, never training;
- a claims setting reruns only the claims (and the bootstrap correlations that share it);
- a training setting retrains every network and reruns everything downstream;
- editing a package module reruns nothing (modules are not rule inputs), while editing a rule
  script reruns that rule's jobs;
- ``--touch`` marks outputs up to date without recomputing them (and hides a real change);
- a deleted intermediate file is not rebuilt unless asked for (its dependents are up to date).

One full run of the whole DAG on tests/configs/tiny.yaml (a module-scoped fixture) is done
with a copy of the workflow and package, so the tests can edit code without touching the
repository; the checks are dry runs (``snakemake -n``) parsed from the "Job stats" table and
the per-job reasons. ``--list-changes params`` is not used: in Snakemake 9.27.1 it lists one
output of every job even when no params changed.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import yaml

from conftest import REPO, snakemake_command, write_config
from selectivity.config import networks, saved_epochs

pytestmark = pytest.mark.slow

TINY_CONFIG = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())
# --cores last: --resources takes several values and would swallow what follows it.
CPU_ONLY = ("--resources", "gpu=0", "--cores", "2")
NETWORK_COUNT = len(TINY_CONFIG["networks"]["seeds"]) * len(TINY_CONFIG["networks"]["label_corruption"])
TUNING_JOBS = NETWORK_COUNT * (len(saved_epochs(TINY_CONFIG["training"])) + 1)  # + best
PARAMS_CHANGED = "Params have changed since last execution"
CODE_CHANGED = "Code has changed since last execution"


@dataclass
class Plan:
    """What a dry run would do: jobs per rule and, per rule, the reasons Snakemake gives."""

    jobs: dict[str, int]
    reasons: dict[str, list[str]]

    def training_jobs(self) -> list[str]:
        return [rule for rule in self.jobs if rule.startswith("train_")]

    def every_job_says(self, rule: str, reason: str) -> bool:
        """Whether each planned job of ``rule`` gives ``reason`` (among possibly others)."""
        return bool(self.reasons.get(rule)) and all(reason in text for text in self.reasons[rule])


@dataclass
class FinishedRun:
    snakefile: Path
    workdir: Path
    configfile: Path
    jobs: dict[str, int]  # what the full run executed


def job_stats(output: str) -> dict[str, int]:
    """Rule -> number of jobs from Snakemake's "Job stats" table ({} when nothing is to be done)."""
    if "Nothing to be done" in output:
        return {}
    match = re.search(r"Job stats:\n.*?\n-+\s+-+\n(.*?)\ntotal\s+(\d+)", output, re.S)
    assert match, f"no job stats table in Snakemake's output:\n{output[-3000:]}"
    counts = {}
    for line in match.group(1).splitlines():
        rule, count = line.split()
        counts[rule] = int(count)
    assert sum(counts.values()) == int(match.group(2))
    return counts


def job_reasons(output: str) -> dict[str, list[str]]:
    """Rule -> the "reason:" line of each of its planned jobs in a dry run's output."""
    reasons: dict[str, list[str]] = {}
    for rule, body in re.findall(r"^(?:local)?rule (\w+):\n((?:    .*\n?)*)", output, re.M):
        reason = re.search(r"^    reason: (.*)$", body, re.M)
        reasons.setdefault(rule, []).append(reason.group(1) if reason else "")
    return reasons


def run_workflow(snakefile: Path, workdir: Path, configfiles: list[Path], *args: str, check: bool = True):
    command = snakemake_command() + [
        "--snakefile", str(snakefile), "--directory", str(workdir), *args,
        "--configfile", *map(str, configfiles),
    ]  # fmt: skip
    result = subprocess.run(
        command,
        cwd=workdir,
        capture_output=True,
        text=True,
        timeout=1800,
        env=dict(os.environ, PYTHONHASHSEED="0"),
    )
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({result.returncode}): {' '.join(command)}\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
        )
    return result


def config_change(run: FinishedRun, name: str, change: dict | None) -> list[Path]:
    """The run's config files plus, if given, one that changes some settings (later files win)."""
    if change is None:
        return [run.configfile]
    return [run.configfile, write_config(run.workdir.parent, change, f"{name}.yaml")]


def dry_run(run: FinishedRun, change: dict | None = None, targets: tuple[str, ...] = ()) -> Plan:
    """The jobs a run would execute after ``change`` (default target: the whole workflow)."""
    result = run_workflow(
        run.snakefile, run.workdir, config_change(run, "change", change), "-n", *CPU_ONLY, *targets
    )
    output = result.stdout + result.stderr
    return Plan(job_stats(output), job_reasons(output))


def listed_changes(run: FinishedRun, kind: str) -> list[str]:
    """Output files that ``--list-changes {kind}`` reports."""
    result = run_workflow(run.snakefile, run.workdir, [run.configfile], "--list-changes", kind)
    return [line for line in result.stdout.splitlines() if line.startswith("results/")]


@contextmanager
def edited(path: Path, addition: str):
    """Append to a file, then restore its content and modification time."""
    original, status = path.read_bytes(), path.stat()
    path.write_bytes(original + addition.encode())
    try:
        yield
    finally:
        path.write_bytes(original)
        os.utime(path, ns=(status.st_atime_ns, status.st_mtime_ns))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


# -------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory) -> Path:
    """The workflow and the package copied (mtimes kept), so that tests may edit their code."""
    root = tmp_path_factory.mktemp("workflow")
    ignore = shutil.ignore_patterns("__pycache__", "*.egg-info")
    shutil.copy2(REPO / "Snakefile", root / "Snakefile")
    for folder in ("workflow", "envs", "src/selectivity"):
        shutil.copytree(REPO / folder, root / folder, ignore=ignore)
    return root


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory, workflow_copy) -> FinishedRun:
    """The whole DAG run once on the tiny config with the copied workflow."""
    workdir = tmp_path_factory.mktemp("reruns") / "run"
    workdir.mkdir()
    configfile = write_config(workdir.parent, TINY_CONFIG, "tiny.yaml")
    result = run_workflow(workflow_copy / "Snakefile", workdir, [configfile], *CPU_ONLY)
    return FinishedRun(
        workflow_copy / "Snakefile", workdir, configfile, job_stats(result.stdout + result.stderr)
    )


@pytest.fixture
def run_copy(finished_run, tmp_path) -> FinishedRun:
    """A copy of the finished run's directory (outputs, mtimes, Snakemake metadata) to change freely."""
    workdir = tmp_path / "run"
    shutil.copytree(finished_run.workdir, workdir, symlinks=True)
    configfile = write_config(tmp_path, TINY_CONFIG, "tiny.yaml")
    return FinishedRun(finished_run.snakefile, workdir, configfile, finished_run.jobs)


# ---------------------------------------------------------------------------- tests


def test_a_finished_run_is_up_to_date(finished_run):
    assert finished_run.jobs["all"] == 1 and finished_run.jobs["measure_tuning"] == TUNING_JOBS
    assert dry_run(finished_run).jobs == {}
    assert listed_changes(finished_run, "code") == []
    assert listed_changes(finished_run, "input") == []


# (setting, change, {rule whose params change: its jobs}, rules that must rerun because their
# inputs are rebuilt, rules that must not rerun). Snakemake compares a job's params only when
# nothing else makes it rerun, so a job whose inputs are rebuilt gives only that reason.
ANALYSIS_CHANGES = [
    (
        "tuning.selectivity_threshold",
        {"tuning": {"selectivity_threshold": 0.4}},
        {"measure_tuning": TUNING_JOBS},
        {
            "summarise_selectivity",
            "plot_gosi_distributions",
            "half_ablation",
            "cumulative_ablation",
            "shift_invariance",
            "evaluate_claims",
        },
        {"class_selectivity", "plot_training_curves"},
    ),
    (
        "causal.ablation.random_draws",
        {"causal": {"ablation": {"random_draws": 2}}},
        {"half_ablation": NETWORK_COUNT, "cumulative_ablation": NETWORK_COUNT},
        {"evaluate_claims", "plot_half_ablation", "plot_cumulative_ablation"},
        {"measure_tuning", "class_selectivity", "shift_invariance", "summarise_selectivity"},
    ),
    (
        "causal.invariance.shifts",
        {"causal": {"invariance": {"shifts": [1, 2]}}},
        {"shift_invariance": NETWORK_COUNT},
        {"evaluate_claims", "plot_shift_invariance"},
        {"measure_tuning", "class_selectivity", "half_ablation", "cumulative_ablation"},
    ),
]


@pytest.mark.parametrize(
    "change, params_changed, downstream, untouched",
    [case[1:] for case in ANALYSIS_CHANGES],
    ids=[case[0] for case in ANALYSIS_CHANGES],
)
def test_an_analysis_setting_reruns_its_analyses_but_no_training(
    finished_run, change, params_changed, downstream, untouched
):
    plan = dry_run(finished_run, change)
    assert plan.training_jobs() == []
    assert not {"prepare_dataset", "split_dataset"} & set(plan.jobs)
    for rule, count in params_changed.items():
        assert plan.jobs.get(rule) == count, f"{rule}: {plan.jobs}"
        assert plan.every_job_says(rule, PARAMS_CHANGED), plan.reasons[rule]
    assert downstream <= set(plan.jobs), f"missing: {downstream - set(plan.jobs)}"
    assert not untouched & set(plan.jobs), f"rerun without cause: {untouched & set(plan.jobs)}"


def test_a_claims_setting_reruns_only_the_claims(finished_run):
    plan = dry_run(finished_run, {"claims": {"bootstrap_resamples": 300}})
    # The bootstrap correlations share the resample count; the provenance page shows the whole config.
    assert plan.jobs == {
        "correlate_selectivity_with_accuracy": 1,
        "evaluate_claims": 1,
        "provenance": 1,
        "all": 1,
    }
    assert plan.every_job_says("evaluate_claims", PARAMS_CHANGED)


def test_a_training_setting_retrains_every_network_and_reruns_everything_downstream(finished_run):
    plan = dry_run(finished_run, {"training": {"learning_rate": 0.002}})
    independent_of_training = {"prepare_dataset", "split_dataset", "plot_stimuli"}
    expected = {
        rule: count for rule, count in finished_run.jobs.items() if rule not in independent_of_training
    }
    assert plan.jobs == expected
    assert len(plan.training_jobs()) == NETWORK_COUNT
    assert all(plan.every_job_says(rule, PARAMS_CHANGED) for rule in plan.training_jobs())


@pytest.mark.parametrize("module", ["tuning.py", "training.py"])
def test_editing_a_package_module_reruns_nothing(finished_run, workflow_copy, module):
    with edited(workflow_copy / "src" / "selectivity" / module, "\n# a comment changes no result\n"):
        assert dry_run(finished_run).jobs == {}
        assert listed_changes(finished_run, "code") == []


def test_editing_a_rule_script_reruns_that_rules_jobs(finished_run, workflow_copy):
    with edited(workflow_copy / "workflow" / "scripts" / "measure_tuning.py", "\n# edited\n"):
        plan = dry_run(finished_run)
        assert plan.jobs["measure_tuning"] == TUNING_JOBS
        assert plan.every_job_says("measure_tuning", CODE_CHANGED)
        assert plan.training_jobs() == [] and "class_selectivity" not in plan.jobs
        changed = listed_changes(finished_run, "code")
        assert changed and all(path.startswith("results/tuning/") for path in changed)
        assert len(changed) == 3 * TUNING_JOBS  # table, curves and provenance of each tuning job
    assert dry_run(finished_run).jobs == {}


def test_touch_marks_outputs_up_to_date_without_recomputing_them(run_copy):
    tables = sorted(run_copy.workdir.glob("results/tuning/**/*.csv"))
    before = {path: (sha256(path), path.stat().st_mtime_ns) for path in tables}
    batch_size = {"tuning": {"batch_size": 64}}  # no effect on results, but a tracked param
    assert dry_run(run_copy, batch_size).jobs["measure_tuning"] == TUNING_JOBS

    run_workflow(
        run_copy.snakefile,
        run_copy.workdir,
        config_change(run_copy, "touch", batch_size),
        "--touch",
        *CPU_ONLY,
    )
    assert dry_run(run_copy, batch_size).jobs == {}
    for path, (digest, mtime) in before.items():
        assert sha256(path) == digest and path.stat().st_mtime_ns > mtime


def test_touch_after_a_result_changing_setting_hides_the_change(run_copy):
    """Why --touch is only for settings that change no result: the tables keep the old result."""
    draws = {"causal": {"ablation": {"random_draws": 2}}}
    run_workflow(
        run_copy.snakefile, run_copy.workdir, config_change(run_copy, "touch", draws), "--touch", *CPU_ONLY
    )
    assert dry_run(run_copy, draws).jobs == {}
    table = pd.read_csv(run_copy.workdir / "results" / "aggregate" / "half_ablation.csv")
    random_rows = table[table.condition == "random"]
    assert random_rows.groupby(["seed", "layer", "ranking"])["draw"].nunique().eq(1).all()


def test_a_deleted_intermediate_file_is_rebuilt_only_when_asked_for(run_copy):
    """Snakemake does not rebuild a missing file whose dependents are up to date (as for temp files)."""
    table = f"results/causal/{networks(TINY_CONFIG)[0].path}/class_selectivity.csv"
    (run_copy.workdir / table).unlink()
    assert dry_run(run_copy).jobs == {}
    plan = dry_run(run_copy, targets=(table,))
    assert plan.jobs == {"class_selectivity": 1} and plan.every_job_says(
        "class_selectivity", "Missing output files"
    )
