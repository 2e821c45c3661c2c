"""The checkpoint file: a plain model's weights plus everything needed to use it alone.

A checkpoint is a ``torch.save``'d dict (written atomically)::

    format        "selectivity-checkpoint/1"
    model         config name of the architecture ("cnn7", "cnn11", ...)
    num_classes   number of output classes
    input_size    square input size in pixels
    state_dict    weights of the plain :class:`~selectivity.networks.models.AnalysableNetwork`
    input_mean    float32 (3, H, W): the training split's per-pixel mean image in [0, 1],
                  subtracted from every input (images and gratings alike)
    epoch         the training epoch the weights are from (0 = initialisation)
    network       {"model", "dataset", "label_corruption", "seed"}
    metrics       that epoch's row of the metrics table (may be empty for epoch 0)
    provenance    see :func:`selectivity.provenance.provenance`

Everything besides the tensors is a plain value (str, int, float, bool, None, lists,
dicts), so checkpoints load with ``torch.load(weights_only=True)``: a file that holds
any other object is refused before anything in it can run.

Grouped training writes exactly the same files as single training.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

import torch

from selectivity.io import UnsafeFileError, load_torch, save_torch
from selectivity.networks.loaded import LoadedNetwork
from selectivity.networks.models import AnalysableNetwork, build_model

if TYPE_CHECKING:  # pandas is imported only where the provenance table is built
    import pandas as pd

CHECKPOINT_FORMAT = "selectivity-checkpoint/1"
REQUIRED_KEYS = ("format", "model", "num_classes", "input_size", "state_dict", "input_mean", "epoch")


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
) -> None:
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
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


def load_checkpoint(path: str | os.PathLike, device: torch.device | str = "cpu") -> LoadedNetwork:
    """Load a checkpoint into a fresh plain model in eval mode on ``device``."""
    blob = read_checkpoint(path)
    missing = [k for k in REQUIRED_KEYS if not isinstance(blob, dict) or k not in blob]
    if missing or blob.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path} is not a {CHECKPOINT_FORMAT} checkpoint (missing {missing})")
    model = build_model(blob["model"], num_classes=blob["num_classes"], input_size=blob["input_size"])
    model.load_state_dict(blob["state_dict"])
    model.to(device).eval()
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
    """One row per checkpoint: network identifiers, epoch, seed, settings hash, versions, device."""
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
                "device": record.get("device"),
                **{f"{name}_version": version for name, version in versions.items()},
            }
        )
    return pd.DataFrame(rows)
