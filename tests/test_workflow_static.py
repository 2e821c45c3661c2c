"""The workflow as code: lint-clean, formatted, and every shipped config builds its DAG."""

from __future__ import annotations

import shutil
import subprocess

import pytest


from conftest import (
    REPO,
    TINY_CONFIG,
    merged_config,
    planned,
    read_yaml,
    run_snakemake,
    snakemake_process,
    write_config,
)
from selectivity.config import training_groups, validate_config


def test_snakemake_lint_is_clean():
    result = snakemake_process(["--lint", "--snakefile", str(REPO / "Snakefile")], REPO)
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


SHIPPED_CONFIGS = ["config.yaml", *sorted(f"config/{path.name}" for path in (REPO / "config").glob("*.yaml"))]


@pytest.mark.parametrize("config", SHIPPED_CONFIGS)
def test_shipped_config_plans_its_networks(tmp_path, config):
    settings = merged_config(read_yaml(REPO / "config.yaml"), read_yaml(REPO / config))
    if settings["dataset"]["source"] == "local" and not (REPO / settings["dataset"]["local_path"]).exists():
        pytest.skip(f"its dataset {settings['dataset']['local_path']} is absent")
    validate_config(settings, REPO / "workflow/schemas/config.schema.yaml")
    plan = planned(REPO, REPO / config)
    assert plan.rules("train_") == {f"train_{group.name}" for group in training_groups(settings)}


def test_a_training_job_gets_the_configured_cpu_threads(tmp_path):
    config = merged_config(TINY_CONFIG, {"training": {"cpu_threads": 3}})
    target = "results/networks/cnn7/synthetic/corruption0.00/seed0/metrics.csv"
    result = run_snakemake(tmp_path, write_config(tmp_path, config), "--dry-run", "--cores", "4", target)
    output = result.stdout + result.stderr  # the job listing goes to stderr in Snakemake 8
    training_job = output[output.index("rule train_cnn7_synthetic_c0p00_s0:") :]
    assert "threads: 3" in training_job.split("resources:")[0]
