"""The SLURM profile submits what it should: checked on the sbatch command line it generates.

There is no cluster here, so fake SLURM commands (sbatch records its arguments; sacct, squeue,
sinfo, scontrol, sshare, sacctmgr answer emptily) stand in for one, and the real
snakemake-executor-plugin-slurm builds the submission of a training job.
"""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO, snakemake_command, touch_every_output, write_config

pytest.importorskip(
    "snakemake_executor_plugin_slurm", reason="snakemake-executor-plugin-slurm is not installed"
)

TINY = {
    "dataset": {
        "name": "synthetic",
        "validation_size": 50,
        "synthetic": {"train_size": 200, "test_size": 50},
    },
    "networks": {"seeds": [0], "label_corruption": [0.0]},
    "training": {"epochs": 3, "checkpoint_epochs": [0]},
    "causal": {"test_images": 50, "invariance": {"test_images": 50}},
}


def fake_slurm(directory: Path) -> tuple[Path, Path]:
    """A bin folder of fake SLURM commands; sbatch appends its arguments to the returned record file."""
    bin_dir, record = directory / "fake_slurm_bin", directory / "sbatch_calls.txt"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(f'#!/usr/bin/env bash\necho "$@" >> "{record}"\necho 4242\n')
    for command in ("sacct", "squeue", "sinfo", "scontrol", "sshare", "sacctmgr", "scancel"):
        (bin_dir / command).write_text("#!/usr/bin/env bash\nexit 0\n")
    for script in bin_dir.iterdir():
        script.chmod(0o755)
    return bin_dir, record


@pytest.mark.parametrize("device, gpu_request, partition", [("auto", True, "gpu"), ("cpu", False, "cpu")])
def test_training_job_is_submitted_with_its_gpu_partition_and_resources(
    tmp_path, device, gpu_request, partition
):
    """device: auto asks for one GPU on the GPU partition; device: cpu (CPU-only clusters) for none."""
    config = write_config(tmp_path, {**TINY, "device": device})
    # the data as empty files recorded as made: the fake sbatch never runs the job that would read them
    touch_every_output(tmp_path, config, targets=("results/data/synthetic_split.npz",))
    bin_dir, record = fake_slurm(tmp_path)
    target = "results/networks/cnn7/synthetic/corruption0.00/seed0/metrics.csv"
    command = snakemake_command() + [
        "--snakefile", str(REPO / "Snakefile"), "--directory", str(tmp_path),
        "--workflow-profile", str(REPO / "profiles" / "slurm"), target, "--configfile", str(config),
    ]  # fmt: skip
    env = dict(os.environ, PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    process = subprocess.Popen(
        command,
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 120
        while not record.exists() and time.monotonic() < deadline and process.poll() is None:
            time.sleep(0.5)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        output = process.communicate(timeout=60)[0].decode(errors="replace")
    assert record.exists(), f"no sbatch call was made:\n{output[-4000:]}"
    submission = record.read_text()
    assert "rule_train_cnn7_synthetic_c0p00_s0" in submission
    assert ("--gpus=1" in submission) == gpu_request  # gpu=1 becomes one GPU per training group job
    assert ("--gpu" in submission) == gpu_request
    assert f"-p {partition}" in submission
    assert "--cpus-per-task=2" in submission  # the rule's threads
    assert "-t 66" in submission  # training_runtime: 60 + 2 x epochs minutes on the first attempt
    assert "--mem 5000" in submission  # training_memory for group_size 1
