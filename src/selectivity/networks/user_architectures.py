"""Users' own architectures, trained by the workflow like the built-in models (torch-free).

A config names an architecture in ``networks.models`` by a key of its ``architectures``
section, which describes it as ``external_networks`` describes a network (docs/method.md §1.8)::

    architectures:
      my_cnn:
        constructor: my_models:small_cnn     # package.module:function, or a torchvision model name
        arguments: {width: 16}                # keyword arguments of the constructor
        class_argument: num_classes           # keyword that receives the dataset's number of classes
        layers: [features.0, features.3, classifier.1]   # module names, in the order they run
        lower_layers: [features.0]
        higher_layers: [classifier.1]
    networks:
      models: [cnn7, my_cnn]

Every network of it is trained with the built-in models' protocol, seeds, label corruption,
checkpoints and reruns, and analysed through forward hooks on ``layers``
(:class:`selectivity.networks.hooked.HookedNetwork`). What rebuilds the network (constructor,
arguments, class argument, layers and a digest of the constructor's source file) is a param of
its training jobs and is stored in each checkpoint (:func:`architecture_record`).

The checks that need the module itself (layers that exist, run once per pass and lie on every
path to the output; logits of the dataset's classes; whether K networks can be stacked for
grouped training) run once in the controller, before any job
(:func:`selectivity.networks.user_models.probe_architecture`); torch is imported for them only
when a config uses an architecture of its own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

#: The config section of users' architectures.
SECTION = "architectures"
#: The keyword that gets the dataset's number of classes unless ``class_argument`` says otherwise.
DEFAULT_CLASS_ARGUMENT = "num_classes"


@dataclass(frozen=True)
class UserArchitecture:
    """One entry of the ``architectures`` section (see the schema for each key)."""

    name: str
    constructor: str
    layers: tuple[str, ...]
    lower_layers: tuple[str, ...]
    higher_layers: tuple[str, ...]
    arguments: Mapping[str, Any] = field(default_factory=dict)
    class_argument: str | None = DEFAULT_CLASS_ARGUMENT

    @classmethod
    def from_config(cls, name: str, entry: Mapping[str, Any]) -> "UserArchitecture":
        return cls(
            name=name,
            constructor=str(entry["constructor"]),
            layers=tuple(entry["layers"]),
            lower_layers=tuple(entry["lower_layers"]),
            higher_layers=tuple(entry["higher_layers"]),
            arguments=dict(entry.get("arguments") or {}),
            class_argument=entry.get("class_argument", DEFAULT_CLASS_ARGUMENT),
        )

    @property
    def key(self) -> str:
        """The config key of this architecture, for messages."""
        return f"{SECTION}.{self.name}"

    def constructor_arguments(self, num_classes: int) -> dict[str, Any]:
        """The constructor's keyword arguments for a dataset of ``num_classes`` classes."""
        arguments = dict(self.arguments)
        if self.class_argument:
            arguments[self.class_argument] = int(num_classes)
        return arguments


def user_architectures(config: Mapping[str, Any]) -> dict[str, UserArchitecture]:
    """Every entry of the config's ``architectures`` section, name -> architecture."""
    return {
        name: UserArchitecture.from_config(name, entry) for name, entry in (config.get(SECTION) or {}).items()
    }


def used_architectures(config: Mapping[str, Any]) -> dict[str, UserArchitecture]:
    """The user architectures that ``networks.models`` names (the ones trained and checked)."""
    defined = user_architectures(config)
    return {model: defined[model] for model in config["networks"]["models"] if model in defined}


def is_user_architecture(config: Mapping[str, Any], model: str) -> bool:
    return model in (config.get(SECTION) or {})


def architecture_record(architecture: UserArchitecture, source_digest: str) -> dict[str, Any]:
    """What rebuilds a network of the architecture: a param of its training jobs, kept in its
    checkpoints (``selectivity-checkpoint/2``'s ``architecture`` entry).

    ``source_digest`` is the digest of the file that defines the constructor, so editing the
    architecture's code retrains its networks like changing an argument does.
    """
    return {
        "constructor": architecture.constructor,
        "arguments": dict(architecture.arguments),
        "class_argument": architecture.class_argument,
        "layers": list(architecture.layers),
        "source_digest": source_digest,
    }
