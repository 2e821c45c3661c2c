"""Reruns of the low-level feature analyses: a feature added to tuning.features reruns only what
reads its index (docs/development.md "Rerunning only what changed"; docs/method.md §4.6).

What this file protects:

- adding a feature reruns the tuning jobs (the tables gain columns), the new feature's causal tests,
  the other features' tests (their matched control matches on every measured index), and the
  aggregates, claims and figures; never training, class selectivity or the orientation causal tests
  (C4-C6: half_ablation, cumulative_ablation, shift_invariance), although they read the rewritten
  tuning table;
- dropping a feature reruns the tests that matched on it, and no orientation test;
- what the orientation tests do read still reruns them: a grating setting (their gOSI changes), a
  tuning method-version bump, their own settings even in the same run as a feature change (the key
  of each scored causal test, rule causal_key, carries them past the ancient tuning link);
- settings that change no index a causal test reads (the shuffle seed, a feature threshold) rerun
  no causal test.

Plans are read from a "finished" tiny run that costs no computation: every output of
tests/configs/tiny.yaml without the colour feature is created empty and ``snakemake --touch
--forceall`` records every job as made with the current params and code.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from conftest import (
    REPO,
    TINY_CONFIG_FILE,
    copy_workflow,
    parse_detailed_summary,
    snakemake_process,
    write_config,
)

pytestmark = pytest.mark.slow

WITHOUT_COLOUR = {"tuning": {"features": ["orientation", "spatial_frequency", "phase"]}}
WITH_COLOUR = {"tuning": {"features": ["orientation", "spatial_frequency", "colour", "phase"]}}
ORIENTATION_CAUSAL = {"class_selectivity", "half_ablation", "cumulative_ablation", "shift_invariance"}
FEATURE_CAUSAL = {"half_ablation_by_feature", "shift_invariance_by_feature"}


def snakemake(workdir: Path, *args: str, snakefile: Path = REPO / "Snakefile") -> str:
    arguments = ["--snakefile", str(snakefile), "--directory", str(workdir), *args]
    result = snakemake_process(arguments, workdir)
    assert (
        result.returncode == 0
    ), f"snakemake {' '.join(arguments)}\n{result.stdout[-3000:]}\n{result.stderr[-6000:]}"
    return result.stdout


def configs(workdir: Path, *changes: dict) -> list[str]:
    files = [str(TINY_CONFIG_FILE), str(write_config(workdir.parent, WITHOUT_COLOUR, "without_colour.yaml"))]
    for number, change in enumerate(changes):
        files.append(str(write_config(workdir.parent, change, f"change{number}.yaml")))
    return ["--configfile", *files]


def plan(workdir: Path, *changes: dict, snakefile: Path = REPO / "Snakefile"):
    output = snakemake(
        workdir,
        "--dry-run",
        "--detailed-summary",
        "--cores",
        "1",
        *configs(workdir, *changes),
        snakefile=snakefile,
    )
    return parse_detailed_summary(output)


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory) -> Path:
    """Every output of the tiny config without colour, empty, recorded as made now."""
    workdir = tmp_path_factory.mktemp("features") / "run"
    workdir.mkdir()
    for path in plan(workdir).pending:
        (workdir / path).parent.mkdir(parents=True, exist_ok=True)
        (workdir / path).touch()
    snakemake(workdir, "--touch", "--forceall", "--cores", "1", *configs(workdir))
    assert plan(workdir).pending == {}
    return workdir


def features_of(plan_, rule: str) -> set[str]:
    """The features of a feature causal rule's planned outputs (…/half_ablation_<feature>.csv)."""
    return {
        re.search(r"_(spatial_frequency|colour|phase)\.csv$", path).group(1)
        for path in plan_.outputs_of(rule)
        if path.endswith(".csv")
    }


def test_adding_a_feature_reruns_its_tests_and_no_orientation_test(finished_run):
    planned = plan(finished_run, WITH_COLOUR)
    assert planned.statuses("measure_tuning") == {"params changed"}
    assert features_of(planned, "half_ablation_by_feature") == {"colour", "spatial_frequency", "phase"}
    assert features_of(planned, "shift_invariance_by_feature") == {"colour", "spatial_frequency", "phase"}
    colour = {path for path in planned.outputs_of("half_ablation_by_feature") if "colour" in path}
    assert {planned.pending[path][1] for path in colour} == {"missing"}
    assert {"summarise_features", "evaluate_claims", "depth_profiles"} <= planned.rules()
    assert not planned.rules("train_")
    assert not ORIENTATION_CAUSAL & planned.rules(), planned.rules()


def test_dropping_a_feature_reruns_the_tests_that_matched_on_it(finished_run):
    planned = plan(finished_run, {"tuning": {"features": ["orientation", "spatial_frequency"]}})
    assert planned.statuses("measure_tuning") == {"params changed"}
    assert features_of(planned, "half_ablation_by_feature") == {"spatial_frequency"}
    assert not ORIENTATION_CAUSAL & planned.rules() and not planned.rules("train_")


def test_a_causal_setting_changed_with_a_feature_still_reruns_its_orientation_tests(finished_run):
    """Downstream of the rerunning tuning job Snakemake checks no params of its own; the key does."""
    planned = plan(finished_run, WITH_COLOUR, {"causal": {"ablation": {"random_draws": 2}}})
    assert {"half_ablation", "cumulative_ablation"} <= planned.rules()
    assert not {"shift_invariance", "class_selectivity"} & planned.rules()
    assert features_of(planned, "half_ablation_by_feature") == {"colour", "spatial_frequency", "phase"}


def test_a_grating_setting_reruns_every_causal_test_that_ranks_by_tuning(finished_run):
    planned = plan(finished_run, {"tuning": {"orientations": 8}})
    assert {"half_ablation", "cumulative_ablation", "shift_invariance", *FEATURE_CAUSAL} <= planned.rules()
    assert "class_selectivity" not in planned.rules() and not planned.rules("train_")


def test_the_shuffle_seed_reruns_tuning_and_no_causal_test(finished_run):
    """The shuffled control's rows are no causal test's input."""
    planned = plan(finished_run, {"tuning": {"shuffle_seed": 3}})
    assert planned.statuses("measure_tuning") == {"params changed"}
    assert not (ORIENTATION_CAUSAL | FEATURE_CAUSAL) & planned.rules(), planned.rules()


def test_a_feature_threshold_reruns_summaries_and_claims_only(finished_run):
    planned = plan(finished_run, {"tuning": {"phase_modulation_threshold": 1.2}})
    assert planned.statuses("summarise_features") == {"params changed"}
    assert {"evaluate_claims", "depth_profiles"} <= planned.rules()
    assert not {"measure_tuning", "collect_table", *ORIENTATION_CAUSAL, *FEATURE_CAUSAL} & planned.rules()


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory) -> Path:
    """The workflow and the package copied, so that a test may bump a method version."""
    return copy_workflow(tmp_path_factory.mktemp("workflow"))


def test_a_tuning_method_version_bump_reruns_the_scored_causal_tests(finished_run, workflow_copy):
    versions = workflow_copy / "src" / "selectivity" / "versions.py"
    text = versions.read_text()
    bumped = re.sub(r'    "tuning": (\d+),', lambda m: f'    "tuning": {int(m.group(1)) + 1},', text)
    assert bumped != text
    versions.write_text(bumped)
    try:
        planned = plan(finished_run, snakefile=workflow_copy / "Snakefile")
    finally:
        versions.write_text(text)
    assert {
        "measure_tuning",
        "half_ablation",
        "cumulative_ablation",
        "shift_invariance",
        *FEATURE_CAUSAL,
    } <= planned.rules()
    assert "class_selectivity" not in planned.rules() and not planned.rules("train_")
