"""Bad configurations stop the workflow before any job, with a message naming key and value.

Each case is a row of the table "Bad input" (docs/development.md); the same config fragment is checked
by the package functions and by a real ``snakemake -n`` of the workflow.
"""

from __future__ import annotations

import copy

import pytest

from conftest import (
    DEMO_CONFIG,
    DEMO_CONFIG_FILE,
    REPO,
    merged_config,
    read_yaml,
    run_snakemake,
    write_config,
)
from selectivity.config import (
    ConfigError,
    check_config_files,
    networks,
    saved_epochs,
    training_groups,
    validate_config,
)

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"

USER_NETWORK = {
    "constructor": "resnet18",
    "weights": "no/such/weights.pt",
    "input_size": 32,
    "layers": ["layer1"],
}
# (case, config fragment merged over config/demo.yaml, text the message must contain)
BAD_CONFIGS = [
    ("unknown key", {"trainng": {"epochs": 3}}, "trainng: unknown key"),
    ("unknown nested key", {"training": {"epoch": 3}}, "training.epoch: unknown key"),
    ("wrong type", {"training": {"epochs": "ten"}}, "training.epochs: 'ten'"),
    ("zero epochs", {"training": {"epochs": 0}}, "training.epochs: 0"),
    ("negative batch size", {"training": {"batch_size": -4}}, "training.batch_size: -4"),
    ("zero batch size", {"training": {"batch_size": 0}}, "training.batch_size: 0"),
    ("a word as a forward batch size", {"causal": {"batch_size": "big"}}, "causal.batch_size: 'big'"),
    (
        "zero evaluation batch size",
        {"training": {"evaluation_batch_size": 0}},
        "training.evaluation_batch_size: 0",
    ),
    (
        "label corruption above 1",
        {"networks": {"label_corruption": [0.0, 1.5]}},
        "networks.label_corruption[1]: 1.5",
    ),
    (
        "label corruption below 0",
        {"networks": {"label_corruption": [-0.2]}},
        "networks.label_corruption[0]: -0.2",
    ),
    (
        "checkpoint epochs beyond the last epoch",
        {"training": {"epochs": 4, "checkpoint_epochs": [0, 2, 8]}},
        "training.checkpoint_epochs: [8] lie beyond the last epoch",
    ),
    ("empty seed list", {"networks": {"seeds": []}}, "networks.seeds: []"),
    (
        "unknown model",
        {"networks": {"models": ["resnet50"]}},
        "networks.models[0]: 'resnet50' is neither a built-in model (cnn7, cnn11, resnet20, vgg8bn) nor an entry "
        "of architectures",
    ),
    (
        "greyscale dataset",
        {"dataset": {"name": "mnist"}},
        "dataset.name: 'mnist' is a greyscale (1-channel) dataset",
    ),
    (
        "unknown dataset",
        {"dataset": {"name": "flowers"}},
        "dataset.name: 'flowers' is not a dataset the workflow reads",
    ),
    ("unknown device", {"device": "tpu"}, "device: 'tpu' is not allowed"),
    (
        "layer that the model lacks",
        {"claims": {"lower_layers": ["conv1", "conv9"]}},
        "claims.lower_layers: ['conv9'] are not layers of cnn7",
    ),
    (
        "layer roles for a model that is not trained",
        {"claims": {"higher_layers": {"cnn11": ["conv9"]}}},
        "claims.higher_layers: ['cnn11'] are not in networks.models",
    ),
    (
        "a layer role that is neither default, a list nor a mapping",
        {"causal": {"invariance": {"measured_layers": "all"}}},
        "causal.invariance.measured_layers: 'all' is not allowed",
    ),
    (
        "not a number",
        {"training": {"learning_rate": float("nan")}},
        "training.learning_rate: nan is not a finite number",
    ),
    (
        "corruption levels that name the same folder",
        {"networks": {"label_corruption": [0.2, 0.2000000000001]}},
        "both name the folder corruption0.20",
    ),
    (
        "causal tests for a corruption level that is not trained",
        {"causal": {"label_corruption": [0.25]}},
        "causal.label_corruption[0]: 0.25 is not a trained level",
    ),
    (
        "the removed minimum number of networks",
        {"claims": {"min_networks": 3}},
        "claims.min_networks: 3 is no longer read; the minimum number of networks now follows from claims.confidence",
    ),
    (
        "the removed bootstrap resamples",
        {"claims": {"bootstrap_resamples": 2000}},
        "claims.bootstrap_resamples: 2000 is no longer read; set claims.permutations",
    ),
    (
        "a negative equivalence margin",
        {"claims": {"equivalence_margin": -0.1}},
        "claims.equivalence_margin: -0.1",
    ),
    (
        "ablation fraction that ablates no unit",
        {"causal": {"ablation": {"fraction": 0.01}}},
        "causal.ablation.fraction: 0.01 ablates 0 of the 32 units of cnn7 conv1",
    ),
    (
        "ablation fraction that ablates every unit",
        {"causal": {"ablation": {"fraction": 0.99}}},
        "causal.ablation.fraction: 0.99 ablates 32 of the 32 units of cnn7 conv1",
    ),
    ("odd number of orientations", {"tuning": {"orientations": 7}}, "tuning.orientations: 7 is odd"),
    (
        "spatial frequencies above the Nyquist limit",
        {"tuning": {"spatial_frequencies": 25}},
        "tuning.spatial_frequencies: 25 spatial frequencies exceed the Nyquist limit of 32-px inputs",
    ),
    (
        "tuning features without orientation",
        {"tuning": {"features": ["colour", "phase"]}},
        "tuning.features: ['colour', 'phase'] lacks orientation",
    ),
    (
        "an unknown tuning feature",
        {"tuning": {"features": ["orientation", "texture"]}},
        "tuning.features[1]: 'texture' is not allowed",
    ),
    (
        "too few phases for the phase feature",
        {"tuning": {"phases": 2}},
        "tuning.phases: 2 is too few for the phase feature; F1/F0 needs at least 4",
    ),
    (
        "a feature threshold outside the index's range",
        {"tuning": {"colour_selectivity_threshold": 1.5}},
        "tuning.colour_selectivity_threshold: 1.5",
    ),
    (
        "shifts as large as the image",
        {"causal": {"invariance": {"shifts": [1, 32]}}},
        "causal.invariance.shifts: [32] px are not smaller than half the 32-px image",
    ),
    (
        "too few test images for every class",
        {"causal": {"test_images": 5}},
        "causal.test_images: 5 test images cannot contain all 10 classes",
    ),
    (
        "a renamed key whose meaning changed",
        {"training": {"max_shift_pixels": 3}},
        "training.max_shift_pixels: 3 is no longer read; set training.shift_range instead",
    ),
    (
        "a user network named like a built-in model",
        {"external_networks": {"resnet20": USER_NETWORK}},
        "external_networks.resnet20: 'resnet20' is the name of a built-in model",
    ),
    (
        "a user network's ablated layer that it does not analyse",
        {"external_networks": {"mine": {**USER_NETWORK, "lower_layers": ["layer9"]}}},
        "external_networks.mine.lower_layers: ['layer9'] are not in external_networks.mine.layers",
    ),
    (
        "a user network whose weights file is missing",
        {"external_networks": {"mine": USER_NETWORK}},
        "external_networks.mine.weights: 'no/such/weights.pt' is not a file",
    ),
    (
        "more causal test images than the test set has",
        {"causal": {"test_images": 601}},
        "causal.test_images: 601 test images, but the test set of dataset.synthetic has 600; use at most 600",
    ),
    (
        "more shift-invariance test images than the test set has",
        {"causal": {"invariance": {"test_images": 700}}},
        "causal.invariance.test_images: 700 test images, but the test set of dataset.synthetic has 600",
    ),
    (
        "a batch larger than the training split",
        {"training": {"batch_size": 3601}},
        "training.batch_size: 3601 is larger than the training split of 3600 images (4000 training images of "
        "dataset.synthetic minus dataset.validation_size 400); use at most 3600",
    ),
    (
        "cumulative fractions in descending order",
        {"causal": {"ablation": {"cumulative_fractions": [1.0, 0.5, 0.0]}}},
        "causal.ablation.cumulative_fractions: [1.0, 0.5, 0.0] is not in strictly increasing order",
    ),
    (
        "more causal test images than CIFAR-10's test set has",
        {"dataset": {"name": "cifar10"}, "causal": {"test_images": 10001}},
        "causal.test_images: 10001 test images, but the test set of CIFAR-10 has 10000",
    ),
    (
        "a batch larger than CIFAR-10's training split",
        {"dataset": {"name": "cifar10", "validation_size": 49990}, "training": {"batch_size": 32}},
        "training.batch_size: 32 is larger than the training split of 10 images (50000 training images of CIFAR-10",
    ),
    (
        "a validation split as large as CIFAR-10's training set",
        {"dataset": {"name": "cifar10", "validation_size": 50000}},
        "dataset.validation_size: 50000 must be smaller than the 50000 training images of CIFAR-10",
    ),
    (
        "local dataset without a path",
        {"dataset": {"name": "cifar10", "source": "local", "local_path": None}},
        "dataset.local_path: null",
    ),
]


def full_config(fragment: dict) -> dict:
    """config.yaml extended by demo.yaml and the fragment, the way Snakemake merges config files."""
    return merged_config(DEMO_CONFIG, fragment)


def test_shipped_configs_are_valid():
    for path in [REPO / "config.yaml", *sorted((REPO / "config").glob("*.yaml"))]:
        validate_config(full_config(read_yaml(path)), SCHEMA)


@pytest.mark.parametrize("case, fragment, message", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_is_rejected_by_the_package(case, fragment, message):
    config = full_config(fragment)
    with pytest.raises(ConfigError) as error:
        validate_config(config, SCHEMA)
    assert message in str(error.value)


# A few cases through a real `snakemake -n` (the rest differ only in the package check).
THROUGH_SNAKEMAKE = (
    "unknown key",
    "zero epochs",
    "not a number",
    "layer that the model lacks",
    "odd number of orientations",
    "more causal test images than the test set has",
    "a batch larger than the training split",
    "cumulative fractions in descending order",
)


@pytest.mark.parametrize(
    "case, fragment, message",
    [c for c in BAD_CONFIGS if c[0] in THROUGH_SNAKEMAKE],
    ids=[c[0] for c in BAD_CONFIGS if c[0] in THROUGH_SNAKEMAKE],
)
def test_bad_config_stops_snakemake_before_any_job(tmp_path, case, fragment, message):
    config = merged_config(read_yaml(DEMO_CONFIG_FILE), fragment)
    result = run_snakemake(tmp_path, write_config(tmp_path, config), "-n", check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Invalid configuration" in output and message in output
    assert not (tmp_path / "results").exists()


def test_a_key_given_twice_in_a_config_file_is_refused(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("training:\n  epochs: 3\n  batch_size: 16\n  epochs: 4\n")
    with pytest.raises(ConfigError, match="key 'epochs' appears twice in one mapping \\(lines 2 and 4\\)"):
        check_config_files([path])
    result = run_snakemake(tmp_path, path, "-n", check=False)
    assert result.returncode != 0 and "appears twice" in result.stdout + result.stderr


def test_the_old_name_of_cuda_graphs_is_read_with_a_deprecation_message():
    config = full_config({"training": {"compile": True}})
    messages = validate_config(config, SCHEMA)
    assert config["training"]["cuda_graphs"] is True and "compile" not in config["training"]
    assert messages == [
        "training.compile is deprecated and was read as training.cuda_graphs; rename it in your config"
    ]


def test_networks_and_groups_follow_the_config():
    config = full_config({"networks": {"label_corruption": [0.5, 0.0], "seeds": [2, 0, 1]}})
    config["training"]["group_size"] = 2
    nets = networks(config)
    assert [(n.label_corruption, n.seed) for n in nets] == [
        (0.0, 0),
        (0.0, 1),
        (0.0, 2),
        (0.5, 0),
        (0.5, 1),
        (0.5, 2),
    ]
    assert nets[3].path == "cnn7/synthetic/corruption0.50/seed0"
    groups = training_groups(config)
    # blocks of seed values per corruption level: seeds {0, 1} and {2}
    assert [[n.seed for n in g.networks] for g in groups] == [[0, 1], [2], [0, 1], [2]]
    assert sum((g.networks for g in groups), ()) == tuple(nets)
    assert [g.name for g in groups] == [
        "cnn7_synthetic_c0p00_s0_1",
        "cnn7_synthetic_c0p00_s2",
        "cnn7_synthetic_c0p50_s0_1",
        "cnn7_synthetic_c0p50_s2",
    ]


@pytest.mark.parametrize("group_size", [1, 2, 5])
def test_a_group_depends_only_on_its_members(group_size):
    """Adding a seed or a corruption level leaves every other group as it was (name and members)."""
    base = full_config({"networks": {"label_corruption": [0.0, 0.5], "seeds": [0, 1, 2, 3]}})
    base["training"]["group_size"] = group_size
    before = {g.name: g.networks for g in training_groups(base)}
    for change in ({"seeds": [0, 1, 2, 3, 4]}, {"label_corruption": [0.0, 0.25, 0.5]}, {"seeds": [1, 2, 3]}):
        changed = copy.deepcopy(base)
        changed["networks"].update(change)
        after = {g.name: g.networks for g in training_groups(changed)}
        changed_networks = set(networks(changed)) ^ set(networks(base))
        blocks = {(n.label_corruption, n.seed // group_size) for n in changed_networks}
        for name in set(before) ^ set(after):  # groups that were added, dropped or re-formed
            members = before.get(name) or after[name]
            assert {(n.label_corruption, n.seed // group_size) for n in members} <= blocks, name


def test_saved_epochs_always_include_the_last_epoch():
    assert saved_epochs({"checkpoint_epochs": [0, 5, 2], "epochs": 10}) == [0, 2, 5, 10]
    assert saved_epochs({"checkpoint_epochs": [10], "epochs": 10}) == [10]


def test_a_user_network_entry_gets_its_defaults_and_roles(tmp_path):
    from selectivity.config import external_layer_roles

    weights = tmp_path / "weights.pt"
    weights.write_bytes(b"")
    entry = {
        "constructor": "resnet18",
        "weights": str(weights),
        "input_size": 32,
        "layers": ["layer1", "layer4"],
    }
    config = full_config({"external_networks": {"mine": entry}})
    validate_config(config, SCHEMA)
    filled = config["external_networks"]["mine"]
    assert filled["test_images"] == "dataset" and filled["arguments"] == {}
    assert filled["normalisation"] == {"mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}
    roles = external_layer_roles(filled)
    assert roles.lower == ("layer1",) and roles.higher == ("layer4",)
    with pytest.raises(
        ConfigError, match=r"external_networks\.mine\.input_size: 64, but test_images: dataset"
    ):
        validate_config(full_config({"external_networks": {"mine": {**entry, "input_size": 64}}}), SCHEMA)


def test_the_sizes_of_a_local_npz_copy_come_from_its_headers(tmp_path):
    """A local .npz (e.g. a CIFAR-10 subset): its array lengths are read without loading the images."""
    import numpy as np

    from selectivity.config import dataset_sizes, npz_array_lengths

    path = tmp_path / "subset.npz"
    images = np.zeros((120, 32, 32, 3), dtype=np.uint8)
    np.savez_compressed(path, x_train=images, y_train=np.zeros(120), x_test=images[:50], y_test=np.zeros(50))
    assert npz_array_lengths(path, ("y_train", "y_test")) == {"y_train": 120, "y_test": 50}
    local = {"name": "cifar10", "source": "local", "local_path": str(path), "validation_size": 20}
    sizes = dataset_sizes(local)
    assert (sizes.train, sizes.test) == (120, 50)
    config = full_config({"dataset": local, "causal": {"test_images": 60, "invariance": {"test_images": 50}}})
    with pytest.raises(
        ConfigError,
        match=f"causal.test_images: 60 test images, but the test set of the local copy {path} has 50",
    ):
        validate_config(config, SCHEMA)
    config = full_config({"dataset": local, "causal": {"test_images": 50, "invariance": {"test_images": 50}}})
    config["training"]["batch_size"] = 101
    with pytest.raises(
        ConfigError, match="training.batch_size: 101 is larger than the training split of 100 images"
    ):
        validate_config(config, SCHEMA)
    # an unreadable copy is left to the data rule, which names the file
    assert dataset_sizes({**local, "local_path": str(tmp_path / "missing.npz")}) is None


def test_the_real_cifar10_subset_is_sized_from_its_file(cifar10_subset_path):
    from selectivity.config import dataset_sizes

    sizes = dataset_sizes({"name": "cifar10", "source": "local", "local_path": str(cifar10_subset_path)})
    assert (sizes.train, sizes.test) == (12_500, 5_000)
