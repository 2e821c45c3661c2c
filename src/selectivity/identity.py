"""Which network and checkpoint a file belongs to: read from its path, compared with its content.

Files between rules live under their network's folder (docs/architecture.md):
``.../{model}/{dataset}/corruption{label_corruption:.2f}/seed{seed}/...``, and per-checkpoint
files are named ``epoch{E}`` or ``best``. A checkpoint or table copied into another network's
folder still says which network it is; :func:`identity_differences` finds where the two disagree.

An identity is a plain dict with any of the keys ``model, dataset, label_corruption, seed``
(the network), ``checkpoint`` (``"epoch"`` or ``"best"``) and ``epoch`` (None: any epoch, as
for ``best``, whose epoch is whatever the file says). Torch-free and pandas-free.

A network trained with the selectivity regulariser (docs/method.md §2.10) is a *regularised
variant* of its architecture, named ``<architecture>+<feature><signed coefficient>`` in the
``model`` field (and so in its folder and every table's ``model`` column), e.g.
``cnn7+orientation-0.5`` or ``cnn7+spatial_frequency+2``. A network without the regulariser
(coefficient 0) keeps its architecture's plain name, so its path and the params of its jobs are
what they always were. :func:`regularised_model_name` builds the name, :func:`model_regularisation`
reads it back, :func:`architecture_of` gives the architecture of any model name.
"""

from __future__ import annotations

import math
import os
import re
from decimal import Decimal
from pathlib import PurePath
from typing import Any, Mapping, NamedTuple

IDENTITY_KEYS = ("model", "dataset", "label_corruption", "seed", "checkpoint", "epoch")
_NETWORK = r"(?P<model>[^/]+)/(?P<dataset>[^/]+)/corruption(?P<label_corruption>\d+\.\d\d)/seed(?P<seed>\d+)"
NETWORK_PATH = re.compile(rf"^{_NETWORK}$")
NETWORK_IN_PATH = re.compile(rf"(?:^|/){_NETWORK}(?:/|$)")
CHECKPOINT_NAME = re.compile(r"^(?:epoch(?P<epoch>\d+)|best)$")


#: A regularised variant's model name (module docstring): architecture names are lower-case words
#: with digits and underscores (the config schema's pattern), so "+" cannot occur in them.
REGULARISED_MODEL = re.compile(
    r"^(?P<architecture>[a-z][a-z0-9_]*)\+(?P<feature>[a-z][a-z_]*)(?P<coefficient>[+-](?:0|[1-9]\d*)(?:\.\d*[1-9])?)$"
)


class Regularisation(NamedTuple):
    """What a regularised variant's name says: its architecture, the feature and the coefficient."""

    architecture: str
    feature: str
    coefficient: float


def coefficient_label(coefficient: float) -> str:
    """A coefficient as it appears in a model name: signed, positional, the shortest digits that
    read back as the same float (-0.5 -> "-0.5", 2 -> "+2", 1e-5 -> "+0.00001")."""
    value = float(coefficient)
    if not math.isfinite(value) or value == 0:
        raise ValueError(f"a regularisation coefficient must be finite and not 0, got {coefficient!r}")
    digits = format(Decimal(repr(abs(value))), "f")
    if "." in digits:
        digits = digits.rstrip("0").rstrip(".")
    return ("-" if value < 0 else "+") + digits


def regularised_model_name(architecture: str, feature: str, coefficient: float) -> str:
    """The model name of ``architecture`` trained with ``coefficient`` x mean ``feature`` index added
    to its loss; coefficient 0 is the architecture itself (its plain name)."""
    if float(coefficient) == 0:
        return architecture
    name = f"{architecture}+{feature}{coefficient_label(coefficient)}"
    if REGULARISED_MODEL.match(name) is None:
        raise ValueError(f"{architecture!r} and {feature!r} do not make a regularised model name ({name!r})")
    return name


def model_regularisation(model: str) -> Regularisation | None:
    """The architecture, feature and coefficient a regularised variant's name says; None for a plain model."""
    match = REGULARISED_MODEL.match(str(model))
    if match is None:
        return None
    return Regularisation(match["architecture"], match["feature"], float(match["coefficient"]))


def architecture_of(model: str) -> str:
    """The architecture of a model name: itself, or a regularised variant's architecture."""
    regularisation = model_regularisation(model)
    return str(model) if regularisation is None else regularisation.architecture


def is_regularised(model: str) -> bool:
    """Whether ``model`` names a regularised variant (module docstring)."""
    return model_regularisation(model) is not None


def corruption_label(fraction: float) -> str:
    """How a label-corruption fraction appears in paths: two decimals (0.2 -> "0.20")."""
    return f"{float(fraction):.2f}"


def network_identity(network: str) -> dict[str, Any]:
    """``model/dataset/corruptionX.XX/seedN`` (the ``network`` wildcard) as an identity."""
    match = NETWORK_PATH.match(str(network))
    if match is None:
        raise ValueError(f"{network!r} does not name a network as model/dataset/corruptionX.XX/seedN")
    return _network_fields(match)


def checkpoint_identity(network: str, checkpoint_name: str) -> dict[str, Any]:
    """The identity of checkpoint ``epoch<E>`` or ``best`` of ``network`` (``best``: any epoch)."""
    return {**network_identity(network), **_checkpoint_fields(checkpoint_name)}


def identity_from_path(path: str | os.PathLike) -> dict[str, Any] | None:
    """The identity a workflow path names, or None when the path names no network.

    ``results/tuning/cnn7/cifar10/corruption0.00/seed3/epoch2.csv`` gives the network and
    checkpoint ``epoch`` 2; ``.../checkpoints/best.pt`` the network and checkpoint ``best``;
    ``.../metrics.csv`` or ``.../half_ablation.csv`` the network only.
    """
    posix = PurePath(path).as_posix()
    matches = list(NETWORK_IN_PATH.finditer(posix))
    if not matches:
        return None
    identity = _network_fields(matches[-1])
    stem = PurePath(posix).name.split(".")[0]
    if CHECKPOINT_NAME.match(stem):
        identity.update(_checkpoint_fields(stem))
    return identity


def _network_fields(match: re.Match) -> dict[str, Any]:
    return {
        "model": match["model"],
        "dataset": match["dataset"],
        "label_corruption": float(match["label_corruption"]),
        "seed": int(match["seed"]),
    }


def _checkpoint_fields(checkpoint_name: str) -> dict[str, Any]:
    match = CHECKPOINT_NAME.match(str(checkpoint_name))
    if match is None:
        raise ValueError(f"{checkpoint_name!r} is not a checkpoint name (epoch<E> or best)")
    if match["epoch"] is None:
        return {"checkpoint": "best", "epoch": None}
    return {"checkpoint": "epoch", "epoch": int(match["epoch"])}


def same_value(key: str, actual: Any, expected: Any) -> bool:
    """Whether one identity field agrees (label corruption as its two-decimal folder label)."""
    if expected is None:
        return True
    if actual is None or (isinstance(actual, float) and math.isnan(actual)):
        return False
    if key == "label_corruption":
        try:
            return corruption_label(actual) == corruption_label(expected)
        except (TypeError, ValueError):
            return False
    if key in ("seed", "epoch"):
        try:
            return float(actual) == float(expected)
        except (TypeError, ValueError):
            return False
    return str(actual) == str(expected)


def identity_differences(actual: Mapping[str, Any], expected: Mapping[str, Any]) -> list[str]:
    """The keys of ``expected`` (values not None) that ``actual`` lacks or disagrees on."""
    return [
        key
        for key, value in expected.items()
        if value is not None and not same_value(key, actual.get(key), value)
    ]


def describe_identity(identity: Mapping[str, Any]) -> str:
    """``cnn7/cifar10/corruption0.00/seed3, checkpoint best (epoch 7)``, from the keys present."""
    parts = []
    if all(identity.get(key) is not None for key in ("model", "dataset", "label_corruption", "seed")):
        parts.append(
            f"{identity['model']}/{identity['dataset']}/corruption{corruption_label(identity['label_corruption'])}"
            f"/seed{_plain(identity['seed'])}"
        )
    else:
        parts += [
            f"{key} {_plain(identity[key])}"
            for key in ("model", "dataset", "label_corruption", "seed")
            if identity.get(key) is not None
        ]
    checkpoint, epoch = identity.get("checkpoint"), identity.get("epoch")
    if checkpoint is not None:
        parts.append(f"checkpoint {checkpoint}" + (f" (epoch {_plain(epoch)})" if epoch is not None else ""))
    elif epoch is not None:
        parts.append(f"epoch {_plain(epoch)}")
    return ", ".join(parts) or "no identity"


def _plain(value: Any) -> Any:
    """1.0 -> 1 for whole numbers read back from CSV as floats."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value
