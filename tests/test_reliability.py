"""Reliability of the workflow as a user meets it: real Snakemake runs in temporary directories.

What this file protects:

- an interrupted run (SIGKILL to Snakemake and its jobs) keeps finished networks, leaves no
  output a later run would trust, and ``--rerun-incomplete`` resumes the killed training from
  its last saved epoch, ending bit-identical to an uninterrupted run;
- bad local CIFAR-10 data (missing, truncated, wrong shapes, bad labels) stops the run in the
  data rule at the latest, with a log that says what is wrong, and nothing downstream runs;
- ``device: cuda`` on a machine without a GPU fails the first GPU job, naming the config key;
- training and tuning are reproducible: two fresh directories give bit-identical checkpoints,
  metrics and tuning tables, and every output records seed, config hash, versions and device;
- the paper-scale configuration builds its DAG in seconds with the job counts it implies, and
  config.yaml equals the schema defaults (a key it leaves out gets the schema's default).

Every run uses tests/configs/tiny.yaml (synthetic data, 2 networks) plus small overrides.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import tarfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import (
    REPO,
    TINY_CONFIG,
    merged_config,
    planned,
    read_yaml,
    run_snakemake,
    snakemake_command,
    write_config,
)
from selectivity.config import causal_networks, networks, saved_epochs, training_groups, validate_config
from selectivity.figures.catalogue import figures_of
from selectivity.io import load_torch
import selectivity
from selectivity.provenance import config_hash
from selectivity.versions import METHOD_VERSIONS, source_digest

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
# --cores last: --resources takes several values and would swallow targets after it.
CPU_ONLY = ("--resources", "gpu=0", "--cores", "2")
# Long enough that the second network is still training when the test sees its first saved epoch.
INTERRUPTION_OVERRIDES = {"training": {"epochs": 4}}
# One collect_table job per combined table: tuning, training metrics, class selectivity, half
# ablation and its comparisons, cumulative ablation and its areas, shift invariance.
COLLECTED_TABLES = 11  # 8, and the 3 feature causal tables (tuning.features lists more than orientation)


# --------------------------------------------------------------------------- helpers


def complete_config(config: dict) -> dict:
    """The config with the schema defaults filled in, as the workflow sees it."""
    config = copy.deepcopy(config)
    validate_config(config, SCHEMA)
    return config


def planned_rules(workdir: Path, configfile: Path, *targets: str) -> set[str]:
    return planned(workdir, configfile, targets=targets).rules()


def network_files(network_path: str, config: dict) -> list[str]:
    """The declared training outputs of one network (docs/architecture.md)."""
    directory = f"results/networks/{network_path}"
    epochs = saved_epochs(config["training"])
    return [f"{directory}/checkpoints/epoch{e}.pt" for e in epochs] + [
        f"{directory}/checkpoints/best.pt",
        f"{directory}/metrics.csv",
    ]


def fingerprints(workdir: Path, paths: list[str]) -> dict[str, tuple[str, int]]:
    """sha256 and mtime (ns) of each file: equal fingerprints = the file was not rewritten."""
    return {
        path: (hashlib.sha256((workdir / path).read_bytes()).hexdigest(), (workdir / path).stat().st_mtime_ns)
        for path in paths
    }


def fresh_workdir(directory: Path, prepared_data: Path) -> Path:
    """An empty working directory holding only the prepared tiny dataset and its split."""
    directory.mkdir(parents=True)
    shutil.copytree(prepared_data / "results" / "data", directory / "results" / "data")
    return directory


def without_timing(metrics: dict) -> dict:
    """A metrics row without ``epoch_seconds``, the one column that differs between equal runs."""
    return {key: value for key, value in metrics.items() if key != "epoch_seconds"}


def assert_same_checkpoint(path_a: Path, path_b: Path) -> None:
    a = load_torch(path_a, "checkpoint")
    b = load_torch(path_b, "checkpoint")
    assert a["epoch"] == b["epoch"] and a["network"] == b["network"]
    assert a["state_dict"].keys() == b["state_dict"].keys()
    for name, tensor in a["state_dict"].items():
        assert torch.equal(tensor, b["state_dict"][name]), f"{path_a.name}: {name} differs"
    assert torch.equal(a["input_mean"], b["input_mean"])
    assert without_timing(a["metrics"]) == without_timing(b["metrics"])


def assert_same_metrics(path_a: Path, path_b: Path) -> None:
    a, b = pd.read_csv(path_a), pd.read_csv(path_b)
    assert "epoch_seconds" in a.columns
    pd.testing.assert_frame_equal(
        a.drop(columns="epoch_seconds"), b.drop(columns="epoch_seconds"), check_exact=True
    )


def assert_complete_provenance(record: dict, seed: int) -> None:
    """Seed, a config hash that is the hash of the recorded settings, versions and device."""
    assert record["seed"] == seed
    assert re.fullmatch(r"[0-9a-f]{16}", record["config_hash"])
    assert record["config_hash"] == config_hash(record["settings"])
    assert record["versions"]["torch"] == torch.__version__
    assert {"python", "selectivity", "numpy", "pandas", "scipy"} <= set(record["versions"])
    assert record["device"].startswith("cpu")
    code = record["code"]  # which code made it: package version, commit (or "unknown"), sources, methods
    assert code["package_version"] == selectivity.__version__
    assert code["git_commit"] == "unknown" or re.fullmatch(r"[0-9a-f]{40}(-dirty)?", code["git_commit"])
    assert code["source_digest"] == source_digest() and code["method_versions"] == METHOD_VERSIONS


def cifar_like_arrays(num_train: int = 20, num_test: int = 10) -> dict[str, np.ndarray]:
    """Arrays shaped like a local CIFAR-10 .npz copy (uint8 NHWC images, labels 0-9)."""
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.integers(0, 256, (num_train, 32, 32, 3), dtype=np.uint8),
        "y_train": np.arange(num_train) % 10,
        "x_test": rng.integers(0, 256, (num_test, 32, 32, 3), dtype=np.uint8),
        "y_test": np.arange(num_test) % 10,
    }


def write_npz(path: Path, arrays: dict[str, np.ndarray]) -> Path:
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)
    return path


def truncate(path: Path) -> Path:
    """Keep the first half of the file, as an interrupted download would."""
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    return path


def truncated_npz(directory: Path) -> Path:
    return truncate(write_npz(directory / "cifar10.npz", cifar_like_arrays()))


def npz_with_grey_images(directory: Path) -> Path:
    arrays = cifar_like_arrays()
    arrays["x_train"] = arrays["x_train"][..., 0]
    return write_npz(directory / "cifar10.npz", arrays)


def npz_with_label_ten(directory: Path) -> Path:
    arrays = cifar_like_arrays()
    arrays["y_train"][3] = 10
    return write_npz(directory / "cifar10.npz", arrays)


def truncated_archive(directory: Path) -> Path:
    """A cifar-10-python.tar.gz cut in half (its members hold random bytes, so it is incompressible)."""
    path = directory / "cifar-10-python.tar.gz"
    with tarfile.open(path, "w:gz") as archive:
        for name in ("batches.meta", "data_batch_1", "data_batch_2"):
            payload = np.random.default_rng(len(name)).bytes(200_000)
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = len(payload)
            archive.addfile(info, io.BytesIO(payload))
    return truncate(path)


# -------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="module")
def prepared_data(tmp_path_factory) -> Path:
    """A directory where the workflow built the tiny synthetic dataset and its split."""
    workdir = tmp_path_factory.mktemp("prepared")
    configfile = write_config(workdir, TINY_CONFIG)
    run_snakemake(
        workdir, configfile, *CPU_ONLY, "results/data/synthetic.npz", "results/data/synthetic_split.npz"
    )
    return workdir


@pytest.fixture(scope="module")
def interruption_config() -> dict:
    return complete_config(merged_config(TINY_CONFIG, INTERRUPTION_OVERRIDES))


@pytest.fixture(scope="module")
def reference_training(tmp_path_factory, prepared_data, interruption_config) -> Path:
    """The second network trained uninterrupted in a fresh directory, plus its best checkpoint's tuning."""
    workdir = fresh_workdir(tmp_path_factory.mktemp("reference") / "run", prepared_data)
    configfile = write_config(workdir.parent, interruption_config)
    second = networks(interruption_config)[1].path
    run_snakemake(
        workdir,
        configfile,
        *CPU_ONLY,
        f"results/networks/{second}/metrics.csv",
        f"results/tuning/{second}/tuning.csv",
    )
    return workdir


# ------------------------------------------------------------- 1. interrupted runs


def wait_for_interruption_point(
    process, first_metrics: Path, second_state_dir: Path, run_log: Path, timeout: float
) -> Path:
    """Poll until the first network is finished and the second one saved at least one trained epoch.

    Returns the second network's resume-state file. Fails if the workflow ends or stalls first.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(
                f"the workflow ended (exit {process.returncode}) before it could be interrupted:\n"
                f"{run_log.read_text()[-4000:]}"
            )
        states = list(second_state_dir.glob("training-*/state.pt"))
        if first_metrics.exists() and states:
            (state,) = states
            if load_torch(state, "training state")["completed_epoch"] >= 1:
                return state
        time.sleep(0.2)
    pytest.fail(f"no interruption point within {timeout} s:\n{run_log.read_text()[-4000:]}")


def kill_process_group(process) -> None:
    """SIGKILL Snakemake and every job it started (they share its process group), then reap them."""
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            os.killpg(process.pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    pytest.fail("processes of the killed workflow are still alive")


@pytest.mark.slow
def test_killed_training_resumes_from_its_last_epoch_and_matches_an_uninterrupted_run(
    tmp_path, prepared_data, interruption_config, reference_training
):
    config = interruption_config
    first, second = (network.path for network in networks(config))
    second_group = training_groups(config)[1]
    first_files, second_files = network_files(first, config), network_files(second, config)
    first_metrics, second_metrics = (
        f"results/networks/{first}/metrics.csv",
        f"results/networks/{second}/metrics.csv",
    )
    workdir = fresh_workdir(tmp_path / "run", prepared_data)
    configfile = write_config(tmp_path, config)

    # Both networks' training jobs, the first one first (each job claims both cores, so they run in turn).
    command = snakemake_command() + [
        "--snakefile", str(REPO / "Snakefile"), "--directory", str(workdir),
        "--prioritize", first_metrics, *CPU_ONLY, first_metrics, second_metrics,
        "--configfile", str(configfile),
    ]  # fmt: skip
    run_log = tmp_path / "interrupted_run.log"
    with open(run_log, "w") as log_handle:
        process = subprocess.Popen(
            command,
            cwd=workdir,
            stdout=log_handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=dict(os.environ, PYTHONHASHSEED="0"),
        )
        try:
            state_file = wait_for_interruption_point(
                process,
                workdir / first_metrics,
                workdir / "results/training_state",
                run_log,
                600,
            )
            kept = fingerprints(workdir, first_files)
        finally:
            if process.poll() is None:
                kill_process_group(process)

    completed_epoch = load_torch(state_file, "training state")["completed_epoch"]
    assert 1 <= completed_epoch < config["training"]["epochs"]
    # Outputs are only written when training ends, so nothing of the killed network looks finished.
    assert not [path for path in second_files if (workdir / path).exists()]
    assert fingerprints(workdir, first_files) == kept

    assert planned_rules(workdir, configfile, first_metrics, second_metrics) == {
        f"train_{second_group.name}"
    }, "only the killed network's job may rerun"

    # A killed Snakemake cannot release its lock on the directory: the user must --unlock first.
    locked = run_snakemake(workdir, configfile, *CPU_ONLY, first_metrics, second_metrics, check=False)
    assert locked.returncode != 0 and "Directory cannot be locked" in locked.stdout + locked.stderr
    run_snakemake(workdir, configfile, "--unlock", *CPU_ONLY)
    run_snakemake(workdir, configfile, *CPU_ONLY, "--rerun-incomplete", first_metrics, second_metrics)
    assert fingerprints(workdir, first_files) == kept, "the finished network was rewritten"
    job_log = (workdir / "logs" / "training" / f"{second_group.name}.log").read_text()
    assert f"{second}: resuming after epoch {completed_epoch} from" in job_log
    assert "starting from scratch" not in job_log
    assert f"training {config['training']['epochs']} epochs on" not in job_log
    assert not list((workdir / "results" / "training_state").glob("training-*")), "resume state left behind"

    for path in second_files[:-1]:
        assert_same_checkpoint(workdir / path, reference_training / path)
    assert_same_metrics(workdir / second_metrics, reference_training / second_metrics)
    assert planned_rules(workdir, configfile, first_metrics, second_metrics) == set()


@pytest.mark.slow
def test_outputs_have_the_permissions_of_the_umask_not_owner_only(prepared_data):
    """Outputs are written atomically via mkstemp (mode 0600); a shared results folder must stay readable."""
    umask = os.umask(0o022)
    os.umask(umask)
    outputs = sorted((prepared_data / "results" / "data").glob("*.npz"))
    assert len(outputs) == 2
    for path in outputs:
        assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~umask, path


# --------------------------------------------------------------------- 2. bad data


def cifar10_local_config(local_path: Path, **dataset) -> dict:
    """The tiny config on a local CIFAR-10 copy as small as cifar_like_arrays' (20 training and
    10 test images): sizes that fit it, so that only the file itself can be wrong."""
    return merged_config(
        TINY_CONFIG,
        {
            "training": {"batch_size": 8},
            "causal": {"test_images": None, "invariance": {"test_images": None}},
            "dataset": {
                "name": "cifar10",
                "source": "local",
                "local_path": str(local_path),
                "validation_size": 10,
                **dataset,
            },
        },
    )


def first_network_metrics(config: dict) -> str:
    return f"results/networks/{networks(complete_config(config))[0].path}/metrics.csv"


def test_missing_local_dataset_stops_before_any_job(tmp_path):
    missing = tmp_path / "nowhere" / "cifar10.npz"
    config = cifar10_local_config(missing)
    configfile = write_config(tmp_path, config)
    workdir = tmp_path / "run"
    workdir.mkdir()
    result = run_snakemake(workdir, configfile, *CPU_ONLY, first_network_metrics(config), check=False)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert "Missing input files" in output and str(missing) in output
    assert not (workdir / "results").exists() and not (workdir / "logs").exists()


BAD_DATA = [
    ("truncated npz", truncated_npz, {}, "cannot read as .npz"),
    ("grey images", npz_with_grey_images, {}, "x_train must have shape (N, H, H, 3)"),
    ("label outside 0-9", npz_with_label_ten, {}, "y_train has labels outside 0..9, e.g. 10 at index 3"),
    ("truncated archive", truncated_archive, {}, "md5 checksum mismatch"),
    (
        "truncated archive, no checksum",
        truncated_archive,
        {"verify_checksum": False},
        "the archive is truncated",
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize(
    "make_file, dataset_settings, message",
    [case[1:] for case in BAD_DATA],
    ids=[case[0] for case in BAD_DATA],
)
def test_bad_local_dataset_fails_in_the_data_rule_and_nothing_downstream_runs(
    tmp_path, make_file, dataset_settings, message
):
    local_file = make_file(tmp_path)
    config = cifar10_local_config(local_file, **dataset_settings)
    configfile = write_config(tmp_path, config)
    workdir = tmp_path / "run"
    workdir.mkdir()
    result = run_snakemake(workdir, configfile, *CPU_ONLY, first_network_metrics(config), check=False)
    assert result.returncode != 0
    assert "Error in rule prepare_dataset" in result.stdout + result.stderr
    job_log = (workdir / "logs" / "data" / "prepare_cifar10.log").read_text()
    assert "DatasetError" in job_log and message in job_log and str(local_file) in job_log
    assert not list((workdir / "results" / "data").glob("*.npz"))
    assert not (workdir / "results" / "networks").exists()
    assert sorted(p.name for p in (workdir / "logs").iterdir()) == ["data"]
    assert [p.name for p in (workdir / "logs" / "data").iterdir()] == ["prepare_cifar10.log"]


# ------------------------------------------------------------ 3. GPU requested, none there


@pytest.mark.slow
@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a CUDA device")
def test_cuda_requested_without_a_gpu_fails_the_training_job_naming_the_config_key(tmp_path, prepared_data):
    config = complete_config(merged_config(TINY_CONFIG, {"device": "cuda"}))
    workdir = fresh_workdir(tmp_path / "run", prepared_data)
    configfile = write_config(tmp_path, config)
    group = training_groups(config)[0]
    result = run_snakemake(
        workdir, configfile, *CPU_ONLY, f"results/tuning/{group.networks[0].path}/tuning.csv", check=False
    )
    assert result.returncode != 0
    assert f"Error in rule train_{group.name}" in result.stdout + result.stderr
    job_log = (workdir / "logs" / "training" / f"{group.name}.log").read_text()
    assert "config key 'device'" in job_log and "no CUDA device" in job_log
    assert not (workdir / "results" / "networks").exists() and not (workdir / "results" / "tuning").exists()
    assert not (workdir / "results" / "training_state").exists()


# --------------------------------------------------------------------- 4. reproducibility


@pytest.mark.slow
def test_fresh_directories_give_bit_identical_networks_and_tuning_with_full_provenance(
    tmp_path, prepared_data, interruption_config, reference_training
):
    config = interruption_config
    network = networks(config)[1]
    workdir = fresh_workdir(tmp_path / "run", prepared_data)
    configfile = write_config(tmp_path, config)
    tuning = f"results/tuning/{network.path}"
    run_snakemake(
        workdir, configfile, *CPU_ONLY, f"results/networks/{network.path}/metrics.csv", f"{tuning}/tuning.csv"
    )

    files = network_files(network.path, config)
    for path in files[:-1]:
        assert_same_checkpoint(workdir / path, reference_training / path)
        record = load_torch(workdir / path, "checkpoint")["provenance"]
        assert_complete_provenance(record, network.seed)
        assert record["settings"]["learning_rate"] == config["training"]["learning_rate"]
        assert record["settings"]["seed"] == network.seed and record["settings"]["split_seed"] == 0
    assert_same_metrics(workdir / files[-1], reference_training / files[-1])

    pd.testing.assert_frame_equal(
        pd.read_csv(workdir / f"{tuning}/tuning.csv"),
        pd.read_csv(reference_training / f"{tuning}/tuning.csv"),
        check_exact=True,
    )
    with (
        np.load(workdir / f"{tuning}/curves.npz") as ours,
        np.load(reference_training / f"{tuning}/curves.npz") as theirs,
    ):
        assert ours.files == theirs.files
        for layer in ours.files:
            np.testing.assert_array_equal(ours[layer], theirs[layer])
    ours = json.loads((workdir / f"{tuning}/tuning.provenance.json").read_text())
    theirs = json.loads((reference_training / f"{tuning}/tuning.provenance.json").read_text())
    assert_complete_provenance(ours, network.seed)
    assert ours["config_hash"] == theirs["config_hash"]
    # the tuning settings that make the table, and not the selectivity threshold (a summary setting)
    assert ours["settings"]["params"]["settings"]["orientations"] == config["tuning"]["orientations"]
    assert "selectivity_threshold" not in ours["settings"]["params"]["settings"]


# ------------------------------------------------------------------------- 6. load


PER_NETWORK_OUTPUTS = {  # outputs of one network's jobs of each causal rule (causal.label_corruption)
    "class_selectivity": 2,
    "half_ablation": 3,
    "cumulative_ablation": 3,
    "shift_invariance": 2,
    # one job per feature besides orientation (tuning.features: all four by default)
    "half_ablation_by_feature": 3 * 3,
    "shift_invariance_by_feature": 2 * 3,
    # the keys of the tests that rank by tuning: 3 orientation tests, 2 per other feature
    "causal_key": 3 + 2 * 3,
}


@pytest.mark.parametrize(
    "override",
    [{}, {"networks": {"models": ["cnn7", "cnn11"]}, "training": {"group_size": 5}}],
    ids=["config.yaml", "two models in groups of 5"],
)
def test_the_paper_scale_dag_has_the_jobs_the_config_implies(tmp_path, override):
    config = complete_config(merged_config(read_yaml(REPO / "config.yaml"), override))
    assert not config["vgg16"]["enabled"]
    plan = planned(tmp_path, write_config(tmp_path, config))
    models, nets = config["networks"]["models"], networks(config)
    assert plan.rules("train_") == {f"train_{group.name}" for group in training_groups(config)}
    # every network: one table, curves file and provenance record for all its checkpoints
    assert len(plan.outputs_of("measure_tuning")) == 3 * len(nets)
    for rule, count in PER_NETWORK_OUTPUTS.items():
        outputs = [path for path, (name, _) in plan.pending.items() if name == rule]
        assert len(outputs) == count * len(causal_networks(config)), rule
    # PDF and PNG of each model's figures, and of the figures across all models (with several)
    n_figures = len(models) * len(figures_of("model")) + len(figures_of("across")) * (len(models) > 1)
    assert len(plan.outputs_of("plot_")) == 2 * n_figures
    # the tuning table by its own rule (it stays out of the report), the others by collect_table
    assert plan.outputs_of("collect_tuning_table") == {"results/aggregate/tuning.csv"}
    assert len(plan.outputs_of("collect_table")) == COLLECTED_TABLES - 1
    assert {
        "prepare_dataset",
        "split_dataset",
        "extract_test_set",
        "evaluate_claims",
        "depth_profiles",
        "provenance",
    } <= plan.rules()


def test_config_yaml_equals_the_schema_defaults():
    """config.yaml (read from beside the Snakefile in every run) documents the schema's defaults."""
    assert complete_config({}) == read_yaml(REPO / "config.yaml")
