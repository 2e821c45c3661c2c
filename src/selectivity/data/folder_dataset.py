"""Your own dataset: an image folder with ``train/`` and ``test/`` folders of class subfolders.

The layout is torchvision's ``ImageFolder`` twice: ``<path>/train/<class>/...`` and
``<path>/test/<class>/...``, the same class folders in both, a class's label its position in
sorted folder order (docs/method.md §2.1). Every image is read with PIL, converted to RGB (a
greyscale image gets three equal channels), its shorter side resized to ``image_size``
(bilinear, antialiased) and the centre ``image_size`` square cropped, then stored as uint8 like
every dataset here. The data rule converts the folder once into the canonical dataset file; the
split, training and analyses never see the folder again.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from selectivity.data.dataset import Dataset, DatasetError, validate_arrays
from selectivity.dataset_shapes import FOLDER_SPLITS, IMAGE_EXTENSIONS

logger = logging.getLogger(__name__)


def _is_image(path: str) -> bool:
    return path.lower().endswith(IMAGE_EXTENSIONS)


def read_split(
    folder: Path, image_size: int, progress: bool = True
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """One split's images uint8 (N, S, S, 3), labels int64 and class folder names."""
    from torchvision import datasets, transforms

    transform = transforms.Compose(
        [
            transforms.Resize(
                image_size, interpolation=transforms.InterpolationMode.BILINEAR, antialias=True
            ),
            transforms.CenterCrop(image_size),
            transforms.PILToTensor(),
        ]
    )
    try:
        images = datasets.ImageFolder(str(folder), transform=transform, is_valid_file=_is_image)
    except (FileNotFoundError, OSError) as error:
        raise DatasetError(f"{folder}: not a folder of class subfolders of images ({error})") from error
    pixels = np.empty((len(images), image_size, image_size, 3), dtype=np.uint8)
    labels = np.empty(len(images), dtype=np.int64)
    for index in tqdm(range(len(images)), desc=f"{folder.name} images", unit="image", disable=not progress):
        path = images.samples[index][0]
        try:
            tensor, label = images[index]
        except (OSError, ValueError) as error:  # PIL's errors for a damaged or unknown file
            raise DatasetError(f"{path}: cannot be read as an image ({error})") from error
        pixels[index] = tensor.permute(1, 2, 0).numpy()
        labels[index] = label
    return pixels, labels, list(images.classes)


def read_image_folder_dataset(
    path: str | os.PathLike, image_size: int, name: str, progress: bool = True
) -> Dataset:
    """The image folder at ``path`` as a dataset of ``image_size``-px RGB images (module docstring)."""
    root = Path(path)
    if not root.is_dir():
        raise DatasetError(f"dataset.image_folder.path: {str(path)!r} is not a folder")
    splits = {}
    for split in FOLDER_SPLITS:
        logger.info("reading the %s images of %s at %d px", split, root / split, image_size)
        splits[split] = read_split(root / split, int(image_size), progress)
    (x_train, y_train, train_classes), (x_test, y_test, test_classes) = splits["train"], splits["test"]
    if train_classes != test_classes:
        raise DatasetError(
            f"dataset.image_folder.path: {root}/train and {root}/test hold different class folders "
            f"({train_classes} and {test_classes}); a label is a folder's position in sorted order"
        )
    validate_arrays(x_train, y_train, x_test, y_test, len(train_classes), str(root))
    return Dataset(
        x_train,
        y_train,
        x_test,
        y_test,
        train_classes,
        f"{name}: image folder {root} ({len(train_classes)} classes, {image_size} px)",
    )
