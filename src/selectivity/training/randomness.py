"""A network's own random streams: seeds, initialisation, label corruption, epoch plans."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from selectivity.data.augmentation import draw_shifts_and_flips
from selectivity.networks.models import AnalysableNetwork, build_model
from selectivity.training.settings import (
    TrainingSettings,
)

# Independent random streams of one network, derived from its seed (see derive_seed). "forward"
# seeds the global RNG of a user architecture whose forward pass draws random numbers (dropout).
SEED_STREAMS = {"initialisation": 1, "shuffling": 2, "augmentation": 3, "forward": 4}


def derive_seed(seed: int, stream: str) -> int:
    """The seed of one of a network's independent random streams (see ``SEED_STREAMS``).

    NumPy's ``SeedSequence`` mixes (seed, stream number), so streams of one network
    and the same stream of different seeds are statistically independent.
    """
    if stream not in SEED_STREAMS:
        raise ValueError(f"unknown random stream {stream!r}; known: {sorted(SEED_STREAMS)}")
    return int(np.random.SeedSequence([int(seed), SEED_STREAMS[stream]]).generate_state(1, np.uint64)[0])


def stream_generator(seed: int, stream: str) -> torch.Generator:
    """A CPU torch generator for one of a network's random streams."""
    return torch.Generator().manual_seed(derive_seed(seed, stream))


def initial_network(
    model: str,
    seed: int,
    num_classes: int = 10,
    input_size: int = 32,
    architecture: Mapping[str, Any] | None = None,
) -> AnalysableNetwork:
    """The network's initialisation, determined by ``seed`` alone: Keras' Glorot-uniform for the
    built-in models; a user ``architecture``'s own (its constructor's, docs/method.md §1.8).

    The global CPU RNG is forked, seeded from the ``initialisation`` stream and
    restored, so the result does not depend on, and does not change, global state.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "initialisation"))
        return blank_network(model, num_classes, input_size, architecture)


def blank_network(
    model: str, num_classes: int, input_size: int, architecture: Mapping[str, Any] | None = None
) -> torch.nn.Module:
    """A network of the model with whatever initialisation the global RNG gives (to load weights into)."""
    if architecture is None:
        return build_model(model, num_classes=num_classes, input_size=input_size)
    from selectivity.networks.user_models import build_user_module

    return build_user_module(architecture, num_classes, f"architectures.{model}")


def _draw_corruption(
    num_labels: int, fraction: float, num_classes: int, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"label corruption fraction must be in [0, 1], got {fraction!r}")
    if num_classes < 1:
        raise ValueError(f"num_classes must be >= 1, got {num_classes}")
    rng = np.random.default_rng(seed)
    count = round(fraction * num_labels)
    positions = rng.choice(num_labels, size=count, replace=False)
    replacements = rng.integers(0, num_classes, size=count)
    return positions, replacements


def corrupt_labels(labels: np.ndarray, fraction: float, num_classes: int, seed: int) -> np.ndarray:
    """Morcos/Zhang-style label corruption of a fixed random fraction of the labels.

    Exactly ``round(fraction * N)`` positions (Python's round), chosen without
    replacement by ``seed``, get a label drawn uniformly from ``0..num_classes-1``;
    the draw may equal the true label. Returns a new int64 array.
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f"labels must be a 1-D integer array, got {labels.dtype} {labels.shape}")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"labels must lie in 0..{num_classes - 1}, found {labels.min()}..{labels.max()}")
    positions, replacements = _draw_corruption(len(labels), fraction, num_classes, seed)
    corrupted = labels.astype(np.int64).copy()
    corrupted[positions] = replacements
    return corrupted


@dataclass
class EpochPlan:
    """One epoch's random choices for K networks, drawn before the epoch starts.

    ``order`` (K, N): the training-split positions in the order network k visits them;
    ``shifts`` (K, N, 2) and ``flips`` (K, N): the augmentation of the j-th image each
    network sees (None without augmentation).
    """

    order: torch.Tensor
    shifts: torch.Tensor | None
    flips: torch.Tensor | None


def draw_epoch_plan(
    shuffle_generators: Sequence[torch.Generator],
    augmentation_generators: Sequence[torch.Generator],
    num_images: int,
    settings: TrainingSettings,
    image_size: tuple[int, int],
) -> EpochPlan:
    """Draw every network's data order and augmentation for one epoch from its own generators.

    ``image_size`` (H, W) scales the shifts (a fraction of the image size, as Keras).
    Orders and augmentation come from separate streams, so switching augmentation
    off leaves each network's data order unchanged.
    """
    order = torch.stack([torch.randperm(num_images, generator=g) for g in shuffle_generators])
    if not settings.augmentation:
        return EpochPlan(order, None, None)
    draws = [
        draw_shifts_and_flips(num_images, image_size, settings.shift_range, settings.horizontal_flip, g)
        for g in augmentation_generators
    ]
    return EpochPlan(order, torch.stack([s for s, _ in draws]), torch.stack([f for _, f in draws]))
