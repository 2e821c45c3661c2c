"""The checkpoint file: a plain model's weights plus everything needed to use it alone.

A checkpoint is a ``torch.save``'d dict (written atomically)::

    format        "selectivity-checkpoint/1"
    model         config name of the architecture ("cnn7", "cnn11", ...)
    num_classes   number of output classes
    input_size    square input size in pixels
    state_dict    weights of the plain :class:`~selectivity.models.AnalysableNetwork`
    input_mean    float32 (3, H, W): the training split's per-pixel mean image in [0, 1],
                  subtracted from every input (images and gratings alike)
    epoch         the training epoch the weights are from (0 = initialisation)
    network       {"model", "dataset", "label_corruption", "seed"}
    metrics       that epoch's row of the metrics table (may be empty for epoch 0)
    provenance    see :func:`selectivity.provenance.provenance`
    precision     "fp32" or "bf16": the arithmetic the network was trained in, which its
                  analyses use too (files written before it existed hold fp32 networks)

Everything besides the tensors is a plain value (str, int, float, bool, None, lists,
dicts), so checkpoints load with ``torch.load(weights_only=True)``: a file that holds
any other object is refused before anything in it can run.

Grouped training writes exactly the same files as single training.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch

from selectivity import numerics
from selectivity.io import UnsafeFileError, load_torch, save_torch
from selectivity.models import AnalysableNetwork, build_model

if TYPE_CHECKING:  # pandas is imported only where the provenance table is built
    import pandas as pd

CHECKPOINT_FORMAT = "selectivity-checkpoint/1"
REQUIRED_KEYS = ("format", "model", "num_classes", "input_size", "state_dict", "input_mean", "epoch")


@dataclass
class LoadedNetwork:
    """A network ready for analysis: the model (eval mode) and how to feed it images.

    ``prepare_inputs`` maps float images in [0, 1] (N, 3, H, W) on the model's device to
    network inputs: minus the training mean image for the CIFAR networks, ImageNet
    normalisation for VGG16. Stimuli and test images go through the same function.
    """

    model: AnalysableNetwork
    input_mean: torch.Tensor | None
    epoch: int | None
    info: dict[str, Any]
    input_std: torch.Tensor | None = None

    def prepare_inputs(self, images: torch.Tensor) -> torch.Tensor:
        prepared = images if self.input_mean is None else images - self.input_mean
        return prepared if self.input_std is None else prepared / self.input_std

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


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
    precision: str = numerics.DEFAULT_PRECISION,
) -> None:
    # contiguous: a channels-last model saves the same bytes as one in the default layout
    state = {k: v.detach().cpu().contiguous().clone() for k, v in model.state_dict().items()}
    save_torch(
        {
            "format": CHECKPOINT_FORMAT,
            "model": model_name,
            "num_classes": num_classes,
            "input_size": int(input_mean.shape[-1]),
            "state_dict": state,
            "input_mean": input_mean.detach().cpu().float().clone(),
            "epoch": int(epoch),
            "network": dict(network),
            "metrics": dict(metrics or {}),
            "provenance": dict(provenance or {}),
            "precision": numerics.check_precision(precision),
        },
        path,
    )


def read_checkpoint(path: str | os.PathLike) -> dict[str, Any]:
    """The checkpoint's dict, read safely (tensors and plain values only)."""
    try:
        return load_torch(path, "checkpoint")
    except UnsafeFileError:
        raise
    except Exception as error:  # truncated or foreign files fail here
        raise ValueError(f"cannot read checkpoint {path}: {error}") from error


def checkpoint_precision(blob: dict[str, Any], path: str | os.PathLike) -> str:
    """The precision a checkpoint's network was trained in (fp32 for files without the key)."""
    precision = blob.get("precision", numerics.DEFAULT_PRECISION)
    if precision not in numerics.PRECISIONS:
        raise ValueError(f"{path}: precision {precision!r} is not one of {numerics.PRECISIONS}")
    return precision


def load_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu") -> LoadedNetwork:
    """Load a checkpoint into a fresh plain model in eval mode on ``device``.

    Its passes run in the precision the network was trained in (the checkpoint's
    ``precision``) and in the memory format that is faster for it on ``device``.
    """
    blob = read_checkpoint(path)
    missing = [k for k in REQUIRED_KEYS if not isinstance(blob, dict) or k not in blob]
    if missing or blob.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint (missing {missing})")
    precision = checkpoint_precision(blob, path)
    model = build_model(blob["model"], num_classes=blob["num_classes"], input_size=blob["input_size"])
    model.load_state_dict(blob["state_dict"])
    model.to(device).eval()
    model.set_numerics(
        precision, numerics.prefers_channels_last(blob["model"], device, precision, training=False)
    )
    info = {k: v for k, v in blob.items() if k not in ("state_dict", "input_mean")}
    return LoadedNetwork(model, blob["input_mean"].to(device), int(blob["epoch"]), info)


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
    """One row per checkpoint: network identifiers, epoch, seed, settings hash, precision, versions, device."""
    import pandas as pd

    rows = []
    for path in paths:
        blob = read_checkpoint(path)
        record = blob.get("provenance", {})
        versions = record.get("versions", {})
        rows.append(
            {
                **blob.get("network", {}),
                "epoch": blob["epoch"],
                "checkpoint_file": str(path),
                "config_hash": record.get("config_hash"),
                "precision": blob.get("precision", numerics.DEFAULT_PRECISION),
                "device": record.get("device"),
                **{f"{name}_version": version for name, version in versions.items()},
            }
        )
    return pd.DataFrame(rows)
