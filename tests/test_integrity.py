"""Nothing wrong passes between rules (issue 30): each row of the issue's table is a test here.

Damaged or misplaced files between rules, on small fixtures (a cnn7 with random weights, its
real tuning table), read the way the rules read them:

| case | test |
| --- | --- |
| 25% of a tuning table's gosi NaN; whole rows missing (`head -n 1200`) | test_nan_gosi_in_a_tuning_table_stops_the_reader_naming_file_column_and_units, test_a_tuning_table_cut_short_names_the_missing_units |
| another network's best.pt copied into seed0's folder | test_a_checkpoint_copied_into_another_networks_folder_is_refused_naming_both |
| 192 bytes of a checkpoint inverted | test_a_checkpoint_with_inverted_bytes_is_refused_by_its_digest |
| gosi column deleted | test_a_deleted_column_is_named_with_the_file |
| NaN in the best checkpoint's table | test_nan_in_the_best_checkpoints_table_names_file_layer_and_unit |
| empty tuning CSV among 50 inputs | test_an_empty_table_among_50_inputs_is_named |
| unrelated torch file as a checkpoint (provenance rule) | test_an_unrelated_torch_file_is_named_by_every_checkpoint_reader |
| an orphaned training job still running | test_a_second_training_of_a_network_stops_while_another_process_holds_its_lock |
| a class absent from the training data | test_a_class_without_training_or_test_images_is_refused_when_the_dataset_is_made |
| disk full while writing a checkpoint | test_a_full_disk_while_saving_a_checkpoint_is_reported_with_path_and_free_space |
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from collections import namedtuple
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

import selectivity.io as selectivity_io
from selectivity.networks.checkpoints import (
    CHECKPOINT_FORMAT,
    CheckpointError,
    checkpoint_identifiers,
    content_digest,
    load_checkpoint,
    provenance_table,
    read_checkpoint,
    save_checkpoint,
)
from selectivity.data.dataset import Dataset, DatasetError, load_dataset, load_split, save_dataset
from selectivity.figures.drawing import read_tuning_curves
from selectivity.identity import checkpoint_identity, identity_from_path, network_identity
from selectivity.io import DiskFullError, load_torch, save_table
from selectivity.networks.models import build_model
from selectivity.tables import TableError, concatenate_tables, read_table
from selectivity.training import (
    NetworkOutputs,
    NetworkSpec,
    TrainingLockedError,
    TrainingSettings,
    train_networks,
    training_locks,
)
from selectivity.tuning.analysis import TuningSettings, analyse_tuning

REPO = Path(__file__).resolve().parents[1]
NETWORK = "cnn7/synthetic/corruption0.00/seed0"
OTHER_NETWORK = "cnn7/synthetic/corruption0.00/seed1"

Run = namedtuple("Run", "root checkpoints tuning")


def checkpoint_file(root: Path, network: str, name: str) -> Path:
    return root / "results" / "networks" / network / "checkpoints" / f"{name}.pt"


def tuning_file(root: Path, network: str, name: str) -> Path:
    return root / "results" / "tuning" / network / f"{name}.csv"


def save_network(root: Path, network: str, name: str, seed: int) -> Path:
    """A cnn7 with random weights saved as checkpoint ``name`` (epoch2 or best, epoch 2) of ``network``."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = build_model("cnn7")
    path = checkpoint_file(root, network, name)
    save_checkpoint(
        path,
        model,
        model_name="cnn7",
        input_mean=torch.full((3, 32, 32), 0.45),
        epoch=2,
        network=network_identity(network),
        metrics={"epoch": 2},
        provenance={"config_hash": "0" * 16, "device": "cpu", "versions": {"torch": str(torch.__version__)}},
        checkpoint="best" if name == "best" else "epoch",
    )
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory) -> Run:
    """Two networks' checkpoints (epoch2, best) and the real tuning tables of seed0's, as a run leaves them."""
    root = tmp_path_factory.mktemp("run")
    checkpoints = {
        (network, name): save_network(root, network, name, seed)
        for seed, network in enumerate((NETWORK, OTHER_NETWORK))
        for name in ("epoch2", "best")
    }
    tuning = {}
    for name in ("epoch2", "best"):
        network = load_checkpoint(checkpoints[(NETWORK, name)], "cpu", checkpoint_identity(NETWORK, name))
        result = analyse_tuning(network, TuningSettings(), checkpoint_identifiers(network, name))
        tuning[name] = tuning_file(root, NETWORK, name)
        save_table(result.table, tuning[name])
    return Run(root, checkpoints, tuning)


def damaged_copy(source: Path, tmp_path: Path, root: Path) -> Path:
    """Where a damaged copy of ``source`` goes: the same path relative to the run, under tmp_path."""
    target = tmp_path / source.relative_to(root)
    target.parent.mkdir(parents=True, exist_ok=True)
    return target


# ------------------------------------------------------------------ tables (rows 1, 4, 5, 6)


def test_the_run_fixture_tables_and_checkpoints_pass(run):
    """The checks accept what the package writes (so every failure below is the damage's)."""
    for name, path in run.tuning.items():
        table = read_table(path, "tuning", checkpoint_identity(NETWORK, name))
        assert len(table) == 2 * 960  # two stimulus sets x cnn7's 960 units
    for path in run.checkpoints.values():
        read_checkpoint(path, identity_from_path(path))


def test_nan_gosi_in_a_tuning_table_stops_the_reader_naming_file_column_and_units(run, tmp_path):
    table = pd.read_csv(run.tuning["epoch2"])
    table.loc[table.index % 4 == 0, "gosi"] = np.nan  # 25%, as in the issue
    damaged = damaged_copy(run.tuning["epoch2"], tmp_path, run.root)
    table.to_csv(damaged, index=False)
    with pytest.raises(TableError) as error:
        read_table(damaged, "tuning")
    message = str(error.value)
    assert message.startswith(str(damaged))
    assert "column gosi has 25% NaN (480 of 1920 rows; allowed: none)" in message
    assert "at layer conv1 units 0, 4, 8, 12" in message


def test_a_tuning_table_cut_short_names_the_missing_units(run, tmp_path):
    damaged = damaged_copy(run.tuning["epoch2"], tmp_path, run.root)
    lines = run.tuning["epoch2"].read_text().splitlines(keepends=True)
    damaged.write_text("".join(lines[:1200]))  # head -n 1200
    with pytest.raises(TableError) as error:
        read_table(damaged, "tuning")
    message = str(error.value)
    assert message.startswith(str(damaged))
    # rows are layer by layer, gratings then shuffled: conv1..conv6 (2 x 448 rows) and fc1's first 303 units
    assert (
        "layer fc1 has 303 unit rows at cnn7/synthetic/corruption0.00/seed0, checkpoint epoch (epoch 2), gratings, "
        "expected units 0..511 (cnn7's fc1 has 512 units): units 303, 304, 305, 306, 307, 308, 309, 310, ... missing"
    ) in message


def test_a_deleted_column_is_named_with_the_file(run, tmp_path):
    damaged = damaged_copy(run.tuning["best"], tmp_path, run.root)
    pd.read_csv(run.tuning["best"]).drop(columns="gosi").to_csv(damaged, index=False)
    with pytest.raises(TableError, match=rf"^{damaged} lacks column gosi \(a tuning table has model, "):
        read_table(damaged, "tuning", checkpoint_identity(NETWORK, "best"))


def test_nan_in_the_best_checkpoints_table_names_file_layer_and_unit(run, tmp_path):
    table = pd.read_csv(run.tuning["best"])
    row = table.index[
        (table["layer"] == "conv3") & (table["unit"] == 4) & (table["stimulus_set"] == "gratings")
    ]
    table.loc[row, "gosi"] = np.nan
    damaged = damaged_copy(run.tuning["best"], tmp_path, run.root)
    table.to_csv(damaged, index=False)
    with pytest.raises(TableError) as error:
        read_table(damaged, "tuning", checkpoint_identity(NETWORK, "best"))
    message = str(error.value)
    assert message.startswith(f"{damaged}: column gosi has 0.052% NaN (1 of 1920 rows; allowed: none)")
    assert (
        "at layer conv3 unit 4 (first: cnn7/synthetic/corruption0.00/seed0, checkpoint best (epoch 2), gratings)"
        in (message)
    )


def test_an_empty_table_among_50_inputs_is_named(run, tmp_path):
    table = pd.read_csv(run.tuning["best"])
    paths = []
    for seed in range(50):
        path = tuning_file(tmp_path, f"cnn7/synthetic/corruption0.00/seed{seed}", "best")
        save_table(table.assign(seed=seed), path)
        paths.append(path)
    assert len(concatenate_tables(paths, "tuning")) == 50 * len(table)
    paths[37].write_text("")
    with pytest.raises(
        TableError, match=rf"^{paths[37]} is empty \(no header\): a tuning table was expected$"
    ):
        concatenate_tables(paths, "tuning")


def test_a_table_copied_into_another_networks_folder_is_refused_naming_both(run, tmp_path):
    other = tuning_file(tmp_path, OTHER_NETWORK, "best")
    other.parent.mkdir(parents=True)
    shutil.copyfile(run.tuning["best"], other)
    with pytest.raises(TableError) as error:
        read_table(other, "tuning")
    message = str(error.value)
    assert message.startswith(
        f"{other} holds rows of cnn7/synthetic/corruption0.00/seed0, checkpoint best (epoch 2)"
    )
    assert "but its path names cnn7/synthetic/corruption0.00/seed1, checkpoint best" in message
    # collect_table, given both files, names the duplicate too
    with pytest.raises(TableError, match="seed1"):
        concatenate_tables([run.tuning["best"], other], "tuning")


# ------------------------------------------------------------ checkpoints (rows 2, 3, 7)


def test_a_checkpoint_copied_into_another_networks_folder_is_refused_naming_both(run, tmp_path):
    copied = damaged_copy(run.checkpoints[(NETWORK, "best")], tmp_path, run.root)
    shutil.copyfile(run.checkpoints[(OTHER_NETWORK, "best")], copied)  # seed1's best.pt in seed0's folder
    expected = checkpoint_identity(NETWORK, "best")
    message = (
        rf"^{copied} holds cnn7/synthetic/corruption0.00/seed1, checkpoint best \(epoch 2\), but "
        r"cnn7/synthetic/corruption0.00/seed0, checkpoint best was asked for \(they differ in seed\)"
    )
    with pytest.raises(CheckpointError, match=message):
        load_checkpoint(copied, "cpu", expected)
    with pytest.raises(CheckpointError, match=message):  # the provenance rule: identity from the path
        provenance_table([str(copied)])
    # an epoch's file under another epoch's name is refused too
    with pytest.raises(CheckpointError, match="checkpoint epoch \\(epoch 3\\) was asked for"):
        load_checkpoint(run.checkpoints[(NETWORK, "epoch2")], "cpu", checkpoint_identity(NETWORK, "epoch3"))


def test_a_checkpoint_with_inverted_bytes_is_refused_by_its_digest(run, tmp_path):
    source = run.checkpoints[(NETWORK, "best")]
    data = bytearray(source.read_bytes())
    weights = load_torch(source, "checkpoint")["state_dict"]["stages.5.conv.weight"]
    offset = data.find(weights.reshape(-1)[:16].numpy().tobytes())
    assert offset > 0
    data[offset + 512 : offset + 704] = bytes(
        255 - byte for byte in data[offset + 512 : offset + 704]
    )  # 192 bytes
    damaged = damaged_copy(source, tmp_path, run.root)
    damaged.write_bytes(bytes(data))
    load_torch(damaged, "checkpoint")  # torch itself loads it, with other weights: the silent case
    for read in (
        lambda: load_checkpoint(damaged, "cpu", checkpoint_identity(NETWORK, "best")),
        lambda: provenance_table([str(damaged)]),
    ):
        with pytest.raises(
            CheckpointError, match=rf"^{damaged} is damaged: its content digest \(format, model, "
        ):
            read()
    # the metrics and provenance recorded beside the weights are covered too
    blob = load_torch(source, "checkpoint")
    blob["metrics"]["epoch"] = 3
    torch.save(blob, damaged)
    with pytest.raises(
        CheckpointError, match=rf"^{damaged} is damaged: its record digest \(metrics, provenance\)"
    ):
        load_checkpoint(damaged)


def test_an_unrelated_torch_file_is_named_by_every_checkpoint_reader(tmp_path):
    path = checkpoint_file(tmp_path, NETWORK, "best")
    path.parent.mkdir(parents=True)
    torch.save({"weights": torch.zeros(3), "epochs": 5}, path)
    message = (
        rf"^{path} is not a {CHECKPOINT_FORMAT} checkpoint: it has no format entry, only weights, epochs \("
    )
    for read in (lambda: provenance_table([str(path)]), lambda: load_checkpoint(path)):
        with pytest.raises(CheckpointError, match=message):
            read()
    torch.save(torch.zeros(3), path)
    with pytest.raises(CheckpointError, match=rf"^{path} is not a .* it holds a Tensor"):
        provenance_table([str(path)])


def test_an_old_checkpoint_without_a_digest_is_read_with_a_warning_and_its_identity_checked(
    run, tmp_path, caplog
):
    """A finished run of the first checkpoint format keeps its networks (no retraining forced),
    says that their content cannot be verified, and still refuses another network's file."""
    blob = load_torch(run.checkpoints[(NETWORK, "best")], "checkpoint")
    for key in ("content_digest", "record_digest", "checkpoint"):
        blob.pop(key, None)
    blob["format"] = "selectivity-checkpoint/1"
    old = damaged_copy(run.checkpoints[(NETWORK, "best")], tmp_path, run.root)
    torch.save(blob, old)
    with caplog.at_level("WARNING"):
        loaded = load_checkpoint(old, "cpu", identity_from_path(old))
    assert loaded.epoch == blob["epoch"]
    assert (
        "written before checkpoints carried a content digest" in caplog.text
        and f"--forcerun {old}" in caplog.text
    )
    other = {**identity_from_path(old), "seed": identity_from_path(old)["seed"] + 1}
    with pytest.raises(CheckpointError, match="differ in seed"):
        load_checkpoint(old, "cpu", other)


def test_the_digest_covers_weights_and_identity_but_not_the_runs_timing(run):
    blob = load_torch(run.checkpoints[(NETWORK, "best")], "checkpoint")
    assert blob["content_digest"] == content_digest(blob)
    assert (
        content_digest({**blob, "metrics": {"epoch_seconds": 1.5}, "provenance": {}})
        == blob["content_digest"]
    )
    assert content_digest({**blob, "epoch": 3}) != blob["content_digest"]
    assert content_digest({**blob, "network": network_identity(OTHER_NETWORK)}) != blob["content_digest"]
    weights = dict(blob["state_dict"])
    weights["stages.0.conv.bias"] = weights["stages.0.conv.bias"].clone()
    weights["stages.0.conv.bias"][0] += 1e-7
    assert content_digest({**blob, "state_dict": weights}) != blob["content_digest"]


def test_other_files_between_rules_are_named_when_damaged(run, tmp_path):
    """The tuning curves a figure reads, and the split the training reads."""
    table = read_table(run.tuning["best"], "tuning")
    curves = tmp_path / "best_curves.npz"
    curves.write_bytes(b"PK\x03\x04 not a zip archive")
    with pytest.raises(ValueError, match=rf"^cannot read tuning curves {curves}: "):
        read_tuning_curves(curves, table, "best")
    layers = {"best/conv1": np.ones((32, 8, 12)), "best/fc1": np.ones((500, 8, 12))}
    np.savez(curves, orientations_deg=np.arange(12) * 15.0, **layers)
    with pytest.raises(
        ValueError, match=rf"^{curves}: the curves of fc1 have shape \(500, 8, 12\), expected \(512 units"
    ):
        read_tuning_curves(curves, table, "best")
    split = tmp_path / "synthetic_split.npz"
    split.write_bytes(b"")
    with pytest.raises(DatasetError, match=rf"^cannot read split file {split}: "):
        load_split(split)


# ------------------------------------------------------------------------ training lock (row 8)

HOLDER = textwrap.dedent("""
    import sys, time
    from selectivity.training import training_locks
    with training_locks(sys.argv[1], [sys.argv[2]]):
        print("locked", flush=True)
        time.sleep(600)
    """)


def hold_lock(state_dir: Path, network: str) -> subprocess.Popen:
    """Another process (an orphaned training job) holding a network's lock."""
    environment = dict(os.environ, PYTHONPATH=str(REPO / "src"))
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(state_dir), network],
        stdout=subprocess.PIPE,
        text=True,
        env=environment,
    )
    assert holder.stdout.readline().strip() == "locked"
    return holder


def tiny_training(root: Path):
    rng = np.random.default_rng(0)
    dataset = Dataset(
        rng.integers(0, 256, (30, 32, 32, 3), dtype=np.uint8),
        np.arange(30) % 10,
        rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8),
        np.arange(10),
        [f"class{i}" for i in range(10)],
    )
    from selectivity.data.dataset import Split

    spec = NetworkSpec("cnn7", "synthetic", 0.0, 0)
    folder = root / "results" / "networks" / spec.path_fragment()
    outputs = NetworkOutputs(
        {0: folder / "epoch0.pt", 1: folder / "epoch1.pt"}, folder / "best.pt", folder / "metrics.csv"
    )
    split = Split(np.arange(20), np.arange(20, 30), split_seed=0)
    return spec, dataset, split, TrainingSettings(epochs=1, batch_size=16), outputs


def test_a_second_training_of_a_network_stops_while_another_process_holds_its_lock(tmp_path):
    state_dir = tmp_path / "results" / "training_state"
    spec, dataset, split, settings, outputs = tiny_training(tmp_path)
    holder = hold_lock(state_dir, spec.path_fragment())
    try:
        started = time.monotonic()
        with pytest.raises(TrainingLockedError) as error:
            train_networks(
                [spec],
                dataset,
                split,
                settings,
                [outputs],
                state_dir,
                "cpu",
                progress=False,
                lock_wait_seconds=1,
            )
        assert time.monotonic() - started >= 1  # it waited the bounded time
        message = str(error.value)
        assert message.startswith(f"{spec.path_fragment()} is being trained by process {holder.pid} on ")
        assert str(state_dir / "cnn7-synthetic-corruption0.00-seed0.lock") in message and "orphan" in message
        # it stopped before touching the state or any output
        assert sorted(path.name for path in state_dir.iterdir()) == [
            "cnn7-synthetic-corruption0.00-seed0.lock"
        ]
        assert not outputs.metrics.parent.exists()
        # another network trains meanwhile: the lock is per network
        with training_locks(state_dir, ["cnn7/synthetic/corruption0.00/seed1"], wait_seconds=0):
            pass
    finally:
        holder.send_signal(signal.SIGKILL)  # kill -9: the kernel releases the lock
        holder.wait()
    train_networks(
        [spec], dataset, split, settings, [outputs], state_dir, "cpu", progress=False, lock_wait_seconds=0
    )
    assert outputs.metrics.exists()
    assert list(state_dir.iterdir()) == []  # the state and the lock file are gone once training is done


def test_a_waiting_training_gets_the_lock_when_the_other_process_ends(tmp_path):
    holder = hold_lock(tmp_path, NETWORK)
    try:
        with pytest.raises(TrainingLockedError):
            with training_locks(tmp_path, [NETWORK], wait_seconds=0):
                pass
        holder.send_signal(signal.SIGTERM)
        started = time.monotonic()
        with training_locks(tmp_path, [NETWORK], wait_seconds=30) as held:
            assert time.monotonic() - started < 30
            assert held == [tmp_path / "cnn7-synthetic-corruption0.00-seed0.lock"]
            assert f'"pid": {os.getpid()}' in held[0].read_text()
    finally:
        holder.kill()
        holder.wait()


def test_a_damaged_checkpoint_in_the_resume_state_is_retrained_not_copied_out(tmp_path, caplog):
    state_dir = tmp_path / "results" / "training_state"
    spec, dataset, split, settings, outputs = tiny_training(tmp_path)

    def stop(epoch):
        raise KeyboardInterrupt  # the job is killed after epoch 0 was saved

    with pytest.raises(KeyboardInterrupt):
        train_networks(
            [spec], dataset, split, settings, [outputs], state_dir, "cpu", progress=False, epoch_callback=stop
        )
    (saved,) = state_dir.glob("training-*/network0/epoch0.pt")
    blob = load_torch(saved, "checkpoint")
    blob["state_dict"]["stages.0.conv.weight"][0, 0, 0, 0] += 1.0
    torch.save(blob, saved)
    with caplog.at_level("INFO", logger="selectivity.training"):
        train_networks([spec], dataset, split, settings, [outputs], state_dir, "cpu", progress=False)
    assert f"{saved} is damaged: its content digest" in caplog.text and "starting from scratch" in caplog.text
    for path in (*outputs.checkpoints.values(), outputs.best_checkpoint):
        load_checkpoint(path, "cpu", identity_from_path(path) or None)


# --------------------------------------------------------------------- dataset classes (row 9)


def test_a_class_without_training_or_test_images_is_refused_when_the_dataset_is_made(tmp_path):
    rng = np.random.default_rng(0)
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    images = rng.integers(0, 256, (40, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(40) % 9  # no truck
    dataset = Dataset(images, labels, images[:20], np.arange(20) % 10, names, "test data")
    with pytest.raises(
        DatasetError, match=r"^test data: class 9 \('truck'\) of 10 has no training images \(y_train\)"
    ):
        save_dataset(tmp_path / "data.npz", dataset)
    assert not (tmp_path / "data.npz").exists()
    no_test_cats = Dataset(
        images,
        np.arange(40) % 10,
        images[:20],
        np.where(np.arange(20) % 10 == 3, 4, np.arange(20) % 10),
        names,
    )
    with pytest.raises(DatasetError, match=r"class 3 \('cat'\) of 10 has no test images \(y_test\)"):
        save_dataset(tmp_path / "data.npz", no_test_cats)
    # a file made otherwise is refused where it is read (the split and training rules)
    np.savez(
        tmp_path / "made_elsewhere.npz",
        x_train=images,
        y_train=labels,
        x_test=images[:20],
        y_test=np.arange(20) % 10,
        class_names=np.array(names),
    )
    with pytest.raises(DatasetError, match=rf"^{tmp_path / 'made_elsewhere.npz'}: class 9 \('truck'\)"):
        load_dataset(tmp_path / "made_elsewhere.npz")


# ----------------------------------------------------------------------------- disk full (row 10)


def test_a_full_disk_while_saving_a_checkpoint_is_reported_with_path_and_free_space(
    run, tmp_path, monkeypatch
):
    real_save = torch.save
    # torch's own error for a short write: write to /dev/full, as a full disk would fail
    monkeypatch.setattr(torch, "save", lambda obj, path: real_save(obj, "/dev/full"))
    usage = shutil.disk_usage(tmp_path)
    monkeypatch.setattr(selectivity_io.shutil, "disk_usage", lambda folder: usage._replace(free=4096))
    path = checkpoint_file(tmp_path, NETWORK, "epoch2")
    with pytest.raises(DiskFullError) as error:
        save_network(tmp_path, NETWORK, "epoch2", 0)
    message = str(error.value)
    assert error.value.errno == errno.ENOSPC
    assert message.startswith(
        f"[Errno 28] no space left on the device while writing {path} (4.0 KiB free in {path.parent}"
    )
    assert re.search(
        r"about 1\.\d MiB needed; torch: \[enforce fail at inline_container\.cc:\d+\] \. unexpected pos",
        message,
    )
    assert list(path.parent.iterdir()) == []  # nothing half-written, not even the temporary file


def test_a_full_disk_while_writing_a_table_is_reported_too(run, tmp_path, monkeypatch):
    def no_space(self, *args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(pd.DataFrame, "to_csv", no_space)
    path = tmp_path / "results" / "table.csv"
    with pytest.raises(
        DiskFullError, match=rf"no space left on the device while writing {path} \(.* free in "
    ):
        save_table(pd.DataFrame({"a": [1]}), path)
    assert list(path.parent.iterdir()) == []
