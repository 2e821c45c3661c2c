"""Shared test fixtures: paths, the real CIFAR-10 subset, and workflow runners."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
SHARED_DATASET = REPO.parent / "shared" / "datasets" / "cifar10-subset.npz"


def pytest_addoption(parser):
    parser.addoption("--run-gpu", action="store_true", help="run tests that need a CUDA device")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--run-gpu"):
        return
    skip_gpu = pytest.mark.skip(reason="needs a CUDA device; opt in with --run-gpu")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip_gpu)


@pytest.fixture(scope="session")
def cifar10_subset_path() -> Path:
    if not SHARED_DATASET.exists():
        pytest.skip(f"the real CIFAR-10 subset is not at {SHARED_DATASET} (CI has it; see README)")
    return SHARED_DATASET


def snakemake_command() -> list[str]:
    executable = shutil.which("snakemake", path=str(Path(sys.executable).parent)) or shutil.which("snakemake")
    if executable is None:
        pytest.skip("snakemake is not installed")
    return [executable]


def write_config(directory: Path, config: dict, name: str = "test_config.yaml") -> Path:
    path = Path(directory) / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    return path


def planned_jobs(output: str) -> dict[str, int]:
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


def run_snakemake(
    workdir: Path, configfile: Path, *args: str, check: bool = True, timeout: int = 1200
) -> subprocess.CompletedProcess:
    """Run the repository's workflow in ``workdir`` with a config file.

    Snakemake reads ``config.yaml`` from the working directory, which ``workdir`` lacks, so the
    config file extends the schema defaults; tests/test_reliability.py checks that those equal
    the repository's config.yaml.
    """
    command = snakemake_command() + [
        "--snakefile",
        str(REPO / "Snakefile"),
        "--directory",
        str(workdir),
        *args,
        # last: --configfile takes several values and would swallow targets after it
        "--configfile",
        str(configfile),
    ]
    env = dict(os.environ, PYTHONHASHSEED="0")
    result = subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env, cwd=workdir)
    if check and result.returncode != 0:
        raise AssertionError(
            f"snakemake failed ({result.returncode}): {' '.join(command)}\n"
            f"--- stdout ---\n{result.stdout[-6000:]}\n--- stderr ---\n{result.stderr[-6000:]}"
        )
    return result


@pytest.fixture(scope="session")
def demo_run(tmp_path_factory) -> Path:
    """The whole DAG on config/demo.yaml, run once per test session (a few minutes on 2 CPU cores)."""
    workdir = tmp_path_factory.mktemp("demo")
    run_snakemake(
        workdir, REPO / "config" / "demo.yaml", "--cores", "2", "--resources", "gpu=0", timeout=3600
    )
    return workdir
