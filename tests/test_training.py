"""Training: label corruption, seeds, outputs, determinism, resume after interruption."""

import logging
import math
import os
import pickle
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from selectivity.networks.checkpoints import load_checkpoint, provenance_table
from selectivity.data.dataset import Dataset, Split, load_dataset, save_dataset
from selectivity.io import UnsafeFileError, load_torch
from selectivity.training import (
    METRICS_COLUMNS,
    EpochPlan,
    LockstepTrainer,
    NetworkOutputs,
    NetworkSpec,
    TrainingDivergedError,
    TrainingSettings,
    corrupt_labels,
    derive_seed,
    device_numerics,
    draw_epoch_plan,
    initial_network,
    stream_generator,
    train_networks,
)

SETTINGS = TrainingSettings(epochs=3, batch_size=16, checkpoint_epochs=(0, 1))
SPEC = NetworkSpec("cnn7", "toy", 0.25, 7)


@pytest.fixture(autouse=True)
def one_thread():
    """Bit-identical CPU results need the same thread count in every run (and subprocess)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_dataset() -> tuple[Dataset, Split]:
    """40 training images (3 steps of 16, 16 and 8), 16 validation and 16 test images."""
    rng = np.random.default_rng(0)
    dataset = Dataset(
        rng.integers(0, 256, (56, 32, 32, 3), dtype=np.uint8),
        rng.integers(0, 10, 56),
        rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8),
        np.arange(16) % 10,  # every class among the test images, as a dataset file must have
        [f"class{i}" for i in range(10)],
        "random images",
    )
    return dataset, Split(np.arange(40), np.arange(40, 56), split_seed=0)


def outputs_for(root: Path, spec: NetworkSpec, settings: TrainingSettings = SETTINGS) -> NetworkOutputs:
    folder = root / spec.path_fragment()
    return NetworkOutputs(
        {e: folder / f"checkpoints/epoch{e}.pt" for e in settings.saved_epochs()},
        folder / "checkpoints/best.pt",
        folder / "metrics.csv",
    )


def all_checkpoints(outputs: NetworkOutputs) -> list[Path]:
    return [outputs.checkpoints[e] for e in sorted(outputs.checkpoints)] + [outputs.best_checkpoint]


def assert_same_results(a: NetworkOutputs, b: NetworkOutputs) -> None:
    """Bit-identical checkpoints and metrics, apart from the measured epoch_seconds."""
    pd.testing.assert_frame_equal(
        pd.read_csv(a.metrics).drop(columns="epoch_seconds"),
        pd.read_csv(b.metrics).drop(columns="epoch_seconds"),
    )
    for path_a, path_b in zip(all_checkpoints(a), all_checkpoints(b)):
        blob_a = load_torch(path_a, "checkpoint")
        blob_b = load_torch(path_b, "checkpoint")
        assert blob_a.keys() == blob_b.keys()
        for key in blob_a:
            if key == "state_dict":
                assert blob_a[key].keys() == blob_b[key].keys()
                for name in blob_a[key]:
                    assert torch.equal(blob_a[key][name], blob_b[key][name]), f"{path_a.name}: {name}"
            elif key == "input_mean":
                assert torch.equal(blob_a[key], blob_b[key])
            elif key == "metrics":
                assert {k: v for k, v in blob_a[key].items() if k != "epoch_seconds"} == {
                    k: v for k, v in blob_b[key].items() if k != "epoch_seconds"
                }
            elif key == "record_digest":  # covers the metrics' epoch_seconds
                continue
            else:
                assert blob_a[key] == blob_b[key], f"{path_a.name}: {key}"


@pytest.fixture(scope="module")
def reference_run(tmp_path_factory):
    """One uninterrupted run that the determinism and resume tests compare against."""
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("reference")
    dataset, split = tiny_dataset()
    outputs = outputs_for(root, SPEC)
    train_networks([SPEC], dataset, split, SETTINGS, [outputs], root / "state", "cpu", progress=False)
    return root, outputs


# ------------------------------------------------------------------ specs and settings


def test_network_spec_identifiers_and_path():
    spec = NetworkSpec("cnn7", "cifar10", 0.2, 3)
    assert spec.identifiers() == {"model": "cnn7", "dataset": "cifar10", "label_corruption": 0.2, "seed": 3}
    assert spec.path_fragment() == "cnn7/cifar10/corruption0.20/seed3"
    with pytest.raises(ValueError, match="label_corruption"):
        NetworkSpec("cnn7", "cifar10", 1.5, 0)
    with pytest.raises(ValueError, match="seed"):
        NetworkSpec("cnn7", "cifar10", 0.0, -1)


def test_settings_save_the_requested_epochs_and_the_last():
    settings = TrainingSettings(epochs=10, checkpoint_epochs=[5, 0, 5])
    assert settings.saved_epochs() == [0, 5, 10]
    assert settings.checkpoint_epochs == (0, 5)  # lists from config files are normalised
    assert settings == TrainingSettings(epochs=10, checkpoint_epochs=(0, 5))
    assert settings.adam_epsilon == 1e-8 and settings.batch_size == 32 and settings.shift_range == 0.1


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"epochs": 0}, "epochs"),
        ({"epochs": 5, "checkpoint_epochs": (0, 6)}, "checkpoint_epochs has epoch 6"),
        ({"epochs": 5, "precision": "fp16"}, "precision must be one of .*'fp16'"),
        ({"epochs": 5, "batch_size": 0}, "batch_size"),
        ({"epochs": 5, "shift_range": -0.1}, "shift_range"),
        ({"epochs": 5, "adam_betas": (0.9, 1.0)}, "adam_betas"),
    ],
)
def test_bad_settings_are_named(kwargs, message):
    with pytest.raises(ValueError, match=message):
        TrainingSettings(**kwargs)


# ------------------------------------------------------------------ label corruption


def test_corruption_zero_leaves_labels_unchanged():
    labels = np.arange(100) % 10
    assert np.array_equal(corrupt_labels(labels, 0.0, 10, seed=1), labels)


@pytest.mark.parametrize("fraction,count", [(0.2, 200), (0.4, 400), (0.333, 333), (1.0, 1000)])
def test_corruption_redraws_exactly_round_fraction_n_labels(fraction, count):
    labels = np.zeros(1000, dtype=np.int64)
    # with a million classes a redraw essentially never repeats the true label (0),
    # so the changed positions are exactly the chosen ones
    changed = np.flatnonzero(corrupt_labels(labels, fraction, 10**6, seed=2) != labels)
    assert len(changed) == count
    # with 10 classes the same positions are chosen (the draw depends on the seed, not the classes)
    ten_classes = np.flatnonzero(corrupt_labels(labels, fraction, 10, seed=2) != labels)
    assert set(ten_classes) <= set(changed) and len(ten_classes) >= 0.8 * count


def test_full_corruption_draws_labels_uniformly_regardless_of_the_true_label():
    labels = np.arange(20_000) % 10
    corrupted = corrupt_labels(labels, 1.0, 10, seed=3)
    # a uniform redraw keeps the true label with probability 1/10 (sd 0.002 here)
    assert abs((corrupted == labels).mean() - 0.1) < 0.01
    counts = np.bincount(corrupted, minlength=10)
    assert np.all(np.abs(counts - 2000) < 5 * math.sqrt(2000 * 0.9))


def test_corruption_is_determined_by_the_seed():
    labels = np.arange(500) % 10
    a, b = corrupt_labels(labels, 0.4, 10, seed=4), corrupt_labels(labels, 0.4, 10, seed=4)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, corrupt_labels(labels, 0.4, 10, seed=5))
    assert a.dtype == np.int64


def test_corruption_rejects_bad_input():
    with pytest.raises(ValueError, match="fraction"):
        corrupt_labels(np.zeros(5, dtype=int), 1.2, 10, seed=0)
    with pytest.raises(ValueError, match="0..9"):
        corrupt_labels(np.array([0, 10]), 0.5, 10, seed=0)


# ------------------------------------------------------------------ randomness per network


def test_seed_streams_are_distinct_and_stable():
    seeds = {
        derive_seed(s, stream) for s in range(3) for stream in ("initialisation", "shuffling", "augmentation")
    }
    assert len(seeds) == 9
    assert derive_seed(0, "shuffling") == derive_seed(0, "shuffling")
    with pytest.raises(ValueError, match="stream"):
        derive_seed(0, "dropout")


def test_initialisation_depends_on_the_seed_only_and_leaves_global_rng_alone():
    torch.manual_seed(123)
    before = torch.random.get_rng_state()
    a = initial_network("cnn7", seed=1)
    assert torch.equal(torch.random.get_rng_state(), before)
    torch.manual_seed(999)
    b = initial_network("cnn7", seed=1)
    c = initial_network("cnn7", seed=2)
    for (name, x), y, z in zip(a.state_dict().items(), b.state_dict().values(), c.state_dict().values()):
        assert torch.equal(x, y), name
    assert not torch.equal(a.stages[0].conv.weight, c.stages[0].conv.weight)


def test_epoch_plan_orders_are_permutations_and_independent_of_augmentation():
    def plan(settings):
        return draw_epoch_plan(
            [stream_generator(s, "shuffling") for s in (0, 1)],
            [stream_generator(s, "augmentation") for s in (0, 1)],
            50,
            settings,
            (32, 32),
        )

    augmented = plan(TrainingSettings(epochs=1))
    plain = plan(TrainingSettings(epochs=1, augmentation=False))
    for order in augmented.order:
        assert torch.equal(order.sort().values, torch.arange(50))
    assert not torch.equal(augmented.order[0], augmented.order[1])
    assert torch.equal(augmented.order, plain.order)
    assert plain.shifts is None and augmented.shifts.shape == (2, 50, 2)
    assert augmented.shifts.abs().max() <= 3


# ------------------------------------------------------------------ the trainer


def test_trainer_memorises_a_small_batch_with_random_labels():
    """Known behaviour (Zhang et al. 2017): the network fits random labels of a few images."""
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(16, 3, 32, 32, generator=generator)
    labels = torch.randint(0, 10, (1, 16), generator=generator)
    settings = TrainingSettings(epochs=1, batch_size=16, augmentation=False)
    trainer = LockstepTrainer([initial_network("cnn7", 0)], images, labels, settings, torch.device("cpu"))
    trainer.set_plan(EpochPlan(torch.arange(16).unsqueeze(0), None, None))

    def training_loss():
        with torch.no_grad():
            return F.cross_entropy(trainer.model(images), labels[0]).item()

    before = training_loss()
    for _ in range(20):
        trainer.train_steps(0, 1)
    assert before > 1.0
    assert training_loss() < 0.05


# ------------------------------------------------------------------ whole runs


def test_outputs_hold_the_metrics_table_and_the_checkpoints(reference_run):
    root, outputs = reference_run
    metrics = pd.read_csv(outputs.metrics)
    assert list(metrics.columns) == list(METRICS_COLUMNS)
    assert list(metrics.epoch) == [0, 1, 2, 3]
    assert (metrics[["model", "dataset", "label_corruption", "seed"]].drop_duplicates().values.tolist()) == [
        ["cnn7", "toy", 0.25, 7]
    ]
    accuracies = metrics[[c for c in metrics.columns if "accuracy" in c]]
    assert ((accuracies >= 0) & (accuracies <= 1)).all().all()
    assert metrics.epoch_seconds[0] == 0 and (metrics.epoch_seconds[1:] > 0).all()
    # corrupted labels differ from the true ones, so the two training metrics differ
    assert (metrics.train_loss != metrics.train_loss_true_labels).all()
    assert not (root / "state").exists() or not any((root / "state").iterdir())  # state removed on success

    for epoch, path in outputs.checkpoints.items():
        loaded = load_checkpoint(path)
        assert loaded.epoch == epoch
        assert loaded.info["network"] == SPEC.identifiers()
        assert loaded.info["metrics"]["epoch"] == epoch
        assert loaded.info["provenance"]["seed"] == SPEC.seed
        # every step is counted: 3 epochs x ceil(40 / 16) = 9 BN updates, the partial batch included
        assert loaded.model.stages[0].bn.num_batches_tracked.item() == epoch * 3

    best = load_checkpoint(outputs.best_checkpoint)
    later = metrics[metrics.epoch >= 1]
    assert best.epoch == int(later.epoch[later.validation_loss.idxmin()])
    assert best.info["metrics"]["validation_loss"] == later.validation_loss.min()


def test_metrics_are_the_loaded_checkpoints_losses(reference_run):
    """Recompute the test loss and validation accuracy from the saved weights."""
    _, outputs = reference_run
    dataset, split = tiny_dataset()
    loaded = load_checkpoint(outputs.checkpoints[3])
    images = torch.as_tensor(dataset.x_test).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        logits = loaded.model(loaded.prepare_inputs(images))
    row = pd.read_csv(outputs.metrics).set_index("epoch").loc[3]
    assert F.cross_entropy(logits, torch.as_tensor(dataset.y_test)).item() == pytest.approx(
        row.test_loss, abs=1e-6
    )
    assert (logits.argmax(1).numpy() == dataset.y_test).mean() == pytest.approx(row.test_accuracy)
    # the checkpoint's mean image is the training split's (not the whole set's)
    expected_mean = (
        torch.as_tensor(dataset.x_train[split.train_indices]).double().mean(0).permute(2, 0, 1) / 255
    )
    torch.testing.assert_close(loaded.input_mean, expected_mean.float())


def test_same_seed_and_settings_give_bit_identical_results(reference_run, tmp_path):
    _, reference = reference_run
    dataset, split = tiny_dataset()
    outputs = outputs_for(tmp_path, SPEC)
    train_networks([SPEC], dataset, split, SETTINGS, [outputs], tmp_path / "state", "cpu", progress=False)
    assert_same_results(outputs, reference)


class Interrupted(Exception):
    pass


def test_resume_after_an_exception_continues_bit_identically(reference_run, tmp_path, caplog):
    _, reference = reference_run
    dataset, split = tiny_dataset()
    outputs = outputs_for(tmp_path, SPEC)

    def fail_after_epoch_one(epoch):
        if epoch == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        train_networks(
            [SPEC],
            dataset,
            split,
            SETTINGS,
            [outputs],
            tmp_path / "state",
            "cpu",
            progress=False,
            epoch_callback=fail_after_epoch_one,
        )
    assert not outputs.metrics.exists()
    assert list((tmp_path / "state").glob("*/state.pt"))
    with caplog.at_level(logging.INFO, logger="selectivity.training"):
        train_networks([SPEC], dataset, split, SETTINGS, [outputs], tmp_path / "state", "cpu", progress=False)
    assert "resuming after epoch 1" in caplog.text
    assert_same_results(outputs, reference)
    assert not list((tmp_path / "state").glob("*/state.pt"))


CHILD = """
import pickle, sys, time
from pathlib import Path
import numpy as np, torch
torch.set_num_threads(1)
from selectivity.data.dataset import Split, load_dataset
from selectivity.training import train_networks
root = Path(sys.argv[1])
spec, settings, outputs = pickle.loads((root / "job.pkl").read_bytes())
split = Split(np.arange(40), np.arange(40, 56), split_seed=0)

def signal_progress(epoch):
    if epoch == 1:
        (root / "epoch1.done").touch()
    if epoch == 2:
        time.sleep(120)  # never finish on its own: the parent kills us before or here

train_networks([spec], load_dataset(root / "data.npz"), split, settings, [outputs], root / "state", "cpu",
               progress=False, epoch_callback=signal_progress)
"""


def test_resume_after_sigkill_continues_bit_identically(reference_run, tmp_path, caplog):
    _, reference = reference_run
    dataset, split = tiny_dataset()
    save_dataset(tmp_path / "data.npz", dataset)
    outputs = outputs_for(tmp_path, SPEC)
    (tmp_path / "job.pkl").write_bytes(pickle.dumps((SPEC, SETTINGS, outputs)))
    (tmp_path / "child.py").write_text(CHILD)
    child = subprocess.Popen(
        [sys.executable, str(tmp_path / "child.py"), str(tmp_path)], stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while not (tmp_path / "epoch1.done").exists():
            if child.poll() is not None:
                pytest.fail(f"training subprocess ended early: {child.stderr.read().decode()[-2000:]}")
            if time.monotonic() > deadline:
                pytest.fail("training subprocess did not finish epoch 1 in time")
            time.sleep(0.01)
        os.kill(child.pid, signal.SIGKILL)  # somewhere in epoch 2, or waiting after it
        assert child.wait(timeout=30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stderr.close()
    assert not outputs.metrics.exists()

    with caplog.at_level(logging.INFO, logger="selectivity.training"):
        train_networks(
            [SPEC],
            load_dataset(tmp_path / "data.npz"),
            split,
            SETTINGS,
            [outputs],
            tmp_path / "state",
            "cpu",
            progress=False,
        )
    assert "resuming after epoch" in caplog.text
    assert_same_results(outputs, reference)


def test_changed_settings_discard_the_stale_state(reference_run, tmp_path, caplog):
    dataset, split = tiny_dataset()
    other_settings = TrainingSettings(epochs=3, batch_size=16, checkpoint_epochs=(0, 1), learning_rate=5e-4)

    def stop(epoch):
        if epoch == 1:
            raise Interrupted

    with pytest.raises(Interrupted):
        train_networks(
            [SPEC],
            dataset,
            split,
            other_settings,
            [outputs_for(tmp_path / "stale", SPEC)],
            tmp_path / "state",
            "cpu",
            progress=False,
            epoch_callback=stop,
        )
    outputs = outputs_for(tmp_path / "fresh", SPEC)
    with caplog.at_level(logging.INFO, logger="selectivity.training"):
        train_networks([SPEC], dataset, split, SETTINGS, [outputs], tmp_path / "state", "cpu", progress=False)
    assert "other settings" in caplog.text and "resuming" not in caplog.text
    assert_same_results(outputs, reference_run[1])


def interrupted_run(tmp_path: Path, settings: TrainingSettings = SETTINGS) -> None:
    """Train SPEC until epoch 1 is saved, then stop (leaving a resume state in tmp_path/state)."""

    def stop(epoch):
        if epoch == 1:
            raise Interrupted

    dataset, split = tiny_dataset()
    with pytest.raises(Interrupted):
        train_networks(
            [SPEC],
            dataset,
            split,
            settings,
            [outputs_for(tmp_path / "stale", SPEC, settings)],
            tmp_path / "state",
            "cpu",
            progress=False,
            epoch_callback=stop,
        )


def test_a_state_from_another_thread_count_is_discarded(reference_run, tmp_path, caplog):
    """CPU results are bit-identical only at the same thread count, so such a state is not resumed."""
    torch.set_num_threads(2)
    interrupted_run(tmp_path)
    torch.set_num_threads(1)
    dataset, split = tiny_dataset()
    outputs = outputs_for(tmp_path / "fresh", SPEC)
    with caplog.at_level(logging.INFO, logger="selectivity.training"):
        train_networks([SPEC], dataset, split, SETTINGS, [outputs], tmp_path / "state", "cpu", progress=False)
    assert "made with other CPU threads" in caplog.text and "resuming" not in caplog.text
    assert_same_results(outputs, reference_run[1])


def test_a_state_from_other_code_or_data_is_discarded(reference_run, tmp_path, caplog, monkeypatch):
    interrupted_run(tmp_path)
    monkeypatch.setattr("selectivity.training.run.source_digest", lambda: "edited-code")
    dataset, split = tiny_dataset()
    dataset.x_train[0, 0, 0, 0] ^= 1  # one bit of one training image
    outputs = outputs_for(tmp_path / "fresh", SPEC)
    with caplog.at_level(logging.INFO, logger="selectivity.training"):
        train_networks([SPEC], dataset, split, SETTINGS, [outputs], tmp_path / "state", "cpu", progress=False)
    assert "made with other data, code" in caplog.text and "resuming" not in caplog.text


def test_a_diverging_run_stops_at_the_first_non_finite_epoch_and_keeps_the_earlier_state(tmp_path):
    settings = TrainingSettings(epochs=3, batch_size=16, checkpoint_epochs=(0, 1), learning_rate=1e6)
    dataset, split = tiny_dataset()
    outputs = outputs_for(tmp_path, SPEC, settings)
    with pytest.raises(
        TrainingDivergedError, match=r"cnn7/toy/corruption0.25/seed7: training diverged at epoch 1 "
    ):
        train_networks([SPEC], dataset, split, settings, [outputs], tmp_path / "state", "cpu", progress=False)
    assert not any(path.exists() for path in [*all_checkpoints(outputs), outputs.metrics])
    (state,) = (tmp_path / "state").glob("*/state.pt")
    assert load_torch(state, "training state")["completed_epoch"] == 0
    kept = sorted(path.name for path in state.parent.rglob("epoch*.pt"))
    assert kept == ["epoch0.pt"]  # nothing of the diverged epoch was written
    for name, tensor in load_torch(state.parent / "network0" / "epoch0.pt", "checkpoint")[
        "state_dict"
    ].items():
        assert torch.isfinite(tensor).all(), name


class Payload:
    """An object whose unpickling would run code: it creates the file ``marker``."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_resume_state_with_a_code_payload_is_refused_and_never_runs(tmp_path):
    interrupted_run(tmp_path)
    (state,) = (tmp_path / "state").glob("*/state.pt")
    marker = tmp_path / "payload-ran"
    planted = load_torch(state, "training state")
    planted["rows"] = Payload(marker)
    torch.save(planted, state)
    dataset, split = tiny_dataset()
    with pytest.raises(UnsafeFileError, match="refusing to load training state .*state.pt"):
        train_networks(
            [SPEC],
            dataset,
            split,
            SETTINGS,
            [outputs_for(tmp_path / "x", SPEC)],
            tmp_path / "state",
            "cpu",
            progress=False,
        )
    assert not marker.exists()
    assert state.exists()  # kept for inspection, not silently replaced


def test_a_checkpoint_with_a_code_payload_is_refused_and_never_runs(reference_run, tmp_path):
    _, reference = reference_run
    marker = tmp_path / "payload-ran"
    blob = load_torch(reference.best_checkpoint, "checkpoint")
    blob["provenance"]["versions"] = Payload(marker)
    planted = tmp_path / "best.pt"
    torch.save(blob, planted)
    for load in (load_checkpoint, lambda path: provenance_table([path])):
        with pytest.raises(UnsafeFileError, match=f"refusing to load checkpoint {planted}"):
            load(planted)
    assert not marker.exists()
    assert load_checkpoint(reference.best_checkpoint).epoch >= 1  # real checkpoints load safely


def test_requests_that_cannot_be_trained_are_refused(tmp_path):
    dataset, split = tiny_dataset()
    outputs = outputs_for(tmp_path, SPEC)
    with pytest.raises(ValueError, match="share model and dataset"):
        train_networks(
            [SPEC, NetworkSpec("cnn11", "toy", 0.0, 1)],
            dataset,
            split,
            SETTINGS,
            [outputs, outputs],
            tmp_path,
            "cpu",
        )
    with pytest.raises(ValueError, match="listed twice"):
        train_networks([SPEC, SPEC], dataset, split, SETTINGS, [outputs, outputs], tmp_path, "cpu")
    wrong_epochs = NetworkOutputs({0: tmp_path / "e0.pt"}, tmp_path / "best.pt", tmp_path / "m.csv")
    with pytest.raises(ValueError, match=r"settings save epochs \[0, 1, 3\]"):
        train_networks([SPEC], dataset, split, SETTINGS, [wrong_epochs], tmp_path, "cpu")
    with pytest.raises(ValueError, match="cannot be trained"):
        vgg = NetworkSpec("vgg16_imagenet", "toy", 0.0, 0)
        train_networks([vgg], dataset, split, SETTINGS, [outputs], tmp_path, "cpu")
    overlapping = Split(np.arange(40), np.arange(30, 56), split_seed=0)
    with pytest.raises(ValueError, match="overlap"):
        train_networks([SPEC], dataset, overlapping, SETTINGS, [outputs], tmp_path, "cpu")


# ------------------------------------------------------------------ CUDA (skipped without a GPU)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.mark.gpu
@needs_cuda
def test_cuda_graph_steps_equal_eager_steps_and_leave_no_warmup_trace():
    device = torch.device("cuda")
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(40, 3, 32, 32, generator=generator).to(device)
    labels = torch.randint(0, 10, (3, 40), generator=generator).to(device)
    states = {}
    for graphs in (False, True):
        settings = TrainingSettings(epochs=2, batch_size=16, cuda_graphs=graphs)
        seeds = [0, 1, 2]
        shuffles = [stream_generator(s, "shuffling") for s in seeds]
        augmentations = [stream_generator(s, "augmentation") for s in seeds]
        with device_numerics(device, settings):
            trainer = LockstepTrainer(
                [initial_network("cnn7", s) for s in seeds], images, labels, settings, device
            )
            for _ in range(2):  # two epochs of 16 + 16 + 8: graph replays and eager partial batches
                trainer.set_plan(draw_epoch_plan(shuffles, augmentations, 40, settings, (32, 32)))
                trainer.train_steps(0, trainer.steps_per_epoch)
            assert (trainer._graph is not None) == graphs
            states[graphs] = [trainer.network_state_dict(k) for k in range(3)]
    for eager, graphed in zip(states[False], states[True]):
        for name in eager:
            # the same kernels run in both modes; the warm-up before capture is undone
            torch.testing.assert_close(graphed[name], eager[name], atol=1e-6, rtol=1e-5, msg=name)


@pytest.mark.gpu
@needs_cuda
def test_cuda_training_with_graphs_is_deterministic_and_resumable(tmp_path):
    dataset, split = tiny_dataset()
    settings = TrainingSettings(epochs=3, batch_size=16, checkpoint_epochs=(0, 1), cuda_graphs=True)
    reference = outputs_for(tmp_path / "reference", SPEC, settings)
    train_networks([SPEC], dataset, split, settings, [reference], tmp_path / "state", "cuda", progress=False)

    def fail_after_epoch_one(epoch):
        if epoch == 1:
            raise Interrupted

    resumed = outputs_for(tmp_path / "resumed", SPEC, settings)
    with pytest.raises(Interrupted):
        train_networks(
            [SPEC],
            dataset,
            split,
            settings,
            [resumed],
            tmp_path / "state",
            "cuda",
            progress=False,
            epoch_callback=fail_after_epoch_one,
        )
    train_networks([SPEC], dataset, split, settings, [resumed], tmp_path / "state", "cuda", progress=False)
    assert_same_results(resumed, reference)
