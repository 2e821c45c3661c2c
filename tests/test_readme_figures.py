"""The README's and the docs' measured figures are the output of benchmarks/readme_figures.py, never typed.

What this file protects (issue 31 item 3; docs/development.md "Measured figures"):

- every marked block ``<!-- readme_figures NAME -->`` in README.md and docs/*.md equals what the
  script renders from its last recorded output, docs/readme_figures.json;
- the README quotes no timing and no job count outside those blocks, and the docs quote no job
  count and no time of the demo or the tests outside them;
- the recorded job counts are those the current code plans (dry runs of the shipped configs), and
  a recorded demo time is of the DAG the demo plans now;
- the script reads a finished run's log, provenance and benchmark files and a JUnit XML file
  right, and refuses a run that is incomplete, of another DAG, or has failing tests (fixtures).
"""

from __future__ import annotations

import importlib.util
import json
import re
import shutil
from pathlib import Path

import pytest

from conftest import REPO, load_benchmark, snakemake_process

figures_script = load_benchmark("readme_figures")

RECORDED = figures_script.load()
# A duration or a vague one ("about a minute"), as typed timings are written.
TIMING = re.compile(
    r"\b\d+(?:[.,]\d+)?\s*(?:s|sec|seconds?|min|minutes?|h|hours?)\b|\b(?:a|an|one|few|several)\s+(?:minute|hour)s?\b"
    r"|\bminutes\b|\bhours\b",
    re.IGNORECASE,
)
JOB_COUNT = re.compile(r"\b\d+\s+(?:\w+\s+)?jobs\b", re.IGNORECASE)


def outside_blocks(text: str) -> str:
    return figures_script.BLOCK.sub("", text)


def test_every_block_is_the_scripts_last_recorded_output():
    assert RECORDED, "docs/readme_figures.json is missing: python benchmarks/readme_figures.py plan"
    found = {}
    for document in figures_script.documents():
        text = document.read_text()
        for name, body in figures_script.blocks(text):
            found.setdefault(name, []).append(document.name)
            assert body == figures_script.render(name, RECORDED), (
                f"{document.name}: block {name!r} differs from docs/readme_figures.json; the figures are "
                "written by the script, not by hand: python benchmarks/readme_figures.py show --check"
            )
        assert figures_script.filled(text, RECORDED) == text
    assert {"summary", "slowest-tests"} <= {name for name, files in found.items() if "README.md" in files}
    assert {"job-counts", "demo-stages"} <= {
        name for name, files in found.items() if "development.md" in files
    }


def test_the_readme_quotes_no_timing_or_job_count_outside_its_blocks():
    readme = outside_blocks((REPO / "README.md").read_text())
    problems = [
        f"README.md: {line.strip()}"
        for line in readme.splitlines()
        if TIMING.search(line) or JOB_COUNT.search(line)
    ]
    assert not problems, "typed timings or job counts (quote the script's blocks instead):\n" + "\n".join(
        problems
    )


def test_the_docs_quote_no_job_count_or_time_of_the_demo_or_the_tests_outside_the_blocks():
    problems = []
    for document in figures_script.documents()[1:]:
        for number, line in enumerate(outside_blocks(document.read_text()).splitlines(), start=1):
            about_runs = re.search(r"\bdemo\b|pytest|test suite|\bthe tests\b", line, re.IGNORECASE)
            if JOB_COUNT.search(line) or (about_runs and TIMING.search(line)):
                problems.append(f"{document.name}: {line.strip()}")
    assert not problems, "typed counts or timings (quote the script's blocks instead):\n" + "\n".join(
        problems
    )


def test_the_checks_find_typed_figures():
    for typed in ("the demo takes 4 min 45 s", "27 jobs", "about a minute", "18 minutes", "1 h 45 min"):
        assert TIMING.search(typed) or JOB_COUNT.search(typed), typed
    for fine in ("5 seeds x 2 levels", "200 epochs", "0.1 nats per image", "96 px", "5.9 GB"):
        assert not (TIMING.search(fine) or JOB_COUNT.search(fine)), fine


def test_the_recorded_job_counts_are_what_the_current_code_plans(monkeypatch):
    """Dry runs of the shipped configurations in empty folders (seconds; nothing is computed)."""
    if shutil.which("snakemake") is None and importlib.util.find_spec("snakemake") is None:
        pytest.skip("snakemake is not installed")
    # the script's dry runs, forked from the tests' Snakemake process (the same arguments and hash seed)
    monkeypatch.setattr(
        figures_script,
        "snakemake",
        lambda args, cwd: snakemake_process(["--snakefile", str(REPO / "Snakefile"), *args], cwd),
    )
    planned = figures_script.plan_figures()
    for key, plan in planned.items():
        assert RECORDED["plans"][key] == plan, (
            f"the job counts of {key} changed ({RECORDED['plans'][key]['jobs']} recorded, {plan['jobs']} "
            "planned now): python benchmarks/readme_figures.py plan"
        )


def test_a_recorded_demo_time_is_of_the_dag_the_demo_plans_now():
    for kind, measured in RECORDED.get("demo", {}).items():
        assert (
            measured["rules"] == RECORDED["plans"]["demo"]["rules"]
        ), f"the {kind} demo time was measured on another DAG: python benchmarks/readme_figures.py demo RUN --run"


def test_the_rules_are_read_with_their_stage_and_whether_they_run_locally():
    rules = figures_script.rule_catalogue()
    expected = {
        "train_cnn7_cifar10_c0p20_s0_1_2_3_4": ("training", False),
        "measure_tuning": ("tuning", False),
        "half_ablation_by_feature": ("causal", False),
        "causal_key": ("causal", True),
        "evaluate_claims": ("claims", True),
        "plot_causal_figures": ("figures", True),
        "prepare_dataset": ("data", True),
        "all": ("target", True),
    }
    for job, (stage, local) in expected.items():
        rule = figures_script.rule_of(job, rules)
        assert (rule.stage, rule.local) == (stage, local), job
    with pytest.raises(figures_script.FiguresError, match="matches no rule"):
        figures_script.rule_of("no_such_rule", rules)


# ------------------------------------------------------------------------------ fixtures

JOBS = {
    "prepare_dataset": 1,
    "train_cnn7_synthetic_c0p00_s0": 1,
    "measure_tuning": 1,
    "evaluate_claims": 1,
    "all": 1,
}
LOG = """Config file config.yaml is extended by additional config specified via the command line.

SNAKEMAKE
=========
  Date: 2026-12-07 10:15:00
  Snakemake version: 9.27.1
Building DAG of jobs...
Provided cores: 2
Provided resources: gpu=Resource("gpu", 0)
Job stats:
job                              count
-----------------------------  -------
{stats}
total                                {total}

[Mon Dec  7 10:15:01 2026]
localrule prepare_dataset:
{done}
Complete log(s): .snakemake/log/2026-12-07T101500.000000.snakemake.log
{elapsed}
"""


def make_run(root: Path, jobs=JOBS, finished=True, elapsed="Elapsed time: 0:05:47.512345") -> Path:
    """A demo run's directory as Snakemake and the workflow leave it (log, provenance, benchmarks)."""
    total = sum(jobs.values())
    log_dir = root / ".snakemake" / "log"
    log_dir.mkdir(parents=True)
    stats = "\n".join(f"{name:<33}{count}" for name, count in jobs.items())
    done = f"{total} of {total} steps (100%) done" if finished else f"{total - 1} of {total} steps (80%) done"
    (log_dir / "2026-12-07T101500.000000.snakemake.log").write_text(
        LOG.format(stats=stats, total=total, done=done, elapsed=elapsed if finished else "")
    )
    results = root / "results"
    (results / "tuning" / "cnn7").mkdir(parents=True)
    (results / "tuning" / "cnn7" / "tuning.provenance.json").write_text(
        json.dumps({"code": {"git_commit": "0123456789abcdef0123"}})
    )
    (results / "provenance.csv").write_text('model,seed,device\ncnn7,0,"cpu (x86_64, 1 threads)"\n')
    for stage, seconds in (("training", [40.25, 39.75]), ("tuning", [3.5])):
        folder = results / "benchmarks" / stage
        folder.mkdir(parents=True)
        for index, value in enumerate(seconds):
            (folder / f"job{index}.tsv").write_text(f"s\th:m:s\tmax_rss\n{value}\t0:00:40\t100.0\n")
    return root


def test_a_finished_demo_run_gives_its_wall_time_jobs_device_commit_and_stage_seconds(tmp_path):
    rules = figures_script.rule_catalogue()
    demo = figures_script.demo_figures(make_run(tmp_path), JOBS, rules)
    assert demo["seconds"] == 347.5 and demo["jobs"] == 5 and demo["cores"] == 2
    assert demo["date"] == "2026-12-07" and demo["commit"] == "0123456789ab"
    assert demo["device"] == "cpu (x86_64, 1 threads)" and demo["machine"] is None
    assert demo["stages"] == {"training": [2, 80.0], "tuning": [1, 3.5]}
    assert demo["rules"]["train_*"] == 1
    assert figures_script.device_kind(demo["device"]) == "cpu"


def test_a_run_of_another_dag_or_unfinished_is_refused(tmp_path):
    rules = figures_script.rule_catalogue()
    other = dict(JOBS, causal_key=3)
    with pytest.raises(
        figures_script.FiguresError,
        match=r"ran 5 jobs, the current demo plans 8.*causal_key: ran 0, planned 3",
    ):
        figures_script.demo_figures(make_run(tmp_path / "a"), other, rules)
    with pytest.raises(figures_script.FiguresError, match="did not finish all 5 jobs"):
        figures_script.demo_figures(make_run(tmp_path / "b", finished=False), JOBS, rules)
    with pytest.raises(figures_script.FiguresError, match="no Snakemake log"):
        figures_script.demo_figures(tmp_path / "c", JOBS, rules)


JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites name="pytest tests"><testsuite name="pytest" errors="0" failures="{failures}" skipped="1" tests="4"
 time="1234.567" timestamp="2026-12-07T11:00:00.000000+00:00" hostname="machine">
<testcase classname="tests.test_docs" name="test_no_file_refers_outside_the_repository" time="2.5" />
<testcase classname="tests.test_workflow_demo" name="test_the_demo[slow]" time="600.25" />
<testcase classname="tests.test_nowhere.TestGroup" name="test_b" time="30.0" />
<testcase classname="tests.test_docs" name="test_skipped" time="0.001"><skipped message="why" /></testcase>
</testsuite></testsuites>
"""


def test_a_junit_file_gives_the_suites_time_counts_and_slowest_tests(tmp_path):
    xml = tmp_path / "suite.xml"
    xml.write_text(JUNIT.format(failures=0))
    suite = figures_script.suite_figures(xml, "python -m pytest", slowest=2)
    assert suite["seconds"] == 1234.6 and suite["passed"] == 3 and suite["skipped"] == 1
    assert suite["date"] == "2026-12-07"
    assert suite["slowest"] == [
        ["tests/test_workflow_demo.py::test_the_demo[slow]", 600.2],
        ["tests.test_nowhere.TestGroup::test_b", 30.0],
    ]
    xml.write_text(JUNIT.format(failures=1))
    with pytest.raises(figures_script.FiguresError, match="1 failed"):
        figures_script.suite_figures(xml, "python -m pytest")


def test_the_blocks_show_measured_figures_and_a_lapsed_demo_time_as_not_measured(tmp_path):
    rules = figures_script.rule_catalogue()
    demo = figures_script.demo_figures(make_run(tmp_path / "run"), JOBS, rules)
    xml = tmp_path / "suite.xml"
    xml.write_text(JUNIT.format(failures=0))
    suite = figures_script.suite_figures(xml, "python -m pytest")
    suite.update(commit="abc", machine={"cpu": "Some CPU", "cores": 2, "load_before": [0.1, 0.2, 0.3]})
    plan = figures_script.plan_entry(JOBS, rules)
    figures = {"plans": {"demo": plan}, "demo": {"cpu": demo}, "tests": {"suite": suite}}
    summary = figures_script.render("summary", figures)
    assert "5 jobs, 2 of them run a network" in summary
    assert "5 min 48 s wall; 2 cores given; commit 0123456789ab, 2026-12-07" in summary
    assert "20 min 35 s wall; 2 cores (Some CPU), load average 0.1 before; commit abc" in summary
    probe = {"cnn7_steps_per_second": 19.7, "torch_start_seconds": 2.35}
    suite["machine"].update(probe_before=probe, probe_after=dict(probe, cnn7_steps_per_second=21.0))
    assert (
        "load average 0.1 before; speed probe (before / after): cnn7 19.7 / 21 steps/s on one thread, "
        "a torch process 2.35 / 2.35 s; commit abc"
    ) in figures_script.render("summary", figures)
    assert "3 passed, 1 skipped" in summary and "the fast tests" in summary
    assert "`tests/test_workflow_demo.py::test_the_demo[slow]` | 10 min 0 s" in figures_script.render(
        "slowest-tests", figures
    )
    stages = figures_script.render("demo-stages", figures)
    assert "training 1 min 20 s (2 jobs), tuning 4 s (1 job)" in stages
    figures["plans"]["demo"] = figures_script.plan_entry(dict(JOBS, causal_key=3), rules)
    assert "the demo on a CPU (8 jobs, 2 of them run a network) | not yet measured" in figures_script.render(
        "summary", figures
    )
    figures_script.drop_lapsed_demos(figures)
    assert figures["demo"] == {}


def test_blocks_are_rewritten_between_their_markers_and_bad_markers_refused():
    figures = {
        "plans": {
            "demo": {"jobs": 1, "rules": {"all": 1}, "stages": {"target": {"local": 1, "submitted": 0}}}
        }
    }
    text = "before\n<!-- readme_figures summary -->\nold text\n<!-- /readme_figures summary -->\nafter\n"
    new = figures_script.filled(text, figures)
    assert new.startswith("before\n<!-- readme_figures summary -->\n\n| what | time |")
    assert new.endswith("|\n\n<!-- /readme_figures summary -->\nafter\n") and "old text" not in new
    assert figures_script.filled(new, figures) == new
    with pytest.raises(figures_script.FiguresError, match="without its end marker"):
        figures_script.filled("<!-- readme_figures summary -->\ntext\n", figures)
    with pytest.raises(figures_script.FiguresError, match="unknown readme_figures block"):
        figures_script.filled("<!-- readme_figures nothing -->\n<!-- /readme_figures nothing -->", figures)


@pytest.mark.parametrize(
    "seconds, words", [(12.3, "12 s"), (347.5, "5 min 48 s"), (3725, "1 h 2 min"), (59.6, "1 min 0 s")]
)
def test_durations_are_written_in_words(seconds, words):
    assert figures_script.duration(seconds) == words


def test_the_demo_is_timed_only_in_an_empty_folder(tmp_path):
    (tmp_path / "results").mkdir()
    with pytest.raises(figures_script.FiguresError, match="is not empty"):
        figures_script.run_demo(tmp_path, cores=2)
