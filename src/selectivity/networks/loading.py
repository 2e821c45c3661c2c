"""One function loads any network for the analyses, and names it in their tables.

The analyses never ask where a network comes from: :func:`load_network` takes the network's
description (:attr:`selectivity.networks.catalogue.AnalysedNetwork.description`, a rule param)
and its weights file, and returns a :class:`~selectivity.networks.loaded.LoadedNetwork` plus the
identifier columns of the tables made from it:

* a trained network: a checkpoint of this workflow (self-describing: architecture, input mean,
  epoch; :func:`selectivity.networks.checkpoints.load_checkpoint`);
* the built-in published VGG16 (:mod:`selectivity.networks.published`), staged so that ablation
  sweeps reuse the upstream layers;
* any other given network: a user's ``nn.Module`` (a torchvision name or an importable
  constructor) with a state-dict file, read and ablated through forward hooks
  (:mod:`selectivity.networks.hooked`); and its ``untrained`` checkpoint, the constructor's own
  random initialisation seeded by the weights file's position (claim C1's comparison);
* a trained network of a user's own architecture: its checkpoint names the constructor and the
  layers, and loads into the same hooked wrapper (:func:`selectivity.networks.checkpoints.load_checkpoint`).
"""

from __future__ import annotations

import os
from typing import Any, Mapping

import torch

from selectivity.networks.catalogue import GIVEN_CHECKPOINT, UNTRAINED_CHECKPOINT, VGG16_CONSTRUCTOR
from selectivity.networks.loaded import LoadedNetwork

#: The ``checkpoint`` column of a given network's tables (``epoch`` is empty).
GIVEN_CHECKPOINT_COLUMN = "published"
#: The ``checkpoint`` column of a given network's untrained comparison (``epoch`` 0).
UNTRAINED_CHECKPOINT_COLUMN = "untrained"


def load_network(
    description: Mapping[str, Any],
    weights: str | os.PathLike | None,
    checkpoint_name: str,
    device: torch.device | str = "cpu",
) -> tuple[LoadedNetwork, dict[str, Any]]:
    """The network ready for analysis (eval mode, on ``device``) and its identifier columns.

    ``weights`` is the checkpoint file of a trained network, the weights file of a given one,
    or None for the built-in VGG16's named weights (``description["weights"]``).
    ``checkpoint_name`` is ``epoch<E>`` or ``best`` for a trained network and
    :data:`~selectivity.networks.catalogue.GIVEN_CHECKPOINT` for a given one.
    """
    origin = description.get("origin")
    if origin == "trained":
        from selectivity.networks.checkpoints import checkpoint_identifiers, load_checkpoint

        if weights is None:
            raise ValueError("a trained network is loaded from its checkpoint file; none was given")
        network = load_checkpoint(weights, device, expected_identity(description, checkpoint_name))
        return network, checkpoint_identifiers(network, checkpoint_name)
    if origin != "given":
        raise ValueError(f"a network's origin is 'trained' or 'given', not {origin!r}")
    if checkpoint_name == UNTRAINED_CHECKPOINT:
        return _load_untrained(description, device), given_identifiers(description, checkpoint_name)
    if checkpoint_name != GIVEN_CHECKPOINT:
        raise ValueError(
            f"a given network's checkpoints are {GIVEN_CHECKPOINT!r} and {UNTRAINED_CHECKPOINT!r}, not {checkpoint_name!r}"
        )
    return _load_given(description, weights, device), given_identifiers(description)


def _load_untrained(description: Mapping[str, Any], device) -> LoadedNetwork:
    """The constructor's own random initialisation, seeded from the weights file's position."""
    from selectivity.networks.hooked import ExternalNetworkSpec, load_external_network
    from selectivity.training.randomness import derive_seed

    if description["constructor"] == VGG16_CONSTRUCTOR:
        raise ValueError("the built-in VGG16 has no untrained checkpoint")
    spec = ExternalNetworkSpec.from_config(description["name"], {**description, "weights": ""})
    return load_external_network(
        spec, device, untrained_seed=derive_seed(int(description["index"]), "initialisation")
    )


def checkpoint_weights(checkpoint_names, files) -> list:
    """Each checkpoint's weights file, in order of ``checkpoint_names``, from a job's weights inputs
    (``files``, in the same order): None for a checkpoint without a file (a given network's
    untrained one, the built-in VGG16's named weights)."""
    files = list(files)
    weights = []
    for name in checkpoint_names:
        weights.append(None if name == UNTRAINED_CHECKPOINT or not files else files.pop(0))
    return weights


def _load_given(description: Mapping[str, Any], weights, device) -> LoadedNetwork:
    if description["constructor"] == VGG16_CONSTRUCTOR:
        from selectivity.networks.published import load_vgg16

        return load_vgg16(weights if weights is not None else description["weights"], device)
    from selectivity.networks.hooked import ExternalNetworkSpec, load_external_network

    if weights is None:
        raise ValueError(f"{description['name']}: a user's network needs a weights file")
    spec = ExternalNetworkSpec.from_config(description["name"], {**description, "weights": str(weights)})
    return load_external_network(spec, device)


def given_identifiers(
    description: Mapping[str, Any], checkpoint_name: str = GIVEN_CHECKPOINT
) -> dict[str, Any]:
    """Identifier columns of a given network's tables.

    ``model`` is the network's name, ``dataset`` its evaluation images' name ("none" without
    any), ``label_corruption`` 0 (nothing corrupted here), ``seed`` the index of its weights
    file (0 for one file), ``checkpoint`` "published" and ``epoch`` empty: no training history.
    Its untrained comparison: ``checkpoint`` "untrained", ``epoch`` 0 (an initialisation).
    """
    untrained = checkpoint_name == UNTRAINED_CHECKPOINT
    return {
        "model": description["name"],
        "dataset": description["dataset"],
        "label_corruption": 0.0,
        "seed": int(description["index"]),
        "checkpoint": UNTRAINED_CHECKPOINT_COLUMN if untrained else GIVEN_CHECKPOINT_COLUMN,
        "epoch": 0 if untrained else None,
    }


def expected_identity(description: Mapping[str, Any], checkpoint_name: str | None = None) -> dict[str, Any]:
    """What the files of a network (and of one of its checkpoints) must say they are.

    A trained network: its model, dataset, label corruption and seed, and with
    ``checkpoint_name`` (``epoch<E>`` or ``best``) the checkpoint kind and epoch (any epoch for
    ``best``); a given network: its identifier columns (:func:`given_identifiers`).
    """
    from selectivity.identity import checkpoint_identity, corruption_label

    if description.get("origin") == "given":
        identity = given_identifiers(
            description, checkpoint_name or GIVEN_CHECKPOINT
        )  # epoch None: not compared
        return (
            identity
            if checkpoint_name is not None
            else {k: identity[k] for k in ("model", "dataset", "seed")}
        )
    network = description["network"]
    path = (
        f"{network['model']}/{network['dataset']}/corruption{corruption_label(network['label_corruption'])}"
        f"/seed{network['seed']}"
    )
    if checkpoint_name is None:
        from selectivity.identity import network_identity

        return network_identity(path)
    return checkpoint_identity(path, checkpoint_name)
