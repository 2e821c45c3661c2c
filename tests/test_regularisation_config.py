"""The selectivity regulariser's identity and configuration (docs/method.md §2.10).

A regularised network is a variant of its model, named ``<model>+<feature><coefficient>``; coefficient
0 is the model itself, so its paths, training groups and params are what they were without the
regulariser. Bad settings stop the workflow before any job, naming the key. The workflow's dry runs
that prove the reruns are in tests/test_regulariser_workflow.py."""

from __future__ import annotations

import math

import pytest

from conftest import DEMO_CONFIG, REPO, TINY_CONFIG, merged_config, read_yaml
from selectivity.config import (
    ConfigError,
    causal_networks,
    layer_names,
    model_layer_units,
    networks,
    regularisation_layers,
    regularisation_settings,
    regularisation_study,
    rule_name_of_model,
    training_groups,
    training_settings,
    validate_config,
)
from selectivity.figures.catalogue import figure_entry, figures_in_group, groups_of
from selectivity.identity import (
    architecture_of,
    coefficient_label,
    identity_from_path,
    is_regularised,
    model_regularisation,
    network_identity,
    regularised_model_name,
)
from selectivity.networks.catalogue import trained_networks
from selectivity.regularisation import RegularisationSettings, check_regularisable

SCHEMA = REPO / "workflow" / "schemas" / "config.schema.yaml"
REGULARISER = read_yaml(REPO / "tests" / "configs" / "regulariser.yaml")


def config_of(*fragments) -> dict:
    config = merged_config(DEMO_CONFIG, *fragments)
    validate_config(config, SCHEMA)
    return config


def regularised(**section) -> dict:
    return {"training": {"selectivity_regularisation": section}}


# ------------------------------------------------------------------------------- names


@pytest.mark.parametrize(
    "coefficient, label", [(-0.5, "-0.5"), (2, "+2"), (1e-5, "+0.00001"), (0.1 + 0.2, "+0.30000000000000004")]
)
def test_a_coefficient_reads_back_as_the_same_float_from_its_model_name(coefficient, label):
    assert coefficient_label(coefficient) == label
    name = regularised_model_name("cnn7", "spatial_frequency", coefficient)
    assert name == f"cnn7+spatial_frequency{label}"
    assert model_regularisation(name) == ("cnn7", "spatial_frequency", float(coefficient))
    assert architecture_of(name) == "cnn7" and is_regularised(name)


def test_coefficient_zero_is_the_model_itself_and_plain_names_are_not_variants():
    assert regularised_model_name("cnn7", "orientation", 0.0) == "cnn7"
    assert model_regularisation("cnn7") is None and architecture_of("my_cnn") == "my_cnn"
    for bad in ("cnn7+orientation", "cnn7+orientation+0.50", "cnn7+orientation-01", "cnn7+Orientation+1"):
        assert model_regularisation(bad) is None, bad
    with pytest.raises(ValueError):
        coefficient_label(math.inf)


def test_a_variants_path_names_its_network_and_its_layers_are_its_architectures():
    path = "results/tuning/cnn7+orientation-0.5/synthetic/corruption0.00/seed3/tuning.csv"
    assert identity_from_path(path) == {
        "model": "cnn7+orientation-0.5",
        "dataset": "synthetic",
        "label_corruption": 0.0,
        "seed": 3,
    }
    assert (
        network_identity("cnn7+orientation-0.5/synthetic/corruption0.00/seed3")["model"]
        == "cnn7+orientation-0.5"
    )
    assert model_layer_units("cnn7+orientation-0.5") == model_layer_units("cnn7")


# ------------------------------------------------------------------------------- networks of a config


def test_without_coefficients_or_with_zero_only_the_networks_and_params_are_unchanged():
    plain = config_of(TINY_CONFIG)
    for fragment in (regularised(coefficients=[0.0]), regularised(coefficients=[])):
        config = config_of(TINY_CONFIG, fragment)
        assert networks(config) == networks(plain)
        assert [g.name for g in training_groups(config)] == [g.name for g in training_groups(plain)]
        assert training_settings(config["training"]) == training_settings(plain["training"])
        assert regularisation_study(config) is None
        assert [n.description for n in trained_networks(config)] == [
            n.description for n in trained_networks(plain)
        ]


def test_each_coefficient_adds_a_variant_of_every_model_with_its_own_training_groups():
    config = config_of(REGULARISER)
    models = sorted({n.model for n in networks(config)})
    assert models == ["cnn7", "cnn7+orientation+2", "cnn7+orientation-2"]
    groups = {g.name: g for g in training_groups(config)}
    assert set(groups) == {
        "cnn7_synthetic_c0p00_s0_1_2_3_4",
        "cnn7_orientation_m2_synthetic_c0p00_s0_1_2_3_4",
        "cnn7_orientation_p2_synthetic_c0p00_s0_1_2_3_4",
    }
    assert rule_name_of_model("cnn7+orientation-0.25") == "cnn7_orientation_m0p25"
    # no causal tests of regularised networks; their layers are their architecture's
    assert {n.model for n in causal_networks(config)} == {"cnn7"}
    assert layer_names(config, "cnn7+orientation-2") == layer_names(config, "cnn7")
    settings = regularisation_settings(config, "cnn7+orientation-2")
    assert settings == RegularisationSettings("orientation", ("conv1", "conv2"), 2, 12, 4, 9)
    assert regularisation_settings(config, "cnn7") is None
    study = regularisation_study(config)
    assert study.coefficients == (-2.0, 2.0) and study.variants_of("cnn7") == (
        "cnn7+orientation-2",
        "cnn7+orientation+2",
    )


def test_regularised_levels_and_layers_follow_their_keys():
    config = config_of(
        {"networks": {"label_corruption": [0.0, 0.5], "models": ["cnn7", "resnet20"]}},
        regularised(coefficients=[1.0], label_corruption="all", layers={"resnet20": ["stem"]}),
    )
    variants = [n for n in networks(config) if is_regularised(n.model)]
    assert {n.label_corruption for n in variants} == {0.0, 0.5}
    assert regularisation_layers(config, "resnet20+orientation+1") == ["stem"]
    assert regularisation_layers(config, "cnn7") == ["conv1", "conv2"]  # default: the claims' lower layers


BAD = [
    ("unknown feature", regularised(coefficients=[1.0], feature="texture"), "feature: 'texture'"),
    ("a non-number coefficient", regularised(coefficients=["big"]), "coefficients[0]: 'big'"),
    ("a coefficient listed twice", regularised(coefficients=[1.0, 1.0]), "coefficients"),
    (
        "an unknown layer",
        regularised(coefficients=[1.0], layers=["conv9"]),
        "selectivity_regularisation.layers: ['conv9']",
    ),
    ("zero steps", regularised(coefficients=[1.0], every_steps=0), "every_steps: 0"),
    (
        "a feature tuning does not measure",
        {**regularised(coefficients=[1.0], feature="colour"), "tuning": {"features": ["orientation"]}},
        "selectivity_regularisation.feature: 'colour' is not in tuning.features",
    ),
    (
        "an untrained level",
        regularised(coefficients=[1.0], label_corruption=[0.3]),
        "selectivity_regularisation.label_corruption[0]: 0.3",
    ),
    (
        "layers of a model not trained",
        regularised(coefficients=[1.0], layers={"vgg8bn": ["conv1_1"]}),
        "selectivity_regularisation.layers: ['vgg8bn']",
    ),
]


@pytest.mark.parametrize("case, fragment, message", BAD, ids=[c[0] for c in BAD])
def test_bad_regulariser_settings_are_refused_naming_the_key(case, fragment, message):
    config = merged_config(DEMO_CONFIG, fragment)
    with pytest.raises(ConfigError) as error:
        validate_config(config, SCHEMA)
    assert message in str(error.value)


def test_a_feature_without_a_differentiable_index_is_refused_up_front(monkeypatch):
    from selectivity import regularisation

    monkeypatch.setitem(regularisation.NOT_DIFFERENTIABLE, "phase", "its index counts units")
    with pytest.raises(
        ValueError, match="training.selectivity_regularisation.feature: 'phase' cannot be regularised"
    ):
        check_regularisable("phase", ["orientation", "phase"])


# ------------------------------------------------------------------------------- figures


def test_the_regularisation_figures_exist_only_in_runs_with_regularised_networks():
    assert figures_in_group("regularisation", has_regularisation=True) == [
        "selectivity_vs_coefficient",
        "accuracy_vs_selectivity",
    ]
    assert figures_in_group("regularisation") == []
    assert "regularisation" in groups_of(True, True, has_regularisation=True)
    assert "regularisation" not in groups_of(True, True) and "regularisation" not in groups_of(
        False, True, True, True
    )
    entry = figure_entry("cnn7", "accuracy_vs_selectivity", ["cnn7"], has_regularisation=True)
    assert entry.category == "8. Selectivity regularisation" and entry.group == "regularisation"
    with pytest.raises(ValueError):
        figure_entry("cnn7", "accuracy_vs_selectivity", ["cnn7"])
