"""Every network a run analyses, described the same way whatever its origin (torch-free).

A network is *trained* (one of ``networks.models`` x label corruption x seed, trained by the
workflow, whose checkpoints describe themselves) or *given* (weights that exist already: the
published VGG16 of the ``vgg16`` section, or a user's entry of ``external_networks``, described
by its constructor, weights, input size, normalisation and layers). Either way the workflow
takes it through the same analyses with one wildcard, ``{network}``: its :attr:`path` below
``results/tuning/`` and ``results/causal/``. Everything an analysis job needs to know about a
network beyond its files is :attr:`AnalysedNetwork.description` (a rule param), which
:func:`selectivity.networks.loading.load_network` turns into the loaded network.

Evaluation images (what the causal tests run on) are the workflow's own test set, an image
folder (class subfolders; converted once into a test-set file at the network's input size), or
none (tuning only). The Snakemake controller imports this module: no torch here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from selectivity.config import (
    ConfigError,
    ablation_layers,
    causal_networks,
    configured_dataset,
    external_layer_roles,
    invariance_layers,
    layer_names,
    networks,
    saved_epochs,
)
from selectivity.networks.architectures import VGG16_INPUT_SIZE, VGG16_LAYERS

#: The one checkpoint of a given network: its weights (tables say checkpoint "published").
GIVEN_CHECKPOINT = "weights"
#: A user's given network is also tuned untrained: its constructor's own random initialisation,
#: seeded by the weights file's position (tables say checkpoint "untrained", epoch 0), the
#: comparison of claim C1 (docs/method.md §1.7).
UNTRAINED_CHECKPOINT = "untrained"
#: The name the ``vgg16`` config section gives the published VGG16.
VGG16_NAME = "vgg16_imagenet"
#: Constructor of the built-in VGG16 (torchvision's VGG16 analysed with the paper's layer names).
VGG16_CONSTRUCTOR = "vgg16_imagenet"
#: torchvision's ImageNet normalisation of VGG16's published weights.
IMAGENET_NORMALISATION = {"mean": [0.485, 0.456, 0.406], "std": [0.229, 0.224, 0.225]}
#: Weights values of the built-in VGG16 that are not files.
VGG16_NAMED_WEIGHTS = ("imagenet", "random")
IMAGE_FOLDER_SETS = "results/data/image_folders"


@dataclass(frozen=True)
class EvaluationImages:
    """The images a network's causal tests run on (``kind`` none: it gets tuning only)."""

    kind: str  # "dataset" | "folder" | "none"
    name: str  # the tables' dataset column: the dataset's name, the folder set's name, or "none"
    test_set: str | None = None  # the .npz file the causal rules read
    folder: str | None = None
    images: int | None = None  # how many images of the folder are extracted (a seeded subset)
    seed: int = 0
    image_size: int | None = None

    @property
    def available(self) -> bool:
        return self.kind != "none"

    def folder_settings(self) -> dict[str, Any]:
        """What builds the folder's test set (the params of its rule)."""
        return {"images": self.images, "seed": self.seed, "image_size": self.image_size}


@dataclass(frozen=True)
class AnalysedNetwork:
    """One network as the analyses see it (module docstring)."""

    path: str
    model: str
    origin: str  # "trained" | "given"
    checkpoint_files: Mapping[str, str | None]  # checkpoint name -> file (None: weights not in a file)
    causal_checkpoint: str
    layers: tuple[str, ...]
    ablation_layers: tuple[str, ...]
    invariance_ablated: tuple[str, ...]
    invariance_measured: tuple[str, ...]
    evaluation: EvaluationImages
    description: Mapping[str, Any]
    gets_causal_tests: bool
    input_size: int = 32
    batch_size: int | None = None  # images per forward pass of its analysis jobs (None: the config's)

    @property
    def checkpoint_names(self) -> list[str]:
        return list(self.checkpoint_files)

    @property
    def files(self) -> list[str]:
        """Every weights file of the network (its tuning job reads them all)."""
        return [path for path in self.checkpoint_files.values() if path is not None]

    @property
    def causal_files(self) -> list[str]:
        path = self.checkpoint_files[self.causal_checkpoint]
        return [] if path is None else [path]


def checkpoint_path(network_path: str, checkpoint: str) -> str:
    return f"results/networks/{network_path}/checkpoints/{checkpoint}.pt"


def causal_checkpoint_name(config: Mapping[str, Any]) -> str:
    """best, or the last saved epoch (config causal.checkpoint)."""
    if config["causal"]["checkpoint"] == "best":
        return "best"
    return f"epoch{saved_epochs(config['training'])[-1]}"


def dataset_evaluation(config: Mapping[str, Any]) -> EvaluationImages:
    name = config["dataset"]["name"]
    return EvaluationImages(
        "dataset",
        name,
        test_set=f"results/data/{name}_test.npz",
        image_size=configured_dataset(config).image_size,
    )


def trained_networks(config: Mapping[str, Any]) -> list[AnalysedNetwork]:
    """The networks the workflow trains, as the analyses see them."""
    names = [f"epoch{epoch}" for epoch in saved_epochs(config["training"])] + ["best"]
    causal = {network.path for network in causal_networks(config)}
    evaluation = dataset_evaluation(config)
    result = []
    for network in networks(config):
        ablated, measured = invariance_layers(config, network.model)
        result.append(
            AnalysedNetwork(
                path=network.path,
                model=network.model,
                origin="trained",
                checkpoint_files={name: checkpoint_path(network.path, name) for name in names},
                causal_checkpoint=causal_checkpoint_name(config),
                layers=tuple(layer_names(config, network.model)),
                ablation_layers=tuple(ablation_layers(config, network.model)),
                invariance_ablated=tuple(ablated),
                invariance_measured=tuple(measured),
                evaluation=evaluation,
                description={
                    "origin": "trained",
                    "network": {
                        "model": network.model,
                        "dataset": network.dataset,
                        "label_corruption": network.label_corruption,
                        "seed": network.seed,
                    },
                },
                gets_causal_tests=network.path in causal,
                input_size=evaluation.image_size,
            )
        )
    return result


def given_entries(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Every given network's entry, name -> entry: ``external_networks`` and, when enabled, VGG16.

    The ``vgg16`` section is a short way of writing the entry of the published VGG16: the
    built-in constructor (torchvision's VGG16 with the paper's 20 layer names), torchvision's
    ImageNet weights (or a local file), ImageNet normalisation and an ImageNet folder.
    """
    entries = {name: dict(entry) for name, entry in config["external_networks"].items()}
    vgg = config["vgg16"]
    if vgg["enabled"]:
        folder = vgg["imagenet_val_dir"]
        entries[VGG16_NAME] = {
            "constructor": VGG16_CONSTRUCTOR,
            "arguments": {},
            "weights": vgg["weights"],
            "input_size": VGG16_INPUT_SIZE,
            "normalisation": dict(IMAGENET_NORMALISATION),
            "layers": list(VGG16_LAYERS),
            "ablation_layers": list(vgg["ablation_layers"]),
            "lower_layers": list(vgg["ablation_layers"]),
            "higher_layers": list(vgg["measured_layers"]),
            "test_images": (
                {
                    "folder": folder,
                    "name": "imagenet",
                    "images": vgg["images"],
                    "seed": config["causal"]["ablation"]["seed"],
                }
                if folder
                else "none"
            ),
            "batch_size": vgg["batch_size"],
        }
    return entries


def weights_list(entry: Mapping[str, Any]) -> list[str]:
    """An entry's weights: one value or a list (several trained copies, e.g. one per seed)."""
    weights = entry["weights"]
    return [str(weights)] if isinstance(weights, str) else [str(w) for w in weights]


def weights_file(entry: Mapping[str, Any], weights: str) -> str | None:
    """The file behind a weights value (None for the built-in VGG16's named weights)."""
    if entry["constructor"] == VGG16_CONSTRUCTOR and weights in VGG16_NAMED_WEIGHTS:
        return None
    return weights


def evaluation_of(config: Mapping[str, Any], name: str, entry: Mapping[str, Any]) -> EvaluationImages:
    images = entry.get("test_images", "dataset")
    if images == "dataset":
        return dataset_evaluation(config)
    if images == "none":
        return EvaluationImages("none", "none")
    set_name = images.get("name") or folder_set_name(images["folder"])
    return EvaluationImages(
        "folder",
        set_name,
        test_set=f"{IMAGE_FOLDER_SETS}/{set_name}.npz",
        folder=str(images["folder"]),
        images=int(images.get("images", 1000)),
        seed=int(images.get("seed", 0)),
        image_size=int(entry["input_size"]),
    )


def folder_set_name(folder: str) -> str:
    """The default name of an image-folder set: the folder's name, made path- and column-safe."""
    name = re.sub(r"[^a-z0-9_]+", "_", Path(str(folder).rstrip("/")).name.lower()).strip("_")
    return name or "images"


def given_networks(config: Mapping[str, Any]) -> list[AnalysedNetwork]:
    """The given networks (published VGG16, users' networks), one per weights file."""
    result = []
    for name, entry in given_entries(config).items():
        evaluation = evaluation_of(config, name, entry)
        roles = external_layer_roles(entry)
        layers = tuple(entry["layers"])
        for index, weights in enumerate(weights_list(entry)):
            path = f"{name}/{evaluation.name}/weights{index}"
            checkpoints = {GIVEN_CHECKPOINT: weights_file(entry, weights)}
            if name in config["external_networks"]:
                checkpoints[UNTRAINED_CHECKPOINT] = None
            result.append(
                AnalysedNetwork(
                    path=path,
                    model=name,
                    origin="given",
                    checkpoint_files=checkpoints,
                    causal_checkpoint=GIVEN_CHECKPOINT,
                    layers=layers,
                    ablation_layers=tuple(entry.get("ablation_layers") or layers),
                    invariance_ablated=tuple(roles.lower),
                    invariance_measured=tuple(roles.higher),
                    evaluation=evaluation,
                    description=given_description(name, index, entry, weights, evaluation),
                    gets_causal_tests=evaluation.available,
                    input_size=int(entry["input_size"]),
                    batch_size=entry.get("batch_size"),
                )
            )
    return result


def given_description(
    name: str, index: int, entry: Mapping[str, Any], weights: str, evaluation: EvaluationImages
) -> dict[str, Any]:
    """What determines a given network besides its weights file's content (its loader's params)."""
    normalisation = entry.get("normalisation") or {}
    return {
        "origin": "given",
        "name": name,
        "index": index,
        "constructor": entry["constructor"],
        "arguments": dict(entry.get("arguments") or {}),
        "input_size": int(entry["input_size"]),
        "normalisation": {
            "mean": list(normalisation.get("mean", [0.0, 0.0, 0.0])),
            "std": list(normalisation.get("std", [1.0, 1.0, 1.0])),
        },
        "layers": list(entry["layers"]),
        # named weights (the built-in VGG16's "imagenet"/"random") are settings, files are inputs
        "weights": None if weights_file(entry, weights) is not None else weights,
        "dataset": evaluation.name,
    }


def analysed_networks(config: Mapping[str, Any]) -> list[AnalysedNetwork]:
    """Every network of the run: trained ones first, then given ones."""
    result = trained_networks(config) + given_networks(config)
    paths = [network.path for network in result]
    duplicated = sorted({path for path in paths if paths.count(path) > 1})
    if duplicated:
        raise ConfigError(f"networks {duplicated} are named twice; give each network its own name")
    return result


def folder_sets(config: Mapping[str, Any]) -> dict[str, EvaluationImages]:
    """Every image-folder test set of the run, name -> how it is built; one name, one set."""
    sets: dict[str, EvaluationImages] = {}
    for name, entry in given_entries(config).items():
        evaluation = evaluation_of(config, name, entry)
        if evaluation.kind != "folder":
            continue
        other = sets.setdefault(evaluation.name, evaluation)
        if other != evaluation:
            raise ConfigError(
                f"external_networks.{name}.test_images: the image set {evaluation.name!r} is also used with "
                f"other settings ({other.folder}, {other.images} images at {other.image_size} px); give it "
                "another name (test_images.name) or the same settings"
            )
    return sets


#: Why a given network's claims that need a training history cannot be tested.
NO_TRAINING_HISTORY = (
    "a given network has no training history (no saved epochs, no label-corruption levels); the claim "
    "needs one"
)
NO_TEST_IMAGES = "the entry has no test images (test_images: none), so no ablation or shift invariance"


def given_network_claims(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """What the claims of users' given networks need: each entry's lower and higher layers, and the
    claims its networks cannot be tested on, with the reason (docs/method.md §6).

    Every weights file of an entry is one network of its claims. C2 and C3 need a training history;
    C4-C6 need test images. The published VGG16 (section ``vgg16``) is one network without an
    untrained comparison and gets no claims.
    """
    layers, not_applicable = {}, {}
    for name, entry in config["external_networks"].items():
        roles = external_layer_roles(entry)
        layers[name] = {"lower_layers": list(roles.lower), "higher_layers": list(roles.higher)}
        reasons = {"C2": NO_TRAINING_HISTORY, "C3": NO_TRAINING_HISTORY}
        if not evaluation_of(config, name, entry).available:
            reasons.update({claim: NO_TEST_IMAGES for claim in ("C4", "C5", "C6")})
        not_applicable[name] = reasons
    return {"layers": layers, "not_applicable": not_applicable}


@dataclass(frozen=True)
class ModelGroup:
    """The networks of one model (an architecture of the study, or a given network's name)."""

    model: str
    origin: str
    networks: tuple[AnalysedNetwork, ...] = field(default_factory=tuple)

    @property
    def has_causal_tests(self) -> bool:
        return any(network.gets_causal_tests for network in self.networks)


def models_of(networks_list: list[AnalysedNetwork]) -> list[ModelGroup]:
    """The networks grouped by model, in order of first appearance."""
    groups: dict[str, list[AnalysedNetwork]] = {}
    for network in networks_list:
        groups.setdefault(network.model, []).append(network)
    return [ModelGroup(model, members[0].origin, tuple(members)) for model, members in groups.items()]
