"""What the workflow knows about the configured dataset before any job runs (torch-free).

The controller checks a config against the dataset it names (image size, number of classes,
how many training and test images) before any job: models' heads, gratings, shifts, ablation
fractions and test-image counts all depend on it. This module answers those questions from the
``dataset`` section alone: constants for the datasets read by name, the configured size and a
listing of the folders for an image folder (docs/method.md §2.1). The images themselves are read
by the data rule (:mod:`selectivity.data.build`).

Datasets by name (all RGB, with a fixed train/test split):

========  =======  =======  ======  ======  ===================================================
name      size px  classes  train   test    source
========  =======  =======  ======  ======  ===================================================
cifar10   32       10       50,000  10,000  CIFAR-10 (Krizhevsky 2009)
cifar100  32       100      50,000  10,000  CIFAR-100, its 100 fine classes
svhn      32       10       73,257  26,032  SVHN cropped digits (Netzer et al. 2011), train/test
                                            (the "extra" split is not used)
stl10     96       10       5,000   8,000   STL-10 (Coates et al. 2011), labelled train/test
                                            (the unlabelled images are not used)
========  =======  =======  ======  ======  ===================================================

Greyscale datasets (MNIST and its relatives) are refused by name: the networks, the gratings and
the colour analyses take RGB images. An image folder of greyscale files is read as RGB with three
equal channels (what PIL's conversion gives), which is how such data can be used.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

#: The synthetic stand-in (docs/method.md §2.8) and CIFAR-10's own readers are not torchvision's.
SYNTHETIC = "synthetic"
CIFAR10 = "cifar10"


@dataclass(frozen=True)
class KnownDataset:
    """A dataset read by name: its image size, classes and image counts (module docstring)."""

    name: str
    title: str
    image_size: int
    num_classes: int
    train_images: int
    test_images: int


#: The datasets read by name from torchvision's files (downloaded, or a local copy).
TORCHVISION_DATASETS: dict[str, KnownDataset] = {
    dataset.name: dataset
    for dataset in (
        KnownDataset(CIFAR10, "CIFAR-10", 32, 10, 50_000, 10_000),
        KnownDataset("cifar100", "CIFAR-100", 32, 100, 50_000, 10_000),
        KnownDataset("svhn", "SVHN", 32, 10, 73_257, 26_032),
        KnownDataset("stl10", "STL-10", 96, 10, 5_000, 8_000),
    )
}
#: Every dataset name the workflow knows; any other name needs ``dataset.image_folder``.
BUILT_IN_DATASETS = (*TORCHVISION_DATASETS, SYNTHETIC)
#: torchvision datasets of one channel: refused by name, with the reason.
GREYSCALE_DATASETS = ("mnist", "fashionmnist", "fashion_mnist", "kmnist", "emnist", "qmnist", "usps")
#: Names a dataset cannot take: the tables' dataset column uses them for given networks.
RESERVED_DATASET_NAMES = ("none", "imagenet")

#: The synthetic stand-in's images and classes (docs/method.md §2.8).
SYNTHETIC_IMAGE_SIZE = 32
SYNTHETIC_CLASSES = 10

#: File name endings of images in an image folder (torchvision's ``IMG_EXTENSIONS``; the data
#: rule passes the same list to ``ImageFolder``, so the counts here are the images it reads).
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp")
#: An image-folder dataset's two sets of class subfolders.
FOLDER_SPLITS = ("train", "test")


class DatasetConfigError(ValueError):
    """A ``dataset`` section that cannot work; the message names the key."""


@dataclass(frozen=True)
class DatasetShape:
    """What the analyses need to know of the dataset before reading it."""

    name: str
    kind: str  # "torchvision" | "synthetic" | "image_folder"
    image_size: int
    num_classes: int
    train_images: int | None  # None: not known before the data rule reads the files
    test_images: int | None
    source: str  # where the counts come from, for messages
    class_names: tuple[str, ...] = ()


def dataset_kind(dataset: Mapping[str, Any]) -> str:
    name = dataset["name"]
    if name == SYNTHETIC:
        return "synthetic"
    if name in TORCHVISION_DATASETS:
        return "torchvision"
    return "image_folder"


def check_dataset_name(dataset: Mapping[str, Any]) -> None:
    """The name is a known dataset's, or the image folder's own name (then ``image_folder`` is set)."""
    name, folder = dataset["name"], dataset.get("image_folder")
    if name in RESERVED_DATASET_NAMES:
        raise DatasetConfigError(
            f"dataset.name: {name!r} is reserved (the tables' dataset column uses it for given networks); "
            "choose another name"
        )
    if name.replace("_", "") in {g.replace("_", "") for g in GREYSCALE_DATASETS}:
        raise DatasetConfigError(
            f"dataset.name: {name!r} is a greyscale (1-channel) dataset, which the workflow refuses: its "
            "networks, gratings and colour analyses take RGB (3-channel) images. Export its images to an "
            "image folder (dataset.image_folder; greyscale files are read as RGB with three equal channels)"
        )
    if name in BUILT_IN_DATASETS and folder:
        raise DatasetConfigError(
            f"dataset.image_folder: set, but dataset.name {name!r} is a built-in dataset; give your image "
            "folder its own name (e.g. name: my_images)"
        )
    if name not in BUILT_IN_DATASETS and not folder:
        raise DatasetConfigError(
            f"dataset.name: {name!r} is not a dataset the workflow reads by name ({', '.join(BUILT_IN_DATASETS)}); "
            "for your own images set dataset.image_folder (path: a folder with train/ and test/ folders of "
            "class subfolders; image_size: pixels)"
        )


def download_dir(dataset: Mapping[str, Any]) -> str:
    """Where torchvision downloads the dataset: ``dataset.download_dir``, or ``resources/<name>``."""
    return dataset.get("download_dir") or f"resources/{dataset['name']}"


def _is_image(path: Path) -> bool:
    return path.is_file() and path.name.lower().endswith(IMAGE_EXTENSIONS)


def image_folder_classes(path: str | os.PathLike) -> dict[str, dict[str, int]]:
    """Per split (train, test), class folder -> its number of images, in sorted folder order.

    Raises :class:`DatasetConfigError` naming ``dataset.image_folder.path`` when the layout is
    not two folders of the same class subfolders, each class with images in both.
    """
    root = Path(path)
    key = "dataset.image_folder.path"
    if not root.is_dir():
        raise DatasetConfigError(
            f"{key}: {str(path)!r} is not a folder (paths are relative to the working directory)"
        )
    counts: dict[str, dict[str, int]] = {}
    for split in FOLDER_SPLITS:
        folder = root / split
        if not folder.is_dir():
            raise DatasetConfigError(
                f"{key}: {str(path)!r} has no {split}/ folder; an image-folder dataset holds train/ and test/, "
                "each with one subfolder of images per class"
            )
        classes = sorted(entry.name for entry in os.scandir(folder) if entry.is_dir())
        if not classes:
            raise DatasetConfigError(f"{key}: {folder} has no class subfolders")
        counts[split] = {
            name: sum(1 for file in (folder / name).rglob("*") if _is_image(file)) for name in classes
        }
    train, test = counts["train"], counts["test"]
    if list(train) != list(test):
        only_train, only_test = sorted(set(train) - set(test)), sorted(set(test) - set(train))
        raise DatasetConfigError(
            f"{key}: train/ and test/ must hold the same class folders (a class's label is its position "
            f"in sorted order); only in train/: {only_train}, only in test/: {only_test}"
        )
    for split, classes in counts.items():
        empty = [name for name, count in classes.items() if count == 0]
        if empty:
            raise DatasetConfigError(
                f"{key}: {split}/ classes {empty[:5]} hold no images ({', '.join(IMAGE_EXTENSIONS)}); every class "
                "needs training and test images"
            )
    if len(train) < 2:
        raise DatasetConfigError(f"{key}: {len(train)} class; a classifier needs at least two classes")
    return counts


def image_folder_fingerprint(path: str | os.PathLike) -> str:
    """A digest of the folder's image files (relative path, size, modification time), read from the
    file system only: a param of the data rule, so adding, removing or editing an image rebuilds the
    dataset. Snakemake plans every job before any runs, so that rebuild reruns everything after it
    even where the images are unchanged (a folder copied again with new times); unlike a local copy
    of a dataset read by name, a folder is not read at start-up to tell (it may hold many images)."""
    root = Path(path)
    digest = hashlib.sha256()
    for split in FOLDER_SPLITS:
        for file in sorted((root / split).rglob("*")):
            if _is_image(file):
                status = file.stat()
                digest.update(f"{file.relative_to(root)}\t{status.st_size}\t{status.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def dataset_shape(dataset: Mapping[str, Any]) -> DatasetShape:
    """Image size, classes and image counts of the configured dataset (module docstring)."""
    check_dataset_name(dataset)
    name, kind = dataset["name"], dataset_kind(dataset)
    if kind == "synthetic":
        synthetic = dataset["synthetic"]
        return DatasetShape(
            name, kind, SYNTHETIC_IMAGE_SIZE, SYNTHETIC_CLASSES, synthetic["train_size"],
            synthetic["test_size"], "dataset.synthetic",
        )  # fmt: skip
    if kind == "torchvision":
        known = TORCHVISION_DATASETS[name]
        return DatasetShape(
            name,
            kind,
            known.image_size,
            known.num_classes,
            known.train_images,
            known.test_images,
            known.title,
        )
    folder = dataset["image_folder"]
    counts = image_folder_classes(folder["path"])
    return DatasetShape(
        name,
        kind,
        int(folder["image_size"]),
        len(counts["train"]),
        sum(counts["train"].values()),
        sum(counts["test"].values()),
        f"the image folder {folder['path']}",
        tuple(counts["train"]),
    )
