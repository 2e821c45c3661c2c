"""Which dataset a workflow's ``dataset`` settings name: the data rule's one call."""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any, Mapping

from selectivity.data.cifar10 import download_cifar10, read_cifar10_batches, read_local_cifar10
from selectivity.data.dataset import Dataset, DatasetError, dataset_digest
from selectivity.data.synthetic import make_synthetic_dataset
from selectivity.dataset_shapes import BUILT_IN_DATASETS, TORCHVISION_DATASETS

DATASET_NAMES = BUILT_IN_DATASETS
DATASET_SOURCES = ("download", "local")
SYNTHETIC_SETTING_KEYS = ("train_size", "test_size", "seed")

logger = logging.getLogger(__name__)


def _setting(settings: Mapping[str, Any], key: str, prefix: str = "dataset") -> Any:
    """``settings[key]``, or a :class:`DatasetError` naming the missing ``prefix.key``."""
    if key not in settings:
        raise DatasetError(f"{prefix}.{key} is not set (settings given: {sorted(settings)})")
    return settings[key]


def build_dataset(settings: Mapping[str, Any], progress: bool = True) -> Dataset:
    """The dataset a workflow's ``dataset`` settings describe (the data rule's one call).

    ``settings`` (:func:`selectivity.config.dataset_settings`): ``name`` (``cifar10``,
    ``cifar100``, ``svhn``, ``stl10``, ``synthetic`` or an image folder's own name), ``source``
    (``download`` | ``local``; datasets read by name), ``local_path``, ``download_dir``,
    ``verify_checksum``; ``synthetic`` = ``{train_size, test_size, seed}``; an image folder's
    ``image_folder`` = ``{path, image_size}`` (its ``files`` fingerprint only reruns the rule).
    """
    name = _setting(settings, "name")
    if settings.get("image_folder"):
        from selectivity.data.folder_dataset import read_image_folder_dataset

        folder = settings["image_folder"]
        return read_image_folder_dataset(folder["path"], folder["image_size"], name, progress=progress)
    if name in TORCHVISION_DATASETS and name != "cifar10":
        from selectivity.data.torchvision_datasets import read_torchvision_dataset

        return read_torchvision_dataset(
            name,
            _setting(settings, "source"),
            settings.get("local_path"),
            _setting(settings, "download_dir"),
            _setting(settings, "verify_checksum"),
        )
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
        raise DatasetError(
            f"dataset.name must be one of {list(DATASET_NAMES)} or an image folder's name "
            f"(with dataset.image_folder), got {name!r}"
        )
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


# A local copy made again (copied, unpacked or re-downloaded anew, a shared folder provisioned
# again) has a new modification time. Snakemake would rebuild the dataset from it and, as it plans
# every job before any runs, retrain every network after it, although the dataset comes out the
# same. The data rule therefore reads such a copy as ancient when it still builds the dataset of
# the digest file (workflow/rules/data_inputs.smk): only a copy with other content reruns anything.


def builds_the_dataset_of(settings: Mapping[str, Any], digest_file: str | os.PathLike) -> bool:
    """Whether ``settings`` build the dataset whose content digest ``digest_file`` holds.

    Reads the whole source (seconds for CIFAR-10), so it is asked only of a local copy newer than
    the digest. A source that cannot be read answers False: the data rule then runs and names
    the problem.
    """
    try:
        recorded = Path(digest_file).read_text().strip()
        return dataset_digest(build_dataset(settings, progress=False)) == recorded
    except (DatasetError, OSError, ValueError, KeyError) as error:
        logger.info("dataset not compared with %s: %s", digest_file, error)
        return False
