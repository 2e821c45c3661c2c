"""Bad configurations stop the workflow before any job, with a message naming key and value.

Each case is a row of the README table "Bad input"; the same config fragment is checked
by the package functions and by a real ``snakemake -n`` of the workflow.
"""

from __future__ import annotations

import copy

import pytest
import yaml

from conftest import REPO, run_snakemake, write_config
from selectivity.config import (
    ConfigError,
    check_config,
    networks,
    saved_epochs,
    training_groups,
    validate_config,
)

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"

# (case, config fragment merged over config/demo.yaml, text the message must contain)
BAD_CONFIGS = [
    ("unknown key", {"trainng": {"epochs": 3}}, "trainng: unknown key"),
    ("unknown nested key", {"training": {"epoch": 3}}, "training.epoch: unknown key"),
    ("wrong type", {"training": {"epochs": "ten"}}, "training.epochs: 'ten'"),
    ("zero epochs", {"training": {"epochs": 0}}, "training.epochs: 0"),
    ("negative batch size", {"training": {"batch_size": -4}}, "training.batch_size: -4"),
    ("zero batch size", {"training": {"batch_size": 0}}, "training.batch_size: 0"),
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
        "networks.models[0]: 'resnet50' is not allowed",
    ),
    ("unknown dataset", {"dataset": {"name": "mnist"}}, "dataset.name: 'mnist' is not allowed"),
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
        "local dataset without a path",
        {"dataset": {"name": "cifar10", "source": "local", "local_path": None}},
        "dataset.local_path: null",
    ),
]


def demo_config() -> dict:
    return yaml.safe_load((REPO / "config" / "demo.yaml").read_text())


def full_config(fragment: dict) -> dict:
    """config.yaml extended by demo.yaml and the fragment, the way Snakemake merges config files."""

    def merge(base, update):
        for key, value in update.items():
            if isinstance(value, dict) and isinstance(base.get(key), dict):
                merge(base[key], value)
            else:
                base[key] = copy.deepcopy(value)
        return base

    config = yaml.safe_load((REPO / "config.yaml").read_text())
    return merge(merge(config, demo_config()), fragment)


def test_shipped_configs_are_valid():
    for path in [REPO / "config.yaml", *sorted((REPO / "config").glob("*.yaml"))]:
        config = full_config(yaml.safe_load(path.read_text()))
        validate_config(config, SCHEMA)
        check_config(config)


@pytest.mark.parametrize("case, fragment, message", BAD_CONFIGS, ids=[c[0] for c in BAD_CONFIGS])
def test_bad_config_is_rejected_by_the_package(case, fragment, message):
    config = full_config(fragment)
    with pytest.raises(ConfigError) as error:
        validate_config(config, SCHEMA)
        check_config(config)
    assert message in str(error.value)


@pytest.mark.parametrize(
    "case, fragment, message",
    [BAD_CONFIGS[i] for i in (0, 3, 6, 8, 9, 10)],
    ids=[BAD_CONFIGS[i][0] for i in (0, 3, 6, 8, 9, 10)],
)
def test_bad_config_stops_snakemake_before_any_job(tmp_path, case, fragment, message):
    config = demo_config()
    for key, value in fragment.items():
        if isinstance(value, dict) and isinstance(config.get(key), dict):
            config[key].update(value)
        else:
            config[key] = value
    result = run_snakemake(tmp_path, write_config(tmp_path, config), "-n", check=False)
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "Invalid configuration" in output and message in output
    assert not (tmp_path / "results").exists()


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
    assert [len(g.networks) for g in groups] == [2, 2, 2]
    assert sum((g.networks for g in groups), ()) == tuple(nets)
    assert len({g.name for g in groups}) == 3


def test_saved_epochs_always_include_the_last_epoch():
    assert saved_epochs({"checkpoint_epochs": [0, 5, 2], "epochs": 10}) == [0, 2, 5, 10]
    assert saved_epochs({"checkpoint_epochs": [10], "epochs": 10}) == [10]
