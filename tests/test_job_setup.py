"""Every job runs the package of the workflow it belongs to, even where another copy is installed;
a job's and Snakemake's shortened exits (selectivity.process_exit) keep the log and the exit status;
a job's forward-pass batch sizes follow its device."""

from __future__ import annotations

import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch
from conftest import (
    REPO,
    SNAKEMAKE_ENV,
    TINY_CONFIG,
    copy_workflow,
    load_benchmark,
    merged_config,
    run_snakemake,
    write_config,
)


def test_a_copied_workflow_runs_its_own_package(tmp_path):
    copy = copy_workflow(tmp_path / "workflow_copy")
    workdir = tmp_path / "run"
    workdir.mkdir()
    config = write_config(workdir, TINY_CONFIG)
    run_snakemake(workdir, config, "--cores", "1", "results/data/synthetic.npz", snakefile=copy / "Snakefile")
    log = (workdir / "logs" / "data" / "prepare_synthetic.log").read_text()
    assert f"from {copy / 'src' / 'selectivity'}" in log, log[:2000]


# Registered before the code under test (at a process's start-up, or first), so run after its
# handlers at exit (atexit is last-in first-out): records whether the collector was frozen by then.
FREEZE_RECORDER = """
import atexit, gc
atexit.register(lambda: open({frozen!r}, "w").write(str(gc.get_freeze_count())))
"""
# A job's script in a process of its own: the recorder, start_job with a stand-in for Snakemake's
# object, then the script's body.
JOB = FREEZE_RECORDER + """
import sys, types
sys.path.insert(0, {scripts!r})
from job_setup import start_job
logger = start_job(types.SimpleNamespace(log=[{log!r}], rule="a_rule"))
import torch
print("printed to the log", flush=False)
logger.info("logged %s", torch.ones(2).sum().item())
{body}
"""


@pytest.mark.parametrize(
    "body, status, last_words",
    [("", 0, "logged 2.0"), ("raise ValueError('a bad value')", 1, "ValueError: a bad value")],
    ids=["succeeds", "fails"],
)
def test_a_job_exits_with_its_own_status_and_its_whole_log_after_freezing_the_collector(
    tmp_path, body, status, last_words
):
    log, frozen = tmp_path / "job.log", tmp_path / "frozen"
    code = JOB.format(scripts=str(REPO / "workflow" / "scripts"), frozen=str(frozen), log=str(log), body=body)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == status, result.stderr
    text = log.read_text()
    assert "printed to the log" in text and text.strip().endswith(last_words), text
    assert int(frozen.read_text()) > 10_000, "the collector was not frozen at exit"


@pytest.mark.parametrize(
    "change, status, message",
    [({}, 0, ""), ({"device": "tpu"}, 1, "device: 'tpu' is not allowed")],
    ids=["valid config", "invalid config"],
)
def test_snakemake_freezes_the_collector_at_exit_and_keeps_its_exit_status(tmp_path, change, status, message):
    frozen = tmp_path / "frozen"
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(FREEZE_RECORDER.format(frozen=str(frozen)))  # run at start-up
    config = write_config(tmp_path, merged_config(TINY_CONFIG, change))
    result = run_snakemake(
        tmp_path,
        config,
        "--dry-run",
        "--cores",
        "1",
        check=False,
        environment={**SNAKEMAKE_ENV, "PYTHONPATH": str(site)},
    )
    assert result.returncode == status, result.stdout[-2000:] + result.stderr[-2000:]
    assert message in result.stdout + result.stderr
    assert int(frozen.read_text()) > 10_000, "Snakemake did not freeze the collector at exit"


def test_the_exit_benchmark_imports_what_a_job_of_each_rule_imports_and_runs_every_ending(tmp_path):
    benchmark = load_benchmark("job_exit")
    # the script's own imports, and those of the job_setup helpers it calls, called ones included
    assert {
        "torch",
        "selectivity.causal.feature_tests",
        "selectivity.networks.loading",
        "selectivity.devices",
    } <= set(benchmark.job_modules("shift_invariance_by_feature"))
    assert "torch" not in benchmark.job_modules("causal_key")
    for ending in benchmark.ENDINGS.values():
        code = benchmark.job_code("causal_key", tmp_path / "job.log", ending)
        subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def fake_job(config_changes: dict, gpus: int = 0, network: dict | None = None) -> SimpleNamespace:
    """What a rule script's ``snakemake`` object offers job_setup.batch_size."""
    config = {
        "device": "auto",
        "training": {"evaluation_batch_size": "auto"},
        "tuning": {"batch_size": "auto"},
        "causal": {"batch_size": "auto"},
        "external_networks": {},
        "vgg16": {"enabled": False, "batch_size": 64},
    }
    for section, values in config_changes.items():
        config[section] = {**config[section], **values} if isinstance(values, dict) else values
    return SimpleNamespace(
        config=config,
        params=SimpleNamespace(network=network),
        resources=SimpleNamespace(gpu=gpus),
        rule="some_rule",
    )


@pytest.mark.parametrize("section", ["training", "tuning", "causal"])
def test_auto_batch_sizes_follow_the_device_the_job_will_run_on(monkeypatch, section):
    monkeypatch.syspath_prepend(str(REPO / "workflow" / "scripts"))
    import job_setup

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    on_a_gpu = {"training": 1000, "tuning": 512, "causal": 500}[section]
    assert job_setup.batch_size(fake_job({}, gpus=0), section) == 64  # device auto, no GPU allotted
    assert job_setup.batch_size(fake_job({}, gpus=1), section) == on_a_gpu
    assert job_setup.batch_size(fake_job({"device": "cpu"}, gpus=1), section) == 64
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert job_setup.batch_size(fake_job({}, gpus=1), section) == 64
    key = "evaluation_batch_size" if section == "training" else "batch_size"
    assert job_setup.batch_size(fake_job({section: {key: 37}}, gpus=1), section) == 37


def test_a_given_network_keeps_its_own_batch_size_in_its_analyses(monkeypatch):
    monkeypatch.syspath_prepend(str(REPO / "workflow" / "scripts"))
    import job_setup

    job = fake_job(
        {"external_networks": {"mine": {"batch_size": 7}}}, network={"origin": "given", "name": "mine"}
    )
    assert job_setup.batch_size(job, "causal") == job_setup.batch_size(job, "tuning") == 7
