"""CIFAR-10 in the canonical form (docs/method.md §2): torchvision download, the python batches,
the official archive, and local ``.npz`` copies.

* Downloaded by torchvision (:func:`download_cifar10`; torchvision checks the archive's md5)
  and read from its ``cifar-10-batches-py`` folder (:func:`read_cifar10_batches`).
* A local copy: a ``cifar-10-batches-py`` folder (or a folder holding one), the official
  ``cifar-10-python.tar.gz`` (:func:`read_cifar10_archive`) or an ``.npz`` with
  ``x_train, y_train, x_test, y_test`` (:func:`read_npz_dataset`). The batch files and the
  archive are checked against the published md5 sums (torchvision's record and its
  ``check_integrity``) unless ``verify_checksum`` is off. The batch files are pickles; they are
  read with an unpickler that only rebuilds numpy arrays, so a tampered file cannot run code
  even when checksums are not verified.
"""

from __future__ import annotations

import logging
import os
import pickle
import tarfile
import tempfile
import zlib
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

import numpy as np

from selectivity.data.dataset import Dataset, DatasetError, validate_arrays

logger = logging.getLogger(__name__)


# The official class order of CIFAR-10 (``batches.meta`` ``label_names``).
CIFAR10_CLASSES: tuple[str, ...] = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
CIFAR10_FOLDER_NAME = "cifar-10-batches-py"
CIFAR10_ARCHIVE_NAME = "cifar-10-python.tar.gz"
CIFAR10_ARCHIVE_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR10_TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
CIFAR10_TEST_FILE = "test_batch"
CIFAR10_META_FILE = "batches.meta"


LOCAL_FORMS = (
    f"a {CIFAR10_FOLDER_NAME} folder (or a folder that holds one)",
    f"the official {CIFAR10_ARCHIVE_NAME} (.tar.gz or .tgz)",
    "an .npz with x_train, y_train, x_test, y_test",
)
NPZ_REQUIRED_KEYS = ("x_train", "y_train", "x_test", "y_test")


def download_cifar10(root: str | os.PathLike) -> Path:
    """Download CIFAR-10 with torchvision into ``root``; return its ``cifar-10-batches-py`` folder.

    torchvision verifies the archive's md5 and skips the download when ``root`` already holds
    intact files. Network failures become a :class:`DatasetError` that names the offline
    alternative.
    """
    from torchvision.datasets import CIFAR10  # imported only when needed (slow import)

    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    logger.info("downloading CIFAR-10 into %s (or verifying an existing copy)", root)
    try:
        for train in (True, False):
            CIFAR10(str(root), train=train, download=True)
    except (
        OSError,
        RuntimeError,
    ) as error:  # URLError is an OSError; torchvision's md5 failure a RuntimeError
        raise DatasetError(
            f"could not download CIFAR-10 into {root}: {error}. Without network access set "
            f"dataset.source: local and dataset.local_path to {' or '.join(LOCAL_FORMS)}"
        ) from error
    return root / CIFAR10_FOLDER_NAME


def cifar10_batch_md5s() -> dict[str, str]:
    """The published md5 of every file of ``cifar-10-batches-py``, as torchvision records them."""
    from torchvision.datasets import CIFAR10

    md5s = {name: md5 for name, md5 in CIFAR10.train_list + CIFAR10.test_list}
    md5s[CIFAR10.meta["filename"]] = CIFAR10.meta["md5"]
    return md5s


def verify_md5(path: Path, expected: str) -> None:
    """Raise :class:`DatasetError` naming ``path`` when its md5 (torchvision's check) is not ``expected``."""
    from torchvision.datasets.utils import calculate_md5, check_integrity

    if not check_integrity(str(path), expected):
        raise DatasetError(
            f"{path}: md5 checksum mismatch (expected {expected}, got {calculate_md5(str(path))}); the file is "
            "corrupted, truncated or not the official CIFAR-10 file"
        )


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles plain containers and numpy arrays only: a pickle cannot run code through it.

    The CIFAR-10 batches were written by Python 2's cPickle and reference numpy's array
    reconstructor under its old module name ``numpy.core.multiarray``.
    """

    _allowed = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._allowed:
            raise pickle.UnpicklingError(f"refusing to load {module}.{name}: only numpy arrays are allowed")
        if name == "_reconstruct":
            try:
                from numpy._core.multiarray import _reconstruct  # numpy >= 2
            except ImportError:  # pragma: no cover - numpy 1.x
                from numpy.core.multiarray import _reconstruct
            return _reconstruct
        return getattr(np, name)


def read_cifar10_pickle(path: Path) -> dict[str, Any]:
    """One CIFAR-10 batch or meta file as a dict with ``str`` keys (Python 2 strings read as latin1)."""
    try:
        with open(path, "rb") as handle:
            content = _NumpyOnlyUnpickler(handle, encoding="latin1").load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError) as error:
        raise DatasetError(f"{path}: not a readable CIFAR-10 python batch ({error})") from error
    if not isinstance(content, dict):
        raise DatasetError(f"{path}: expected a pickled dict, found {type(content).__name__}")
    return {key.decode("latin1") if isinstance(key, bytes) else key: value for key, value in content.items()}


def cifar10_batch_arrays(path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Images uint8 (N, 32, 32, 3) RGB HWC and labels int64 (N,) of one batch file.

    Each row of ``data`` holds 1024 red, then 1024 green, then 1024 blue values, each plane in
    row-major order.
    """
    batch = read_cifar10_pickle(path)
    missing = [key for key in ("data", "labels") if key not in batch]
    if missing:
        raise DatasetError(f"{path}: batch lacks {missing}; keys present: {sorted(batch)}")
    data = np.asarray(batch["data"])
    if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
        raise DatasetError(f"{path}: data must be uint8 (N, 3072), got {data.dtype} {data.shape}")
    labels = np.asarray(batch["labels"])
    if labels.shape != (len(data),) or not np.issubdtype(labels.dtype, np.integer):
        raise DatasetError(f"{path}: expected {len(data)} integer labels, got {labels.dtype} {labels.shape}")
    images = data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
    return np.ascontiguousarray(images), labels.astype(np.int64)


def read_cifar10_batches(folder: str | os.PathLike, verify_checksums: bool = True) -> Dataset:
    """Read ``data_batch_1..5``, ``test_batch`` and ``batches.meta`` of a ``cifar-10-batches-py`` folder.

    With ``verify_checksums`` every file's md5 must equal the published one (torchvision's
    record); a missing file or a mismatch raises :class:`DatasetError` naming the file.
    """
    folder = Path(folder)
    names = (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE, CIFAR10_META_FILE)
    for name in names:
        if not (folder / name).is_file():
            raise DatasetError(
                f"{folder / name}: missing CIFAR-10 file "
                f"(a {CIFAR10_FOLDER_NAME} folder holds {', '.join(names)})"
            )
    if verify_checksums:
        logger.info("verifying the md5 checksums of %s", folder)
        expected = cifar10_batch_md5s()
        for name in names:
            verify_md5(folder / name, expected[name])
    logger.info("reading CIFAR-10 batches from %s", folder)
    train_parts = [cifar10_batch_arrays(folder / name) for name in CIFAR10_TRAIN_FILES]
    x_test, y_test = cifar10_batch_arrays(folder / CIFAR10_TEST_FILE)
    meta = read_cifar10_pickle(folder / CIFAR10_META_FILE)
    if "label_names" not in meta:
        raise DatasetError(f"{folder / CIFAR10_META_FILE}: lacks label_names; keys present: {sorted(meta)}")
    class_names = [
        name.decode("latin1") if isinstance(name, bytes) else str(name) for name in meta["label_names"]
    ]
    x_train = np.concatenate([images for images, _ in train_parts])
    y_train = np.concatenate([labels for _, labels in train_parts])
    validate_arrays(x_train, y_train, x_test, y_test, len(class_names), str(folder))
    checked = "md5-verified" if verify_checksums else "checksums not verified"
    return Dataset(x_train, y_train, x_test, y_test, class_names, f"CIFAR-10 (python batches, {checked})")


@contextmanager
def _tar_data_filter() -> Iterator[None]:
    """Make tarfile extract with its "data" filter: no absolute paths, no links or files outside
    the target folder (torchvision's extract_archive calls extractall with the default filter)."""
    saved = tarfile.TarFile.extraction_filter
    tarfile.TarFile.extraction_filter = staticmethod(tarfile.data_filter)
    try:
        yield
    finally:
        tarfile.TarFile.extraction_filter = saved


def read_cifar10_archive(path: str | os.PathLike, verify_checksum: bool = True) -> Dataset:
    """Read the official ``cifar-10-python.tar.gz``: check its md5, extract it, read the batches.

    Extraction is torchvision's ``extract_archive`` into a temporary folder, with tarfile's
    "data" filter, so an archive cannot write outside that folder. A truncated or corrupted
    archive raises :class:`DatasetError` (checksum mismatch, or the tar/gzip error when not
    verifying).
    """
    from torchvision.datasets.utils import extract_archive

    path = Path(path)
    if verify_checksum:
        logger.info("verifying the md5 checksum of %s", path)
        verify_md5(path, CIFAR10_ARCHIVE_MD5)
    with tempfile.TemporaryDirectory(prefix="cifar10-") as temporary:
        logger.info("extracting %s", path)
        try:
            with _tar_data_filter():
                extract_archive(str(path), temporary)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
            raise DatasetError(
                f"{path}: the archive is truncated or corrupted ({type(error).__name__}: {error})"
            ) from error
        folder = Path(temporary) / CIFAR10_FOLDER_NAME
        for name in (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE, CIFAR10_META_FILE):
            if not (folder / name).is_file():
                raise DatasetError(f"{path}: archive lacks the file {CIFAR10_FOLDER_NAME}/{name}")
        dataset = read_cifar10_batches(folder, verify_checksums=verify_checksum)
    checked = "md5-verified" if verify_checksum else "checksum not verified"
    dataset.description = f"CIFAR-10 (local {CIFAR10_ARCHIVE_NAME}, {checked})"
    return dataset


def read_npz_dataset(
    path: str | os.PathLike,
    class_names: Sequence[str] = CIFAR10_CLASSES,
    description: str | None = None,
) -> Dataset:
    """A dataset from a local ``.npz`` holding ``x_train, y_train, x_test, y_test``.

    Images must be uint8 (N, H, H, 3) RGB and labels integers in ``0..len(class_names) - 1``.
    ``class_names`` and ``description`` stored in the file (as in a canonical dataset file)
    take precedence over the arguments.
    """
    path = Path(path)
    logger.info("reading the dataset arrays of %s", path)
    try:
        with np.load(path, allow_pickle=False) as blob:
            arrays = {key: blob[key] for key in blob.files}
    except Exception as error:  # np.load raises many types for a file that is not an npz
        raise DatasetError(f"{path}: cannot read as .npz ({type(error).__name__}: {error})") from error
    missing = [key for key in NPZ_REQUIRED_KEYS if key not in arrays]
    if missing:
        raise DatasetError(
            f"{path}: missing arrays {missing} (found {sorted(arrays)}; need {list(NPZ_REQUIRED_KEYS)})"
        )
    if "class_names" in arrays:
        class_names = [str(name) for name in arrays["class_names"]]
    class_names = list(class_names)
    validate_arrays(
        arrays["x_train"], arrays["y_train"], arrays["x_test"], arrays["y_test"], len(class_names), str(path)
    )
    if "description" in arrays:
        description = str(arrays["description"])
    if description is None:
        description = f"local file {path.name}"
    return Dataset(
        arrays["x_train"],
        arrays["y_train"].astype(np.int64),
        arrays["x_test"],
        arrays["y_test"].astype(np.int64),
        class_names,
        description,
    )


def read_local_cifar10(path: str | os.PathLike, verify_checksum: bool = True) -> Dataset:
    """CIFAR-10 from a local path in any accepted form (see ``LOCAL_FORMS``), chosen by what it is."""
    path = Path(path)
    if not path.exists():
        raise DatasetError(f"dataset.local_path: {path} does not exist")
    if path.is_dir():
        for folder in (path, path / CIFAR10_FOLDER_NAME):
            if (folder / CIFAR10_META_FILE).exists() or (folder / CIFAR10_TRAIN_FILES[0]).exists():
                return read_cifar10_batches(folder, verify_checksums=verify_checksum)
    elif path.name.endswith((".tar.gz", ".tgz")):
        return read_cifar10_archive(path, verify_checksum=verify_checksum)
    elif path.suffix == ".npz":
        # No published checksum exists for an .npz copy; its arrays are validated instead.
        return read_npz_dataset(path, CIFAR10_CLASSES, description=f"CIFAR-10 (local file {path.name})")
    raise DatasetError(f"dataset.local_path: {path} is none of the accepted forms: {'; '.join(LOCAL_FORMS)}")
