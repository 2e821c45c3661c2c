"""Image folders as evaluation images: class subfolders -> a test-set file at a network's input size.

A given network (the published VGG16, a user's network trained elsewhere) may be tested on an
image folder in torchvision's ``ImageFolder`` layout (one subfolder of images per class, sorted
folder order = class index). The folder is read once, by its own rule: a seeded subset of its
images goes through torchvision's evaluation transform without normalisation (resize the shorter
side to ``image_size * 256 / 224``, centre crop ``image_size``) and is stored as a test-set file
(:func:`selectivity.data.dataset.save_test_set`'s layout, uint8 like every dataset here). The
causal rules then read it as they read the workflow's own test set; the network's own
normalisation is applied later, as for gratings.
"""

from __future__ import annotations

import logging
import os
import re
from pathlib import Path

import numpy as np
import torch
import torchvision
from torchvision import transforms
from tqdm.auto import tqdm

logger = logging.getLogger(__name__)

#: torchvision's ImageNet evaluation preprocessing: the shorter side is resized to 256 before
#: the centre crop of 224 (VGG16_Weights.IMAGENET1K_V1.transforms()).
IMAGENET_INPUT_SIZE = 224
IMAGENET_RESIZE_SIZE = 256
IMAGENET_NUM_CLASSES = 1000
_WORDNET_ID = re.compile(r"^n\d{8}$")


def imagenet_eval_transform(image_size: int = IMAGENET_INPUT_SIZE) -> transforms.Compose:
    """torchvision's evaluation transform without normalisation: PIL image -> float (3, S, S) in [0, 1].

    The shorter side is resized to ``image_size * 256 / 224`` (256 for 224) with antialiased
    bilinear interpolation, then the centre ``image_size`` square is cropped.
    """
    if image_size < 1:
        raise ValueError(f"image_size must be a positive number of pixels, got {image_size}")
    resize_size = round(image_size * IMAGENET_RESIZE_SIZE / IMAGENET_INPUT_SIZE)
    return transforms.Compose(
        [
            transforms.Resize(
                resize_size, interpolation=transforms.InterpolationMode.BILINEAR, antialias=True
            ),
            transforms.CenterCrop(image_size),
            transforms.ToTensor(),
        ]
    )


def load_imagefolder_images(
    folder: str | os.PathLike,
    n_images: int,
    seed: int,
    image_size: int = IMAGENET_INPUT_SIZE,
    *,
    progress: bool = True,
) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded random subset of an ImageFolder-layout image set: images (N, 3, S, S) in [0, 1], labels int64.

    Labels index the class folders in sorted order, which for the 1000 ImageNet WordNet-id
    folders is the class order of torchvision's weights. All images are returned, in
    folder order, when ``n_images`` is at least their number; a subset is drawn without
    replacement with ``numpy.random.default_rng(seed)`` and kept in folder order.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"image folder {str(folder)!r} does not exist or is not a directory")
    if n_images < 1:
        raise ValueError(f"n_images must be at least 1, got {n_images}")
    transform = imagenet_eval_transform(image_size)
    try:
        dataset = torchvision.datasets.ImageFolder(folder, transform=transform, allow_empty=True)
    except FileNotFoundError as error:  # no class subfolders at all
        raise FileNotFoundError(
            f"{str(folder)!r} is not in ImageFolder layout (one subfolder of images per class): {error}"
        ) from error
    _warn_about_class_folders(folder, dataset.classes)
    total = len(dataset)
    if total == 0:
        raise FileNotFoundError(f"no images in the class folders of {str(folder)!r}")
    if n_images >= total:
        indices = np.arange(total)
    else:
        indices = np.sort(np.random.default_rng(seed).choice(total, size=n_images, replace=False))
    logger.info("loading %d of %d images from %s at %d px", len(indices), total, folder, image_size)
    images = torch.empty(len(indices), 3, image_size, image_size)
    labels = torch.empty(len(indices), dtype=torch.int64)
    for row, index in enumerate(tqdm(indices, desc="images", unit="image", disable=not progress)):
        images[row], labels[row] = dataset[int(index)]
    return images, labels


def _warn_about_class_folders(folder: Path, classes: list[str]) -> None:
    """Labels only match torchvision's ImageNet class indices with all 1000 WordNet-id folders."""
    if len(classes) != IMAGENET_NUM_CLASSES:
        logger.warning(
            "%s has %d class folders, not %d: labels index these folders in sorted order and are ImageNet "
            "class indices only if all %d WordNet-id folders are present (empty ones are allowed)",
            folder, len(classes), IMAGENET_NUM_CLASSES, IMAGENET_NUM_CLASSES,
        )  # fmt: skip
    not_wordnet = [c for c in classes if not _WORDNET_ID.match(c)]
    if not_wordnet:
        logger.warning(
            "%s: class folders %s are not WordNet ids (n########), so labels may not be ImageNet classes",
            folder, not_wordnet[:5],
        )  # fmt: skip


def save_folder_test_set(
    folder: str | os.PathLike, path: str | os.PathLike, n_images: int, seed: int, image_size: int
) -> int:
    """Write a seeded subset of an image folder as a test-set file; returns how many images it holds.

    The evaluation transform gives images k/255 (a PIL image of bytes, resized and cropped), so
    storing them as uint8 loses nothing.
    """
    from selectivity.io import save_npz

    images, labels = load_imagefolder_images(folder, n_images, seed, image_size)
    pixels = (images * 255).round().to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()
    classes = torchvision.datasets.ImageFolder(folder, allow_empty=True).classes
    save_npz(
        path,
        x_test=pixels,
        y_test=labels.numpy().astype(np.int64),
        class_names=np.array(classes),
        description=np.array(
            f"{len(labels)} images of the image folder {folder} (seed {seed}), {image_size} px"
        ),
    )
    return len(labels)
