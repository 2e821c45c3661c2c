"""Config checks the JSON schema cannot express, and what the workflow derives from a config.

The workflow validates ``config.yaml`` against ``workflow/schemas/config.schema.yaml``
(types, ranges, unknown keys) and then calls :func:`check_config` for the rules that
relate several keys. Both run before any job, so a bad value never costs a finished result.
Everything here is plain Python on the config dict, so it is unit-tested without Snakemake.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import os
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import yaml

from selectivity.dataset_shapes import (
    CIFAR10,
    TORCHVISION_DATASETS,
    DatasetConfigError,
    DatasetShape,
    check_dataset_name,
    dataset_kind,
    dataset_shape,
    download_dir,
    image_folder_fingerprint,
)
from selectivity.networks.architectures import (
    CONV_NET_SPECS,
    DEFAULT_LAYER_ROLES,
    VGG16_INPUT_SIZE,
    VGG16_LAYER_UNITS,
    LayerRoles,
    trainable_layer_units,
)
from selectivity.identity import architecture_of, is_regularised, regularised_model_name
from selectivity.networks.user_architectures import (
    SECTION as ARCHITECTURES_SECTION,
    is_user_architecture,
    used_architectures,
    user_architectures,
)
from selectivity.regularisation import (
    KEY as REGULARISATION_KEY,
    SECTION as REGULARISATION_SECTION,
    RegularisationSettings,
    RegularisationStudy,
    check_regularisable,
)
from selectivity.tuning.features import THRESHOLD_SETTINGS, check_feature_settings
from selectivity.tuning.stimuli import max_spatial_frequencies
from selectivity.causal.unit_counts import units_to_ablate

# The official CIFAR-10 (download, batches folder or archive): training and test images.
CIFAR10_TRAIN_IMAGES, CIFAR10_TEST_IMAGES = 50_000, 10_000


class ConfigError(ValueError):
    """A config value that cannot work; the message names the key, the value and what is allowed."""


def _key_path(path) -> str:
    """jsonschema's deque path as a config key: ``networks.label_corruption[1]``."""
    key = ""
    for part in path:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    return key or "(top level)"


def _describe(error) -> str:
    if error.validator == "additionalProperties":
        allowed = sorted(error.schema.get("properties", {}))
        unknown = sorted(set(error.instance) - set(allowed))
        prefix = _key_path(error.absolute_path)
        where = f"{prefix}." if error.absolute_path else ""
        return f"{where}{', '.join(unknown)}: unknown key; allowed keys here are {allowed}"
    key = _key_path(error.absolute_path)
    value = error.instance
    if error.validator == "enum":
        return f"{key}: {value!r} is not allowed; choose one of {error.validator_value}"
    if error.validator == "oneOf":
        return (
            f"{key}: {value!r} is not allowed; expected {error.schema.get('description', 'see the schema')}"
        )
    return f"{key}: {value!r} is invalid: {error.message}"


# Keys that were renamed: old dotted key -> (new key, how an old value maps to a new one,
# or None when there is no faithful mapping and the user must choose the new value).
RENAMED_KEYS: dict[str, tuple[str, Any]] = {
    "training.compile": ("training.cuda_graphs", lambda value: value),
    "training.max_shift_pixels": ("training.shift_range", None),
    # Intervals are no longer bootstrapped (docs/method.md §6).
    "claims.bootstrap_resamples": ("claims.permutations", None),
    "claims.min_networks": (
        "claims.confidence",
        "the minimum number of networks now follows from claims.confidence (5 at 0.95)",
    ),
}


def migrate_renamed_keys(config: dict) -> list[str]:
    """Move renamed keys to their new names in place; return a deprecation message for each."""
    messages = []
    for old_key, (new_key, convert) in RENAMED_KEYS.items():
        section, old_name = old_key.split(".")
        values = config.get(section)
        if not isinstance(values, dict) or old_name not in values:
            continue
        new_name = new_key.split(".")[1]
        if convert is None or isinstance(convert, str):
            why = convert or f"set {new_key} instead (see the schema)"
            raise ConfigError(f"{old_key}: {values[old_name]!r} is no longer read; {why}")
        # The old key wins: config.yaml sets the new one, so the old one comes from the user's file.
        values[new_name] = convert(values.pop(old_name))
        messages.append(f"{old_key} is deprecated and was read as {new_key}; rename it in your config")
    return messages


def fill_defaults(config: dict, schema: Mapping[str, Any]) -> None:
    """Set every missing key that has a default in ``schema`` (recursively, in place)."""
    for key, subschema in schema.get("properties", {}).items():
        if key not in config and "default" in subschema:
            config[key] = copy.deepcopy(subschema["default"])
        if isinstance(config.get(key), dict) and "properties" in subschema:
            fill_defaults(config[key], subschema)
        entries = subschema.get("additionalProperties")
        if isinstance(config.get(key), dict) and isinstance(entries, dict) and "properties" in entries:
            for entry in config[key].values():  # a mapping of named entries (external_networks)
                if isinstance(entry, dict):
                    fill_defaults(entry, entries)


def _non_finite_numbers(value: Any, key: str = "") -> list[str]:
    if isinstance(value, float) and not math.isfinite(value):
        return [key or "(top level)"]
    if isinstance(value, Mapping):
        return [
            k
            for name, item in value.items()
            for k in _non_finite_numbers(item, f"{key}.{name}" if key else str(name))
        ]
    if isinstance(value, (list, tuple)):
        return [k for i, item in enumerate(value) for k in _non_finite_numbers(item, f"{key}[{i}]")]
    return []


def validate_config(config: dict, schema_path: str | Path) -> list[str]:
    """The one check of a config before any job: renamed keys, defaults, schema, cross-key rules.

    Fills in the schema's defaults in place (as Snakemake's ``validate`` would) and raises
    :class:`ConfigError` naming every bad key and value in one line each. Returns the
    deprecation messages of renamed keys, for the caller to show.
    """
    import jsonschema

    messages = migrate_renamed_keys(config)
    schema = yaml.safe_load(Path(schema_path).read_text())
    fill_defaults(config, schema)
    problems = [
        f"{key}: {_lookup(config, key)!r} is not a finite number" for key in _non_finite_numbers(config)
    ]
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(dict(config)), key=lambda e: list(map(str, e.absolute_path)))
    problems += [_describe(error) for error in errors]
    if problems:
        raise ConfigError("; ".join(problems))
    check_config(config)
    return messages


def _lookup(config: Mapping[str, Any], key: str) -> Any:
    value: Any = config
    for part in key.replace("[", ".[").split("."):
        value = value[int(part[1:-1])] if part.startswith("[") else value[part]
    return value


class _UniqueKeyLoader(yaml.SafeLoader):
    """A YAML loader that refuses a key given twice in one mapping (PyYAML keeps the last)."""


def _construct_unique_mapping(loader, node, deep=False):
    seen: dict[Any, int] = {}
    for key_node, _ in node.value:
        key = loader.construct_object(key_node, deep=deep)
        if key in seen:
            raise ConfigError(
                f"{node.start_mark.name}: key {key!r} appears twice in one mapping (lines {seen[key] + 1} "
                f"and {key_node.start_mark.line + 1}); YAML would silently keep only the last value"
            )
        seen[key] = key_node.start_mark.line
    return loader.construct_mapping(node, deep=deep)


def check_config_files(paths: list[str | Path]) -> None:
    """Raise :class:`ConfigError` if a config file gives a key twice (the earlier value would be lost)."""
    _UniqueKeyLoader.add_constructor(
        yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping
    )
    for path in paths:
        with open(path, encoding="utf-8") as handle:
            yaml.load(handle, Loader=_UniqueKeyLoader)


def gpus_per_network_job(config: Mapping[str, Any]) -> int:
    """GPUs a job that runs a network asks for: none with ``device: cpu``, else one.

    This is the resource a scheduler sees (``--gpus=1`` on SLURM), so ``device: cpu`` is
    also the switch for clusters without GPU nodes; inside a job ``device: auto`` takes the
    GPU it was allotted, or the CPU when it got none (``--resources gpu=0`` on one machine).
    """
    return 0 if config["device"] == "cpu" else 1


def corruption_label(fraction: float) -> str:
    """How a label-corruption fraction appears in paths: two decimals (0.2 -> "0.20")."""
    return f"{fraction:.2f}"


def model_layer_names(model: str) -> list[str]:
    """The analysed layers of a built-in model, shallow to deep (see :func:`layer_names` for any model)."""
    return list(model_layer_units(model))


def model_layer_units(model: str) -> dict[str, int]:
    """Analysed layer -> number of units (channels or fc units) of a built-in model (or of a regularised
    variant of one), shallow to deep."""
    model = architecture_of(model)
    units = trainable_layer_units(model)
    if units is not None:
        return units
    if model == "vgg16_imagenet":
        return dict(VGG16_LAYER_UNITS)
    raise ConfigError(f"unknown model {model!r}")


def architecture_probe(config: Mapping[str, Any], model: str):
    """The controller's check of a user architecture on the dataset's images
    (:func:`selectivity.networks.user_models.probe_architecture`; imports torch)."""
    from selectivity.networks.hooked import ExternalNetworkError
    from selectivity.networks.user_models import probe_architecture

    model = architecture_of(model)
    shape = configured_dataset(config)
    try:
        return probe_architecture(user_architectures(config)[model], shape.num_classes, shape.image_size)
    except ExternalNetworkError as error:
        raise ConfigError(str(error)) from None


def layer_names(config: Mapping[str, Any], model: str) -> list[str]:
    """The analysed layers of any trained model (built-in or the config's own, or a regularised
    variant of either), shallow to deep."""
    model = architecture_of(model)
    if is_user_architecture(config, model):
        return list(config[ARCHITECTURES_SECTION][model]["layers"])
    return model_layer_names(model)


def layer_units(config: Mapping[str, Any], model: str) -> dict[str, int]:
    """Analysed layer -> units of any trained model (a user architecture's from the probe)."""
    model = architecture_of(model)
    if is_user_architecture(config, model):
        return dict(architecture_probe(config, model).layer_units)
    return model_layer_units(model)


_SHAPES: dict[str, DatasetShape] = {}


def configured_dataset(config: Mapping[str, Any]) -> DatasetShape:
    """Image size, classes and image counts of the config's dataset (read once per process)."""
    dataset = config["dataset"]
    key = repr(sorted((name, repr(value)) for name, value in dataset.items()))
    if key not in _SHAPES:
        try:
            _SHAPES[key] = dataset_shape(dataset)
        except DatasetConfigError as error:
            raise ConfigError(str(error)) from None
    return _SHAPES[key]


def model_input_size(config: Mapping[str, Any], model: str) -> int:
    """The square input size of a model's images in pixels: the dataset's (224 for VGG16)."""
    if model == "vgg16_imagenet":
        return VGG16_INPUT_SIZE
    spec = CONV_NET_SPECS.get(architecture_of(model))
    size = configured_dataset(config).image_size
    if spec is not None:
        try:
            dataclasses.replace(spec, input_size=size).conv_output_sizes()
        except ValueError as error:
            raise ConfigError(f"networks.models: {model} cannot take {size}-px images: {error}") from None
    return size


def dataset_settings(dataset: Mapping[str, Any]) -> dict[str, Any]:
    """The settings that build the canonical dataset file (params of prepare_dataset).

    CIFAR-10's and the synthetic stand-in's settings are what they were before other datasets
    existed (so a finished run rebuilds nothing). An image folder's include a fingerprint of its
    files (:func:`selectivity.dataset_shapes.image_folder_fingerprint`).
    """
    kind = dataset_kind(dataset)
    if kind == "synthetic":
        return {"name": "synthetic", "synthetic": dict(dataset["synthetic"])}
    if kind == "image_folder":
        folder = dataset["image_folder"]
        return {
            "name": dataset["name"],
            "image_folder": {"path": str(folder["path"]), "image_size": int(folder["image_size"])},
            "files": image_folder_fingerprint(folder["path"]),
        }
    return {
        "name": dataset["name"],
        "source": dataset["source"],
        "local_path": dataset["local_path"],
        "download_dir": download_dir(dataset),
        "verify_checksum": dataset["verify_checksum"],
    }


def local_dataset_files(dataset: Mapping[str, Any]) -> list[Path]:
    """The files of a local copy of a dataset read by name (every file of a folder), or [] for other sources."""
    if (
        dataset["name"] not in TORCHVISION_DATASETS
        or dataset["source"] != "local"
        or not dataset["local_path"]
    ):
        return []
    path = Path(dataset["local_path"])
    if path.is_dir():
        return sorted(file for file in path.rglob("*") if file.is_file())
    return [path]


def files_newer_than(files: Iterable[str | os.PathLike], reference: str | os.PathLike) -> bool:
    """Whether any of ``files`` was modified after ``reference`` (False where ``reference`` is missing).

    Asked at start-up of a local dataset copy against the digest of the dataset built from it
    (workflow/rules/data_inputs.smk), so it reads the file system only.
    """
    reference = Path(reference)
    if not reference.exists():
        return False
    made = reference.stat().st_mtime
    return any(Path(file).exists() and Path(file).stat().st_mtime > made for file in files)


def saved_epochs(training: Mapping[str, Any]) -> list[int]:
    """Checkpoint epochs of a network: the configured ones plus the last epoch, sorted, once each."""
    return sorted(set(training["checkpoint_epochs"]) | {training["epochs"]})


def training_settings(training: Mapping[str, Any]) -> dict[str, Any]:
    """The training settings that determine a network's weights, in a canonical form.

    These are the params of the training rules, so only settings that change the weights
    belong here, normalised so that equivalent configs give equal params: checkpoint
    epochs sorted with the last epoch included; shift and flip settings only when
    augmentation is on; the precision only when it is not fp32, so that fp32 networks keep
    the params they had before bf16 existed and are not retrained. Batch sizes of evaluation
    and CUDA-graph capture are read by the job from the config (they do not change the
    weights); so are the device and GPU locks.
    """
    settings = {
        "epochs": training["epochs"],
        "batch_size": training["batch_size"],
        "learning_rate": float(training["learning_rate"]),
        "adam_betas": [float(beta) for beta in training["adam_betas"]],
        "adam_epsilon": float(training["adam_epsilon"]),
        "checkpoint_epochs": saved_epochs(training),
        "augmentation": bool(training["augmentation"]),
    }
    if settings["augmentation"]:
        settings["shift_range"] = float(training["shift_range"])
        settings["horizontal_flip"] = bool(training["horizontal_flip"])
    if training.get("precision", "fp32") != "fp32":
        settings["precision"] = training["precision"]
    return settings


# Config keys that name lower/higher layers: each takes "default" (the architecture's
# layers, selectivity.networks.architectures.DEFAULT_LAYER_ROLES), a list (every model), or a
# mapping model -> list (models left out get their default).
LAYER_ROLE_KEYS = {
    "claims.lower_layers": ("claims", "lower_layers", "lower"),
    "claims.higher_layers": ("claims", "higher_layers", "higher"),
    "causal.invariance.ablated_layers": ("invariance", "ablated_layers", "lower"),
    "causal.invariance.measured_layers": ("invariance", "measured_layers", "higher"),
}


def _section(config: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    return config["causal"]["invariance"] if name == "invariance" else config[name]


def configured_layers(config: Mapping[str, Any], key: str, model: str) -> list[str]:
    """The layers one of :data:`LAYER_ROLE_KEYS` names for ``model``."""
    section, name, role = LAYER_ROLE_KEYS[key]
    value = _section(config, section)[name]
    model = architecture_of(model)  # a regularised variant has its architecture's layers
    if isinstance(value, Mapping):
        value = value.get(model, "default")
    if value == "default" and is_user_architecture(config, model):
        return list(config[ARCHITECTURES_SECTION][model][f"{role}_layers"])
    if value == "default":
        if model not in DEFAULT_LAYER_ROLES:
            raise ConfigError(f"{key}: {model} has no default {role} layers; list them for {model}")
        return list(getattr(DEFAULT_LAYER_ROLES[model], role))
    return list(value)


def layer_roles(config: Mapping[str, Any], model: str) -> LayerRoles:
    """The claims' lower and higher layers of ``model`` (config claims.lower_layers/higher_layers)."""
    return LayerRoles(
        lower=tuple(configured_layers(config, "claims.lower_layers", model)),
        higher=tuple(configured_layers(config, "claims.higher_layers", model)),
    )


def invariance_layers(config: Mapping[str, Any], model: str) -> tuple[list[str], list[str]]:
    """(ablated, measured) layers of the shift-invariance test for ``model``."""
    return (
        configured_layers(config, "causal.invariance.ablated_layers", model),
        configured_layers(config, "causal.invariance.measured_layers", model),
    )


def ablation_layers(config: Mapping[str, Any], model: str) -> list[str]:
    layers = config["causal"]["ablation"]["layers"]
    return layer_names(config, model) if layers == "all" else list(layers)


def _check_layers(config: Mapping[str, Any], key: str, layers: list[str], models: list[str]) -> None:
    for model in models:
        known = layer_names(config, model)
        unknown = [layer for layer in layers if layer not in known]
        if unknown:
            raise ConfigError(f"{key}: {unknown} are not layers of {model}; its layers are {known}")


def check_config(config: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` for cross-key problems of a schema-valid config.

    Each check stands for a failure that would otherwise happen late, in some job (or,
    worse, give a verdict from an ablation that did nothing); the message names the key,
    the value and what is allowed.
    """
    _check_training(config["training"])
    _check_networks(config["networks"])
    _check_dataset(config["dataset"])
    configured_dataset(config)  # the dataset's name, folder and shape
    _check_architectures(config)
    _check_tuning(config)
    _check_layer_names(config)
    _check_ablation(config)
    _check_sizes(config)
    _check_invariance(config)
    _check_causal_networks(config)
    _check_regularisation(config)
    _check_external_networks(config)
    vgg = config["vgg16"]
    if vgg["enabled"]:
        _check_layers(config, "vgg16.ablation_layers", vgg["ablation_layers"], ["vgg16_imagenet"])
        _check_layers(config, "vgg16.measured_layers", vgg["measured_layers"], ["vgg16_imagenet"])


#: Names a user network or architecture cannot take: they already name models or figure folders.
RESERVED_NETWORK_NAMES = ("vgg16_imagenet", "architectures")


def _check_architectures(config: Mapping[str, Any]) -> None:
    """Every model of networks.models is built in or an entry of ``architectures``; each entry used is
    consistent and passes the controller's probe (its layers analysable, its head the dataset's)."""
    defined = user_architectures(config)
    for index, model in enumerate(config["networks"]["models"]):
        if trainable_layer_units(model) is None and model not in defined:
            raise ConfigError(
                f"networks.models[{index}]: {model!r} is neither a built-in model (cnn7, cnn11, resnet20, vgg8bn) "
                f"nor an entry of {ARCHITECTURES_SECTION} ({sorted(defined) or 'none defined'})"
            )
    for name, architecture in defined.items():
        key = architecture.key
        if trainable_layer_units(name) is not None or name in RESERVED_NETWORK_NAMES:
            raise ConfigError(
                f"{key}: {name!r} is the name of a built-in model or folder; choose another name"
            )
        if name in config["external_networks"]:
            raise ConfigError(
                f"{key}: {name!r} also names an entry of external_networks; give the trained architecture and "
                "the given network different names (they name folders and table rows)"
            )
        for role in ("lower_layers", "higher_layers"):
            unknown = [layer for layer in getattr(architecture, role) if layer not in architecture.layers]
            if unknown:
                raise ConfigError(
                    f"{key}.{role}: {unknown} are not in {key}.layers {list(architecture.layers)}"
                )
        if architecture.class_argument and architecture.class_argument in architecture.arguments:
            raise ConfigError(
                f"{key}.arguments: {architecture.class_argument!r} is set, but the workflow passes the dataset's "
                f"number of classes as {architecture.class_argument!r} (class_argument); remove it from arguments"
            )
    for name in used_architectures(config):
        architecture_probe(config, name)


def architecture_grouping(config: Mapping[str, Any], model: str) -> tuple[bool, str]:
    """Whether networks of ``model`` can train stacked in one job, and how or why not."""
    model = architecture_of(model)
    if not is_user_architecture(config, model):
        return True, "stacked (selectivity.networks.grouped)"
    probe = architecture_probe(config, model)
    return probe.groupable, probe.grouping


def architecture_record_of(config: Mapping[str, Any], model: str) -> dict[str, Any] | None:
    """What rebuilds a network of a user architecture (a training param, kept in its checkpoints);
    None for a built-in model."""
    from selectivity.networks.user_architectures import architecture_record

    model = architecture_of(model)
    if not is_user_architecture(config, model):
        return None
    return architecture_record(
        user_architectures(config)[model], architecture_probe(config, model).source_digest
    )


def _check_external_networks(config: Mapping[str, Any]) -> None:
    image_size = configured_dataset(config).image_size
    for name, entry in config["external_networks"].items():
        key = f"external_networks.{name}"
        if trainable_layer_units(name) is not None or name in RESERVED_NETWORK_NAMES:
            raise ConfigError(
                f"{key}: {name!r} is the name of a built-in model or folder; choose another name"
            )
        for role in ("lower_layers", "higher_layers", "ablation_layers"):
            unknown = [layer for layer in entry.get(role, []) if layer not in entry["layers"]]
            if unknown:
                raise ConfigError(f"{key}.{role}: {unknown} are not in {key}.layers {entry['layers']}")
        if entry["test_images"] == "dataset" and entry["input_size"] != image_size:
            raise ConfigError(
                f"{key}.input_size: {entry['input_size']}, but test_images: dataset gives the "
                f"{image_size}-px images of {config['dataset']['name']}; use test_images: none (tuning only), "
                f"an image folder, or a {image_size}-px network"
            )
        weights = [entry["weights"]] if isinstance(entry["weights"], str) else list(entry["weights"])
        for index, path in enumerate(weights):
            if not Path(path).is_file():
                where = f"{key}.weights" + ("" if isinstance(entry["weights"], str) else f"[{index}]")
                raise ConfigError(
                    f"{where}: {path!r} is not a file (paths are relative to the working directory)"
                )
        if isinstance(entry["test_images"], Mapping) and not Path(entry["test_images"]["folder"]).is_dir():
            raise ConfigError(
                f"{key}.test_images.folder: {entry['test_images']['folder']!r} is not a folder "
                "(class subfolders of images; paths are relative to the working directory)"
            )
        requested, allowed = config["tuning"]["spatial_frequencies"], max_spatial_frequencies(
            entry["input_size"]
        )
        if requested is not None and requested > allowed:
            raise ConfigError(
                f"tuning.spatial_frequencies: {requested} exceed the Nyquist limit of {key}'s "
                f"{entry['input_size']}-px inputs; use at most {allowed}"
            )


def external_layer_roles(entry: Mapping[str, Any]) -> LayerRoles:
    """A user network's ablated (lower) and measured (higher) layers; default its first and last layer."""
    layers = list(entry["layers"])
    return LayerRoles(
        lower=tuple(entry.get("lower_layers") or layers[:1]),
        higher=tuple(entry.get("higher_layers") or layers[-1:]),
    )


def _check_causal_networks(config: Mapping[str, Any]) -> None:
    levels = config["causal"].get("label_corruption", "clean")
    if levels in ("all", "clean"):
        return
    trained = [float(level) for level in config["networks"]["label_corruption"]]
    for index, level in enumerate(levels):
        if not any(math.isclose(float(level), other) for other in trained):
            raise ConfigError(
                f"causal.label_corruption[{index}]: {level!r} is not a trained level; "
                f"networks.label_corruption is {trained}"
            )


def _check_training(training: Mapping[str, Any]) -> None:
    late = [e for e in training["checkpoint_epochs"] if e > training["epochs"]]
    if late:
        raise ConfigError(
            f"training.checkpoint_epochs: {late} lie beyond the last epoch "
            f"(training.epochs = {training['epochs']}); allowed are 0..{training['epochs']}"
        )


def _check_networks(networks_section: Mapping[str, Any]) -> None:
    labels: dict[str, float] = {}
    for fraction in networks_section["label_corruption"]:
        if abs(round(fraction * 100) - fraction * 100) > 1e-9:
            raise ConfigError(
                f"networks.label_corruption: {fraction} has more than two decimals; "
                "use values like 0.25 (they name output folders, e.g. corruption0.25)"
            )
        label = corruption_label(fraction)
        if label in labels:
            raise ConfigError(
                f"networks.label_corruption: {labels[label]} and {fraction} both name the folder "
                f"corruption{label}; list each level once"
            )
        labels[label] = fraction


@dataclass(frozen=True)
class DatasetSizes:
    """Images of a dataset known before any job runs, and where the numbers come from."""

    train: int
    test: int
    source: str


def npz_array_lengths(path: str | Path, keys) -> dict[str, int]:
    """The first dimension of each ``keys`` array of an ``.npz``, read from the array headers only.

    Opening an archive member decompresses only its first block, so this costs milliseconds
    whatever the file's size. Raises ``OSError``/``ValueError``/``KeyError`` on a file that
    is not such an archive.
    """
    lengths = {}
    with zipfile.ZipFile(path) as archive:
        for key in keys:
            with archive.open(f"{key}.npy") as member:
                version = np.lib.format.read_magic(member)
                if version == (1, 0):
                    shape, _, _ = np.lib.format.read_array_header_1_0(member)
                else:
                    shape, _, _ = np.lib.format.read_array_header_2_0(member)
            lengths[key] = int(shape[0]) if shape else 0
    return lengths


def dataset_sizes(dataset: Mapping[str, Any]) -> DatasetSizes | None:
    """Training images (before the validation split) and test images of the configured dataset.

    Synthetic: its configured sizes; CIFAR-10 downloaded or from the official files: 50,000
    and 10,000; a local ``.npz``: the lengths of its ``y_train`` and ``y_test`` arrays, read
    from the file's headers. None for a local ``.npz`` that cannot be read (the data rule
    reports that file with its own message). Other datasets: their published sizes, or the
    images of an image folder's train/ and test/ folders.
    """
    if dataset["name"] == "synthetic":
        synthetic = dataset["synthetic"]
        return DatasetSizes(synthetic["train_size"], synthetic["test_size"], "dataset.synthetic")
    if dataset["name"] != CIFAR10:
        try:
            shape = dataset_shape(dataset)
        except DatasetConfigError as error:
            raise ConfigError(str(error)) from None
        return DatasetSizes(shape.train_images, shape.test_images, shape.source)
    path = dataset["local_path"]
    if dataset["source"] == "local" and path and Path(path).suffix == ".npz":
        try:
            lengths = npz_array_lengths(path, ("y_train", "y_test"))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile):
            return None
        return DatasetSizes(lengths["y_train"], lengths["y_test"], f"the local copy {path}")
    return DatasetSizes(CIFAR10_TRAIN_IMAGES, CIFAR10_TEST_IMAGES, "CIFAR-10")


def _check_sizes(config: Mapping[str, Any]) -> None:
    """Settings that need more images than the dataset has, or fractions out of order."""
    causal, dataset = config["causal"], config["dataset"]
    fractions = causal["ablation"]["cumulative_fractions"]
    if any(later <= earlier for earlier, later in zip(fractions, fractions[1:])):
        raise ConfigError(
            f"causal.ablation.cumulative_fractions: {fractions} is not in strictly increasing order; "
            f"list each fraction once, from 0 to 1 (e.g. {sorted(set(fractions))})"
        )
    sizes = dataset_sizes(dataset)
    if sizes is None:
        return
    for key, count in (
        ("causal.test_images", causal["test_images"]),
        ("causal.invariance.test_images", causal["invariance"]["test_images"]),
    ):
        if count is not None and count > sizes.test:
            raise ConfigError(
                f"{key}: {count} test images, but the test set of {sizes.source} has {sizes.test}; "
                f"use at most {sizes.test}, or null for the whole test set"
            )
    train_split = sizes.train - dataset["validation_size"]
    if train_split < 1:
        raise ConfigError(
            f"dataset.validation_size: {dataset['validation_size']} must be smaller than the "
            f"{sizes.train} training images of {sizes.source}"
        )
    batch_size = config["training"]["batch_size"]
    if batch_size > train_split:
        raise ConfigError(
            f"training.batch_size: {batch_size} is larger than the training split of {train_split} images "
            f"({sizes.train} training images of {sizes.source} minus dataset.validation_size "
            f"{dataset['validation_size']}); use at most {train_split}"
        )


def _check_dataset(dataset: Mapping[str, Any]) -> None:
    try:
        check_dataset_name(dataset)
    except DatasetConfigError as error:
        raise ConfigError(str(error)) from None
    kind = dataset_kind(dataset)
    if dataset["name"] == "cifar10" and dataset["source"] == "local" and not dataset["local_path"]:
        raise ConfigError(
            "dataset.local_path: null, but dataset.source is 'local'; give the path of a "
            "cifar-10-batches-py folder, cifar-10-python.tar.gz or .npz, or use source: download"
        )
    if kind == "torchvision" and dataset["source"] == "local" and not dataset["local_path"]:
        raise ConfigError(
            f"dataset.local_path: null, but dataset.source is 'local'; give the folder torchvision "
            f"downloads {dataset['name']} into (or the dataset's own folder in it), or use source: download"
        )
    if dataset["name"] == "synthetic":
        train_size = dataset["synthetic"]["train_size"]
        if dataset["validation_size"] >= train_size:
            raise ConfigError(
                f"dataset.validation_size: {dataset['validation_size']} must be smaller than "
                f"dataset.synthetic.train_size ({train_size})"
            )


def _check_tuning(config: Mapping[str, Any]) -> None:
    tuning = config["tuning"]
    if tuning["orientations"] % 2:
        raise ConfigError(
            f"tuning.orientations: {tuning['orientations']} is odd; the OSI compares each unit's preferred "
            "orientation with the one 90 degrees away, which needs an even number of orientations"
        )
    thresholds = {feature: tuning[key] for feature, key in THRESHOLD_SETTINGS.items()}
    try:  # the same check TuningSettings makes, so the job could not fail on it later
        check_feature_settings(
            tuning["features"], tuning["phases"], tuning["spatial_frequencies"], thresholds
        )
    except ValueError as error:
        raise ConfigError(f"tuning.{error}") from None
    requested = tuning["spatial_frequencies"]
    if requested is None:
        return
    for model in _analysed_models(config):
        size = model_input_size(config, model)
        allowed = max_spatial_frequencies(size)
        if requested > allowed:
            raise ConfigError(
                f"tuning.spatial_frequencies: {requested} spatial frequencies exceed the Nyquist limit of "
                f"{size}-px inputs ({model}): the highest would have a period of at most 2 px; use at most {allowed}"
            )


def _check_layer_names(config: Mapping[str, Any]) -> None:
    models = list(config["networks"]["models"])
    if config["causal"]["ablation"]["layers"] != "all":
        _check_layers(config, "causal.ablation.layers", config["causal"]["ablation"]["layers"], models)
    for key in LAYER_ROLE_KEYS:
        section, name, _ = LAYER_ROLE_KEYS[key]
        value = _section(config, section)[name]
        if isinstance(value, Mapping):
            strangers = sorted(set(value) - set(models))
            if strangers:
                raise ConfigError(f"{key}: {strangers} are not in networks.models {models}")
        for model in models:
            _check_layers(config, key, configured_layers(config, key, model), [model])


def _check_ablation(config: Mapping[str, Any]) -> None:
    """Every ablated layer loses at least one unit and keeps at least one."""
    causal = config["causal"]
    fraction = causal["ablation"]["fraction"]
    for model in config["networks"]["models"]:
        units = layer_units(config, model)
        ablated_layers = set(ablation_layers(config, model)) | set(invariance_layers(config, model)[0])
        for layer in sorted(ablated_layers, key=list(units).index):
            count = units_to_ablate(fraction, units[layer])
            if not 0 < count < units[layer]:
                raise ConfigError(
                    f"causal.ablation.fraction: {fraction} ablates {count} of the {units[layer]} units of "
                    f"{model} {layer}; the top/bottom/random comparison needs at least one unit ablated "
                    "and one kept"
                )
    fractions = causal["ablation"]["cumulative_fractions"]
    if 0 not in fractions or 1 not in fractions:
        raise ConfigError(
            f"causal.ablation.cumulative_fractions: {fractions} must include 0 and 1 "
            "(the areas under the curves span the whole range)"
        )
    for key, count in (
        ("causal.test_images", causal["test_images"]),
        ("causal.invariance.test_images", causal["invariance"]["test_images"]),
    ):
        classes = configured_dataset(config).num_classes
        if count is not None and count < classes:
            raise ConfigError(
                f"{key}: {count} test images cannot contain all {classes} classes of {config['dataset']['name']} "
                f"(class selectivity needs every class); use at least {classes}, or null for the whole test set"
            )


def _check_invariance(config: Mapping[str, Any]) -> None:
    shifts = config["causal"]["invariance"]["shifts"]
    for model in config["networks"]["models"]:
        order = layer_names(config, model)
        ablated, measured = invariance_layers(config, model)
        deepest_ablated = max(order.index(layer) for layer in ablated)
        shallow = [layer for layer in measured if order.index(layer) <= deepest_ablated]
        if shallow:
            raise ConfigError(
                f"causal.invariance.measured_layers: {shallow} are not deeper than the ablated layers "
                f"{ablated} in {model}; an ablation cannot change them"
            )
        size = model_input_size(config, model)
        too_large = [shift for shift in shifts if shift >= size // 2]
        if too_large:
            raise ConfigError(
                f"causal.invariance.shifts: {too_large} px are not smaller than half the {size}-px image "
                f"({model}); a shifted image would be mostly edge fill. Use shifts below {size // 2}"
            )


def _analysed_models(config: Mapping[str, Any]) -> list[str]:
    models = list(config["networks"]["models"])
    return models + (["vgg16_imagenet"] if config["vgg16"]["enabled"] else [])


@dataclass(frozen=True)
class Network:
    """One trained network of the config."""

    model: str
    dataset: str
    label_corruption: float
    seed: int

    @property
    def path(self) -> str:
        return (
            f"{self.model}/{self.dataset}/corruption{corruption_label(self.label_corruption)}/seed{self.seed}"
        )


@dataclass(frozen=True)
class TrainingGroup:
    """Networks trained together in one job (``training.group_size``), named by its members."""

    model: str
    dataset: str
    label_corruption: float
    networks: tuple[Network, ...]

    @property
    def name(self) -> str:
        """What the job trains, e.g. ``cnn7_synthetic_c0p50_s0_1_2``: never a position in a list.

        A regularised variant's name is spelt with rule-name characters only:
        ``cnn7+orientation-0.5`` -> ``cnn7_orientation_m0p5``, ``+2`` -> ``p2``.
        """
        corruption = corruption_label(self.label_corruption).replace(".", "p")
        seeds = "_".join(str(n.seed) for n in self.networks)
        return f"{rule_name_of_model(self.model)}_{self.dataset}_c{corruption}_s{seeds}"


def rule_name_of_model(model: str) -> str:
    """A model name in rule-name characters (a regularised variant's "+", "-" and "." spelt out)."""
    if not is_regularised(model):
        return model
    architecture, _, rest = model.partition("+")
    sign = "m" if "-" in rest else "p"
    feature, coefficient = re.split(r"[+-]", rest, maxsplit=1)
    return f"{architecture}_{feature}_{sign}{coefficient.replace('.', 'p')}"


def _levels_of(config: Mapping[str, Any], levels) -> list[float]:
    """Label-corruption levels named as "clean", "all" or a list (of networks.label_corruption)."""
    trained = sorted(float(level) for level in config["networks"]["label_corruption"])
    if levels == "all":
        return trained
    if levels == "clean":
        return [level for level in trained if level == 0.0]
    return [level for level in trained if any(math.isclose(level, float(other)) for other in levels)]


def plain_networks(config: Mapping[str, Any]) -> list[Network]:
    """The networks of networks.models x label corruption x seeds (no regularised variants)."""
    return [
        Network(model, config["dataset"]["name"], float(fraction), int(seed))
        for model in config["networks"]["models"]
        for fraction in sorted(config["networks"]["label_corruption"])
        for seed in sorted(config["networks"]["seeds"])
    ]


def networks(config: Mapping[str, Any]) -> list[Network]:
    """Every network of the config, ordered by model, label corruption, seed; each model's regularised
    variants (training.selectivity_regularisation, docs/method.md §2.10) follow it, in coefficient order."""
    levels = _levels_of(config, regularisation_section(config)["label_corruption"])
    result = []
    for model in config["networks"]["models"]:
        plain = [network for network in plain_networks(config) if network.model == model]
        result += plain
        for variant in regularised_models(config, model):
            result += [
                dataclasses.replace(network, model=variant)
                for network in plain
                if any(math.isclose(network.label_corruption, level) for level in levels)
            ]
    return result


def causal_networks(config: Mapping[str, Any]) -> list[Network]:
    """The networks that get the causal tests (``causal.label_corruption``: "clean", "all" or levels).

    Regularised variants get none: claim C7 needs their tuning and metrics only (docs/method.md §2.10).
    """
    levels = _levels_of(config, config["causal"].get("label_corruption", "clean"))
    return [
        n for n in plain_networks(config) if any(math.isclose(n.label_corruption, level) for level in levels)
    ]


# ------------------------------------------------------------------ selectivity regularisation


def regularisation_section(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """``training.selectivity_regularisation`` with its defaults (off)."""
    defaults = {
        "coefficients": [],
        "feature": "orientation",
        "layers": "default",
        "every_steps": 1,
        "label_corruption": "clean",
    }
    return {**defaults, **(config["training"].get(REGULARISATION_SECTION) or {})}


def regularisation_coefficients(config: Mapping[str, Any]) -> list[float]:
    """The non-zero coefficients, sorted (0 is the unregularised model itself)."""
    return sorted({float(c) for c in regularisation_section(config)["coefficients"] if float(c) != 0.0})


def regularised_models(config: Mapping[str, Any], model: str) -> list[str]:
    """The regularised variants of ``model`` (one per non-zero coefficient; none when off)."""
    feature = regularisation_section(config)["feature"]
    return [regularised_model_name(model, feature, c) for c in regularisation_coefficients(config)]


def regularisation_layers(config: Mapping[str, Any], model: str) -> list[str]:
    """The layers whose mean index the regulariser of ``model`` averages ("default": its claims' lower layers)."""
    value = regularisation_section(config)["layers"]
    model = architecture_of(model)
    if isinstance(value, Mapping):
        value = value.get(model, "default")
    if value == "default":
        return configured_layers(config, "claims.lower_layers", model)
    return list(value)


def regularisation_settings(config: Mapping[str, Any], model: str) -> RegularisationSettings | None:
    """How the networks of ``model`` are regularised (a param of their training jobs); None for a
    model that is not a regularised variant."""
    from selectivity.tuning.stimuli import spatial_frequency_count

    if not is_regularised(model):
        return None
    section, tuning = regularisation_section(config), config["tuning"]
    return RegularisationSettings(
        feature=section["feature"],
        layers=tuple(regularisation_layers(config, model)),
        every_steps=int(section["every_steps"]),
        orientations=int(tuning["orientations"]),
        phases=int(tuning["phases"]),
        spatial_frequencies=int(
            tuning["spatial_frequencies"] or spatial_frequency_count(model_input_size(config, model))
        ),
    )


def regularisation_study(config: Mapping[str, Any]) -> RegularisationStudy | None:
    """What claim C7 and the regularisation figures need; None when the regulariser is off."""
    coefficients = regularisation_coefficients(config)
    if not coefficients:
        return None
    models = list(config["networks"]["models"])
    return RegularisationStudy(
        feature=regularisation_section(config)["feature"],
        coefficients=tuple(coefficients),
        layers={model: tuple(regularisation_layers(config, model)) for model in models},
        models={model: tuple(regularised_models(config, model)) for model in models},
    )


def _check_regularisation(config: Mapping[str, Any]) -> None:
    """The regulariser's settings fit the run: finite coefficients, a regularisable and measured
    feature, existing layers, trained label-corruption levels, unique network and job names."""
    section = regularisation_section(config)
    for index, coefficient in enumerate(section["coefficients"]):
        if not math.isfinite(float(coefficient)):
            raise ConfigError(
                f"{REGULARISATION_KEY}.coefficients[{index}]: {coefficient!r} is not a finite number"
            )
    if not regularisation_coefficients(config):
        return
    try:
        check_regularisable(section["feature"], config["tuning"]["features"])
    except ValueError as error:
        raise ConfigError(str(error)) from None
    value = section["layers"]
    models = list(config["networks"]["models"])
    if isinstance(value, Mapping):
        strangers = sorted(set(value) - set(models))
        if strangers:
            raise ConfigError(f"{REGULARISATION_KEY}.layers: {strangers} are not in networks.models {models}")
    for model in models:
        layers = regularisation_layers(config, model)
        _check_layers(config, f"{REGULARISATION_KEY}.layers", layers, [model])
        if not layers or len(set(layers)) != len(layers):
            raise ConfigError(
                f"{REGULARISATION_KEY}.layers: {layers} for {model} must name layers, each once"
            )
    levels = section["label_corruption"]
    if levels not in ("all", "clean"):
        trained = [float(level) for level in config["networks"]["label_corruption"]]
        for index, level in enumerate(levels):
            if not any(math.isclose(float(level), other) for other in trained):
                raise ConfigError(
                    f"{REGULARISATION_KEY}.label_corruption[{index}]: {level!r} is not a trained level; "
                    f"networks.label_corruption is {trained}"
                )
    if not _levels_of(config, levels):
        raise ConfigError(
            f"{REGULARISATION_KEY}.label_corruption: {levels!r} selects no trained level (networks.label_corruption "
            f"is {config['networks']['label_corruption']}); add 0 to it or list trained levels"
        )
    names = [
        rule_name_of_model(model) for base in models for model in [base, *regularised_models(config, base)]
    ]
    clashing = sorted({name for name in names if names.count(name) > 1})
    if clashing:
        raise ConfigError(
            f"{REGULARISATION_KEY}.coefficients: the training jobs of {clashing} would share a name with another "
            "model's; rename the architecture"
        )


def training_groups(config: Mapping[str, Any]) -> list[TrainingGroup]:
    """The training jobs: networks of one model and corruption level in blocks of seed values.

    With ``group_size`` K, seeds 0..K-1 form one group, K..2K-1 the next, and so on
    (``seed // K``), per model and label-corruption level; a user architecture that cannot be
    stacked (:func:`architecture_grouping`) trains one network per job. A group therefore depends only
    on its own members: adding or dropping a seed changes only the group of that seed,
    and adding a corruption level adds only that level's groups.
    """
    blocks: dict[tuple, list[Network]] = {}
    for network in networks(config):
        size = config["training"]["group_size"] if architecture_grouping(config, network.model)[0] else 1
        key = (network.model, network.dataset, network.label_corruption, network.seed // size)
        blocks.setdefault(key, []).append(network)
    return [
        TrainingGroup(model, dataset, corruption, tuple(members))
        for (model, dataset, corruption, _), members in blocks.items()
    ]
