"""The SLURM profile on a real single-node SLURM cluster.

Needs a running cluster (``sinfo`` answers) with the partitions ``gpu`` and ``cpu``, as the
single-node Debian slurm-wlm cluster that CI starts (``.ci/run``: two fake GPUs, with and without
accounting both work) provides. Skips with the reason where there is none.

One tiny configuration (one network) runs three ways: locally; through ``--workflow-profile profiles/slurm``
on the cluster, with one training job cancelled (``scancel``) while it runs; and through the
profile with ``--config device=cpu``, the documented switch for CPU-only clusters. Checked: every
job the scheduler recorded ran on the partition and with the GPUs the profile promises, only
network jobs were submitted (aggregation and figures are local rules), the tables equal the
local run's, a cancelled job is resubmitted and finishes, and a second invocation plans nothing.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pandas as pd
import pytest

from conftest import (
    REPO,
    SNAKEMAKE_ENV,
    parse_detailed_summary,
    run_snakemake,
    snakemake_command,
    write_config,
)

pytestmark = pytest.mark.slow

TINY = {
    "device": "auto",  # a GPU job on the GPU partition; inside it, the CPU (the fake GPUs are no CUDA devices)
    "dataset": {
        "name": "synthetic",
        "validation_size": 100,
        "synthetic": {"train_size": 1200, "test_size": 100},
    },
    "networks": {"seeds": [0], "label_corruption": [0.0]},  # one network: 7 cluster jobs
    "training": {"epochs": 4, "checkpoint_epochs": [0, 4]},
    # orientation and one other feature: each rule of the DAG, by-feature ones included, runs on the
    # cluster, with half the by-feature jobs of all four features (each costs a submission and a poll)
    "tuning": {"batch_size": 512, "features": ["orientation", "colour"]},
    "causal": {
        "test_images": 100,
        "batch_size": 100,
        "ablation": {"random_draws": 1, "cumulative_fractions": [0.0, 0.5, 1.0]},
        "invariance": {"random_draws": 1, "test_images": 50, "shifts": [1, 2]},
    },
    "claims": {"permutations": 199},
}
# Rules the cluster runs (every other rule is a localrule); they all need a network.
NETWORK_RULES = {
    "measure_tuning",
    "class_selectivity",
    "half_ablation",
    "cumulative_ablation",
    "shift_invariance",
    "half_ablation_by_feature",
    "shift_invariance_by_feature",
}
# Tables that must not depend on where a job ran (timings and provenance do).
COMPARED_TABLES = ["tuning", "half_ablation", "shift_invariance", "cumulative_ablation", "class_selectivity"]


# The plugin waits 40 s before its first status check by default; these jobs take seconds.
FAST_STATUS = ("--slurm-init-seconds-before-status-checks", "5", "--seconds-between-status-checks", "5")


def cluster_partitions() -> set[str]:
    if shutil.which("sinfo") is None or shutil.which("sbatch") is None:
        pytest.skip("no SLURM client here (sinfo and sbatch are not installed)")
    result = subprocess.run(["sinfo", "-h", "-o", "%P %a"], capture_output=True, text=True, timeout=30)
    if result.returncode != 0:
        pytest.skip(f"no SLURM cluster answers here: {result.stderr.strip()}")
    partitions = {
        line.split()[0].rstrip("*") for line in result.stdout.splitlines() if line.split()[1:] == ["up"]
    }
    if not {"gpu", "cpu"} <= partitions:
        pytest.skip(
            f"the cluster lacks the partitions gpu and cpu of profiles/slurm/partitions.yaml: {partitions}"
        )
    return partitions


def node_has_gpus() -> bool:
    result = subprocess.run(["sinfo", "-h", "-o", "%G"], capture_output=True, text=True, timeout=30)
    return "gpu" in result.stdout


def profile_command(workdir: Path, config: Path, *extra: str) -> list[str]:
    return snakemake_command() + [
        "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--workflow-profile", str(REPO / "profiles" / "slurm"), *FAST_STATUS, *extra,
        "--configfile", str(config),
    ]  # fmt: skip


def jobs_of(workdir: Path, earlier: set[str]) -> list[dict[str, str]]:
    """The jobs a run in ``workdir`` submitted, leaving out ``earlier`` ones (a reused folder's)."""
    return [r for r in job_records() if r.get("WorkDir") == str(workdir) and r["JobId"] not in earlier]


def job_ids() -> set[str]:
    return {record["JobId"] for record in job_records()}


def job_records(comment_prefix: str = "rule_") -> list[dict[str, str]]:
    """Every job the controller still knows (running and recently finished), as key=value fields."""
    result = subprocess.run(["scontrol", "show", "job", "-o"], capture_output=True, text=True, timeout=30)
    records = []
    for line in result.stdout.splitlines():
        fields = dict(re.findall(r"(\w+)=(\S*)", line))
        if fields.get("Comment", "").startswith(comment_prefix):
            records.append(fields)
    return records


def rule_of(record: dict[str, str]) -> str:
    return re.sub(r"_wildcards_.*$", "", record["Comment"].removeprefix("rule_"))


def running_training_job(workdir: Path) -> str | None:
    for record in job_records():
        if record.get("WorkDir") == str(workdir) and rule_of(record).startswith("train_"):
            if record.get("JobState") == "RUNNING":
                return record["JobId"]
    return None


def run_with_one_cancellation(
    workdir: Path, config: Path, *extra: str, timeout: float = 1500
) -> tuple[str, str]:
    """Run the profile to the end, cancelling the first training job seen running; (job id, output)."""
    # Snakemake's output goes to a file, not a pipe: nobody reads a pipe while this loop polls, and
    # once its buffer (64 KiB) is full Snakemake blocks on its next log line until the deadline.
    log_path = workdir.parent / f"{workdir.name}.profile.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        profile_command(workdir, config, *extra),
        cwd=workdir,
        env=SNAKEMAKE_ENV,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    cancelled = None
    deadline = time.monotonic() + timeout
    try:
        while process.poll() is None and time.monotonic() < deadline:
            if cancelled is None:
                job = running_training_job(workdir)
                if job is not None:
                    time.sleep(3)  # let it train for a moment
                    subprocess.run(["scancel", job], check=True, timeout=30)
                    cancelled = job
            time.sleep(1)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            subprocess.run(["scancel", "--user", os.environ.get("USER", "root")], timeout=30)
        process.wait(timeout=60)
        log.close()
        output = log_path.read_text(errors="replace")
    assert process.returncode == 0, f"the profile run failed ({process.returncode}):\n{output[-6000:]}"
    return cancelled, output


def tables(workdir: Path) -> dict[str, pd.DataFrame]:
    return {name: pd.read_csv(workdir / f"results/aggregate/{name}.csv") for name in COMPARED_TABLES}


@pytest.fixture(scope="module")
def local_run(tmp_path_factory) -> Path:
    cluster_partitions()
    workdir = tmp_path_factory.mktemp("local")
    run_snakemake(workdir, write_config(workdir, TINY), "--cores", "2", "--resources", "gpu=0")
    return workdir


def test_profile_on_a_real_cluster_with_gpu_nodes(local_run, tmp_path):
    cluster_partitions()
    if not node_has_gpus():
        pytest.skip("the cluster's node declares no GPU (run the setup script with SLURM_FAKE_GPUS=2)")
    config = write_config(tmp_path, TINY)
    earlier = job_ids()
    cancelled, output = run_with_one_cancellation(tmp_path, config)
    assert cancelled is not None, f"no training job was seen running:\n{output[-4000:]}"
    records = jobs_of(tmp_path, earlier)
    rules = {rule_of(r) for r in records}
    assert {"measure_tuning", "half_ablation", "shift_invariance"} <= rules
    assert all(rule.startswith("train_") or rule in NETWORK_RULES for rule in rules)  # the rest ran locally
    for record in records:
        assert record["Partition"] == "gpu", record  # network jobs on the GPU partition
        assert "gpu" in record.get("TresPerJob", "") + record.get("TresPerNode", ""), record
    # the cancelled training job was resubmitted (a second job of the same rule) and finished
    cancelled_rule = next(rule_of(r) for r in records if r["JobId"] == cancelled)
    attempts = [r for r in records if rule_of(r) == cancelled_rule]
    assert len(attempts) == 2 and {r["JobState"] for r in attempts} == {"CANCELLED", "COMPLETED"}
    for name, table in tables(tmp_path).items():
        pd.testing.assert_frame_equal(table, tables(local_run)[name], obj=name)
    again = subprocess.run(
        profile_command(tmp_path, config, "--dry-run", "--detailed-summary"),
        cwd=tmp_path,
        env=SNAKEMAKE_ENV,
        capture_output=True,
        text=True,
    )
    assert again.returncode == 0, again.stderr[-4000:]
    assert parse_detailed_summary(again.stdout).pending == {}  # a second invocation plans nothing


def test_profile_on_cpu_nodes_with_device_cpu(local_run, tmp_path):
    """The CPU-only switch: one network's training and tuning, every job on "cpu" without a GPU."""
    cluster_partitions()
    config = write_config(tmp_path, TINY)
    target = "results/tuning/cnn7/synthetic/corruption0.00/seed0/tuning.csv"
    earlier = job_ids()
    process = subprocess.run(
        profile_command(tmp_path, config, "--config", "device=cpu") + ["--", target],
        cwd=tmp_path,
        env=SNAKEMAKE_ENV,
        capture_output=True,
        text=True,
        timeout=1500,
    )
    assert process.returncode == 0, process.stdout[-4000:] + process.stderr[-4000:]
    records = jobs_of(tmp_path, earlier)
    assert {rule_of(r) for r in records} == {"train_cnn7_synthetic_c0p00_s0", "measure_tuning"}
    for record in records:
        assert record["Partition"] == "cpu", record  # no job asks for a GPU
        assert "gpu" not in record.get("TresPerJob", "") + record.get("TresPerNode", ""), record
    local = pd.read_csv(local_run / target)
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / target), local)
