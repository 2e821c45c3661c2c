"""Your own study (README and docs/usage.md "Your own study"): your architecture trained by the
workflow, your dataset, and claims for networks you bring.

The architectures are the constructors of tests/own_models.py. Unit tests check the controller's
probe (layers that cannot be analysed are refused before any job, naming the key), that stacked
training with torch.func equals separate training, reproducibility of a dropout architecture
trained alone, the datasets read by name against torchvision's own readers, the image-folder
dataset and the claims of given networks. One workflow run trains the test architecture on an
image folder of four CIFAR-10 classes written here (plus three given weights files of it) through
every rule; gOSI is then recomputed from a checkpoint with a plain module and a forward hook.
"""

from __future__ import annotations

import pickle
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

import own_models
from conftest import DEMO_CONFIG, REPO, TINY_CONFIG, merged_config, planned, run_snakemake, write_config
from selectivity.claims.evaluation import evaluate_claims
from selectivity.claims.table import ClaimSettings
from selectivity.config import (
    ConfigError,
    architecture_grouping,
    dataset_settings,
    layer_units,
    model_input_size,
    training_groups,
    validate_config,
)
from selectivity.data.build import build_dataset
from selectivity.data.dataset import Dataset, DatasetError, Split
from selectivity.data.folder_dataset import read_image_folder_dataset
from selectivity.data.torchvision_datasets import read_cifar100, read_stl10, read_svhn
from selectivity.dataset_shapes import dataset_shape
from selectivity.io import load_torch
from selectivity.networks.catalogue import NO_TEST_IMAGES, NO_TRAINING_HISTORY, given_network_claims
from selectivity.networks.checkpoints import CheckpointError, load_checkpoint, read_checkpoint
from selectivity.networks.hooked import HookedNetwork
from selectivity.networks.loading import load_network
from selectivity.tables import read_table
from selectivity.training import (
    LockstepTrainer,
    NetworkOutputs,
    NetworkSpec,
    TrainingSettings,
    draw_epoch_plan,
    initial_network,
    stream_generator,
    train_networks,
)
from selectivity.tuning.stimuli import grating_stimuli

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
OWN_MODELS = Path(own_models.__file__)
LAYERS = ["features.2", "features.6", "classifier.3"]
ARCHITECTURE = {
    "constructor": "own_models:small_cnn",
    "arguments": {"width": 4},
    "layers": LAYERS,
    "lower_layers": ["features.2"],
    "higher_layers": ["features.6", "classifier.3"],
}


@pytest.fixture(autouse=True)
def one_thread():
    """Bit-identical CPU results need the same thread count in every run."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def own_config(architecture: dict | None = None, **fragment) -> dict:
    """config/demo.yaml (synthetic 32-px data, 10 classes) training cnn7 and the architecture ``mine``."""
    own = {"networks": {"models": ["cnn7", "mine"]}, "architectures": {"mine": architecture or ARCHITECTURE}}
    return merged_config(DEMO_CONFIG, own, fragment)


def architecture_with(**changes) -> dict:
    return {**ARCHITECTURE, **changes}


# ------------------------------------------------------------- your architecture: checks


def test_a_user_architecture_is_checked_and_stacked_for_grouped_training():
    config = own_config(training={"group_size": 2})
    validate_config(config, SCHEMA)
    assert layer_units(config, "mine") == {"features.2": 4, "features.6": 8, "classifier.3": 16}
    stacked, how = architecture_grouping(config, "mine")
    assert stacked and "torch.func" in how
    groups = [group for group in training_groups(config) if group.model == "mine"]
    assert [len(group.networks) for group in groups] == [2, 2, 1] * 2  # seeds 0-4 at two corruption levels


BAD_ARCHITECTURES = [
    (
        "bypassed by a residual shortcut",
        architecture_with(
            constructor="own_models:residual_cnn",
            layers=["1", "2.conv", "2"],
            lower_layers=["1"],
            higher_layers=["2"],
        ),
        "architectures.mine.layers: mine: layer '2.conv' is not on every path from the input to the output",
    ),
    (
        "used twice",
        architecture_with(
            constructor="own_models:shared_relu_cnn",
            layers=["conv1", "relu"],
            lower_layers=["conv1"],
            higher_layers=["relu"],
        ),
        "architectures.mine.layers: mine: layer 'relu' runs 2 times per forward pass",
    ),
    (
        "not in the order they run",
        architecture_with(layers=["features.6", "features.2", "classifier.3"]),
        "architectures.mine.layers: ['features.6', 'features.2', 'classifier.3'] are not in the order they run",
    ),
    (
        "no such module",
        architecture_with(layers=["features.2", "body.9"], higher_layers=["body.9"]),
        "architectures.mine.layers: mine: layers ['body.9'] are not modules of the network",
    ),
    (
        "class argument among the arguments",
        architecture_with(arguments={"num_classes": 10}),
        "architectures.mine.arguments: 'num_classes' is set, but the workflow passes",
    ),
    (
        "head of another number of classes",
        architecture_with(class_argument=None, arguments={"num_classes": 7}),
        "architectures.mine: the network gives (2, 7) for 2 images; it must give one logit per class",
    ),
    (
        "not a module",
        architecture_with(constructor="own_models:not_a_module", arguments={}),
        "architectures.mine.constructor: own_models:not_a_module returned a str",
    ),
    (
        "constructor that cannot be imported",
        architecture_with(constructor="no_such_module:net"),
        "architectures.mine.constructor: constructor 'no_such_module:net' cannot be imported",
    ),
    (
        "arguments the constructor refuses",
        architecture_with(arguments={"depth": 3}),
        "architectures.mine.arguments: own_models:small_cnn refused the arguments",
    ),
    (
        "lower layer not among the layers",
        architecture_with(lower_layers=["features.0"]),
        "architectures.mine.lower_layers: ['features.0'] are not in architectures.mine.layers",
    ),
]


@pytest.mark.parametrize(
    "case, architecture, message", BAD_ARCHITECTURES, ids=[c[0] for c in BAD_ARCHITECTURES]
)
def test_an_architecture_that_cannot_be_analysed_is_refused_before_any_job(case, architecture, message):
    with pytest.raises(ConfigError) as error:
        validate_config(own_config(architecture), SCHEMA)
    assert message in str(error.value)


def test_models_must_be_built_in_or_defined_and_names_must_not_clash():
    with pytest.raises(
        ConfigError, match=r"networks.models\[1\]: 'yours' is neither a built-in model .* \(\['mine'\]\)"
    ):
        validate_config(own_config(networks={"models": ["cnn7", "yours"]}), SCHEMA)
    with pytest.raises(ConfigError, match="architectures.cnn7: 'cnn7' is the name of a built-in model"):
        validate_config(merged_config(DEMO_CONFIG, {"architectures": {"cnn7": ARCHITECTURE}}), SCHEMA)


def test_a_bad_entry_of_the_invariance_roles_names_the_key():
    bad = architecture_with(lower_layers=["classifier.3"], higher_layers=["features.2"])
    with pytest.raises(
        ConfigError, match=r"causal.invariance.measured_layers: \['features.2'\] are not deeper"
    ):
        validate_config(own_config(bad), SCHEMA)


@pytest.mark.parametrize(
    "constructor, reason",
    [("own_models:data_dependent_cnn", "torch.func cannot stack it"), ("own_models:dropout_cnn", "dropout")],
)
def test_an_architecture_torch_func_cannot_stack_trains_one_network_per_job(constructor, reason):
    config = own_config(architecture_with(constructor=constructor), training={"group_size": 3})
    validate_config(config, SCHEMA)
    stacked, how = architecture_grouping(config, "mine")
    assert not stacked and reason in how
    sizes = {
        model: {len(g.networks) for g in training_groups(config) if g.model == model}
        for model in ("cnn7", "mine")
    }
    assert sizes == {"cnn7": {3, 2}, "mine": {1}}  # seeds 0-4


def test_the_dataset_decides_the_image_size_and_the_number_of_classes():
    stl10 = merged_config(DEMO_CONFIG, {"dataset": {"name": "stl10", "validation_size": 1000}})
    validate_config(stl10, SCHEMA)
    assert model_input_size(stl10, "cnn7") == 96
    from selectivity.networks.catalogue import trained_networks

    assert {network.input_size for network in trained_networks(stl10)} == {96}
    with pytest.raises(
        ConfigError,
        match=r"dataset.validation_size: 10000 must be smaller than the 5000 training images of STL-10",
    ):
        validate_config(
            merged_config(DEMO_CONFIG, {"dataset": {"name": "stl10", "validation_size": 10000}}), SCHEMA
        )
    cifar100 = {"dataset": {"name": "cifar100"}, "causal": {"test_images": 50}}
    with pytest.raises(
        ConfigError, match="causal.test_images: 50 test images cannot contain all 100 classes of cifar100"
    ):
        validate_config(merged_config(DEMO_CONFIG, cifar100), SCHEMA)
    assert dataset_shape({"name": "svhn", "image_folder": None}).num_classes == 10


def test_a_finished_cifar10_run_keeps_its_dataset_settings():
    """The data rule's params of CIFAR-10 are what they were before other datasets: nothing rebuilds."""
    config = merged_config(DEMO_CONFIG, {"dataset": {"name": "cifar10"}})
    validate_config(config, SCHEMA)
    assert dataset_settings(config["dataset"]) == {
        "name": "cifar10",
        "source": "download",
        "local_path": None,
        "download_dir": "resources/cifar10",
        "verify_checksum": True,
    }


# ------------------------------------------------------------- your architecture: training


def toy_dataset(classes: int = 3, size: int = 16) -> tuple[Dataset, Split]:
    rng = np.random.default_rng(1)
    dataset = Dataset(
        rng.integers(0, 256, (48, size, size, 3), dtype=np.uint8),
        np.arange(48) % classes,
        rng.integers(0, 256, (12, size, size, 3), dtype=np.uint8),
        np.arange(12) % classes,
        [f"class{i}" for i in range(classes)],
        "random images",
    )
    return dataset, Split(np.arange(36), np.arange(36, 48), split_seed=0)


def record_of(constructor: str = "own_models:small_cnn") -> dict:
    return {
        "constructor": constructor,
        "arguments": {"width": 4},
        "class_argument": "num_classes",
        "layers": LAYERS,
        "source_digest": "sha256:test",
    }


def outputs_for(root: Path, spec: NetworkSpec, settings: TrainingSettings) -> NetworkOutputs:
    folder = root / spec.path_fragment()
    return NetworkOutputs(
        {e: folder / f"checkpoints/epoch{e}.pt" for e in settings.saved_epochs()},
        folder / "checkpoints/best.pt",
        folder / "metrics.csv",
    )


SETTINGS = TrainingSettings(epochs=2, batch_size=16, checkpoint_epochs=(0, 1))


def train(root: Path, specs, grouped: bool = True, **kwargs) -> list[NetworkOutputs]:
    dataset, split = toy_dataset()
    outputs = [outputs_for(root, spec, SETTINGS) for spec in specs]
    train_networks(
        specs,
        dataset,
        split,
        SETTINGS,
        outputs,
        root / "state",
        "cpu",
        grouped=grouped,
        progress=False,
        **kwargs,
    )
    return outputs


def test_stacked_user_networks_in_double_precision_equal_separate_ones():
    """torch.func's stack is exact apart from rounding: in float64 the two agree to ~1e-10."""
    settings = TrainingSettings(epochs=1, batch_size=8)
    seeds, images = [0, 1], torch.randn(
        20, 3, 16, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(3)
    )
    labels = torch.as_tensor(np.stack([np.arange(20) % 3, (np.arange(20) + 1) % 3]))

    def plan(members):
        generators = [stream_generator(s, "shuffling") for s in members], [
            stream_generator(s, "augmentation") for s in members
        ]
        return draw_epoch_plan(*generators, 20, settings, (16, 16))

    def networks(members):
        return [initial_network("mine", s, 3, 16, record_of()).double() for s in members]

    together = LockstepTrainer(networks(seeds), images, labels, settings, torch.device("cpu"))
    together.set_plan(plan(seeds))
    together.train_steps(0, together.steps_per_epoch)  # 3 steps, the last one partial
    for k, seed in enumerate(seeds):
        alone = LockstepTrainer(networks([seed]), images, labels[k : k + 1], settings, torch.device("cpu"))
        alone.set_plan(plan([seed]))
        alone.train_steps(0, alone.steps_per_epoch)
        expected = alone.network_state_dict(0)
        for name, tensor in together.network_state_dict(k).items():
            torch.testing.assert_close(tensor, expected[name], atol=1e-10, rtol=0, msg=name)
        np.testing.assert_allclose(
            together.evaluate(images, [labels])[0][0][k],
            alone.evaluate(images, [labels[k : k + 1]])[0][0][0],
            atol=1e-10,
        )


def test_stacked_user_networks_write_what_separate_runs_write(tmp_path):
    specs = [
        NetworkSpec("mine", "toy", corruption, seed, record_of()) for corruption, seed in ((0.0, 0), (0.5, 1))
    ]
    stacked = train(tmp_path / "stacked", specs, grouped=True)
    separate = train(tmp_path / "separate", specs, grouped=False)
    for a, b in zip(stacked, separate):
        metrics_a, metrics_b = pd.read_csv(a.metrics), pd.read_csv(b.metrics)
        losses = [column for column in metrics_a.columns if "loss" in column]
        # float32 rounding of the vmapped kernels, amplified over 6 Adam steps
        np.testing.assert_allclose(metrics_a[losses], metrics_b[losses], atol=1e-3, rtol=2e-3)
        one, other = load_torch(a.checkpoints[0], "checkpoint"), load_torch(b.checkpoints[0], "checkpoint")
        assert one["architecture"] == record_of() and one["network"]["model"] == "mine"
        assert all(
            torch.equal(tensor, other["state_dict"][name]) for name, tensor in one["state_dict"].items()
        )
    # the weights are the plain module's: they load into the user's own module, and the
    # checkpoint loads for the analyses as a hooked network of the configured layers
    blob = load_torch(stacked[1].best_checkpoint, "checkpoint")
    own_models.small_cnn(num_classes=3, width=4).load_state_dict(blob["state_dict"])
    loaded = load_checkpoint(stacked[1].best_checkpoint, "cpu")
    assert isinstance(loaded.model, HookedNetwork) and loaded.model.layer_names == LAYERS
    assert [loaded.model.units(layer) for layer in LAYERS] == [4, 8, 16]


def test_a_dropout_architecture_trained_alone_is_reproducible_and_resumes(tmp_path):
    spec = NetworkSpec("mine", "toy", 0.0, 3, record_of("own_models:dropout_cnn"))
    (reference,) = train(tmp_path / "a", [spec])
    (again,) = train(tmp_path / "b", [spec])

    class Interrupt(Exception):
        pass

    def stop_after_first_epoch(epoch):
        if epoch == 1:
            raise Interrupt

    with pytest.raises(Interrupt):
        train(tmp_path / "c", [spec], epoch_callback=stop_after_first_epoch)
    (resumed,) = train(tmp_path / "c", [spec])
    for other in (again, resumed):
        for a, b in zip([reference.best_checkpoint], [other.best_checkpoint]):
            one, two = load_torch(a, "checkpoint")["state_dict"], load_torch(b, "checkpoint")["state_dict"]
            assert all(torch.equal(one[name], two[name]) for name in one)


def test_a_checkpoints_architecture_is_covered_by_its_digest(tmp_path):
    (outputs,) = train(tmp_path, [NetworkSpec("mine", "toy", 0.0, 0, record_of())])
    blob = torch.load(outputs.best_checkpoint, weights_only=True)
    blob["architecture"]["arguments"] = {"width": 5}
    torch.save(blob, tmp_path / "edited.pt")
    with pytest.raises(CheckpointError, match="is damaged: its content digest"):
        read_checkpoint(tmp_path / "edited.pt")


# ---------------------------------------------------------------- your dataset: by name


def write_cifar100(root: Path, counts=(30, 20)) -> None:
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name, count in zip(("train", "test"), counts):
        content = {
            "data": rng.integers(0, 256, (count, 3072), dtype=np.uint8),
            "fine_labels": [index % 100 for index in range(count)],
            "coarse_labels": [index % 20 for index in range(count)],
        }
        (folder / name).write_bytes(pickle.dumps(content, protocol=4))
    names = [f"fine{i:03d}" for i in range(100)]
    (folder / "meta").write_bytes(
        pickle.dumps({"fine_label_names": names, "coarse_label_names": []}, protocol=4)
    )


def write_svhn(root: Path, counts=(30, 20)) -> None:
    from scipy.io import savemat

    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(1)
    for name, count in zip(("train_32x32.mat", "test_32x32.mat"), counts):
        labels = (np.arange(count) % 10 + 1).reshape(-1, 1)  # 1..10, 10 the digit 0
        savemat(root / name, {"X": rng.integers(0, 256, (32, 32, 3, count), dtype=np.uint8), "y": labels})


def write_stl10(root: Path, counts=(20, 10)) -> None:
    folder = root / "stl10_binary"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(2)
    for split, count in zip(("train", "test"), counts):
        rng.integers(0, 256, count * 3 * 96 * 96, dtype=np.uint8).tofile(folder / f"{split}_X.bin")
        (np.arange(count) % 10 + 1).astype(np.uint8).tofile(folder / f"{split}_y.bin")
    (folder / "class_names.txt").write_text("\n".join(f"thing{i}" for i in range(10)) + "\n")


def torchvision_arrays(name: str, root: Path, train: bool, monkeypatch) -> tuple[np.ndarray, np.ndarray]:
    """The images (NHWC) and labels torchvision's own dataset class reads from the same files."""
    from torchvision import datasets

    cls = {"cifar100": datasets.CIFAR100, "svhn": datasets.SVHN, "stl10": datasets.STL10}[name]
    monkeypatch.setattr(cls, "_check_integrity", lambda self: True)  # the files are not the official ones
    monkeypatch.setattr(datasets.cifar, "check_integrity", lambda *args, **kwargs: True)
    if name == "cifar100":
        dataset = cls(str(root), train=train)
        return dataset.data, np.asarray(dataset.targets)
    dataset = cls(str(root), split="train" if train else "test")
    return dataset.data.transpose(0, 2, 3, 1), np.asarray(dataset.labels)


@pytest.mark.parametrize(
    "name, write, reader, classes",
    [
        ("cifar100", write_cifar100, read_cifar100, 100),
        ("svhn", write_svhn, read_svhn, 10),
        ("stl10", write_stl10, read_stl10, 10),
    ],
)
def test_datasets_by_name_read_like_torchvision_reads_them(
    tmp_path, monkeypatch, name, write, reader, classes
):
    write(tmp_path)
    dataset = reader(tmp_path, verify_checksum=False)
    assert dataset.num_classes == classes and dataset.image_size == (96 if name == "stl10" else 32)
    for train, (images, labels) in (
        (True, (dataset.x_train, dataset.y_train)),
        (False, (dataset.x_test, dataset.y_test)),
    ):
        expected_images, expected_labels = torchvision_arrays(name, tmp_path, train, monkeypatch)
        np.testing.assert_array_equal(images, expected_images)
        np.testing.assert_array_equal(labels, expected_labels)
    with pytest.raises(DatasetError, match="md5 checksum mismatch"):
        reader(tmp_path, verify_checksum=True)


def test_a_local_copy_by_name_builds_the_dataset_named_in_the_config(tmp_path):
    write_svhn(tmp_path / "svhn")
    config = merged_config(
        DEMO_CONFIG,
        {
            "dataset": {
                "name": "svhn",
                "source": "local",
                "local_path": str(tmp_path / "svhn"),
                "verify_checksum": False,
            }
        },
    )
    validate_config(config, SCHEMA)
    dataset = build_dataset(dataset_settings(config["dataset"]), progress=False)
    assert dataset.class_names == [str(digit) for digit in range(10)] and len(dataset.y_test) == 20
    assert set(dataset.y_train) == set(range(10))  # the label 10 of the files is the digit 0


# ----------------------------------------------------------------- your dataset: a folder


def write_image_folder(root: Path, arrays, class_names, per_class: dict[str, int]) -> None:
    """Class subfolders of PNGs under root/train and root/test, from (x_train, y_train, x_test, y_test)."""
    x_train, y_train, x_test, y_test = arrays
    for split, x, y in (("train", x_train, y_train), ("test", x_test, y_test)):
        for label, name in enumerate(class_names):
            folder = root / split / name
            folder.mkdir(parents=True)
            for index in np.flatnonzero(y == label)[: per_class[split]]:
                Image.fromarray(x[index]).save(folder / f"{index}.png")


def random_arrays(classes: int = 3):
    rng = np.random.default_rng(5)
    images = rng.integers(0, 256, (60, 32, 32, 3), dtype=np.uint8)
    labels = np.arange(60) % classes
    return images, labels, images, labels


def test_an_image_folder_is_read_at_the_configured_size(tmp_path):
    write_image_folder(tmp_path / "pets", random_arrays(), ["cat", "ant", "dog"], {"train": 8, "test": 4})
    Image.fromarray(np.full((40, 50), 77, dtype=np.uint8), mode="L").save(
        tmp_path / "pets/train/ant/grey.png"
    )
    dataset = read_image_folder_dataset(tmp_path / "pets", 24, "pets", progress=False)
    assert dataset.class_names == ["ant", "cat", "dog"]  # sorted folder order = label
    assert dataset.x_train.shape == (25, 24, 24, 3) and dataset.x_test.shape == (12, 24, 24, 3)
    assert np.bincount(dataset.y_train).tolist() == [9, 8, 8]
    grey = [i for i, image in enumerate(dataset.x_train) if (image == 77).all()]
    assert len(grey) == 1  # a greyscale image has three equal channels
    config = merged_config(
        DEMO_CONFIG,
        {
            "dataset": {
                "name": "pets",
                "image_folder": {"path": str(tmp_path / "pets"), "image_size": 40},
                "validation_size": 6,
            },
            "causal": {"test_images": None, "invariance": {"test_images": 12}},
            "training": {"batch_size": 8},
        },
    )
    validate_config(config, SCHEMA)
    shape = dataset_shape(config["dataset"])
    assert (shape.num_classes, shape.train_images, shape.test_images, shape.image_size) == (3, 25, 12, 40)
    with pytest.raises(ConfigError, match="networks.models: cnn7 cannot take 24-px images"):
        validate_config(merged_config(config, {"dataset": {"image_folder": {"image_size": 24}}}), SCHEMA)


@pytest.mark.parametrize(
    "layout, message",
    [
        ("no test folder", "has no test/ folder"),
        ("other classes", "train/ and test/ must hold the same class folders"),
        ("empty class", r"test/ classes \['dog'\] hold no images"),
    ],
)
def test_a_bad_image_folder_is_refused_before_any_job(tmp_path, layout, message):
    root = tmp_path / "pets"
    write_image_folder(root, random_arrays(), ["cat", "ant", "dog"], {"train": 2, "test": 2})
    if layout == "no test folder":
        shutil.rmtree(root / "test")
    elif layout == "other classes":
        (root / "test/dog").rename(root / "test/wolf")
    else:
        for file in (root / "test/dog").iterdir():
            file.unlink()
    config = merged_config(
        DEMO_CONFIG, {"dataset": {"name": "pets", "image_folder": {"path": str(root), "image_size": 32}}}
    )
    with pytest.raises(ConfigError, match=message):
        validate_config(config, SCHEMA)


def test_a_dataset_name_and_its_source_must_agree():
    with pytest.raises(ConfigError, match="dataset.name: 'pets' is not a dataset the workflow reads by name"):
        validate_config(merged_config(DEMO_CONFIG, {"dataset": {"name": "pets"}}), SCHEMA)
    folder = {"name": "svhn", "image_folder": {"path": "x", "image_size": 32}}
    with pytest.raises(
        ConfigError, match="dataset.image_folder: set, but dataset.name 'svhn' is a built-in dataset"
    ):
        validate_config(merged_config(DEMO_CONFIG, {"dataset": folder}), SCHEMA)
    with pytest.raises(ConfigError, match="dataset.name: 'none' is reserved"):
        validate_config(merged_config(DEMO_CONFIG, {"dataset": {"name": "none"}}), SCHEMA)


# ------------------------------------------------------------ claims for networks you bring


def test_given_networks_get_the_claims_that_need_no_training_history(tmp_path):
    weights = tmp_path / "w.pt"
    torch.save(own_models.small_cnn().state_dict(), weights)
    entry = {
        "constructor": "own_models:small_cnn",
        "weights": str(weights),
        "input_size": 32,
        "layers": LAYERS,
    }
    config = merged_config(
        DEMO_CONFIG, {"external_networks": {"imagined": {**entry, "test_images": "none"}, "tested": entry}}
    )
    validate_config(config, SCHEMA)
    claims = given_network_claims(config)
    assert claims["not_applicable"]["imagined"] == {
        "C2": NO_TRAINING_HISTORY, "C3": NO_TRAINING_HISTORY, "C4": NO_TEST_IMAGES, "C5": NO_TEST_IMAGES, "C6": NO_TEST_IMAGES,
    }  # fmt: skip
    assert set(claims["not_applicable"]["tested"]) == {"C2", "C3"}
    assert claims["layers"]["tested"] == {"lower_layers": ["features.2"], "higher_layers": ["classifier.3"]}
    summary = pd.DataFrame(
        [
            dict(model="imagined", dataset="none", label_corruption=0.0, seed=seed, checkpoint=checkpoint, epoch=epoch,
                 layer=layer, layer_index=index, stimulus_set=stimulus, fraction_selective=fraction,
                 selectivity_threshold=0.33, n_units=8)
            for seed in range(6)
            for checkpoint, epoch in (("published", np.nan), ("untrained", 0))
            for index, layer in enumerate(("features.2", "classifier.3"))
            for stimulus in ("gratings", "shuffled")
            for fraction in [0.5 if (checkpoint, stimulus) == ("published", "gratings") else 0.1]
        ]
    )  # fmt: skip
    table = evaluate_claims(
        summary,
        pd.DataFrame(),
        pd.DataFrame(),
        ClaimSettings(),
        claims["layers"],
        not_applicable=claims["not_applicable"],
    )
    headline = table[table["headline"]].set_index("claim")
    assert headline.loc["C1", "verdict"] == "supported" and headline.loc["C1", "n_networks"] == 6
    assert (headline.loc[["C2", "C3", "C4", "C5", "C6"], "verdict"] == "not applicable").all()
    assert headline.loc["C4", "statistic"] == f"Not applicable: {NO_TEST_IMAGES}"
    table.to_csv(tmp_path / "claims.csv", index=False)
    read_table(tmp_path / "claims.csv", "claims")  # the claims schema takes the rows


def test_a_given_networks_untrained_checkpoint_is_its_constructors_initialisation(tmp_path):
    weights = tmp_path / "w.pt"
    torch.save(own_models.small_cnn().state_dict(), weights)
    description = {
        "origin": "given", "name": "mine", "index": 2, "constructor": "own_models:small_cnn", "arguments": {},
        "input_size": 32, "normalisation": {"mean": [0.0] * 3, "std": [1.0] * 3}, "layers": LAYERS,
        "weights": None, "dataset": "none",
    }  # fmt: skip
    first, identifiers = load_network(description, None, "untrained")
    again, _ = load_network(description, None, "untrained")
    assert identifiers["checkpoint"] == "untrained" and identifiers["epoch"] == 0 and identifiers["seed"] == 2
    for (name, a), b in zip(first.model.state_dict().items(), again.model.state_dict().values()):
        assert torch.equal(a, b), name
    trained, _ = load_network(description, weights, "weights")
    assert not torch.equal(first.model.head.features[0].weight, trained.model.head.features[0].weight)


# ------------------------------------------------------------------------ the whole workflow

FOUR_CLASSES = ["airplane", "automobile", "bird", "cat"]
STUDY_LAYERS = ["features.2", "features.6", "classifier.3"]
OWN_STUDY = merged_config(
    TINY_CONFIG,
    {
        "dataset": {
            "name": "four_things",
            "image_folder": {"path": "images", "image_size": 40},
            "validation_size": 40,
        },
        "networks": {"models": ["my_cnn"], "seeds": [0, 1]},
        "training": {"group_size": 2},
        "architectures": {
            "my_cnn": {
                "constructor": "own_models:small_cnn",
                "arguments": {"width": 8},
                "layers": STUDY_LAYERS,
                "lower_layers": ["features.2"],
                "higher_layers": ["features.6", "classifier.3"],
            }
        },
        "external_networks": {
            "given_cnn": {
                "constructor": "own_models:small_cnn",
                "arguments": {"num_classes": 4, "width": 8},
                "weights": ["weights/given0.pt", "weights/given1.pt", "weights/given2.pt"],
                "input_size": 40,
                "layers": STUDY_LAYERS,
                "lower_layers": ["features.2"],
                "higher_layers": ["features.6", "classifier.3"],
            }
        },
        # orientation and colour (an RGB image folder): every by-feature rule runs on both kinds of
        # network at a third of the cost of all four features (the demo's tests cover all four)
        "tuning": {"features": ["orientation", "colour"]},
        "causal": {"test_images": None},
        # three given networks decide a claim at confidence 0.8 (log2(1 / 0.2) = 2.3 networks)
        "claims": {"confidence": 0.8},
    },
)
MY_CNN = "my_cnn/four_things/corruption0.00/seed{seed}"


def prepare_study(workdir: Path, cifar10_subset_path) -> Path:
    """The image folder (four CIFAR-10 classes, 60 train and 30 test images each), the module of
    the architecture beside the config, and three weights files of it given as one network entry."""
    with np.load(cifar10_subset_path) as blob:
        arrays = (blob["x_train"], blob["y_train"], blob["x_test"], blob["y_test"])
    write_image_folder(workdir / "images", arrays, FOUR_CLASSES, {"train": 60, "test": 30})
    shutil.copy(OWN_MODELS, workdir / "own_models.py")
    (workdir / "weights").mkdir()
    for index in range(3):
        torch.manual_seed(100 + index)
        torch.save(own_models.small_cnn(num_classes=4).state_dict(), workdir / f"weights/given{index}.pt")
    return write_config(workdir, OWN_STUDY)


@pytest.fixture(scope="module")
def own_study(tmp_path_factory, cifar10_subset_path):
    workdir = tmp_path_factory.mktemp("own_study")
    config = prepare_study(workdir, cifar10_subset_path)
    run_snakemake(workdir, config, "--cores", "2", "--resources", "gpu=0")
    return workdir


@pytest.mark.slow
def test_own_architecture_trains_on_own_dataset_through_every_rule(own_study):
    log = (own_study / "logs/training/my_cnn_four_things_c0p00_s0_1.log").read_text()
    assert "stacking 2 networks of a user architecture with torch.func" in log
    metrics = pd.read_csv(own_study / "results/aggregate/training_metrics.csv")
    assert set(metrics["dataset"]) == {"four_things"} and set(metrics["model"]) == {"my_cnn"}
    dataset = np.load(own_study / "results/data/four_things_test.npz")
    assert list(dataset["class_names"]) == FOUR_CLASSES and dataset["x_test"].shape == (120, 40, 40, 3)
    network, identifiers = load_network(
        {
            "origin": "trained",
            "network": {"model": "my_cnn", "dataset": "four_things", "label_corruption": 0.0, "seed": 1},
        },
        own_study / f"results/networks/{MY_CNN.format(seed=1)}/checkpoints/best.pt",
        "best",
    )
    assert isinstance(network.model, HookedNetwork) and network.model.layer_names == STUDY_LAYERS
    assert identifiers["model"] == "my_cnn" and identifiers["checkpoint"] == "best"
    assert network.model(torch.zeros(2, 3, 40, 40)).shape == (2, 4)  # the head follows the dataset
    for table in ("tuning", "class_selectivity", "half_ablation", "shift_invariance"):
        rows = pd.read_csv(own_study / f"results/aggregate/{table}.csv")
        assert set(rows["dataset"]) == {"four_things"} and set(rows["model"]) == {
            "my_cnn",
            "given_cnn",
        }, table
    for figure in (
        "training_curves",
        "selectivity_over_training",
        "half_ablation",
        "shift_invariance",
        "claims",
    ):
        assert (own_study / f"results/figures/my_cnn/{figure}.png").exists(), figure


@pytest.mark.slow
def test_gosi_recomputed_from_the_checkpoint_with_a_plain_module(own_study):
    """The tuning table's gOSI of the trained architecture, recomputed from the checkpoint file with
    the user's own module, a forward hook and the gratings at the dataset's 40 px."""
    blob = torch.load(
        own_study / f"results/networks/{MY_CNN.format(seed=0)}/checkpoints/best.pt", weights_only=True
    )
    module = own_models.small_cnn(num_classes=4, width=8)
    module.load_state_dict(blob["state_dict"])
    module.eval()
    stimuli = grating_stimuli(40)
    images = stimuli.images.reshape(-1, 3, 40, 40) - blob["input_mean"]
    captured = []
    handle = module.features[2].register_forward_hook(
        lambda m, i, output: captured.append(output.clamp(min=0).mean((2, 3)))
    )
    with torch.no_grad():
        for start in range(0, len(images), 256):
            module(images[start : start + 256])
    handle.remove()
    n_sf, n_ori, n_phase = stimuli.images.shape[:3]
    responses = torch.cat(captured).numpy().astype(np.float64).reshape(n_sf, n_ori, n_phase, -1)
    best_phase = responses.max(axis=2)
    preferred_sf = best_phase.max(axis=1).argmax(axis=0)
    curves = best_phase[preferred_sf, :, np.arange(best_phase.shape[2])]
    totals = curves.sum(axis=1)
    vector = np.abs(curves @ np.exp(2j * np.deg2rad(stimuli.orientations_deg)))
    gosi = np.minimum(np.where(totals > 0, vector / np.where(totals > 0, totals, 1), 0.0), 1.0)
    tuning = pd.read_csv(own_study / f"results/tuning/{MY_CNN.format(seed=0)}/tuning.csv")
    rows = tuning[
        (tuning["checkpoint"] == "best")
        & (tuning["layer"] == "features.2")
        & (tuning["stimulus_set"] == "gratings")
    ]
    rows = rows.sort_values("unit")
    assert n_sf == 11 and len(rows) == 8  # 40 px: 11 spatial frequencies
    np.testing.assert_allclose(rows["gosi"].to_numpy(), gosi, atol=1e-5)
    np.testing.assert_array_equal(rows["preferred_spatial_frequency"].to_numpy(), preferred_sf)


@pytest.mark.slow
def test_three_given_weights_files_reach_claims_rows(own_study):
    claims = read_table(own_study / "results/claims.csv", "claims")
    given = claims[claims["model"] == "given_cnn"]
    headline = given[given["headline"].astype(bool)].set_index("claim")
    assert (headline.loc[["C2", "C3"], "verdict"] == "not applicable").all()
    tested = given[given["claim"].isin(["C1", "C4", "C5", "C6"])]
    assert set(tested["verdict"]) <= {"supported", "not supported", "inconclusive"}  # 3 networks suffice here
    assert (tested["n_networks"] == 3).all() and (tested["dataset"] == "four_things").all()
    tuning = pd.read_csv(own_study / "results/aggregate/tuning.csv")
    assert set(tuning.loc[tuning["model"] == "given_cnn", "checkpoint"]) == {"published", "untrained"}
    trained = claims[(claims["model"] == "my_cnn") & claims["headline"].astype(bool)]
    # the paper's six claims, each also per low-level feature of tuning.features (C1-C5), and the
    # comparison across features
    assert set(trained["claim"]) == {f"C{n}" for n in range(1, 7)} | {"CF"}
    assert set(trained["feature"]) == {"orientation", "colour"}


@pytest.mark.slow
def test_a_finished_own_study_has_nothing_to_rerun(own_study):
    assert planned(own_study, own_study / "test_config.yaml").pending == {}


@pytest.mark.slow
def test_a_dataset_by_name_from_a_local_copy_through_the_data_rules(tmp_path):
    write_cifar100(tmp_path / "copy", counts=(400, 100))
    config = merged_config(
        TINY_CONFIG,
        {
            "dataset": {
                "name": "cifar100",
                "source": "local",
                "local_path": "copy",
                "verify_checksum": False,
                "validation_size": 100,
            },
            "causal": {"invariance": {"test_images": 100}},
        },
    )
    run_snakemake(
        tmp_path,
        write_config(tmp_path, config),
        "results/data/cifar100_test.npz",
        "results/data/cifar100_split.npz",
        "--cores",
        "1",
    )
    with np.load(tmp_path / "results/data/cifar100_test.npz") as test_set:
        assert test_set["x_test"].shape == (100, 32, 32, 3) and len(test_set["class_names"]) == 100
    assert "CIFAR-100" in (tmp_path / "logs/data/prepare_cifar100.log").read_text()
