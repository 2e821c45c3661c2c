"""Class selectivity of units (Morcos et al. 2018), the contrast to orientation selectivity.

docs/method.md §4. A unit's response is its stage response (after ReLU, before BN), averaged
over all spatial positions for conv/pool layers, the unit's value for fc layers: the
read-out of the tuning analysis (:func:`selectivity.tuning.analysis.measure_responses`), on test images. The class selectivity index is

    (mu_max - mu_rest) / (mu_max + mu_rest)

with mu_max the largest class-conditional mean response and mu_rest the mean of the other
classes' means: 0 for a unit that responds equally to every class, 1 for a unit that
responds to one class only. A unit that never responds to any test image is *dead* and
gets index 0 [D].
"""

from __future__ import annotations

import logging
from typing import Sequence

import numpy as np
import pandas as pd
import torch

from selectivity.causal.ablation import check_images_and_labels, require_evaluation_mode
from selectivity.networks.loaded import LoadedNetwork
from selectivity.tuning.analysis import measure_responses

logger = logging.getLogger(__name__)


def class_conditional_means(
    network: LoadedNetwork,
    images: torch.Tensor,
    labels: torch.Tensor,
    layers: Sequence[str],
    num_classes: int,
    batch_size: int = 500,
    *,
    progress: bool = False,
) -> dict[str, np.ndarray]:
    """Mean response of every unit to the images of each class: layer -> (units, classes).

    Responses are read as in the tuning analysis (:func:`selectivity.tuning.analysis.measure_responses`);
    every class must have at least one image (see :func:`classes_with_images` for image sets
    that hold only some classes).
    """
    require_evaluation_mode(network)
    check_images_and_labels(images, labels)
    labels = torch.as_tensor(labels, dtype=torch.long).cpu()
    if labels.min() < 0 or labels.max() >= num_classes:
        raise ValueError(
            f"labels must be in 0..{num_classes - 1}, got {int(labels.min())}..{int(labels.max())}"
        )
    counts = torch.bincount(labels, minlength=num_classes)
    if (counts == 0).any():
        missing = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(f"classes {missing} have no images, so their mean responses are undefined")
    responses = measure_responses(network, images, layers, batch_size, progress=progress)
    means = {}
    for layer in layers:
        sums = torch.zeros(num_classes, responses[layer].shape[1], dtype=torch.float64)
        sums.index_add_(0, labels, responses[layer].double())
        means[layer] = (sums / counts.unsqueeze(1)).T.numpy()
    return means


def class_selectivity_index(class_means: np.ndarray) -> np.ndarray:
    """(units, classes) non-negative class means -> (units,) index; 0 where every mean is 0."""
    class_means = np.asarray(class_means, dtype=np.float64)
    if class_means.ndim != 2 or class_means.shape[1] < 2:
        raise ValueError(
            f"class means must be (units, classes) with at least 2 classes, got {class_means.shape}"
        )
    if (class_means < 0).any():
        raise ValueError(
            f"class means must be non-negative (post-ReLU responses); unit {int(np.argwhere(class_means < 0)[0, 0])} "
            f"has {class_means.min():.3g}"
        )
    largest = class_means.max(axis=1)
    rest = (class_means.sum(axis=1) - largest) / (class_means.shape[1] - 1)
    total = largest + rest
    return np.divide(largest - rest, total, out=np.zeros_like(total), where=total > 0)


def classes_with_images(labels: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, np.ndarray]:
    """Labels renumbered over the classes that have images, and those classes' original indices.

    An image folder's subset (e.g. 1,000 of ImageNet's 50,000 validation images) misses some of
    its classes; their means are undefined, so the index is taken over the classes present [D].
    """
    labels = torch.as_tensor(labels, dtype=torch.long).cpu()
    present = torch.unique(labels)
    if len(present) < 2:
        raise ValueError(f"class selectivity needs images of at least 2 classes, got {present.tolist()}")
    renumbered = torch.searchsorted(present, labels)
    logger.info("class selectivity over the %d of %d classes that have images", len(present), num_classes)
    return renumbered, present.numpy()


def class_selectivity_table(
    network: LoadedNetwork,
    images: torch.Tensor,
    labels: torch.Tensor,
    layers: Sequence[str],
    identifiers: dict,
    num_classes: int,
    batch_size: int = 500,
    *,
    every_class: bool = True,
    progress: bool = False,
) -> pd.DataFrame:
    """One row per unit: class selectivity index, preferred class, mean response, dead.

    ``mean_activation`` is the unit's mean response over all images (weighted by class
    sizes); ``preferred_class`` is the class with the largest mean (lowest index on ties).
    With ``every_class`` False, classes without images are left out (:func:`classes_with_images`).
    """
    class_index = np.arange(num_classes)
    if not every_class:
        labels, class_index = classes_with_images(labels, num_classes)
        num_classes = len(class_index)
    means = class_conditional_means(
        network, images, labels, layers, num_classes, batch_size, progress=progress
    )
    class_sizes = torch.bincount(torch.as_tensor(labels).cpu(), minlength=num_classes).double().numpy()
    tables = []
    for layer in layers:
        layer_means = means[layer]
        index = class_selectivity_index(layer_means)
        dead = ~(layer_means > 0).any(axis=1)
        logger.info(
            "%s: mean class selectivity %.3f, dead %d of %d", layer, index.mean(), dead.sum(), len(index)
        )
        table = pd.DataFrame(
            {
                "layer": layer,
                "layer_index": network.model.layer_index(layer),
                "unit": np.arange(len(index)),
                "class_selectivity_index": index,
                "preferred_class": class_index[layer_means.argmax(axis=1)],
                "mean_activation": layer_means @ class_sizes / class_sizes.sum(),
                "dead": dead,
            }
        )
        for position, (column, value) in enumerate(identifiers.items()):
            table.insert(position, column, value)
        tables.append(table)
    return pd.concat(tables, ignore_index=True)
