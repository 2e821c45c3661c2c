"""Datasets in one canonical form, the train/validation split and input preprocessing.

Canonical dataset file (``.npz``, written once by the data rule, read by every later rule)::

    x_train  uint8 (N, H, W, 3)  RGB, HWC, as in the CIFAR-10 python batches after reshaping
    y_train  int64 (N,)          labels 0..num_classes-1
    x_test   uint8 (M, H, W, 3)
    y_test   int64 (M,)
    class_names  str (num_classes,)
    description  str             where the data came from (e.g. "CIFAR-10 (torchvision download)")

Split file (``.npz``): ``train_indices``, ``validation_indices`` (int64, sorted, indices
into x_train), ``split_seed``, ``validation_size``.

Preprocessing (spec section 2): scale to [0, 1], subtract the per-pixel mean image of the
training split. Images become float32 NCHW tensors.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch


class DatasetError(ValueError):
    """A dataset that cannot be used, with a message that says what is wrong with it."""


@dataclass
class Dataset:
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]
    description: str = ""

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_size(self) -> int:
        return int(self.x_train.shape[1])


@dataclass
class Split:
    train_indices: np.ndarray
    validation_indices: np.ndarray
    split_seed: int


def validate_arrays(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    num_classes: int = 10,
    source: str = "dataset",
) -> None:
    """Raise :class:`DatasetError` naming the first array that is not a usable image set."""
    for name, x in (("x_train", x_train), ("x_test", x_test)):
        if x.dtype != np.uint8:
            raise DatasetError(f"{source}: {name} must be uint8 images, got dtype {x.dtype}")
        if x.ndim != 4 or x.shape[-1] != 3 or x.shape[1] != x.shape[2]:
            raise DatasetError(
                f"{source}: {name} must have shape (N, H, H, 3) (square RGB, channels last), got {x.shape}"
            )
    if x_train.shape[1:] != x_test.shape[1:]:
        raise DatasetError(f"{source}: train images {x_train.shape[1:]} and test images {x_test.shape[1:]} differ")
    for name, y, x in (("y_train", y_train, x_train), ("y_test", y_test, x_test)):
        if not np.issubdtype(y.dtype, np.integer):
            raise DatasetError(f"{source}: {name} must hold integer labels, got dtype {y.dtype}")
        if y.ndim != 1 or len(y) != len(x):
            raise DatasetError(
                f"{source}: {name} must be a vector with one label per image ({len(x)}), got shape {y.shape}"
            )
        if len(y) == 0:
            raise DatasetError(f"{source}: {name} is empty")
        bad = (y < 0) | (y >= num_classes)
        if bad.any():
            raise DatasetError(
                f"{source}: {name} has labels outside 0..{num_classes - 1}, e.g. {int(y[bad][0])} "
                f"at index {int(np.flatnonzero(bad)[0])}"
            )


def save_dataset(path: str | os.PathLike, dataset: Dataset) -> None:
    from selectivity.io import save_npz

    validate_arrays(dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test, dataset.num_classes)
    save_npz(
        path,
        x_train=dataset.x_train,
        y_train=dataset.y_train.astype(np.int64),
        x_test=dataset.x_test,
        y_test=dataset.y_test.astype(np.int64),
        class_names=np.array(dataset.class_names),
        description=np.array(dataset.description),
    )


def load_dataset(path: str | os.PathLike) -> Dataset:
    """Read a canonical dataset file (see the module docstring)."""
    try:
        with np.load(path, allow_pickle=False) as blob:
            arrays = {k: blob[k] for k in blob.files}
    except Exception as error:
        raise DatasetError(f"cannot read dataset file {path}: {error}") from error
    missing = {"x_train", "y_train", "x_test", "y_test", "class_names"} - set(arrays)
    if missing:
        raise DatasetError(f"{path} is not a canonical dataset file: missing {sorted(missing)}")
    class_names = [str(c) for c in arrays["class_names"]]
    validate_arrays(
        arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], len(class_names), str(path)
    )
    return Dataset(
        arrays["x_train"],
        arrays["y_train"].astype(np.int64),
        arrays["x_test"],
        arrays["y_test"].astype(np.int64),
        class_names,
        str(arrays.get("description", "")),
    )


def load_split(path: str | os.PathLike) -> Split:
    with np.load(path, allow_pickle=False) as blob:
        return Split(
            blob["train_indices"].astype(np.int64),
            blob["validation_indices"].astype(np.int64),
            int(blob["split_seed"]),
        )


def images_to_tensor(x: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 NHWC images -> float32 NCHW in [0, 1]."""
    x = torch.as_tensor(x)
    if x.dtype != torch.uint8 or x.dim() != 4:
        raise ValueError(f"expected uint8 (N, H, W, C) images, got {x.dtype} {tuple(x.shape)}")
    return x.permute(0, 3, 1, 2).float().div_(255.0)


def mean_image(x_train: np.ndarray | torch.Tensor) -> torch.Tensor:
    """Per-pixel mean image (3, H, W) in [0, 1] of the training images (float64 sum, float32 result)."""
    x = torch.as_tensor(x_train)
    return x.to(torch.float64).mean(dim=0).permute(2, 0, 1).div(255.0).float()


def preprocess(x: np.ndarray | torch.Tensor, input_mean: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC images -> float32 NCHW network inputs (scaled to [0, 1], minus the mean image)."""
    return images_to_tensor(x).to(input_mean.device) - input_mean
