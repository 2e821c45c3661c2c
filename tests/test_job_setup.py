"""Every job runs the package of the workflow it belongs to, even where another copy is installed."""

from __future__ import annotations

from conftest import TINY_CONFIG, copy_workflow, run_snakemake, write_config


def test_a_copied_workflow_runs_its_own_package(tmp_path):
    copy = copy_workflow(tmp_path / "workflow_copy")
    workdir = tmp_path / "run"
    workdir.mkdir()
    config = write_config(workdir, TINY_CONFIG)
    run_snakemake(workdir, config, "--cores", "1", "results/data/synthetic.npz", snakefile=copy / "Snakefile")
    log = (workdir / "logs" / "data" / "prepare_synthetic.log").read_text()
    assert f"from {copy / 'src' / 'selectivity'}" in log, log[:2000]
