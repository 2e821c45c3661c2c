"""The workflow as code: lint-clean, formatted, and every shipped config builds its DAG."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from conftest import REPO, SHARED_DATASET, run_snakemake, snakemake_command


def test_snakemake_lint_is_clean():
    result = subprocess.run(
        snakemake_command() + ["--lint", "--snakefile", str(REPO / "Snakefile")],
        cwd=REPO,
        capture_output=True,
        text=True,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_snakefiles_are_formatted():
    snakefmt = shutil.which("snakefmt")
    if snakefmt is None:
        pytest.skip("snakefmt is not installed")
    result = subprocess.run([snakefmt, "--check", "."], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_python_sources_are_formatted():
    black = shutil.which("black")  # comes with snakefmt
    if black is None:
        pytest.skip("black is not installed")
    folders = ["src", "tests", "benchmarks", "workflow/scripts"]
    result = subprocess.run([black, "--check", *folders], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("config", ["config.yaml", "config/demo.yaml", "config/cifar10_subset.yaml"])
def test_shipped_config_builds_its_dag(config):
    if config == "config/cifar10_subset.yaml" and not SHARED_DATASET.exists():
        pytest.skip(f"its dataset {SHARED_DATASET} is absent")
    result = run_snakemake(REPO, REPO / config, "-n", "--cores", "2", "--quiet", "rules")
    assert "Invalid configuration" not in result.stderr
