"""Config checks the JSON schema cannot express, and what the workflow derives from a config.

The workflow validates ``config.yaml`` against ``workflow/schemas/config.schema.yaml``
(types, ranges, unknown keys) and then calls :func:`check_config` for the rules that
relate several keys. Both run before any job, so a bad value never costs a finished result.
Everything here is plain Python on the config dict, so it is unit-tested without Snakemake.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from selectivity.architectures import CONV_NET_SPECS, DEFAULT_LAYER_ROLES, VGG16_LAYERS, LayerRoles


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


def validate_config(config: Mapping[str, Any], schema_path: str | Path) -> None:
    """Check a config against the JSON schema; every problem is reported by key and value.

    Snakemake's own ``validate`` (which also fills in the defaults) runs after this; this
    pass exists to say *which key* is wrong in one line instead of dumping the schema.
    """
    import jsonschema
    import yaml

    schema = yaml.safe_load(Path(schema_path).read_text())
    validator = jsonschema.Draft202012Validator(schema)
    errors = sorted(validator.iter_errors(dict(config)), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        raise ConfigError("; ".join(_describe(error) for error in errors))


def corruption_label(fraction: float) -> str:
    """How a label-corruption fraction appears in paths: two decimals (0.2 -> "0.20")."""
    return f"{fraction:.2f}"


def model_layer_names(model: str) -> list[str]:
    if model in CONV_NET_SPECS:
        return CONV_NET_SPECS[model].layer_names()
    if model == "vgg16_imagenet":
        return list(VGG16_LAYERS)
    raise ConfigError(f"unknown model {model!r}")


def saved_epochs(training: Mapping[str, Any]) -> list[int]:
    """Checkpoint epochs of a network: the configured ones plus the last epoch."""
    return sorted(set(training["checkpoint_epochs"]) | {training["epochs"]})


# Config keys that name lower/higher layers: each takes "default" (the architecture's
# layers, selectivity.architectures.DEFAULT_LAYER_ROLES), a list (every model), or a
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
    if isinstance(value, Mapping):
        value = value.get(model, "default")
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
    return model_layer_names(model) if layers == "all" else list(layers)


def _check_layers(key: str, layers: list[str], models: list[str]) -> None:
    for model in models:
        known = model_layer_names(model)
        unknown = [layer for layer in layers if layer not in known]
        if unknown:
            raise ConfigError(f"{key}: {unknown} are not layers of {model}; its layers are {known}")


def check_config(config: Mapping[str, Any]) -> None:
    """Raise :class:`ConfigError` for cross-key problems of a schema-valid config."""
    training = config["training"]
    late = [e for e in training["checkpoint_epochs"] if e > training["epochs"]]
    if late:
        raise ConfigError(
            f"training.checkpoint_epochs: {late} lie beyond the last epoch "
            f"(training.epochs = {training['epochs']}); allowed are 0..{training['epochs']}"
        )
    for fraction in config["networks"]["label_corruption"]:
        if abs(round(fraction * 100) - fraction * 100) > 1e-9:
            raise ConfigError(
                f"networks.label_corruption: {fraction} has more than two decimals; "
                "use values like 0.25 (they name output folders, e.g. corruption0.25)"
            )
    dataset = config["dataset"]
    if dataset["name"] == "cifar10" and dataset["source"] == "local" and not dataset["local_path"]:
        raise ConfigError(
            "dataset.local_path: null, but dataset.source is 'local'; give the path of a "
            "cifar-10-batches-py folder, cifar-10-python.tar.gz or .npz, or use source: download"
        )
    if dataset["name"] == "synthetic":
        train_size = dataset["synthetic"]["train_size"]
        if dataset["validation_size"] >= train_size:
            raise ConfigError(
                f"dataset.validation_size: {dataset['validation_size']} must be smaller than "
                f"dataset.synthetic.train_size ({train_size})"
            )
    models = list(config["networks"]["models"])
    if config["causal"]["ablation"]["layers"] != "all":
        _check_layers("causal.ablation.layers", config["causal"]["ablation"]["layers"], models)
    for key in LAYER_ROLE_KEYS:
        section, name, _ = LAYER_ROLE_KEYS[key]
        value = _section(config, section)[name]
        if isinstance(value, Mapping):
            strangers = sorted(set(value) - set(models))
            if strangers:
                raise ConfigError(f"{key}: {strangers} are not in networks.models {models}")
        for model in models:
            _check_layers(key, configured_layers(config, key, model), [model])
    for model in models:
        order = model_layer_names(model)
        ablated, measured = invariance_layers(config, model)
        deepest_ablated = max(order.index(layer) for layer in ablated)
        shallow = [layer for layer in measured if order.index(layer) <= deepest_ablated]
        if shallow:
            raise ConfigError(
                f"causal.invariance.measured_layers: {shallow} are not deeper than the ablated layers "
                f"{ablated} in {model}; an ablation cannot change them"
            )
    fractions = config["causal"]["ablation"]["cumulative_fractions"]
    if 0 not in fractions or 1 not in fractions:
        raise ConfigError(
            f"causal.ablation.cumulative_fractions: {fractions} must include 0 and 1 "
            "(the areas under the curves span the whole range)"
        )
    vgg = config["vgg16"]
    if vgg["enabled"]:
        _check_layers("vgg16.ablation_layers", vgg["ablation_layers"], ["vgg16_imagenet"])
        _check_layers("vgg16.measured_layers", vgg["measured_layers"], ["vgg16_imagenet"])


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
    """Networks trained together in one job (``training.group_size``)."""

    name: str
    model: str
    networks: tuple[Network, ...]


def networks(config: Mapping[str, Any]) -> list[Network]:
    """Every network of the config, ordered by model, label corruption, seed."""
    return [
        Network(model, config["dataset"]["name"], float(fraction), int(seed))
        for model in config["networks"]["models"]
        for fraction in sorted(config["networks"]["label_corruption"])
        for seed in sorted(config["networks"]["seeds"])
    ]


def training_groups(config: Mapping[str, Any]) -> list[TrainingGroup]:
    """Split each model's networks into consecutive groups of ``training.group_size``.

    Groups are chunks of the (label corruption, seed)-ordered list, so with group_size =
    number of seeds a group is all seeds of one corruption level.
    """
    size = config["training"]["group_size"]
    groups = []
    for model in config["networks"]["models"]:
        members = [n for n in networks(config) if n.model == model]
        for index, start in enumerate(range(0, len(members), size)):
            chunk = tuple(members[start : start + size])
            groups.append(TrainingGroup(f"{model}_{chunk[0].dataset}_size{size}_group{index}", model, chunk))
    return groups
