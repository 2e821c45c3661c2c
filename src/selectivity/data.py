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

Sources (:func:`build_dataset`, the data rule's one call)
---------------------------------------------------------
* CIFAR-10 downloaded by torchvision (:func:`download_cifar10`; torchvision checks the archive's
  md5) and read from its ``cifar-10-batches-py`` folder (:func:`read_cifar10_batches`).
* A local copy: a ``cifar-10-batches-py`` folder (or a folder holding one), the official
  ``cifar-10-python.tar.gz`` (:func:`read_cifar10_archive`) or an ``.npz`` with
  ``x_train, y_train, x_test, y_test`` (:func:`read_npz_dataset`). The batch files and the
  archive are checked against the published md5 sums unless ``verify_checksum`` is off. The
  batch files are pickles; they are read with an unpickler that only rebuilds numpy arrays, so a
  tampered file cannot run code even when checksums are not verified.
* A synthetic stand-in (:func:`make_synthetic_dataset`) for tests and quick runs without CIFAR-10.

Synthetic stand-in: generative recipe
-------------------------------------
``num_classes`` (default 10) classes = ``num_classes / 2`` grating orientations, equally spaced
over 0..180 deg (0, 36, 72, 108, 144 deg for 10 classes), x 2 spatial-frequency bands; class
``2 * o + b`` has orientation index ``o`` and band ``b`` (0 = low, 1 = high), and is named e.g.
``orientation_36deg_high_sf``. Orientation uses the convention of the grating stimuli (spec
section 3: pixel value ``cos(k * (-sin(theta) * row + cos(theta) * col) + phase)``), so a unit's
preferred orientation can be compared with the class orientations. Each image (H x H RGB,
values in [0, 1] before quantisation; lengths below are for H = 32 and scale with H / 32):

1. background: a uniform colour, each channel drawn from U(0.25, 0.75);
2. class cue: a sinusoidal grating with orientation = class orientation + U(-0.6, 0.6) x the
   orientation spacing (+-21.6 deg for 10 classes: neighbouring classes overlap, an
   irreducible error of about 1/6 that keeps accuracy from saturating),
   period U(7, 11) px (low band) or U(3.5, 5) px (high band), random phase, under a Gaussian
   window centred at U(0.3, 0.7) x (H - 1) in each axis with sigma U(0.18, 0.3) x H,
   amplitude U(0.15, 0.4), along a random colour direction (three U(0.2, 1) weights scaled
   to a maximum of 1);
3. distractor texture: a full-field grating of uniformly random orientation, period
   U(3.5, 11) px, random phase and colour direction, with amplitude U(0.1, 0.3) x the class
   grating's amplitude (weak enough that the class grating stays the dominant oriented
   component of nearly every image);
4. three distractor bars: anti-aliased line segments of random orientation, length
   U(0.2, 0.45) x H, half-width U(0.5, 1) px, centred anywhere, intensity U(-0.3, 0.3);
5. pixel noise: i.i.d. Gaussian per pixel and channel, sigma U(0.02, 0.08) per image;
6. clip to [0, 1] and round to uint8.

Labels are exactly balanced (counts differ by at most one) and shuffled. Train and test sets
come from independent streams of one ``numpy.random.SeedSequence(seed)``, so the test set does
not depend on ``train_size``. The same arguments give bit-identical arrays with the same numpy
on the same machine.
"""

from __future__ import annotations

import hashlib
import logging
import os
import pickle
import shutil
import tarfile
import tempfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from tqdm.auto import tqdm

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


# --------------------------------------------------------------------------------------------
# CIFAR-10: download, python batches, the official archive, local .npz copies
# --------------------------------------------------------------------------------------------

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


def file_md5(path: str | os.PathLike) -> str:
    """Hex md5 of a file, read in 1 MiB blocks (md5 is what CIFAR-10 publishes)."""
    digest = hashlib.md5(usedforsecurity=False)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def cifar10_batch_md5s() -> dict[str, str]:
    """The published md5 of every file of ``cifar-10-batches-py``, as torchvision records them."""
    from torchvision.datasets import CIFAR10

    md5s = {name: md5 for name, md5 in CIFAR10.train_list + CIFAR10.test_list}
    md5s[CIFAR10.meta["filename"]] = CIFAR10.meta["md5"]
    return md5s


def verify_md5(path: Path, expected: str) -> None:
    """Raise :class:`DatasetError` naming ``path`` when its md5 is not ``expected``."""
    actual = file_md5(path)
    if actual != expected:
        raise DatasetError(
            f"{path}: md5 checksum mismatch (expected {expected}, got {actual}); the file is "
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


def read_cifar10_archive(path: str | os.PathLike, verify_checksum: bool = True) -> Dataset:
    """Read the official ``cifar-10-python.tar.gz``: check its md5, extract the batches, read them.

    Only the seven expected members are extracted (by name, into a temporary folder), so an
    archive cannot write anywhere else. A truncated or corrupted archive raises
    :class:`DatasetError` (checksum mismatch, or the tar/gzip error when not verifying).
    """
    path = Path(path)
    if verify_checksum:
        logger.info("verifying the md5 checksum of %s", path)
        verify_md5(path, CIFAR10_ARCHIVE_MD5)
    members = (*CIFAR10_TRAIN_FILES, CIFAR10_TEST_FILE, CIFAR10_META_FILE)
    with tempfile.TemporaryDirectory(prefix="cifar10-") as temporary:
        folder = Path(temporary) / CIFAR10_FOLDER_NAME
        folder.mkdir()
        logger.info("extracting %s", path)
        try:
            with tarfile.open(path, "r:gz") as archive:
                for name in members:
                    try:
                        source = archive.extractfile(f"{CIFAR10_FOLDER_NAME}/{name}")
                    except KeyError:
                        source = None
                    if source is None:
                        raise DatasetError(f"{path}: archive lacks the file {CIFAR10_FOLDER_NAME}/{name}")
                    with source, open(folder / name, "wb") as target:
                        shutil.copyfileobj(source, target)
        except (tarfile.TarError, EOFError, zlib.error, OSError) as error:
            raise DatasetError(
                f"{path}: the archive is truncated or corrupted ({type(error).__name__}: {error})"
            ) from error
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


# --------------------------------------------------------------------------------------------
# Synthetic stand-in (recipe in the module docstring)
# --------------------------------------------------------------------------------------------

SYNTHETIC_SPATIAL_FREQUENCY_BANDS = ("low", "high")
# Grating periods in pixels for a 32-px image, per band (scaled by image_size / 32).
SYNTHETIC_PERIOD_RANGES_PX = ((7.0, 11.0), (3.5, 5.0))
# Orientation jitter as a fraction of the class spacing. Above 0.5 neighbouring classes overlap:
# about a third of the images lie where two classes are equally likely, a Bayes error near 1/6
# that keeps test accuracy below 100% (measured for cnn7: 0.77-0.79 after 4 epochs on 4000 images).
SYNTHETIC_ORIENTATION_JITTER = 0.6
SYNTHETIC_DISTRACTOR_BARS = 3
# Images are rendered in chunks of at most this many pixels (per channel), to bound memory.
SYNTHETIC_PIXELS_PER_CHUNK = 1 << 20


def _is_integer(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def synthetic_class_orientations_deg(num_classes: int) -> np.ndarray:
    """Orientation (deg) of every synthetic class: ``num_classes / 2`` angles over 0..180, each twice."""
    num_orientations = num_classes // 2
    return np.repeat(np.arange(num_orientations) * (180.0 / num_orientations), 2)


def synthetic_class_names(num_classes: int) -> list[str]:
    """Names such as ``orientation_36deg_high_sf`` in label order (label = 2 * orientation + band)."""
    return [
        f"orientation_{float(angle):g}deg_{SYNTHETIC_SPATIAL_FREQUENCY_BANDS[label % 2]}_sf"
        for label, angle in enumerate(np.round(synthetic_class_orientations_deg(num_classes), 1))
    ]


def _pixel_grid(image_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Row and column coordinates (1, H, W) centred on the image, as in the grating stimuli."""
    centre = (image_size - 1) / 2
    rows, cols = np.meshgrid(np.arange(image_size) - centre, np.arange(image_size) - centre, indexing="ij")
    return rows[None], cols[None]


def _gratings(rows, cols, theta, period, phase) -> np.ndarray:
    """Sinusoidal gratings (n, H, W) in the stimulus convention cos(k(-sin t row + cos t col) + phase)."""
    k = (2 * np.pi / period)[:, None, None]
    projection = -np.sin(theta)[:, None, None] * rows + np.cos(theta)[:, None, None] * cols
    return np.cos(k * projection + phase[:, None, None])


def _colour_directions(rng: np.random.Generator, n: int) -> np.ndarray:
    """Random positive RGB weights (n, 3) with maximum 1, so luminance carries the pattern in any hue."""
    weights = rng.uniform(0.2, 1.0, (n, 3))
    return weights / weights.max(axis=1, keepdims=True)


def _distractor_bars(rng: np.random.Generator, n: int, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """Sum of anti-aliased line segments of random orientation, length, position and sign (n, H, W)."""
    image_size = rows.shape[-1]
    scale = image_size / 32
    half = (image_size - 1) / 2
    total = np.zeros((n, image_size, image_size))
    for _ in range(SYNTHETIC_DISTRACTOR_BARS):
        angle = rng.uniform(0, np.pi, n)[:, None, None]
        length = rng.uniform(0.2, 0.45, n)[:, None, None] * image_size
        half_width = rng.uniform(0.5, 1.0, n)[:, None, None] * scale
        centre_row = rng.uniform(-half, half, n)[:, None, None]
        centre_col = rng.uniform(-half, half, n)[:, None, None]
        intensity = rng.uniform(-0.3, 0.3, n)[:, None, None]
        d_row, d_col = rows - centre_row, cols - centre_col
        along = d_col * np.cos(angle) + d_row * np.sin(angle)
        across = -d_col * np.sin(angle) + d_row * np.cos(angle)
        distance = np.hypot(np.maximum(np.abs(along) - length / 2, 0), across)
        total += intensity * np.clip(half_width + 0.5 - distance, 0, 1)
    return total


def _render_synthetic_images(
    labels: np.ndarray, rng: np.random.Generator, image_size: int, num_classes: int
) -> np.ndarray:
    """uint8 (n, H, H, 3) images of the given labels; every parameter and the noise come from ``rng``."""
    n = len(labels)
    rows, cols = _pixel_grid(image_size)
    scale = image_size / 32
    # 1. background colour
    background = rng.uniform(0.25, 0.75, (n, 3))
    # 2. class cue: a windowed grating of the class orientation (jittered) and frequency band
    spacing = np.pi / (num_classes // 2)
    jitter = rng.uniform(-SYNTHETIC_ORIENTATION_JITTER, SYNTHETIC_ORIENTATION_JITTER, n) * spacing
    theta = np.deg2rad(synthetic_class_orientations_deg(num_classes)[labels]) + jitter
    low_band, high_band = (rng.uniform(*band, n) * scale for band in SYNTHETIC_PERIOD_RANGES_PX)
    period = np.where(labels % 2 == 0, low_band, high_band)
    phase = rng.uniform(0, 2 * np.pi, n)
    centre_row, centre_col = (rng.uniform(-0.2, 0.2, (n, 1, 1)) * (image_size - 1) for _ in range(2))
    sigma = rng.uniform(0.18, 0.3, (n, 1, 1)) * image_size
    window = np.exp(-((rows - centre_row) ** 2 + (cols - centre_col) ** 2) / (2 * sigma**2))
    amplitude = rng.uniform(0.15, 0.4, n)
    cue = _gratings(rows, cols, theta, period, phase) * window * amplitude[:, None, None]
    images = background[:, None, None, :] + cue[..., None] * _colour_directions(rng, n)[:, None, None, :]
    # 3. distractor texture: a weaker full-field grating of random orientation and frequency
    texture_theta = rng.uniform(0, np.pi, n)
    texture_period = rng.uniform(3.5, 11.0, n) * scale
    texture_phase = rng.uniform(0, 2 * np.pi, n)
    texture_amplitude = amplitude * rng.uniform(0.1, 0.3, n)
    texture = (
        _gratings(rows, cols, texture_theta, texture_period, texture_phase) * texture_amplitude[:, None, None]
    )
    images += texture[..., None] * _colour_directions(rng, n)[:, None, None, :]
    # 4. distractor bars, achromatic
    images += _distractor_bars(rng, n, rows, cols)[..., None]
    # 5. pixel noise
    images += rng.standard_normal(images.shape) * rng.uniform(0.02, 0.08, (n, 1, 1, 1))
    # 6. quantise
    return np.clip(np.rint(images * 255), 0, 255).astype(np.uint8)


def _make_synthetic_split(
    size: int,
    seed_sequence: np.random.SeedSequence,
    image_size: int,
    num_classes: int,
    progress: bool,
    what: str,
) -> tuple[np.ndarray, np.ndarray]:
    """Balanced shuffled labels and their images, rendered in chunks of bounded memory."""
    rng = np.random.default_rng(seed_sequence)
    labels = rng.permutation(np.arange(size) % num_classes).astype(np.int64)
    chunk = max(1, SYNTHETIC_PIXELS_PER_CHUNK // (image_size * image_size))
    images = np.empty((size, image_size, image_size, 3), dtype=np.uint8)
    for start in tqdm(
        range(0, size, chunk), desc=f"synthetic {what} images", disable=not progress, leave=False
    ):
        stop = min(start + chunk, size)
        images[start:stop] = _render_synthetic_images(labels[start:stop], rng, image_size, num_classes)
    return images, labels


def make_synthetic_dataset(
    train_size: int,
    test_size: int,
    seed: int,
    image_size: int = 32,
    num_classes: int = 10,
    progress: bool = True,
) -> Dataset:
    """A procedurally generated stand-in dataset of oriented gratings (recipe: module docstring).

    Not CIFAR-10: it exists so that the whole workflow can run, and be tested, without it.
    ``num_classes`` must be even (orientations x 2 frequency bands). Same arguments, same bytes.
    """
    for name, value, minimum in (
        ("train_size", train_size, 1),
        ("test_size", test_size, 1),
        ("image_size", image_size, 8),
        ("seed", seed, 0),
    ):
        if not _is_integer(value) or value < minimum:
            raise ValueError(f"make_synthetic_dataset: {name} must be an integer >= {minimum}, got {value!r}")
    if not _is_integer(num_classes) or num_classes < 2 or num_classes % 2:
        raise ValueError(
            "make_synthetic_dataset: num_classes must be an even integer >= 2 "
            f"(orientations x 2 frequency bands), got {num_classes!r}"
        )
    logger.info(
        "generating a synthetic dataset: %d train / %d test images, %d px, %d classes, seed %d",
        train_size,
        test_size,
        image_size,
        num_classes,
        seed,
    )
    train_sequence, test_sequence = np.random.SeedSequence(int(seed)).spawn(2)
    x_train, y_train = _make_synthetic_split(
        int(train_size), train_sequence, image_size, num_classes, progress, "train"
    )
    x_test, y_test = _make_synthetic_split(
        int(test_size), test_sequence, image_size, num_classes, progress, "test"
    )
    description = (
        f"synthetic stand-in (selectivity.data.make_synthetic_dataset, seed {seed}): windowed gratings of "
        f"{num_classes // 2} orientations x 2 spatial-frequency bands with distractor texture, bars and noise"
    )
    return Dataset(x_train, y_train, x_test, y_test, synthetic_class_names(num_classes), description)


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
    if not _is_integer(validation_size):
        raise ValueError(f"stratified_split: validation_size must be an integer, got {validation_size!r}")
    if not _is_integer(seed) or seed < 0:
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


# --------------------------------------------------------------------------------------------
# The data rule's dispatcher
# --------------------------------------------------------------------------------------------

DATASET_NAMES = ("cifar10", "synthetic")
DATASET_SOURCES = ("download", "local")
SYNTHETIC_SETTING_KEYS = ("train_size", "test_size", "seed")


def _setting(settings: Mapping[str, Any], key: str, prefix: str = "dataset") -> Any:
    """``settings[key]``, or a :class:`DatasetError` naming the missing ``prefix.key``."""
    if key not in settings:
        raise DatasetError(f"{prefix}.{key} is not set (settings given: {sorted(settings)})")
    return settings[key]


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


def build_dataset(settings: Mapping[str, Any], progress: bool = True) -> Dataset:
    """The dataset a workflow's ``dataset`` settings describe (the data rule's one call).

    ``settings``: ``name`` (``cifar10`` | ``synthetic``), ``source`` (``download`` | ``local``;
    ignored for synthetic), ``local_path``, ``download_dir``, ``verify_checksum`` and
    ``synthetic`` = ``{train_size, test_size, seed}``.
    """
    name = _setting(settings, "name")
    if name == "synthetic":
        synthetic = _setting(settings, "synthetic")
        if not isinstance(synthetic, Mapping):
            raise DatasetError(
                f"dataset.synthetic must be a mapping of {list(SYNTHETIC_SETTING_KEYS)}, got {synthetic!r}"
            )
        unknown = sorted(set(synthetic) - set(SYNTHETIC_SETTING_KEYS))
        if unknown:
            raise DatasetError(
                f"dataset.synthetic: unknown settings {unknown}; expected {list(SYNTHETIC_SETTING_KEYS)}"
            )
        sizes = {key: _setting(synthetic, key, "dataset.synthetic") for key in SYNTHETIC_SETTING_KEYS}
        return make_synthetic_dataset(**sizes, progress=progress)
    if name != "cifar10":
        raise DatasetError(f"dataset.name must be one of {list(DATASET_NAMES)}, got {name!r}")
    source = _setting(settings, "source")
    verify_checksum = _setting(settings, "verify_checksum")
    if not isinstance(verify_checksum, bool):
        raise DatasetError(f"dataset.verify_checksum must be true or false, got {verify_checksum!r}")
    if source == "download":
        folder = download_cifar10(_setting(settings, "download_dir"))
        dataset = read_cifar10_batches(folder, verify_checksums=verify_checksum)
        checked = "md5-verified" if verify_checksum else "checksums not verified"
        dataset.description = f"CIFAR-10 (torchvision download, {checked})"
        return dataset
    if source == "local":
        local_path = settings.get("local_path")
        if not local_path:
            raise DatasetError("dataset.local_path must be set when dataset.source is 'local'")
        return read_local_cifar10(local_path, verify_checksum=verify_checksum)
    raise DatasetError(f"dataset.source must be one of {list(DATASET_SOURCES)}, got {source!r}")


def load_test_images(
    path: str | os.PathLike, limit: int | None, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor, int]:
    """The first ``limit`` (all if None) test images of a canonical dataset file.

    Returns float images in [0, 1] (N, 3, H, W) and int64 labels on ``device``, plus the
    number of classes: the input of every causal analysis (which then applies the
    network's own ``prepare_inputs``). The first images, not a random subset, so every
    network and every analysis sees the same ones.
    """
    dataset = load_dataset(path)
    count = len(dataset.y_test) if limit is None else min(int(limit), len(dataset.y_test))
    images = images_to_tensor(dataset.x_test[:count]).to(device)
    labels = torch.as_tensor(dataset.y_test[:count], dtype=torch.int64, device=device)
    return images, labels, dataset.num_classes
