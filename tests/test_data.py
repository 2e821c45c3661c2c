"""Datasets: CIFAR-10 conversion and its failure modes, local copies, the split, the synthetic stand-in."""

from __future__ import annotations

import copy
import io
import os
import pickle
import struct
import tarfile
import urllib.error
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import selectivity.data.cifar10 as cifar10
import selectivity.data.build
from selectivity.data.cifar10 import (
    CIFAR10_CLASSES,
    download_cifar10,
    read_cifar10_archive,
    read_cifar10_batches,
    read_npz_dataset,
)
from selectivity.data.dataset import (
    Dataset,
    DatasetError,
    dataset_digest,
    load_split,
    mean_image,
    preprocess,
    save_split,
    stratified_split,
    stratified_validation_counts,
    validate_arrays,
)
from selectivity.config import files_newer_than
from selectivity.data.build import build_dataset, builds_the_dataset_of
from selectivity.data.synthetic import make_synthetic_dataset, synthetic_class_orientations_deg

REAL_SUBSET = Path(__file__).resolve().parents[2] / "shared/datasets/cifar10-subset.npz"
IMAGES_PER_BATCH = 4


# ------------------------------------------------------------------ a fabricated cifar-10-batches-py


class _Python2StylePickler(pickle._Pickler):
    """Writes text and bytes as Python 2 ``str`` (BINSTRING), as cPickle wrote the official batches."""

    dispatch = pickle._Pickler.dispatch.copy()

    def _save_python2_string(self, raw: bytes) -> None:
        self.write(pickle.BINSTRING + struct.pack("<i", len(raw)) + raw)

    def _save_str(self, text: str) -> None:
        self._save_python2_string(text.encode("latin1"))

    def _save_bytes(self, raw: bytes) -> None:
        self._save_python2_string(raw)

    dispatch[str] = _save_str
    dispatch[bytes] = _save_bytes


def python2_style_pickle(obj) -> bytes:
    """A protocol-2 pickle like the official files: Python 2 strings, numpy's old module name."""
    buffer = io.BytesIO()
    _Python2StylePickler(buffer, protocol=2).dump(obj)
    return buffer.getvalue().replace(b"cnumpy._core.multiarray\n", b"cnumpy.core.multiarray\n")


def known_image(batch: int, index: int) -> np.ndarray:
    """A distinct uint8 (32, 32, 3) image per (batch, index), asymmetric so any layout mix-up shows."""
    rows, cols = np.meshgrid(np.arange(32), np.arange(32), indexing="ij")
    planes = [(rows * 7 + cols * 3 + channel * 50 + batch * 11 + index * 5) % 256 for channel in range(3)]
    return np.stack(planes, axis=-1).astype(np.uint8)


def cifar_row(image: np.ndarray) -> np.ndarray:
    """The official row layout: 1024 red, 1024 green, 1024 blue values, each plane row-major."""
    return image.transpose(2, 0, 1).reshape(-1)


def batch_labels(batch: int) -> list[int]:
    return [(batch * 3 + index) % 10 for index in range(IMAGES_PER_BATCH)]


@pytest.fixture
def batches_folder(tmp_path: Path) -> Path:
    """A tiny cifar-10-batches-py folder: batches 1..5 (train) and 6 (test_batch), 4 images each."""
    folder = tmp_path / "cifar-10-batches-py"
    folder.mkdir()
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    for batch, name in enumerate(names, start=1):
        content = {
            "batch_label": f"fabricated batch {batch}",
            "labels": batch_labels(batch),
            "data": np.stack([cifar_row(known_image(batch, i)) for i in range(IMAGES_PER_BATCH)]),
            "filenames": [f"image_{batch}_{i}.png" for i in range(IMAGES_PER_BATCH)],
        }
        (folder / name).write_bytes(python2_style_pickle(content))
    meta = {"num_cases_per_batch": IMAGES_PER_BATCH, "label_names": list(CIFAR10_CLASSES), "num_vis": 3072}
    (folder / "batches.meta").write_bytes(python2_style_pickle(meta))
    return folder


def make_archive(folder: Path, path: Path) -> Path:
    with tarfile.open(path, "w:gz") as archive:
        archive.add(folder, arcname="cifar-10-batches-py")
    return path


# ------------------------------------------------------------------ CIFAR-10 python batches


def test_batches_convert_to_rgb_hwc_with_labels_and_class_names(batches_folder):
    dataset = read_cifar10_batches(batches_folder, verify_checksums=False)
    assert dataset.x_train.shape == (5 * IMAGES_PER_BATCH, 32, 32, 3)
    assert dataset.x_test.shape == (IMAGES_PER_BATCH, 32, 32, 3)
    assert dataset.x_train.dtype == np.uint8 and dataset.y_train.dtype == np.int64
    # Train images in batch order 1..5, each batch in file order.
    for batch in range(1, 6):
        for index in range(IMAGES_PER_BATCH):
            position = (batch - 1) * IMAGES_PER_BATCH + index
            np.testing.assert_array_equal(dataset.x_train[position], known_image(batch, index))
    np.testing.assert_array_equal(dataset.x_test[2], known_image(6, 2))
    assert dataset.y_train.tolist() == sum((batch_labels(b) for b in range(1, 6)), [])
    assert dataset.y_test.tolist() == batch_labels(6)
    assert dataset.class_names == list(CIFAR10_CLASSES)
    assert "CIFAR-10" in dataset.description and "not verified" in dataset.description


def test_pixel_order_red_plane_first_then_row_major(batches_folder):
    dataset = read_cifar10_batches(batches_folder, verify_checksums=False)
    row = cifar_row(known_image(1, 0))
    image = dataset.x_train[0]
    assert image[0, 0, 0] == row[0]  # red, top-left
    assert image[0, 1, 0] == row[1]  # red, next column
    assert image[1, 0, 0] == row[32]  # red, next row
    assert image[0, 0, 1] == row[1024]  # green, top-left
    assert image[31, 31, 2] == row[3071]  # blue, bottom-right


def test_checksum_verification_rejects_fabricated_files_naming_the_file(batches_folder):
    with pytest.raises(DatasetError, match=r"data_batch_1: md5 checksum mismatch"):
        read_cifar10_batches(batches_folder, verify_checksums=True)


def test_missing_batch_file_is_named(batches_folder):
    (batches_folder / "test_batch").unlink()
    with pytest.raises(DatasetError, match=r"test_batch: missing CIFAR-10 file"):
        read_cifar10_batches(batches_folder, verify_checksums=False)


def test_truncated_batch_file_is_a_dataset_error(batches_folder):
    path = batches_folder / "data_batch_3"
    path.write_bytes(path.read_bytes()[:500])
    with pytest.raises(DatasetError, match=r"data_batch_3: not a readable CIFAR-10 python batch"):
        read_cifar10_batches(batches_folder, verify_checksums=False)


def test_pickle_that_would_run_code_is_refused(batches_folder):
    class RunsCode:
        def __reduce__(self):
            return (print, ("this must never run",))

    (batches_folder / "data_batch_2").write_bytes(pickle.dumps({"data": RunsCode()}, protocol=2))
    with pytest.raises(DatasetError, match=r"data_batch_2: .*refusing to load .*print"):
        read_cifar10_batches(batches_folder, verify_checksums=False)


def test_batch_with_wrong_row_length_is_named(batches_folder):
    content = {"labels": [0, 1], "data": np.zeros((2, 1024), dtype=np.uint8)}
    (batches_folder / "data_batch_4").write_bytes(python2_style_pickle(content))
    with pytest.raises(DatasetError, match=r"data_batch_4: data must be uint8 \(N, 3072\)"):
        read_cifar10_batches(batches_folder, verify_checksums=False)


def test_expected_checksums_are_torchvisions_record():
    from torchvision.datasets import CIFAR10

    md5s = cifar10.cifar10_batch_md5s()
    assert set(md5s) == {*cifar10.CIFAR10_TRAIN_FILES, cifar10.CIFAR10_TEST_FILE, cifar10.CIFAR10_META_FILE}
    assert md5s["data_batch_1"] == "c99cafc152244af753f735de768cd75f"
    assert cifar10.CIFAR10_ARCHIVE_MD5 == CIFAR10.tgz_md5
    assert cifar10.CIFAR10_FOLDER_NAME == CIFAR10.base_folder


# ------------------------------------------------------------------ the archive


def test_archive_is_extracted_and_read(batches_folder, tmp_path):
    archive = make_archive(batches_folder, tmp_path / "cifar-10-python.tar.gz")
    dataset = read_cifar10_archive(archive, verify_checksum=False)
    np.testing.assert_array_equal(dataset.x_train[5], known_image(2, 1))
    assert dataset.y_test.tolist() == batch_labels(6)


def test_archive_checksum_mismatch_is_reported(batches_folder, tmp_path):
    archive = make_archive(batches_folder, tmp_path / "cifar-10-python.tar.gz")
    with pytest.raises(DatasetError, match=r"cifar-10-python.tar.gz: md5 checksum mismatch"):
        read_cifar10_archive(archive, verify_checksum=True)


@pytest.mark.parametrize("keep_fraction", [0.5, 0.02])
def test_truncated_archive_is_a_clear_dataset_error(batches_folder, tmp_path, keep_fraction):
    archive = make_archive(batches_folder, tmp_path / "cifar-10-python.tar.gz")
    raw = archive.read_bytes()
    archive.write_bytes(raw[: int(len(raw) * keep_fraction)])
    with pytest.raises(DatasetError, match=r"the archive is truncated or corrupted"):
        read_cifar10_archive(archive, verify_checksum=False)


def test_an_archive_member_outside_its_folder_is_refused(batches_folder, tmp_path):
    """torchvision extracts the archive; tarfile's data filter keeps it inside the temporary folder."""
    archive = tmp_path / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name in sorted(p.name for p in batches_folder.iterdir()):
            tar.add(batches_folder / name, arcname=f"cifar-10-batches-py/{name}")
        payload = b"planted"
        info = tarfile.TarInfo("../../planted.txt")
        info.size = len(payload)
        tar.addfile(info, io.BytesIO(payload))
    with pytest.raises(DatasetError, match="the archive is truncated or corrupted"):
        read_cifar10_archive(archive, verify_checksum=False)
    assert not list(Path("/tmp").glob("planted.txt")) and not (tmp_path.parent / "planted.txt").exists()


def test_archive_without_a_batch_names_the_member(batches_folder, tmp_path):
    (batches_folder / "data_batch_5").unlink()
    archive = make_archive(batches_folder, tmp_path / "cifar-10-python.tar.gz")
    with pytest.raises(DatasetError, match=r"archive lacks the file cifar-10-batches-py/data_batch_5"):
        read_cifar10_archive(archive, verify_checksum=False)


# ------------------------------------------------------------------ download (offline: the call is faked)


class FakeTorchvisionCIFAR10:
    calls: list[tuple[str, bool, bool]] = []

    def __init__(self, root, train=True, download=False):
        FakeTorchvisionCIFAR10.calls.append((root, train, download))
        (Path(root) / "cifar-10-batches-py").mkdir(exist_ok=True)


def test_download_asks_torchvision_for_train_and_test_and_returns_the_batches_folder(tmp_path, monkeypatch):
    import torchvision.datasets

    FakeTorchvisionCIFAR10.calls = []
    monkeypatch.setattr(torchvision.datasets, "CIFAR10", FakeTorchvisionCIFAR10)
    folder = download_cifar10(tmp_path / "downloads")
    assert folder == tmp_path / "downloads" / "cifar-10-batches-py"
    assert FakeTorchvisionCIFAR10.calls == [
        (str(tmp_path / "downloads"), True, True),
        (str(tmp_path / "downloads"), False, True),
    ]


def test_download_failure_names_the_offline_alternative(tmp_path, monkeypatch):
    import torchvision.datasets

    def offline(*args, **kwargs):
        raise urllib.error.URLError("Temporary failure in name resolution")

    monkeypatch.setattr(torchvision.datasets, "CIFAR10", offline)
    with pytest.raises(DatasetError, match=r"could not download CIFAR-10 .*dataset.source: local"):
        download_cifar10(tmp_path)


# ------------------------------------------------------------------ local .npz


def write_npz(path: Path, **overrides) -> Path:
    rng = np.random.default_rng(0)
    arrays = {
        "x_train": rng.integers(0, 256, (20, 32, 32, 3), dtype=np.uint8),
        "y_train": np.arange(20) % 10,
        "x_test": rng.integers(0, 256, (10, 32, 32, 3), dtype=np.uint8),
        "y_test": np.arange(10) % 10,
    }
    arrays.update(overrides)
    np.savez(path, **{key: value for key, value in arrays.items() if value is not None})
    return path


def test_npz_reads_with_default_cifar10_class_names(tmp_path):
    dataset = read_npz_dataset(write_npz(tmp_path / "copy.npz"))
    assert dataset.class_names == list(CIFAR10_CLASSES)
    assert dataset.x_train.shape == (20, 32, 32, 3) and dataset.y_train.dtype == np.int64


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"x_train": np.zeros((20, 3, 32, 32), dtype=np.uint8)}, r"x_train must have shape \(N, H, H, 3\)"),
        (
            {"x_test": np.zeros((10, 32, 32, 3), dtype=np.float32)},
            r"x_test must be uint8 images, got dtype float32",
        ),
        ({"y_train": np.full(20, 10)}, r"y_train has labels outside 0..9, e.g. 10"),
        ({"y_test": np.r_[np.arange(9), -1]}, r"y_test has labels outside 0..9, e.g. -1 at index 9"),
        ({"y_train": np.zeros(20, dtype=np.float64)}, r"y_train must hold integer labels"),
        ({"y_test": None}, r"missing arrays \['y_test'\]"),
    ],
)
def test_npz_problems_are_named(tmp_path, overrides, message):
    path = write_npz(tmp_path / "bad.npz", **overrides)
    with pytest.raises(DatasetError, match=message):
        read_npz_dataset(path)


def test_file_that_is_not_an_npz_is_a_dataset_error(tmp_path):
    path = tmp_path / "broken.npz"
    path.write_bytes(b"not a zip file")
    with pytest.raises(DatasetError, match=r"broken.npz: cannot read as .npz"):
        read_npz_dataset(path)


@pytest.mark.skipif(not REAL_SUBSET.exists(), reason=f"real CIFAR-10 subset not present at {REAL_SUBSET}")
def test_real_cifar10_subset_loads_in_official_order():
    dataset = read_npz_dataset(REAL_SUBSET)
    assert dataset.x_train.shape == (12500, 32, 32, 3) and dataset.x_test.shape == (5000, 32, 32, 3)
    assert dataset.y_train[:10].tolist() == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    assert dataset.y_test[:10].tolist() == [3, 8, 8, 0, 6, 6, 1, 6, 3, 1]
    assert dataset.class_names == list(CIFAR10_CLASSES)


# ------------------------------------------------------------------ build_dataset


def cifar10_settings(**overrides) -> dict:
    settings = {
        "name": "cifar10",
        "source": "local",
        "local_path": None,
        "download_dir": "resources/cifar10",
        "verify_checksum": False,
        "synthetic": {"train_size": 20, "test_size": 10, "seed": 0},
    }
    settings.update(overrides)
    return settings


def test_build_dataset_reads_each_local_form(batches_folder, tmp_path):
    from_folder = build_dataset(cifar10_settings(local_path=str(batches_folder)))
    from_parent = build_dataset(cifar10_settings(local_path=str(batches_folder.parent)))
    archive = make_archive(batches_folder, tmp_path / "cifar-10-python.tar.gz")
    from_archive = build_dataset(cifar10_settings(local_path=str(archive)))
    for dataset in (from_parent, from_archive):
        np.testing.assert_array_equal(dataset.x_train, from_folder.x_train)
        np.testing.assert_array_equal(dataset.y_test, from_folder.y_test)
    from_npz = build_dataset(cifar10_settings(local_path=str(write_npz(tmp_path / "copy.npz"))))
    assert from_npz.description == "CIFAR-10 (local file copy.npz)"


def test_a_local_copy_is_compared_with_the_dataset_built_from_it_by_content(tmp_path):
    """What lets a copy made again rerun nothing (workflow/rules/data_inputs.smk)."""
    source = write_npz(tmp_path / "copy.npz")
    settings = cifar10_settings(local_path=str(source))
    digest_file = tmp_path / "cifar10.sha256"
    assert not files_newer_than([source], digest_file)  # nothing built yet
    assert not builds_the_dataset_of(settings, digest_file)
    digest_file.write_text(dataset_digest(build_dataset(settings)) + "\n")
    os.utime(source, (digest_file.stat().st_mtime - 10,) * 2)
    assert not files_newer_than([source], digest_file)
    os.utime(source, (digest_file.stat().st_mtime + 10,) * 2)
    assert files_newer_than([tmp_path / "missing.npz", source], digest_file)
    assert builds_the_dataset_of(settings, digest_file)
    write_npz(source, y_test=np.arange(10)[::-1] % 10)  # other labels
    assert not builds_the_dataset_of(settings, digest_file)
    source.write_bytes(b"not a zip file")  # unreadable: left to the data rule, which names it
    assert not builds_the_dataset_of(settings, digest_file)


def test_build_dataset_missing_local_path(tmp_path):
    missing = tmp_path / "nowhere" / "cifar-10-python.tar.gz"
    with pytest.raises(DatasetError, match=rf"dataset.local_path: {missing} does not exist"):
        build_dataset(cifar10_settings(local_path=str(missing)))
    with pytest.raises(DatasetError, match=r"dataset.local_path must be set"):
        build_dataset(cifar10_settings(local_path=None))


def test_build_dataset_unknown_local_form_lists_accepted_forms(tmp_path):
    unknown = tmp_path / "images.zip"
    unknown.write_bytes(b"PK")
    with pytest.raises(DatasetError, match=r"images.zip is none of the accepted forms: .*tar.gz.*\.npz"):
        build_dataset(cifar10_settings(local_path=str(unknown)))
    with pytest.raises(DatasetError, match=r"empty is none of the accepted forms"):
        (tmp_path / "empty").mkdir()
        build_dataset(cifar10_settings(local_path=str(tmp_path / "empty")))


def test_build_dataset_rejects_bad_settings_by_name():
    with pytest.raises(DatasetError, match=r"dataset.name must be one of .* got 'mnist'"):
        build_dataset(cifar10_settings(name="mnist"))
    with pytest.raises(DatasetError, match=r"dataset.source must be one of .* got 'ftp'"):
        build_dataset(cifar10_settings(source="ftp"))
    with pytest.raises(DatasetError, match=r"dataset.verify_checksum must be true or false, got 'no'"):
        build_dataset(cifar10_settings(verify_checksum="no"))
    with pytest.raises(DatasetError, match=r"dataset.synthetic: unknown settings \['size'\]"):
        build_dataset(
            cifar10_settings(
                name="synthetic", synthetic={"size": 3, "train_size": 20, "test_size": 10, "seed": 0}
            )
        )


def test_build_dataset_download_goes_through_torchvision(batches_folder, monkeypatch):
    monkeypatch.setattr(selectivity.data.build, "download_cifar10", lambda root: batches_folder)
    dataset = build_dataset(cifar10_settings(source="download", local_path="/ignored"))
    assert dataset.description == "CIFAR-10 (torchvision download, checksums not verified)"
    np.testing.assert_array_equal(dataset.x_test[0], known_image(6, 0))


def test_build_dataset_synthetic_ignores_source():
    settings = cifar10_settings(name="synthetic", source="download")
    dataset = build_dataset(settings)
    reference = make_synthetic_dataset(20, 10, seed=0)
    np.testing.assert_array_equal(dataset.x_train, reference.x_train)


# ------------------------------------------------------------------ stratified split


def imbalanced_labels() -> np.ndarray:
    counts = [503, 301, 97, 50, 49]
    labels = np.repeat(np.arange(len(counts)), counts)
    return np.random.default_rng(3).permutation(labels)


def test_largest_remainder_counts_are_exact_and_proportional():
    counts = stratified_validation_counts(np.array([503, 301, 97, 50, 49]), 100)
    # Exact shares 50.3, 30.1, 9.7, 5.0, 4.9: floors 50, 30, 9, 5, 4 (98), remainders .7 and .9 win.
    assert counts.tolist() == [50, 30, 10, 5, 5]
    assert stratified_validation_counts(np.array([10, 10, 10]), 10).tolist() == [4, 3, 3]


def test_split_is_a_stratified_partition():
    labels = imbalanced_labels()
    split = stratified_split(labels, 100, seed=7)
    assert len(split.validation_indices) == 100 and len(split.train_indices) == len(labels) - 100
    assert np.all(np.diff(split.train_indices) > 0) and np.all(np.diff(split.validation_indices) > 0)
    assert np.intersect1d(split.train_indices, split.validation_indices).size == 0
    np.testing.assert_array_equal(
        np.union1d(split.train_indices, split.validation_indices), np.arange(len(labels))
    )
    assert np.bincount(labels[split.validation_indices]).tolist() == [50, 30, 10, 5, 5]
    assert split.split_seed == 7 and split.train_indices.dtype == np.int64


def test_split_depends_on_the_seed_only():
    labels = imbalanced_labels()
    first, again, other = (stratified_split(labels, 100, seed) for seed in (7, 7, 8))
    np.testing.assert_array_equal(first.validation_indices, again.validation_indices)
    assert not np.array_equal(first.validation_indices, other.validation_indices)
    assert np.bincount(labels[other.validation_indices]).tolist() == [50, 30, 10, 5, 5]


@pytest.mark.parametrize("validation_size", [0, -5, 995, 1000])
def test_split_size_out_of_range_is_named(validation_size):
    with pytest.raises(ValueError, match=rf"validation_size={validation_size} must be > 0"):
        stratified_split(imbalanced_labels(), validation_size, seed=0)


def test_split_never_empties_a_class_of_training_images():
    labels = np.r_[np.zeros(2, dtype=int), np.ones(96, dtype=int), np.full(2, 2)]
    with pytest.raises(ValueError, match=r"validation_size=96 would move every image of class 0"):
        stratified_split(labels, 96, seed=0)


def test_save_split_round_trips(tmp_path):
    split = stratified_split(imbalanced_labels(), 100, seed=5)
    save_split(tmp_path / "split.npz", split, 100)
    loaded = load_split(tmp_path / "split.npz")
    np.testing.assert_array_equal(loaded.train_indices, split.train_indices)
    np.testing.assert_array_equal(loaded.validation_indices, split.validation_indices)
    assert loaded.split_seed == 5
    with np.load(tmp_path / "split.npz") as blob:
        assert int(blob["validation_size"]) == 100
    with pytest.raises(ValueError, match=r"validation_size=99 but the split holds 100"):
        save_split(tmp_path / "other.npz", split, 99)


# ------------------------------------------------------------------ synthetic stand-in


def test_synthetic_is_bit_identical_for_a_seed_and_differs_across_seeds():
    first = make_synthetic_dataset(60, 30, seed=11)
    again = make_synthetic_dataset(60, 30, seed=11)
    other = make_synthetic_dataset(60, 30, seed=12)
    for name in ("x_train", "y_train", "x_test", "y_test"):
        np.testing.assert_array_equal(getattr(first, name), getattr(again, name))
    assert not np.array_equal(first.x_train, other.x_train)


def test_synthetic_test_set_does_not_depend_on_train_size():
    small, large = make_synthetic_dataset(30, 40, seed=2), make_synthetic_dataset(90, 40, seed=2)
    np.testing.assert_array_equal(small.x_test, large.x_test)
    np.testing.assert_array_equal(small.y_test, large.y_test)


def test_synthetic_format_balance_and_names():
    dataset = make_synthetic_dataset(1003, 50, seed=0)
    validate_arrays(dataset.x_train, dataset.y_train, dataset.x_test, dataset.y_test)
    assert dataset.x_train.shape == (1003, 32, 32, 3) and dataset.x_train.dtype == np.uint8
    counts = np.bincount(dataset.y_train, minlength=10)
    assert counts.max() - counts.min() <= 1 and counts.sum() == 1003
    assert dataset.class_names[:4] == [
        "orientation_0deg_low_sf",
        "orientation_0deg_high_sf",
        "orientation_36deg_low_sf",
        "orientation_36deg_high_sf",
    ]
    assert "CIFAR" not in dataset.description and "synthetic" in dataset.description
    # Labels are shuffled, not in class order.
    assert not np.array_equal(dataset.y_train[:10], np.arange(10))


def dominant_grating(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Orientation (deg, 3-deg grid) and period (px) of each image's strongest grating component.

    Energy of the luminance image at every orientation and period on a grid, measured with
    complex gratings in the stimulus convention cos(k(-sin t row + cos t col) + phase).
    """
    orientations = np.arange(0, 180, 3)
    periods = np.geomspace(3.5, 11, 10)
    size = images.shape[1]
    centred = np.arange(size) - (size - 1) / 2
    rows, cols = np.meshgrid(centred, centred, indexing="ij")
    theta = np.deg2rad(orientations)[:, None, None, None]
    wavenumber = (2 * np.pi / periods)[None, :, None, None]
    filters = np.exp(1j * wavenumber * (-np.sin(theta) * rows + np.cos(theta) * cols))
    gray = images.astype(np.float64).mean(axis=-1)
    gray -= gray.mean(axis=(1, 2), keepdims=True)
    energy = np.abs(gray.reshape(len(images), -1) @ filters.reshape(-1, size * size).T) ** 2
    best_orientation, best_period = np.unravel_index(energy.argmax(axis=1), (len(orientations), len(periods)))
    return orientations[best_orientation], periods[best_period]


def test_synthetic_class_cue_is_the_dominant_grating():
    dataset = make_synthetic_dataset(400, 10, seed=4)
    orientation, period = dominant_grating(dataset.x_train)
    intended = synthetic_class_orientations_deg(10)[dataset.y_train]
    error = np.abs((orientation - intended + 90) % 180 - 90)
    # Jitter is at most 21.6 deg, the grid adds 1.5; the rest are images where a distractor wins
    # (measured: 91% within 24 deg, 95% in the right band, over 1000 images).
    assert np.mean(error <= 24) > 0.8
    high_band = dataset.y_train % 2 == 1
    assert np.mean((period < 6) == high_band) > 0.85


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"num_classes": 7}, r"num_classes must be an even integer >= 2 .* got 7"),
        ({"train_size": 0}, r"train_size must be an integer >= 1, got 0"),
        ({"image_size": 4}, r"image_size must be an integer >= 8, got 4"),
        ({"seed": -1}, r"seed must be an integer >= 0, got -1"),
    ],
)
def test_synthetic_bad_arguments_are_named(kwargs, message):
    arguments = {"train_size": 10, "test_size": 10, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=message):
        make_synthetic_dataset(**arguments)


def train_paper_cnn(dataset: Dataset, epochs: int, seed: int, after_epoch=None):
    """The paper's recipe in miniature: cnn7, Adam 1e-3, batch 32, mean-image preprocessing.

    ``after_epoch(epoch, network, train_inputs, test_inputs)`` is called after every epoch.
    """
    from selectivity.networks.models import build_model

    torch.manual_seed(seed)
    network = build_model("cnn7")
    optimiser = torch.optim.Adam(network.parameters(), lr=1e-3)
    input_mean = mean_image(dataset.x_train)
    train_inputs, test_inputs = preprocess(dataset.x_train, input_mean), preprocess(
        dataset.x_test, input_mean
    )
    labels = torch.as_tensor(dataset.y_train)
    order = torch.Generator().manual_seed(seed)
    for epoch in range(1, epochs + 1):
        network.train()
        for batch in torch.randperm(len(labels), generator=order).split(32):
            loss = F.cross_entropy(network(train_inputs[batch]), labels[batch])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
        if after_epoch is not None:
            after_epoch(epoch, network, train_inputs, test_inputs)
    return network, train_inputs, test_inputs


def accuracy(network: torch.nn.Module, inputs: torch.Tensor, labels: np.ndarray) -> float:
    network.eval()
    with torch.no_grad():
        return float((network(inputs).argmax(1).numpy() == labels).mean())


def with_recomputed_batchnorm_statistics(network: torch.nn.Module, inputs: torch.Tensor) -> torch.nn.Module:
    """A copy whose BN running statistics are the exact averages over ``inputs``.

    With Keras' BN momentum (0.01) the running averages need several hundred steps to forget
    their initial values, so a short run's eval-mode accuracy measures that lag, not learning.
    """
    recalibrated = copy.deepcopy(network)
    for module in recalibrated.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average
    recalibrated.train()
    with torch.no_grad():
        for batch in inputs.split(250):
            recalibrated(batch)
    return recalibrated


def test_synthetic_is_learnable_by_the_paper_cnn_quickly():
    torch.set_num_threads(1)
    dataset = make_synthetic_dataset(2000, 500, seed=0)
    network, train_inputs, test_inputs = train_paper_cnn(dataset, epochs=2, seed=0)
    network = with_recomputed_batchnorm_statistics(network, train_inputs)
    # Chance is 10%; measured 0.68-0.71 over seeds 0-2 (2000 images, 2 epochs).
    assert accuracy(network, test_inputs, dataset.y_test) > 0.4


@pytest.mark.slow
def test_synthetic_reaches_half_accuracy_in_eval_mode_but_not_perfect_after_one_epoch():
    torch.set_num_threads(1)
    dataset = make_synthetic_dataset(4000, 1000, seed=1)
    train_accuracy_after_first_epoch = []

    def record_first_epoch(epoch, network, train_inputs, test_inputs):
        if epoch == 1:
            exact = with_recomputed_batchnorm_statistics(network, train_inputs)
            train_accuracy_after_first_epoch.append(accuracy(exact, train_inputs, dataset.y_train))

    network, _, test_inputs = train_paper_cnn(dataset, epochs=4, seed=1, after_epoch=record_first_epoch)
    # After one epoch the network is far from perfect even with exact BN statistics (measured 0.8).
    assert train_accuracy_after_first_epoch[0] < 0.9
    # Plain eval mode (running BN averages), as the training module reports it; measured 0.76.
    assert accuracy(network, test_inputs, dataset.y_test) >= 0.5
