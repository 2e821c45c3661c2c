"""The checkpoint file: a plain model's weights plus everything needed to use it alone.

A checkpoint is a ``torch.save``'d dict (written atomically)::

    format          "selectivity-checkpoint/2"
    model           config name of the architecture ("cnn7", "cnn11", ...)
    num_classes     number of output classes
    input_size      square input size in pixels
    state_dict      weights of the plain :class:`~selectivity.networks.models.AnalysableNetwork`
    input_mean      float32 (3, H, W): the training split's per-pixel mean image in [0, 1],
                    subtracted from every input (images and gratings alike)
    epoch           the training epoch the weights are from (0 = initialisation)
    checkpoint      "epoch" (a configured epoch) or "best" (lowest validation loss)
    network         {"model", "dataset", "label_corruption", "seed"}
    precision       "fp32" or "bf16": the arithmetic the network was trained in, which its
                    analyses use too (files written before it existed hold fp32 networks)
    architecture    only for a user's own architecture: {"constructor", "arguments",
                    "class_argument", "layers", "source_digest"}, what rebuilds the module whose
                    state_dict this is (:mod:`selectivity.networks.user_architectures`)
    selectivity_regularisation
                    only for a regularised variant (``model`` cnn7+orientation-0.5, docs/method.md
                    §2.10): the regulariser's settings and the coefficient; its model name must say
                    the same feature and coefficient
    content_digest  "sha256:<hex>" of everything above (:func:`content_digest`)
    metrics         that epoch's row of the metrics table (may be empty for epoch 0)
    provenance      see :func:`selectivity.provenance.provenance`
    record_digest   "sha256:<hex>" of metrics and provenance

Everything besides the tensors is a plain value (str, int, float, bool, None, lists,
dicts), so checkpoints load with ``torch.load(weights_only=True)``: a file that holds
any other object is refused before anything in it can run.

Every reader verifies a checkpoint before using it (:func:`read_checkpoint`): the digest
(a damaged file is refused) and, given the identity the caller expects (the network of the
path it was asked for, and the epoch of ``epoch<E>``), that the file is that network's
(a checkpoint copied into another network's folder is refused, naming both). Two digests
cover the whole dict: the content digest the weights and the identity, so equal content
digests mean the same network, and the record digest ``metrics`` and ``provenance``, which
record the run (``epoch_seconds``, host) and differ between otherwise identical runs. Files of the
first format (``selectivity-checkpoint/1``, written before checkpoints carried digests) are still
read, with a warning that their content cannot be verified: their identity is checked like any
file's, and a finished run keeps its networks instead of retraining them [D]; retraining writes
verified files (``snakemake --forcerun <file>``).

Grouped training writes exactly the same files as single training.
"""

from __future__ import annotations

import hashlib
import logging
import json
import os
from typing import TYPE_CHECKING, Any, Mapping, Sequence

import torch

from selectivity import numerics
from selectivity.identity import (
    architecture_of,
    describe_identity,
    identity_differences,
    identity_from_path,
    model_regularisation,
)
from selectivity.io import UnsafeFileError, load_torch, save_torch
from selectivity.networks.loaded import LoadedNetwork
from selectivity.networks.models import AnalysableNetwork, build_model

if TYPE_CHECKING:  # pandas is imported only where the provenance table is built
    import pandas as pd

logger = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "selectivity-checkpoint/2"
#: Formats written before checkpoints carried a content digest: read with a warning (their
#: identity is checked, their content cannot be).
UNDIGESTED_FORMATS = ("selectivity-checkpoint/1",)
#: What a checkpoint of an undigested format holds.
UNDIGESTED_KEYS = ("format", "model", "num_classes", "input_size", "state_dict", "input_mean", "epoch")
REQUIRED_KEYS = (
    "format",
    "model",
    "num_classes",
    "input_size",
    "state_dict",
    "input_mean",
    "epoch",
    "checkpoint",
    "network",
    "content_digest",
    "record_digest",
)
#: What the content digest covers: the weights and everything that says which network they are.
DIGESTED_KEYS = (
    "format",
    "model",
    "num_classes",
    "input_size",
    "state_dict",
    "input_mean",
    "epoch",
    "checkpoint",
    "network",
    "precision",
)
#: Covered by the content digest where present (a user architecture's checkpoints): a built-in
#: model's checkpoint lacks it and keeps the digest it always had.
OPTIONAL_DIGESTED_KEYS = ("architecture", "selectivity_regularisation")
#: What the record digest covers: what the run recorded beside the weights.
RECORD_KEYS = ("metrics", "provenance")
CHECKPOINT_KINDS = ("epoch", "best")
LISTED_KEYS = 8


class CheckpointError(ValueError):
    """A checkpoint that cannot be used: unreadable, damaged, of an old format, or another network's."""


def content_digest(blob: Mapping[str, Any], keys: Sequence[str] = DIGESTED_KEYS) -> str:
    """``"sha256:<hex>"`` of a checkpoint's ``keys`` (:data:`DIGESTED_KEYS`): stable across runs and machines.

    Tensors enter by name, dtype, shape and raw bytes (state_dict entries in sorted order),
    plain values as canonical JSON, so equal weights and identity give equal digests.
    """
    digest = hashlib.sha256()

    def feed(name: str, value: Any) -> None:
        if isinstance(value, torch.Tensor):
            tensor = value.detach().cpu().contiguous()
            digest.update(f"tensor {name} {tensor.dtype} {tuple(tensor.shape)}\n".encode())
            digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
        elif isinstance(value, Mapping):
            digest.update(f"mapping {name} {len(value)}\n".encode())
            for key in sorted(value, key=str):
                feed(f"{name}/{key}", value[key])
        else:
            digest.update(f"value {name} {json.dumps(value, sort_keys=True, default=repr)}\n".encode())

    for key in keys:
        feed(key, blob.get(key))
    return f"sha256:{digest.hexdigest()}"


def save_checkpoint(
    path: str | os.PathLike,
    model: AnalysableNetwork,
    *,
    model_name: str,
    input_mean: torch.Tensor,
    epoch: int,
    network: dict[str, Any],
    metrics: dict[str, Any] | None = None,
    provenance: dict[str, Any] | None = None,
    num_classes: int = 10,
    checkpoint: str = "epoch",
    precision: str = numerics.DEFAULT_PRECISION,
    architecture: Mapping[str, Any] | None = None,
    selectivity_regularisation: Mapping[str, Any] | None = None,
) -> None:
    """Write a checkpoint with its content digest (``checkpoint``: "epoch" or "best";
    ``architecture``: a user architecture's description, None for a built-in model;
    ``selectivity_regularisation``: a regularised variant's settings and coefficient)."""
    if checkpoint not in CHECKPOINT_KINDS:
        raise ValueError(f"checkpoint must be one of {CHECKPOINT_KINDS}, got {checkpoint!r}")
    # contiguous: a channels-last model saves the same bytes as one in the default layout
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    blob = {
        "format": CHECKPOINT_FORMAT,
        "model": model_name,
        "num_classes": num_classes,
        "input_size": int(input_mean.shape[-1]),
        "state_dict": state,
        "input_mean": input_mean.detach().cpu().float().clone(),
        "epoch": int(epoch),
        "checkpoint": checkpoint,
        "network": dict(network),
        "precision": numerics.check_precision(precision),
        "metrics": dict(metrics or {}),
        "provenance": dict(provenance or {}),
    }
    if architecture is not None:
        blob["architecture"] = dict(architecture)
    if selectivity_regularisation is not None:
        blob["selectivity_regularisation"] = dict(selectivity_regularisation)
    blob["content_digest"] = content_digest(blob, digested_keys(blob))
    blob["record_digest"] = content_digest(blob, RECORD_KEYS)
    save_torch(blob, path, "checkpoint")


def digested_keys(blob: Mapping[str, Any]) -> tuple[str, ...]:
    """The keys a checkpoint's content digest covers: :data:`DIGESTED_KEYS` and those of
    :data:`OPTIONAL_DIGESTED_KEYS` it holds."""
    return DIGESTED_KEYS + tuple(key for key in OPTIONAL_DIGESTED_KEYS if key in blob)


def stored_identity(blob: Mapping[str, Any]) -> dict[str, Any]:
    """What a checkpoint says it is: its network, checkpoint kind and epoch."""
    network = blob.get("network") if isinstance(blob.get("network"), Mapping) else {}
    return {
        **{key: network.get(key) for key in ("model", "dataset", "label_corruption", "seed")},
        "checkpoint": blob.get("checkpoint"),
        "epoch": blob.get("epoch"),
    }


def read_checkpoint(path: str | os.PathLike, expected: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """The checkpoint's dict, read safely (tensors and plain values only) and verified.

    Refused with a :class:`CheckpointError` naming the file: a file that is not a checkpoint
    of the current format, a damaged one (a digest does not match), and one whose
    own identity disagrees with ``expected`` (keys of :data:`selectivity.identity.IDENTITY_KEYS`;
    None values match anything, e.g. the epoch of ``best``).
    """
    try:
        blob = load_torch(path, "checkpoint")
    except UnsafeFileError:
        raise
    except Exception as error:  # truncated or foreign files fail here
        raise CheckpointError(f"cannot read checkpoint {path}: {error}") from error
    verify_checkpoint(blob, path, expected)
    return blob


def verify_checkpoint(blob: Any, path: str | os.PathLike, expected: Mapping[str, Any] | None = None) -> None:
    """Raise a :class:`CheckpointError` unless ``blob`` is an intact checkpoint of ``expected``."""
    if not isinstance(blob, dict):
        raise CheckpointError(
            f"{path} is not a {CHECKPOINT_FORMAT} checkpoint: it holds a {type(blob).__name__}, not a checkpoint "
            "dict (a torch file of another kind?)"
        )
    if blob.get("format") in UNDIGESTED_FORMATS:
        missing = [key for key in UNDIGESTED_KEYS if key not in blob]
        if missing:
            raise CheckpointError(f"{path} is a {blob['format']} checkpoint without {missing}: damaged")
        logger.warning(
            "%s is a %s checkpoint, written before checkpoints carried a content digest: its identity is "
            "checked, its content cannot be; retraining its network writes a verified file "
            "(snakemake --forcerun %s)",
            path,
            blob["format"],
            path,
        )
        # the first format had no "checkpoint" field (epoch or best): the rest of the identity is checked
        _check_identity(blob, path, {k: v for k, v in (expected or {}).items() if k != "checkpoint"})
        return
    if "format" not in blob:
        raise CheckpointError(
            f"{path} is not a {CHECKPOINT_FORMAT} checkpoint: it has no format entry, only "
            f"{', '.join(map(str, list(blob)[:LISTED_KEYS]))}{', ...' if len(blob) > LISTED_KEYS else ''} "
            "(a torch file of another kind?)"
        )
    missing = [key for key in REQUIRED_KEYS if key not in blob]
    if missing or blob.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a {CHECKPOINT_FORMAT} checkpoint (format {blob.get('format')!r}; missing keys "
            f"{missing}): a torch file of another kind?"
        )
    for name, keys in (("content", digested_keys(blob)), ("record", RECORD_KEYS)):
        recorded, actual = blob[f"{name}_digest"], content_digest(blob, keys)
        if recorded != actual:
            raise CheckpointError(
                f"{path} is damaged: its {name} digest ({', '.join(keys[:4])}{', ...' if len(keys) > 4 else ''}) "
                f"is {actual}, but it was written with {recorded}. "
                f"Regenerate it: snakemake --forcerun {path} (retrains its network)"
            )
    _check_identity(blob, path, expected)


def load_checkpoint(
    path: str | os.PathLike,
    device: torch.device | str = "cpu",
    expected: Mapping[str, Any] | None = None,
) -> LoadedNetwork:
    """Load a verified checkpoint (:func:`read_checkpoint`) into a fresh plain model in eval mode.

    ``expected``: the identity the caller asks for, e.g.
    :func:`selectivity.identity.checkpoint_identity` of the ``network`` wildcard and the
    checkpoint name; the file must agree with it.
    """
    blob = read_checkpoint(path, expected)
    if "architecture" in blob:
        model = _user_architecture_model(blob, path)
    else:
        model = build_model(
            architecture_of(blob["model"]), num_classes=blob["num_classes"], input_size=blob["input_size"]
        )
        model.load_state_dict(blob["state_dict"])
    model.to(device).eval()
    precision = checkpoint_precision(blob, path)
    model.set_numerics(
        precision,
        numerics.prefers_channels_last(architecture_of(blob["model"]), device, precision, training=False),
    )
    info = {k: v for k, v in blob.items() if k not in ("state_dict", "input_mean")}
    network = LoadedNetwork(model, blob["input_mean"].to(device), int(blob["epoch"]), info)
    if "architecture" in blob:
        from selectivity.networks.hooked import check_layers_are_cuts

        generator = torch.Generator().manual_seed(0)
        size = int(blob["input_size"])
        check_layers_are_cuts(
            model, network.prepare_inputs(torch.rand(4, 3, size, size, generator=generator).to(device))
        )
    return network


def _user_architecture_model(blob: Mapping[str, Any], path) -> AnalysableNetwork:
    """A user architecture's module with the checkpoint's weights, hooked for the analyses."""
    from selectivity.networks.user_models import build_user_module, hooked_user_network

    architecture, key = blob["architecture"], f"{path}: architecture"
    with torch.random.fork_rng(devices=[]):  # its initialisation is overwritten at once
        module = build_user_module(architecture, int(blob["num_classes"]), key)
    try:
        module.load_state_dict(blob["state_dict"])
    except RuntimeError as error:
        raise CheckpointError(
            f"{path}: its weights do not fit {architecture['constructor']} with arguments "
            f"{architecture.get('arguments')} (was the architecture's code changed?): "
            f"{str(error).strip().splitlines()[-1]}"
        ) from None
    return hooked_user_network(blob["model"], module, architecture["layers"], int(blob["input_size"]), key)


def checkpoint_precision(blob: Mapping[str, Any], path: str | os.PathLike) -> str:
    """The precision a checkpoint's network was trained in (fp32 for files without the key)."""
    precision = blob.get("precision", numerics.DEFAULT_PRECISION)
    if precision not in numerics.PRECISIONS:
        raise CheckpointError(f"{path}: precision {precision!r} is not one of {numerics.PRECISIONS}")
    return precision


def checkpoint_identifiers(network: LoadedNetwork, checkpoint: str) -> dict[str, Any]:
    """The identifier columns of tables made from a checkpoint (docs/architecture.md).

    ``checkpoint`` is the file's name: ``epoch<E>`` or ``best``; the table's ``epoch``
    column always holds the real training epoch of the weights.
    """
    network_info = network.info.get("network", {})
    return {
        "model": network_info.get("model", network.info.get("model")),
        "dataset": network_info.get("dataset"),
        "label_corruption": network_info.get("label_corruption"),
        "seed": network_info.get("seed"),
        "checkpoint": "best" if checkpoint == "best" else "epoch",
        "epoch": network.epoch,
    }


def provenance_table(paths: list[str]) -> pd.DataFrame:
    """One row per checkpoint: network identifiers, epoch, seed, settings hash, versions, device.

    Each checkpoint is verified (:func:`read_checkpoint`) against the network and checkpoint
    its path names (:func:`selectivity.identity.identity_from_path`).
    """
    import pandas as pd

    rows = []
    for path in paths:
        blob = read_checkpoint(path, identity_from_path(path))
        record = blob.get("provenance", {})
        versions = record.get("versions", {})
        rows.append(
            {
                **blob["network"],
                "epoch": blob["epoch"],
                "checkpoint_file": str(path),
                "config_hash": record.get("config_hash"),
                "precision": blob.get("precision", numerics.DEFAULT_PRECISION),
                "device": record.get("device"),
                **{f"{name}_version": version for name, version in versions.items()},
            }
        )
    return pd.DataFrame(rows)


def _check_regularisation(blob: Mapping[str, Any], path: str | os.PathLike) -> None:
    """A regularised variant's checkpoint records the regulariser its name says; no other does."""
    named = model_regularisation(str(blob["model"]))
    record = blob.get("selectivity_regularisation")
    if named is None and record is None:
        return
    if named is None or not isinstance(record, Mapping):
        raise CheckpointError(
            f"{path}: model {blob['model']!r} and its selectivity_regularisation entry {record!r} disagree "
            "(a regularised variant's name and record go together, docs/method.md §2.10)"
        )
    if record.get("feature") != named.feature or record.get("coefficient") != named.coefficient:
        raise CheckpointError(
            f"{path}: model {blob['model']!r} says {named.feature} at coefficient {named.coefficient:g}, but the "
            f"checkpoint was trained with {record.get('feature')} at {record.get('coefficient')}"
        )


def _check_identity(
    blob: Mapping[str, Any], path: str | os.PathLike, expected: Mapping[str, Any] | None
) -> None:
    """The checkpoint's own identity is one model's, and the one the caller asked for."""
    own = stored_identity(blob)
    if blob["model"] != own["model"]:
        raise CheckpointError(f"{path} names two models: {blob['model']!r} and network {own['model']!r}")
    _check_regularisation(blob, path)
    if expected:
        differences = identity_differences(own, expected)
        if differences:
            raise CheckpointError(
                f"{path} holds {describe_identity(own)}, but {describe_identity(expected)} was asked for "
                f"(they differ in {', '.join(differences)}): the file belongs to another network or epoch "
                "(copied or moved?). Regenerate it: snakemake --forcerun " + str(path)
            )
