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

Preprocessing (docs/method.md §2): scale to [0, 1], subtract the per-pixel mean image of the
training split. Images become float32 NCHW tensors.

The sources that build a canonical file live in :mod:`selectivity.data.cifar10` (CIFAR-10:
download, python batches, archive, local copies), :mod:`selectivity.data.synthetic` (the offline
stand-in) and :mod:`selectivity.data.build` (which one a config names).
"""

from __future__ import annotations

import hashlib
import logging
import os
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np
import torch

logger = logging.getLogger(__name__)


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
        raise DatasetError(
            f"{source}: train images {x_train.shape[1:]} and test images {x_test.shape[1:]} differ"
        )
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


def check_every_class(
    y_train: np.ndarray,
    y_test: np.ndarray,
    num_classes: int,
    source: str = "dataset",
    class_names: Sequence[str] | None = None,
) -> None:
    """Raise :class:`DatasetError` naming the classes without training or without test images.

    A class without training images cannot be learnt, one without test images leaves its
    class selectivity undefined (docs/method.md §4); either would only fail much later, so
    the dataset file is refused when it is written and when it is read.
    """
    for name, y, images in (("y_train", y_train, "training"), ("y_test", y_test, "test")):
        absent = np.flatnonzero(np.bincount(y, minlength=num_classes) == 0)
        if len(absent):
            named = [
                f"{int(c)} ({class_names[c]!r})" if class_names is not None else str(int(c)) for c in absent
            ]
            raise DatasetError(
                f"{source}: class{'es' if len(absent) > 1 else ''} {', '.join(named)} of {num_classes} "
                f"{'have' if len(absent) > 1 else 'has'} no {images} images ({name}); every class needs "
                "training and test images"
            )


def save_dataset(path: str | os.PathLike, dataset: Dataset) -> None:
    from selectivity.io import save_npz

    validate_arrays(dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test, dataset.num_classes)
    check_every_class(
        dataset.y_train,
        dataset.y_test,
        dataset.num_classes,
        dataset.description or "dataset",
        dataset.class_names,
    )
    save_npz(
        path,
        x_train=dataset.x_train,
        y_train=dataset.y_train.astype(np.int64),
        x_test=dataset.x_test,
        y_test=dataset.y_test.astype(np.int64),
        class_names=np.array(dataset.class_names),
        description=np.array(dataset.description),
    )


def is_integer(value: Any) -> bool:
    """A whole number that is not a bool (YAML and numpy integers included)."""
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def array_digest(*arrays: np.ndarray) -> str:
    """SHA-256 (16 hex digits) of arrays' dtypes, shapes and bytes: equal data, equal digest."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()[:16]


def dataset_digest(dataset: Dataset) -> str:
    """The digest of a dataset's images, labels and class names (what the dataset digest file holds)."""
    names = np.array([str(name) for name in dataset.class_names])
    return array_digest(dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test, names)


def save_test_set(path: str | os.PathLike, dataset: Dataset) -> None:
    """The test images, labels and class names of a dataset, on their own (what analyses read).

    The causal analyses read this file instead of the whole dataset, so rebuilding the
    dataset file (after deleting it, say) never reruns them or, through them, training.
    """
    from selectivity.io import save_npz

    save_npz(
        path,
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
    check_every_class(arrays["y_train"], arrays["y_test"], len(class_names), str(path), class_names)
    return Dataset(
        arrays["x_train"],
        arrays["y_train"].astype(np.int64),
        arrays["x_test"],
        arrays["y_test"].astype(np.int64),
        class_names,
        str(arrays.get("description", "")),
    )


def load_split(path: str | os.PathLike) -> Split:
    try:
        with np.load(path, allow_pickle=False) as blob:
            return Split(
                blob["train_indices"].astype(np.int64),
                blob["validation_indices"].astype(np.int64),
                int(blob["split_seed"]),
            )
    except Exception as error:  # damaged, truncated or another kind of file
        raise DatasetError(f"cannot read split file {path}: {error!r}") from error


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


# --------------------------------------------------------------------------------------------
# Train/validation split
# --------------------------------------------------------------------------------------------


def stratified_validation_counts(class_counts: np.ndarray, validation_size: int) -> np.ndarray:
    """Validation images per class, proportional to ``class_counts`` and summing to ``validation_size``.

    Largest-remainder rounding: every class gets the floor of its exact share, and the images
    still missing go one each to the classes with the largest fractional parts (ties: lower
    class first).
    """
    exact = validation_size * class_counts / class_counts.sum()
    counts = np.floor(exact).astype(np.int64)
    missing = validation_size - int(counts.sum())
    by_remainder = np.argsort(-(exact - counts), kind="stable")
    counts[by_remainder[:missing]] += 1
    return counts


def stratified_split(labels: np.ndarray, validation_size: int, seed: int) -> Split:
    """Split indices 0..N-1 into train and validation, stratified by class.

    Each class contributes validation images in proportion to its size
    (:func:`stratified_validation_counts`), drawn at random with ``numpy.random.default_rng(seed)``.
    Both index arrays are sorted, disjoint and together cover every index.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer) or len(labels) == 0:
        raise ValueError(
            f"stratified_split: labels must be a non-empty integer vector, got {labels.dtype} {labels.shape}"
        )
    if labels.min() < 0:
        raise ValueError(f"stratified_split: labels must be non-negative, found {int(labels.min())}")
    classes, class_counts = np.unique(labels, return_counts=True)
    if not is_integer(validation_size):
        raise ValueError(f"stratified_split: validation_size must be an integer, got {validation_size!r}")
    if not is_integer(seed) or seed < 0:
        raise ValueError(f"stratified_split: seed must be a non-negative integer, got {seed!r}")
    if validation_size <= 0 or validation_size >= len(labels) - len(classes):
        raise ValueError(
            f"stratified_split: validation_size={validation_size} must be > 0 and < the number of images "
            f"minus the number of classes ({len(labels)} - {len(classes)} = {len(labels) - len(classes)})"
        )
    validation_counts = stratified_validation_counts(class_counts, int(validation_size))
    emptied = classes[validation_counts >= class_counts]
    if len(emptied):
        raise ValueError(
            f"stratified_split: validation_size={validation_size} would move every image of class "
            f"{int(emptied[0])} ({int(class_counts[classes == emptied[0]][0])} images) into validation"
        )
    rng = np.random.default_rng(seed)
    validation_parts = [
        rng.choice(np.flatnonzero(labels == label), size=count, replace=False)
        for label, count in zip(classes, validation_counts)
    ]
    in_validation = np.zeros(len(labels), dtype=bool)
    in_validation[np.concatenate(validation_parts)] = True
    logger.info(
        "stratified split (seed %d): %d train / %d validation images",
        seed,
        int((~in_validation).sum()),
        int(in_validation.sum()),
    )
    return Split(
        np.flatnonzero(~in_validation).astype(np.int64),
        np.flatnonzero(in_validation).astype(np.int64),
        int(seed),
    )


def save_split(path: str | os.PathLike, split: Split, validation_size: int) -> None:
    """Write the split file (module docstring); ``validation_size`` must match the split."""
    from selectivity.io import save_npz

    if len(split.validation_indices) != validation_size:
        raise ValueError(
            f"save_split: validation_size={validation_size} but the split holds "
            f"{len(split.validation_indices)} validation indices"
        )
    save_npz(
        path,
        train_indices=np.asarray(split.train_indices, dtype=np.int64),
        validation_indices=np.asarray(split.validation_indices, dtype=np.int64),
        split_seed=np.int64(split.split_seed),
        validation_size=np.int64(validation_size),
    )


def load_test_images(
    path: str | os.PathLike, limit: int | None, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The first ``limit`` (all if None) test images of a test-set (or canonical dataset) file.

    Returns float images in [0, 1] (N, 3, H, W) and int64 labels on ``device``, plus the
    number of classes: the input of every causal analysis (which then applies the
    network's own ``prepare_inputs``). The first images, not a random subset, so every
    network and every analysis sees the same ones.
    """
    try:
        with np.load(path, allow_pickle=False) as blob:
            x_test, y_test, class_names = blob["x_test"], blob["y_test"], blob["class_names"]
    except Exception as error:
        raise DatasetError(f"cannot read the test images of {path}: {error}") from error
    count = len(y_test) if limit is None else min(int(limit), len(y_test))
    images = images_to_tensor(x_test[:count]).to(device)
    labels = torch.as_tensor(y_test[:count], dtype=torch.int64, device=device)
    return images, labels, len(class_names)
