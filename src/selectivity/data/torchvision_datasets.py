"""CIFAR-100, SVHN and STL-10 in the canonical form (docs/method.md §2.1): downloaded by torchvision
or read from a local copy in torchvision's on-disk layout.

* Download: torchvision's own downloader into ``download_dir`` (it checks each archive's or
  file's md5), then the files are read as a local copy would be.
* Local copy: the folder torchvision downloads into, or the dataset's own folder in it:
  ``cifar-100-python/`` (``train``, ``test``, ``meta``), ``train_32x32.mat`` and
  ``test_32x32.mat`` (SVHN), ``stl10_binary/`` (``train_X.bin``, ``train_y.bin``, ``test_X.bin``,
  ``test_y.bin``, ``class_names.txt``). With ``verify_checksum`` every file read must have the md5
  torchvision records for it.

Files are read without running anything they contain: CIFAR-100's pickles through the numpy-only
unpickler of :mod:`selectivity.data.cifar10`, SVHN's MATLAB files with ``scipy.io.loadmat``,
STL-10's raw bytes with numpy. Only the fixed train/test splits are used (not SVHN's "extra" nor
STL-10's unlabelled images).
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Callable

import numpy as np

from selectivity.data.cifar10 import read_cifar10_pickle
from selectivity.data.dataset import Dataset, DatasetError, validate_arrays
from selectivity.dataset_shapes import TORCHVISION_DATASETS

logger = logging.getLogger(__name__)

CIFAR100_FOLDER = "cifar-100-python"
SVHN_FILES = {"train": "train_32x32.mat", "test": "test_32x32.mat"}
STL10_FOLDER = "stl10_binary"
STL10_FILES = {"train": ("train_X.bin", "train_y.bin"), "test": ("test_X.bin", "test_y.bin")}
STL10_CLASS_NAMES_FILE = "class_names.txt"
STL10_SIZE = 96


def torchvision_md5s(name: str) -> dict[str, str]:
    """File name -> md5 that torchvision records for the files of ``name`` read here."""
    from torchvision import datasets

    if name == "cifar100":
        record = datasets.CIFAR100
        md5s = dict(record.train_list + record.test_list)
        md5s[record.meta["filename"]] = record.meta["md5"]
        return md5s
    if name == "svhn":
        return {file: md5 for _, file, md5 in datasets.SVHN.split_list.values()}
    if name == "stl10":
        return dict(datasets.STL10.train_list + datasets.STL10.test_list)
    raise ValueError(f"no md5 record for {name!r}")


def verify_file_md5(path: Path, expected: str, title: str) -> None:
    """Raise :class:`DatasetError` naming ``path`` when its md5 is not torchvision's record."""
    from torchvision.datasets.utils import calculate_md5, check_integrity

    if not check_integrity(str(path), expected):
        raise DatasetError(
            f"{path}: md5 checksum mismatch (expected {expected}, got {calculate_md5(str(path))}); the file is "
            f"corrupted, truncated or not the official {title} file (dataset.verify_checksum: false skips the check)"
        )


def _dataset_folder(root: Path, inner: str, marker: str, title: str) -> Path:
    """``root`` or ``root/inner``: the one holding ``marker``."""
    for folder in (root, root / inner):
        if (folder / marker).is_file():
            return folder
    raise DatasetError(
        f"dataset.local_path: {root} holds no {title} files (looked for {marker} in it and in {inner}/)"
    )


def _require(folder: Path, names, title: str) -> None:
    missing = [name for name in names if not (folder / name).is_file()]
    if missing:
        raise DatasetError(f"{folder}: missing {title} files {missing}")


def _check(folder: Path, names, name: str, verify: bool) -> None:
    title = TORCHVISION_DATASETS[name].title
    _require(folder, names, title)
    if verify:
        md5s = torchvision_md5s(name)
        logger.info("verifying the md5 checksums of %s", folder)
        for file in names:
            if file in md5s:
                verify_file_md5(folder / file, md5s[file], title)


def read_cifar100(root: str | os.PathLike, verify_checksum: bool = True) -> Dataset:
    """CIFAR-100's ``train``, ``test`` and ``meta`` pickles: 32-px images, the 100 fine labels."""
    folder = _dataset_folder(Path(root), CIFAR100_FOLDER, "meta", "CIFAR-100")
    _check(folder, ("train", "test", "meta"), "cifar100", verify_checksum)

    def arrays(file: str) -> tuple[np.ndarray, np.ndarray]:
        batch = read_cifar10_pickle(folder / file)
        missing = [key for key in ("data", "fine_labels") if key not in batch]
        if missing:
            raise DatasetError(f"{folder / file}: lacks {missing}; keys present: {sorted(batch)}")
        data = np.asarray(batch["data"])
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise DatasetError(
                f"{folder / file}: data must be uint8 (N, 3072), got {data.dtype} {data.shape}"
            )
        labels = np.asarray(batch["fine_labels"], dtype=np.int64)
        images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
        return np.ascontiguousarray(images), labels

    x_train, y_train = arrays("train")
    x_test, y_test = arrays("test")
    meta = read_cifar10_pickle(folder / "meta")
    if "fine_label_names" not in meta:
        raise DatasetError(f"{folder / 'meta'}: lacks fine_label_names; keys present: {sorted(meta)}")
    names = [n.decode("latin1") if isinstance(n, bytes) else str(n) for n in meta["fine_label_names"]]
    return _dataset(x_train, y_train, x_test, y_test, names, folder, "CIFAR-100", verify_checksum)


def read_svhn(root: str | os.PathLike, verify_checksum: bool = True) -> Dataset:
    """SVHN's cropped digits, ``train_32x32.mat`` and ``test_32x32.mat`` (label 10 is the digit 0)."""
    from scipy.io import loadmat

    folder = _dataset_folder(Path(root), "svhn", SVHN_FILES["train"], "SVHN")
    _check(folder, tuple(SVHN_FILES.values()), "svhn", verify_checksum)

    def arrays(file: str) -> tuple[np.ndarray, np.ndarray]:
        try:
            content = loadmat(str(folder / file))
        except Exception as error:  # scipy raises several types for a file that is not a .mat
            raise DatasetError(f"{folder / file}: not a readable MATLAB file ({error})") from error
        if "X" not in content or "y" not in content:
            raise DatasetError(f"{folder / file}: lacks the arrays X and y")
        images, labels = np.asarray(content["X"]), np.asarray(content["y"]).reshape(-1).astype(np.int64)
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[:3] != (32, 32, 3):
            raise DatasetError(
                f"{folder / file}: X must be uint8 (32, 32, 3, N), got {images.dtype} {images.shape}"
            )
        labels[labels == 10] = 0
        return np.ascontiguousarray(images.transpose(3, 0, 1, 2)), labels

    x_train, y_train = arrays(SVHN_FILES["train"])
    x_test, y_test = arrays(SVHN_FILES["test"])
    names = [str(digit) for digit in range(10)]
    return _dataset(x_train, y_train, x_test, y_test, names, folder, "SVHN", verify_checksum)


def read_stl10(root: str | os.PathLike, verify_checksum: bool = True) -> Dataset:
    """STL-10's labelled train and test images (96 px; the binary files store them column-major)."""
    folder = _dataset_folder(Path(root), STL10_FOLDER, STL10_CLASS_NAMES_FILE, "STL-10")
    files = [name for pair in STL10_FILES.values() for name in pair]
    _check(folder, (*files, STL10_CLASS_NAMES_FILE), "stl10", verify_checksum)

    def arrays(split: str) -> tuple[np.ndarray, np.ndarray]:
        images_file, labels_file = STL10_FILES[split]
        raw = np.fromfile(folder / images_file, dtype=np.uint8)
        if raw.size % (3 * STL10_SIZE * STL10_SIZE):
            raise DatasetError(f"{folder / images_file}: {raw.size} bytes are not whole 3x96x96 images")
        images = raw.reshape(-1, 3, STL10_SIZE, STL10_SIZE).transpose(0, 3, 2, 1)  # (N, row, column, RGB)
        labels = np.fromfile(folder / labels_file, dtype=np.uint8).astype(np.int64) - 1
        if len(labels) != len(images):
            raise DatasetError(f"{folder / labels_file}: {len(labels)} labels for {len(images)} images")
        return np.ascontiguousarray(images), labels

    x_train, y_train = arrays("train")
    x_test, y_test = arrays("test")
    text = (folder / STL10_CLASS_NAMES_FILE).read_text().split("\n")
    names = [line.strip() for line in text if line.strip()]
    return _dataset(x_train, y_train, x_test, y_test, names, folder, "STL-10", verify_checksum)


def _dataset(x_train, y_train, x_test, y_test, names, folder: Path, title: str, verified: bool) -> Dataset:
    validate_arrays(x_train, y_train, x_test, y_test, len(names), str(folder))
    checked = "md5-verified" if verified else "checksums not verified"
    return Dataset(x_train, y_train, x_test, y_test, names, f"{title} ({folder}, {checked})")


READERS: dict[str, Callable[..., Dataset]] = {
    "cifar100": read_cifar100,
    "svhn": read_svhn,
    "stl10": read_stl10,
}


def download_torchvision_dataset(name: str, root: str | os.PathLike) -> Path:
    """Download ``name``'s train and test files with torchvision into ``root`` (md5-checked by
    torchvision; an intact copy is kept); return ``root``."""
    from torchvision import datasets

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    title = TORCHVISION_DATASETS[name].title
    logger.info("downloading %s into %s (or verifying an existing copy)", title, root)
    try:
        if name == "cifar100":
            datasets.CIFAR100(str(root), train=True, download=True)
        elif name == "svhn":
            for split in SVHN_FILES:
                datasets.SVHN(str(root), split=split, download=True)
        elif name == "stl10":
            datasets.STL10(str(root), split="train", download=True)
        else:
            raise ValueError(f"{name!r} is not downloaded through torchvision here")
    except (OSError, RuntimeError) as error:  # URLError is an OSError; an md5 failure a RuntimeError
        raise DatasetError(
            f"could not download {title} into {root}: {error}. Without network access set dataset.source: "
            f"local and dataset.local_path to a copy in torchvision's layout"
        ) from error
    return root


def read_torchvision_dataset(
    name: str, source: str, local_path: str | None, download_dir: str, verify_checksum: bool
) -> Dataset:
    """``name`` (cifar100, svhn or stl10) downloaded into ``download_dir`` or read from ``local_path``."""
    if name not in READERS:
        raise DatasetError(f"dataset.name: {name!r} is not read here; known: {sorted(READERS)}")
    if source == "download":
        folder = download_torchvision_dataset(name, download_dir)
        dataset = READERS[name](folder, verify_checksum=verify_checksum)
        dataset.description = dataset.description.replace(f"({folder}, ", "(torchvision download, ")
        return dataset
    if source != "local":
        raise DatasetError(f"dataset.source must be download or local, got {source!r}")
    if not local_path or not Path(local_path).exists():
        raise DatasetError(f"dataset.local_path: {local_path!r} does not exist")
    return READERS[name](local_path, verify_checksum=verify_checksum)
