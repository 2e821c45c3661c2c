"""Reruns: after a finished run, Snakemake plans exactly the jobs that a change affects.

What this file protects: every setting that changes a result reaches the rules it affects
through ``params:`` (and nothing else does), so that

- an analysis setting reruns its analyses and what depends on them, never training or data;
- a claims setting reruns only the claims (and the bootstrap correlations and causal-table
  summaries that share it);
- a batch size reruns nothing (the scripts read it from the config; only the provenance page,
  whose params are the whole config, is rebuilt);
- a training setting retrains every network and reruns everything downstream;
- editing a package module reruns nothing (modules are not rule inputs), while editing a rule
  script reruns that rule's jobs;
- ``--touch`` marks outputs up to date without recomputing them (and hides a real change);
- a deleted intermediate file is not rebuilt unless asked for (its dependents are up to date).

The finished run is the session's ``demo_run`` (config/demo.yaml, see conftest.py), which
tests/test_workflow_demo.py also reads, so it must stay exactly as it is: on it these tests
only do dry runs (``snakemake -n``), and a module fixture checks at the end that no file in
it changed. Whatever writes (``--touch``, deleting a file, editing code) works on a copy of
its directory (outputs with their modification times, and Snakemake's metadata); code is
edited in a copy of the workflow and package. The checks parse the dry run's "Job stats"
table and per-job reasons. ``--list-changes params`` is not used: in Snakemake 9.27.1 it
lists one output of every job even when no params changed.
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

from conftest import REPO, planned_jobs, snakemake_command, write_config
from selectivity.config import networks, saved_epochs, training_groups

pytestmark = pytest.mark.slow

DEMO_CONFIG_FILE = REPO / "config" / "demo.yaml"


def merged(base: dict, override: dict) -> dict:
    """``override`` laid over ``base`` key by key, as Snakemake combines config files."""
    result = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(base.get(key), dict):
            result[key] = merged(base[key], value)
        else:
            result[key] = value
    return result


# The settings the demo ran with: config/demo.yaml over config.yaml's values. (The Snakefile's
# configfile: config.yaml is looked up in the working directory, which holds none, so the run
# gets them as the schema's defaults; config.yaml states exactly those defaults.)
DEMO = merged(
    yaml.safe_load((REPO / "config.yaml").read_text()), yaml.safe_load(DEMO_CONFIG_FILE.read_text())
)
NETWORK_COUNT = len(networks(DEMO))
TRAINING_JOBS = len(training_groups(DEMO))
TUNING_JOBS = NETWORK_COUNT * (len(saved_epochs(DEMO["training"])) + 1)  # + best
# Rules with one job per trained network (on the checkpoint named by causal.checkpoint).
PER_NETWORK_RULES = ("class_selectivity", "half_ablation", "cumulative_ablation", "shift_invariance")
# --cores last: --resources takes several values and would swallow what follows it.
CPU_ONLY = ("--resources", "gpu=0", "--cores", "2")
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


@dataclass(frozen=True)
class FinishedRun:
    """A finished run of config/demo.yaml: its working directory and the Snakefile it ran."""

    snakefile: Path
    workdir: Path


def job_reasons(output: str) -> dict[str, list[str]]:
    """Rule -> the "reason:" line of each of its planned jobs in a dry run's output."""
    reasons: dict[str, list[str]] = {}
    for rule, body in re.findall(r"^(?:local)?rule (\w+):\n((?:    .*\n?)*)", output, re.M):
        reason = re.search(r"^    reason: (.*)$", body, re.M)
        reasons.setdefault(rule, []).append(reason.group(1) if reason else "")
    return reasons


def run_workflow(run: FinishedRun, configfiles: list[Path], *args: str) -> subprocess.CompletedProcess:
    command = snakemake_command() + [
        "--snakefile", str(run.snakefile), "--directory", str(run.workdir), *args,
        "--configfile", *map(str, configfiles),
    ]  # fmt: skip
    result = subprocess.run(
        command,
        cwd=run.workdir,
        capture_output=True,
        text=True,
        timeout=1800,
        env=dict(os.environ, PYTHONHASHSEED="0"),
    )
    if result.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({result.returncode}): {' '.join(command)}\n"
            f"{result.stdout[-4000:]}\n{result.stderr[-6000:]}"
        )
    return result


def config_files(directory: Path, change: dict | None) -> list[Path]:
    """The demo config plus, if given, a file in ``directory`` that changes some settings
    (later files win)."""
    if change is None:
        return [DEMO_CONFIG_FILE]
    return [DEMO_CONFIG_FILE, write_config(directory, change, "change.yaml")]


def dry_run(run: FinishedRun, directory: Path, change: dict | None = None, *args: str) -> Plan:
    """The jobs a run would execute after ``change`` (written to ``directory``); ``args`` may
    name targets or add options. The default target is the whole workflow."""
    result = run_workflow(run, config_files(directory, change), "-n", *CPU_ONLY, *args)
    output = result.stdout + result.stderr
    return Plan(planned_jobs(output), job_reasons(output))


def touch(run: FinishedRun, directory: Path, change: dict) -> None:
    """``snakemake --touch`` with ``change``: marks what would rerun as up to date, runs nothing."""
    run_workflow(run, config_files(directory, change), "--touch", *CPU_ONLY)


def listed_changes(run: FinishedRun, kind: str) -> list[str]:
    """Output files that ``--list-changes {kind}`` reports (with -n, which keeps it from
    writing a log into .snakemake/log)."""
    result = run_workflow(run, [DEMO_CONFIG_FILE], "-n", "--list-changes", kind)
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


def file_states(directory: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, modification time in ns) of every file under ``directory``,
    except Snakemake's I/O cache, which every dry run rewrites (it is read only with
    --trust-io-cache)."""
    io_cache = directory / ".snakemake" / "iocache"
    return {
        str(path.relative_to(directory)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in directory.rglob("*")
        if path.is_file() and io_cache not in path.parents
    }


def copy_of(run: FinishedRun, directory: Path, snakefile: Path | None = None) -> FinishedRun:
    """A copy of a finished run's directory in ``directory``, checked to be up to date.

    copytree copies with copy2, so outputs keep their modification times, and .snakemake
    (Snakemake's record of each output's params and code) comes along.
    """
    workdir = directory / "run"
    shutil.copytree(run.workdir, workdir, symlinks=True)
    copy = FinishedRun(snakefile or run.snakefile, workdir)
    plan = dry_run(copy, directory)
    assert plan.jobs == {}, f"a copy of the finished run is not up to date: {plan.jobs} {plan.reasons}"
    return copy


def differing_value(value):
    """A value unlike ``value``: a list without its last item, a float doubled, an int plus one."""
    if isinstance(value, list):
        return value[:-1]
    return value * 2 if isinstance(value, float) else value + 1


def changed_setting(section: str, *keys: str) -> dict:
    """{section: {...: {key: a value unlike the demo's}}}: a change of one (nested) setting."""
    value = DEMO[section]
    for key in keys:
        value = value[key]
    change = differing_value(value)
    for key in reversed(keys):
        change = {key: change}
    return {section: change}


# -------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def finished_run(demo_run) -> FinishedRun:
    """The session's demo run, only dry-run here; afterwards, no file in it may have changed
    (tests/test_workflow_demo.py reads it)."""
    before = file_states(demo_run)
    yield FinishedRun(REPO / "Snakefile", demo_run)
    after = file_states(demo_run)
    changed = sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))
    assert not changed, f"tests/test_reruns.py changed the shared demo run: {changed[:20]}"


@pytest.fixture(scope="module")
def whole_dag(finished_run, tmp_path_factory) -> dict[str, int]:
    """Rule -> number of jobs of the whole workflow on the demo config (a forced dry run)."""
    return dry_run(finished_run, tmp_path_factory.mktemp("whole_dag"), None, "--forceall").jobs


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
def copied_run_and_workflow(finished_run, workflow_copy, tmp_path_factory) -> FinishedRun:
    """A copy of the demo run, driven by the copied workflow (whose code the tests edit)."""
    return copy_of(finished_run, tmp_path_factory.mktemp("code_edits"), workflow_copy / "Snakefile")


@pytest.fixture
def run_copy(finished_run, tmp_path) -> FinishedRun:
    """A copy of the demo run's directory for one test to change freely."""
    return copy_of(finished_run, tmp_path)


# ---------------------------------------------------------------------------- tests


def test_the_demo_dag_has_the_jobs_its_config_asks_for(whole_dag):
    assert len([rule for rule in whole_dag if rule.startswith("train_")]) == TRAINING_JOBS
    assert whole_dag["measure_tuning"] == TUNING_JOBS
    assert {rule: whole_dag[rule] for rule in PER_NETWORK_RULES} == dict.fromkeys(
        PER_NETWORK_RULES, NETWORK_COUNT
    )
    assert whole_dag["prepare_dataset"] == whole_dag["split_dataset"] == whole_dag["all"] == 1


def test_a_finished_run_is_up_to_date(finished_run, tmp_path):
    assert dry_run(finished_run, tmp_path).jobs == {}
    assert listed_changes(finished_run, "code") == []
    assert listed_changes(finished_run, "input") == []


# (setting, change, {rule whose params change: its jobs}, rules that must rerun because their
# inputs are rebuilt, rules that must not rerun). Snakemake compares a job's params only when
# nothing else makes it rerun, so a job whose inputs are rebuilt gives only that reason.
ANALYSIS_CHANGES = [
    (
        "tuning.selectivity_threshold",
        changed_setting("tuning", "selectivity_threshold"),
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
        changed_setting("causal", "ablation", "random_draws"),
        {"half_ablation": NETWORK_COUNT, "cumulative_ablation": NETWORK_COUNT},
        {"evaluate_claims", "plot_half_ablation", "plot_cumulative_ablation"},
        {"measure_tuning", "class_selectivity", "shift_invariance", "summarise_selectivity"},
    ),
    (
        "causal.invariance.shifts",
        changed_setting("causal", "invariance", "shifts"),
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
    finished_run, tmp_path, change, params_changed, downstream, untouched
):
    plan = dry_run(finished_run, tmp_path, change)
    assert plan.training_jobs() == []
    assert not {"prepare_dataset", "split_dataset"} & set(plan.jobs)
    for rule, count in params_changed.items():
        assert plan.jobs.get(rule) == count, f"{rule}: {plan.jobs}"
        assert plan.every_job_says(rule, PARAMS_CHANGED), plan.reasons[rule]
    assert downstream <= set(plan.jobs), f"missing: {downstream - set(plan.jobs)}"
    assert not untouched & set(plan.jobs), f"rerun without cause: {untouched & set(plan.jobs)}"


def test_a_claims_setting_reruns_only_the_claims(finished_run, whole_dag, tmp_path):
    plan = dry_run(finished_run, tmp_path, changed_setting("claims", "bootstrap_resamples"))
    # The bootstrap correlations and the across-network summaries of the causal tables share the
    # resample count; the provenance page shows the whole config.
    rerun = ["correlate_selectivity_with_accuracy", "summarise_causal_table", "evaluate_claims", "provenance"]
    assert plan.jobs == {rule: whole_dag[rule] for rule in [*rerun, "all"]}
    assert all(plan.every_job_says(rule, PARAMS_CHANGED) for rule in rerun)


BATCH_SIZES = [("training", "evaluation_batch_size"), ("tuning", "batch_size"), ("causal", "batch_size")]


@pytest.mark.parametrize("section, key", BATCH_SIZES, ids=[".".join(setting) for setting in BATCH_SIZES])
def test_a_batch_size_reruns_nothing_but_the_provenance_page(finished_run, tmp_path, section, key):
    plan = dry_run(finished_run, tmp_path, {section: {key: DEMO[section][key] // 2}})
    assert plan.jobs == {"provenance": 1, "all": 1}
    assert plan.every_job_says("provenance", PARAMS_CHANGED)


def test_a_training_setting_retrains_every_network_and_reruns_everything_downstream(
    finished_run, whole_dag, tmp_path
):
    plan = dry_run(finished_run, tmp_path, changed_setting("training", "learning_rate"))
    independent_of_training = {"prepare_dataset", "split_dataset", "plot_stimuli"}
    expected = {rule: count for rule, count in whole_dag.items() if rule not in independent_of_training}
    assert plan.jobs == expected
    assert len(plan.training_jobs()) == TRAINING_JOBS
    assert all(plan.every_job_says(rule, PARAMS_CHANGED) for rule in plan.training_jobs())


@pytest.mark.parametrize("module", ["tuning.py", "training.py"])
def test_editing_a_package_module_reruns_nothing(copied_run_and_workflow, workflow_copy, tmp_path, module):
    run = copied_run_and_workflow
    with edited(workflow_copy / "src" / "selectivity" / module, "\n# a comment changes no result\n"):
        assert dry_run(run, tmp_path).jobs == {}
        assert listed_changes(run, "code") == []


def test_editing_a_rule_script_reruns_that_rules_jobs(copied_run_and_workflow, workflow_copy, tmp_path):
    run = copied_run_and_workflow
    with edited(workflow_copy / "workflow" / "scripts" / "measure_tuning.py", "\n# edited\n"):
        plan = dry_run(run, tmp_path)
        assert plan.jobs["measure_tuning"] == TUNING_JOBS
        assert plan.every_job_says("measure_tuning", CODE_CHANGED)
        assert plan.training_jobs() == [] and "class_selectivity" not in plan.jobs
        changed = listed_changes(run, "code")
        assert changed and all(path.startswith("results/tuning/") for path in changed)
        assert len(changed) == 3 * TUNING_JOBS  # table, curves and provenance of each tuning job
    assert dry_run(run, tmp_path).jobs == {}


def test_touch_marks_outputs_up_to_date_without_recomputing_them(run_copy, tmp_path):
    # The demo ran with device auto and no GPU allotted (--resources gpu=0), i.e. on the CPU:
    # naming the CPU changes no result, but it is a tracked param of every GPU-capable rule.
    on_the_cpu = {"device": "cpu"}
    assert DEMO["device"] == "auto"
    plan = dry_run(run_copy, tmp_path, on_the_cpu)
    assert plan.jobs["measure_tuning"] == TUNING_JOBS and len(plan.training_jobs()) == TRAINING_JOBS
    tables = sorted(run_copy.workdir.glob("results/tuning/**/*.csv"))
    assert len(tables) == TUNING_JOBS
    before = {path: (sha256(path), path.stat().st_mtime_ns) for path in tables}

    touch(run_copy, tmp_path, on_the_cpu)
    assert dry_run(run_copy, tmp_path, on_the_cpu).jobs == {}
    for path, (digest, mtime) in before.items():
        assert sha256(path) == digest and path.stat().st_mtime_ns > mtime


def test_touch_after_a_result_changing_setting_hides_the_change(run_copy, tmp_path):
    """Why --touch is only for settings that change no result: the tables keep the old result."""
    more_draws = changed_setting("causal", "ablation", "random_draws")
    touch(run_copy, tmp_path, more_draws)
    assert dry_run(run_copy, tmp_path, more_draws).jobs == {}
    table = pd.read_csv(run_copy.workdir / "results" / "aggregate" / "half_ablation.csv")
    random_rows = table[table.condition == "random"]
    draws = random_rows.groupby(["label_corruption", "seed", "layer", "ranking"])["draw"].nunique()
    assert draws.eq(DEMO["causal"]["ablation"]["random_draws"]).all()


def test_a_deleted_intermediate_file_is_rebuilt_only_when_asked_for(run_copy, tmp_path):
    """Snakemake does not rebuild a missing file whose dependents are up to date (as for temp files)."""
    table = f"results/causal/{networks(DEMO)[0].path}/class_selectivity.csv"
    (run_copy.workdir / table).unlink()
    assert dry_run(run_copy, tmp_path).jobs == {}
    plan = dry_run(run_copy, tmp_path, None, table)
    assert plan.jobs == {"class_selectivity": 1} and plan.every_job_says(
        "class_selectivity", "Missing output files"
    )
