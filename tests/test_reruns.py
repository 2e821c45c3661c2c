"""Reruns: after a finished run, Snakemake plans exactly the jobs that a change invalidates.

What this file protects (docs/development.md "Rerunning only what changed"):

- a training job is named by the networks it trains: adding a seed or a corruption level plans
  training only for the new networks, dropping one plans none, and with ``group_size`` K only
  the groups whose membership changed retrain;
- settings without effect on a network's weights plan no training job (each is listed below),
  and a dataset file rebuilt after being deleted reruns no network, nor does a local copy of the
  dataset made again with the same content;
- an analysis setting reruns its analyses and what depends on them, never training or data;
- a method-version bump (selectivity.versions) reruns its stage and everything after it;
- a training setting retrains every network.

The finished run is the session's ``demo_run`` (config/demo.yaml, see conftest.py), which other
test files also read, so on it these tests only dry-run; a module fixture checks at the end that
no file in it changed. Tests that write (delete a file, edit code) work on copies. Plans are
read from Snakemake's machine-readable ``--detailed-summary``.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from conftest import (
    DEMO_CONFIG,
    DEMO_CONFIG_FILE,
    TINY_CONFIG,
    Plan,
    copy_workflow,
    merged_config,
    planned,
    run_snakemake,
    write_config,
)
from selectivity.config import causal_networks, networks, training_groups

pytestmark = pytest.mark.slow

TRAINING = "train_"
# The rules downstream of training that run once per network.
PER_NETWORK_RULES = ("class_selectivity", "half_ablation", "cumulative_ablation", "shift_invariance")


def plan_after(workdir: Path, directory: Path, change: dict | None = None, **options) -> Plan:
    """The plan of the demo config with ``change`` written to a second config file."""
    files = [DEMO_CONFIG_FILE] + ([write_config(directory, change, "change.yaml")] if change else [])
    return planned(workdir, *files, **options)


def training_outputs_of(plan) -> set[str]:
    return plan.outputs_of(TRAINING)


def network_of(path: str) -> str:
    """results/networks/<model>/<dataset>/corruption<p>/seed<s>/... -> <model>/<dataset>/corruption<p>/seed<s>."""
    return "/".join(Path(path).parts[2:6])


def file_states(directory: Path) -> dict[str, tuple[int, int]]:
    """Relative path -> (size, mtime in ns) of every file, except Snakemake's I/O cache (every dry run rewrites it)."""
    io_cache = directory / ".snakemake" / "iocache"
    return {
        str(path.relative_to(directory)): (path.stat().st_size, path.stat().st_mtime_ns)
        for path in directory.rglob("*")
        if path.is_file() and io_cache not in path.parents
    }


# -------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def finished_run(demo_run) -> Path:
    """The session's demo run, only dry-run here; afterwards no file in it may have changed."""
    before = file_states(demo_run)
    yield demo_run
    after = file_states(demo_run)
    changed = sorted(path for path in before.keys() | after.keys() if before.get(path) != after.get(path))
    assert not changed, f"tests/test_reruns.py changed the shared demo run: {changed[:20]}"


def copy_of_run(run: Path, directory: Path) -> Path:
    """A copy of a finished run (outputs keep their times; .snakemake keeps Snakemake's records)."""
    copy = directory / "run"
    shutil.copytree(run, copy, symlinks=True)
    return copy


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory) -> Path:
    """The workflow and the package copied (times kept), so that tests may edit their code."""
    return copy_workflow(tmp_path_factory.mktemp("workflow"))


GROUPED = merged_config(TINY_CONFIG, {"networks": {"seeds": [0, 1, 2]}, "training": {"group_size": 2}})


@pytest.fixture(scope="module")
def grouped_training(tmp_path_factory) -> Path:
    """A directory where the tiny config's networks were trained in groups of 2 (seeds {0, 1}, {2})."""
    workdir = tmp_path_factory.mktemp("grouped")
    configfile = write_config(workdir, GROUPED, "grouped.yaml")
    targets = [f"results/networks/{n.path}/metrics.csv" for n in networks(GROUPED)]
    run_snakemake(workdir, configfile, *targets, "--cores", "2", "--resources", "gpu=0")
    return workdir


# ------------------------------------------------------------- networks come and go


def test_a_finished_run_plans_nothing(finished_run, tmp_path):
    assert plan_after(finished_run, tmp_path).pending == {}


NETWORK_CHANGES = [
    ("adding a seed", {"networks": {"seeds": [0, 1, 2, 3, 4, 5]}}, {"seed5"}),
    ("dropping a seed", {"networks": {"seeds": [1, 2, 3, 4]}}, set()),
    ("adding a corruption level", {"networks": {"label_corruption": [0.0, 0.25, 0.5]}}, {"corruption0.25"}),
]


@pytest.mark.parametrize(
    "change, new_part", [c[1:] for c in NETWORK_CHANGES], ids=[c[0] for c in NETWORK_CHANGES]
)
def test_only_new_networks_are_trained(finished_run, tmp_path, change, new_part):
    plan = plan_after(finished_run, tmp_path, change)
    new = set(networks(merged_config(DEMO_CONFIG, change))) - set(networks(DEMO_CONFIG))
    assert bool(new) == bool(new_part) and all(any(part in n.path for part in new_part) for n in new)
    assert {network_of(path) for path in training_outputs_of(plan)} == {n.path for n in new}
    assert plan.rules(TRAINING) == {
        f"train_{g.name}"
        for g in training_groups(merged_config(DEMO_CONFIG, change))
        if set(g.networks) & new
    }
    assert all(plan.statuses(rule) == {"missing"} for rule in plan.rules(TRAINING))
    # the other networks' analyses are up to date too: only the new networks' causal tests run
    # (of those that get causal tests, causal.label_corruption)
    new_causal = set(causal_networks(merged_config(DEMO_CONFIG, change))) & new
    for rule in PER_NETWORK_RULES:
        assert {
            network_of(path.replace("results/causal/", "results/networks/")) for path in plan.outputs_of(rule)
        } == {n.path for n in new_causal}


GROUP_CHANGES = [
    # seeds {0, 1} and {2}: a seed 3 joins {2}; dropping seed 0 re-forms {0, 1} into {1}
    ("adding a seed", {"networks": {"seeds": [0, 1, 2, 3]}}, {"cnn7_synthetic_c0p00_s2_3"}),
    ("dropping a seed", {"networks": {"seeds": [1, 2]}}, {"cnn7_synthetic_c0p00_s1"}),
    (
        "adding a corruption level",
        {"networks": {"label_corruption": [0.0, 0.5]}},
        {"cnn7_synthetic_c0p50_s0_1", "cnn7_synthetic_c0p50_s2"},
    ),
]


@pytest.mark.parametrize("change, groups", [c[1:] for c in GROUP_CHANGES], ids=[c[0] for c in GROUP_CHANGES])
def test_only_groups_whose_membership_changed_retrain(grouped_training, tmp_path, change, groups):
    config = merged_config(GROUPED, change)
    targets = [f"results/networks/{n.path}/metrics.csv" for n in networks(config)]
    plan = planned(grouped_training, write_config(tmp_path, config), targets=targets)
    assert plan.rules(TRAINING) == {f"train_{group}" for group in groups}


# ------------------------------------------------------------ settings without effect

# Each changes nothing about a network's weights; none may plan a training job. Only the
# provenance page (whose param is a digest of the whole config) may be rebuilt.
NO_EFFECT = [
    ("checkpoint epochs reordered", {"training": {"checkpoint_epochs": [5, 3, 0, 1]}}),
    ("the always-saved last epoch left out", {"training": {"checkpoint_epochs": [0, 1, 3]}}),
    ("CUDA-graph capture on a CPU", {"training": {"cuda_graphs": True}}),
    ("CUDA-graph capture under its old name", {"training": {"compile": True}}),
    ("device cpu instead of auto", {"device": "cpu"}),
    ("evaluation batch size", {"training": {"evaluation_batch_size": 37}}),
    ("tuning batch size", {"tuning": {"batch_size": 100}}),
    ("causal batch size", {"causal": {"batch_size": 33}}),
]


@pytest.mark.parametrize("change", [c[1] for c in NO_EFFECT], ids=[c[0] for c in NO_EFFECT])
def test_a_setting_without_effect_plans_no_job_but_the_provenance_page(finished_run, tmp_path, change):
    assert plan_after(finished_run, tmp_path, change).rules() <= {"provenance"}


def test_another_training_thread_count_retrains_nothing(finished_run, tmp_path):
    """Like --cores it says how a job runs, not what it computes (the networks are other draws)."""
    assert plan_after(finished_run, tmp_path, {"training": {"cpu_threads": 1}}).rules() <= {"provenance"}


def test_a_rebuilt_dataset_file_reruns_no_network(finished_run, tmp_path):
    """Deleting the dataset file, then changing an analysis setting: no data job, no training job."""
    run = copy_of_run(finished_run, tmp_path)
    (run / "results" / "data" / "synthetic.npz").unlink()
    plan = plan_after(run, tmp_path, {"tuning": {"selectivity_threshold": 0.4}})
    assert plan.pending and not plan.rules(TRAINING)
    assert not {"prepare_dataset", "split_dataset", "extract_test_set"} & plan.rules()
    # asked for, the file is rebuilt with the same bytes, and still nothing reruns
    run_snakemake(run, DEMO_CONFIG_FILE, "--cores", "2", "results/data/synthetic.npz")
    rebuilt, original = (folder / "results/data/synthetic.npz" for folder in (run, finished_run))
    assert (
        rebuilt.read_bytes() == original.read_bytes() and rebuilt.stat().st_mtime > original.stat().st_mtime
    )
    assert plan_after(run, tmp_path).pending == {}


def write_local_cifar10(path: Path, first_label: int = 0) -> Path:
    """A small local copy in CIFAR-10's .npz form (random images, every class in both sets)."""
    rng = np.random.default_rng(0)
    labels = np.arange(300) % 10
    labels[0] = first_label
    np.savez(
        path,
        x_train=rng.integers(0, 256, (300, 32, 32, 3), dtype=np.uint8),
        y_train=labels,
        x_test=rng.integers(0, 256, (200, 32, 32, 3), dtype=np.uint8),
        y_test=np.arange(200) % 10,
    )
    return path


def test_a_local_copy_made_again_with_the_same_content_rebuilds_nothing(tmp_path):
    """A local copy copied, unpacked or provisioned again is newer than the dataset built from it:
    read as unchanged while it builds the same dataset, so that no network after it retrains; a
    copy with other content rebuilds the dataset and everything after it."""
    source = write_local_cifar10(tmp_path / "cifar10.npz")
    local = {"name": "cifar10", "source": "local", "local_path": str(source), "validation_size": 100}
    configfile = write_config(tmp_path, merged_config(TINY_CONFIG, {"dataset": local}))
    run = tmp_path / "run"
    run.mkdir()
    data = ("results/data/cifar10_split.npz", "results/data/cifar10_test.npz")
    run_snakemake(run, configfile, "--cores", "1", *data)
    # made again: the same bytes (numpy's zip time stamps are fixed), written after the dataset
    write_local_cifar10(source)
    later = (run / "results/data/cifar10.sha256").stat().st_mtime + 60
    os.utime(source, (later, later))
    assert planned(run, configfile, targets=data).pending == {}
    assert not {"prepare_dataset", "split_dataset", "extract_test_set"} & planned(run, configfile).rules()
    # other content (one training label), the same time: the data stage reruns
    write_local_cifar10(source, first_label=1)
    os.utime(source, (later, later))
    assert planned(run, configfile, targets=data).rules() == {
        "prepare_dataset",
        "split_dataset",
        "extract_test_set",
    }


# ------------------------------------------------------------------ analysis changes

# (setting, change, rules whose own params change, other rules that must rerun, rules that must not rerun)
CAUSAL_RULES = {"class_selectivity", "half_ablation", "cumulative_ablation", "shift_invariance"}
ANALYSIS_CHANGES = [
    (
        # the tuning tables do not depend on the threshold: only the summary, the claims and
        # the figures that count selective units rerun (ablation ranks by gOSI, not by it)
        "tuning.selectivity_threshold",
        {"tuning": {"selectivity_threshold": 0.4}},
        {"summarise_selectivity"},
        {"evaluate_claims", "depth_profiles", "plot_tuning_figures"},
        {"measure_tuning", "collect_table", *CAUSAL_RULES},
    ),
    (
        "causal.ablation.random_draws",
        {"causal": {"ablation": {"random_draws": 3}}},
        {"half_ablation", "cumulative_ablation"},
        set(),
        {"measure_tuning", "class_selectivity", "shift_invariance"},
    ),
    (
        "causal.invariance.shifts",
        {"causal": {"invariance": {"shifts": [1, 2]}}},
        {"shift_invariance"},
        set(),
        {"measure_tuning", "class_selectivity", "half_ablation", "cumulative_ablation"},
    ),
    (
        "claims.equivalence_margin",
        {"claims": {"equivalence_margin": 0.2}},
        {"evaluate_claims"},
        set(),
        {"measure_tuning", "half_ablation", "summarise_selectivity", "collect_table"},
    ),
]


@pytest.mark.parametrize(
    "change, changed, planned_too, untouched",
    [c[1:] for c in ANALYSIS_CHANGES],
    ids=[c[0] for c in ANALYSIS_CHANGES],
)
def test_an_analysis_setting_reruns_its_analyses_but_no_training(
    finished_run, tmp_path, change, changed, planned_too, untouched
):
    plan = plan_after(finished_run, tmp_path, change)
    assert not plan.rules(TRAINING) and not {"prepare_dataset", "split_dataset"} & plan.rules()
    for rule in changed:
        assert plan.statuses(rule) == {"params changed"}, (rule, plan.rules())
    assert {"evaluate_claims", *planned_too} <= plan.rules(), plan.rules()
    assert not untouched & plan.rules(), f"rerun without cause: {untouched & plan.rules()}"


def test_a_training_setting_retrains_every_network(finished_run, tmp_path):
    plan = plan_after(finished_run, tmp_path, {"training": {"learning_rate": 0.002}})
    assert plan.rules(TRAINING) == {f"train_{g.name}" for g in training_groups(DEMO_CONFIG)}
    assert all(plan.statuses(rule) == {"params changed"} for rule in plan.rules(TRAINING))
    assert not {"prepare_dataset", "split_dataset", "extract_test_set"} & plan.rules()


# ------------------------------------------------------------------ method versions


@pytest.mark.parametrize(
    "stage, first_rules, untouched",
    [
        ("tuning", {"measure_tuning"}, {"class_selectivity", "prepare_dataset"}),
        ("claims", {"evaluate_claims"}, {"measure_tuning", "collect_table", "summarise_selectivity"}),
        ("training", {f"train_{g.name}" for g in training_groups(DEMO_CONFIG)}, {"prepare_dataset"}),
    ],
)
def test_a_method_version_bump_reruns_its_stage_and_what_follows(
    finished_run, workflow_copy, tmp_path, stage, first_rules, untouched
):
    versions = workflow_copy / "src" / "selectivity" / "versions.py"
    original = versions.read_text()
    bumped = re.sub(rf'    "{stage}": (\d+),', lambda m: f'    "{stage}": {int(m.group(1)) + 1},', original)
    versions.write_text(bumped)
    try:
        assert versions.read_text() != original
        plan = plan_after(finished_run, tmp_path, snakefile=workflow_copy / "Snakefile")
    finally:
        versions.write_text(original)
    for rule in first_rules:
        assert plan.statuses(rule) == {"params changed"}, (rule, plan.rules())
    assert "evaluate_claims" in plan.rules()
    assert not untouched & plan.rules()
