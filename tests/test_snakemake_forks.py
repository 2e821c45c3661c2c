"""The tests' Snakemake runs, forked from a process that has Snakemake imported (tests/snakemake_forks.py),
give what the ``snakemake`` command gives: the same plan, exit status and messages; a timeout ends
the run with every job it started."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest

from conftest import (
    REPO,
    SNAKEMAKE_ENV,
    TINY_CONFIG_FILE,
    parse_detailed_summary,
    snakemake_command,
    snakemake_process,
    write_config,
)


def both_ways(args: list[str], cwd) -> tuple[subprocess.CompletedProcess, subprocess.CompletedProcess]:
    command = subprocess.run(
        snakemake_command(*args), capture_output=True, text=True, timeout=300, cwd=cwd, env=SNAKEMAKE_ENV
    )
    return snakemake_process(args, cwd), command


def has_ended(pid: int) -> bool:
    """Gone, or a zombie that its new parent has yet to reap."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1][0] == "Z"
    except FileNotFoundError:
        return True


def test_a_forked_dry_run_plans_what_the_command_plans(tmp_path):
    args = ["--snakefile", str(REPO / "Snakefile"), "--dry-run", "--detailed-summary", "--cores", "2"]
    forked, command = both_ways([*args, "--configfile", str(TINY_CONFIG_FILE)], tmp_path)
    assert forked.returncode == command.returncode == 0, forked.stderr[-3000:]
    assert parse_detailed_summary(forked.stdout) == parse_detailed_summary(command.stdout)
    assert len(parse_detailed_summary(forked.stdout).pending) > 50


def test_a_forked_run_of_a_bad_config_fails_with_the_commands_status_and_message(tmp_path):
    config = write_config(tmp_path, {"device": "tpu"})
    args = ["--snakefile", str(REPO / "Snakefile"), "--dry-run", "--configfile", str(config)]
    forked, command = both_ways(args, tmp_path)
    assert forked.returncode == command.returncode == 1
    assert "device: 'tpu' is not allowed" in forked.stdout + forked.stderr
    assert "device: 'tpu' is not allowed" in command.stdout + command.stderr


def test_a_forked_run_past_its_timeout_is_ended_with_its_jobs(tmp_path):
    marker = tmp_path / "job_pid"
    snakefile = tmp_path / "Snakefile"
    snakefile.write_text(f'rule slow:\n    output: "never"\n    shell: "echo $$ > {marker}; sleep 120"\n')
    start = time.monotonic()
    with pytest.raises(subprocess.TimeoutExpired):
        snakemake_process(["--snakefile", str(snakefile), "--cores", "1"], tmp_path, timeout=4)
    assert time.monotonic() - start < 30
    job = int(marker.read_text())
    deadline = time.monotonic() + 10
    while not has_ended(job) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert has_ended(job), "the job's shell outlived its timed-out run"
    # the server goes on serving
    assert snakemake_process(["--version"], tmp_path).returncode == 0
