"""Training one network, or K networks stacked into one, as the author did (docs/method.md §1 and §2).

The training rule [A]: inputs are ``preprocess(x, mean_image(x_train[train_indices]))``;
every epoch visits the training split in a fresh random order in batches of 32 (the
last, partial batch is kept, as Keras does); each image is shifted as Keras 2.0.8's
ImageDataGenerator does (a uniform shift of up to 10% of the image size, rounded to
whole pixels, edge-replicated fill; :mod:`selectivity.augmentation`) and flipped
left-right with p = 0.5; Adam (lr 1e-3, betas 0.9/0.999, epsilon 1e-8, Keras 2.0.8's
default) minimises the cross-entropy, with no schedule and no weight decay.

What this module adds around the rule:

- *Own randomness per network.* A network's initialisation, label corruption, data
  order and augmentation draws come only from generators derived from its seed
  (:func:`derive_seed`), never from global RNG state. That makes a network's result
  independent of which other networks it was trained with, so K networks trained as
  one stacked network (:mod:`selectivity.grouped`) equal K separate runs.
- *Device-resident data.* The preprocessed splits live on the training device; a
  batch is an index gather plus one augmentation gather; an epoch's order and
  augmentation parameters are drawn up front (on the CPU, from the networks'
  generators), so the inner loop never synchronises with the host. On CUDA with
  ``cuda_graphs=True`` each full batch's step (gather, augmentation, forward, backward,
  Adam) is replayed as one captured CUDA graph.
- *Resumable, reproducible runs.* After every epoch the whole training state is
  written atomically under ``state_dir``; a rerun with the same settings continues
  from the last finished epoch and gives the same tensors and metrics as an
  uninterrupted run (bit for bit on the CPU; only ``epoch_seconds`` differs).

Metrics are measured after every epoch in evaluation mode on the whole training
split (against the labels trained with, and against the true labels), the
validation split and the test set. Epoch 0 is the initialisation.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import math
import shutil
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from selectivity.augmentation import draw_shifts_and_flips, shift_and_flip
from selectivity.checkpoints import save_checkpoint
from selectivity.data import Dataset, Split, array_digest, mean_image, preprocess
from selectivity.grouped import GroupedConvNet, stack_networks, unstack_networks
from selectivity.io import UnsafeFileError, atomic_path, load_torch, save_table, save_torch
from selectivity.models import TRAINABLE_MODELS, AnalysableNetwork, build_model
from selectivity.provenance import config_hash, provenance
from selectivity.summaries import NETWORK_COLUMNS
from selectivity.versions import source_digest

log = logging.getLogger(__name__)

IDENTIFIER_COLUMNS = NETWORK_COLUMNS  # one definition of what names a network
METRICS_COLUMNS = IDENTIFIER_COLUMNS + (
    "epoch",
    "train_loss",
    "train_accuracy",
    "train_loss_true_labels",
    "train_accuracy_true_labels",
    "validation_loss",
    "validation_accuracy",
    "test_loss",
    "test_accuracy",
    "epoch_seconds",
)
# bf16 autocast was measured on cnn7 (CPU, batch 32): its gradients differ from fp32 ones
# by ~19% in norm (cosine 0.98), too far for a reference reproduction, so only fp32 is offered.
PRECISIONS = ("fp32",)
STATE_FORMAT = "selectivity-training-state/2"
# Settings that cannot change the trained weights, so a run may resume across them.
RESUME_INDIFFERENT_SETTINGS = ("evaluation_batch_size", "cuda_graphs")

# Independent random streams of one network, derived from its seed (see derive_seed).
SEED_STREAMS = {"initialisation": 1, "shuffling": 2, "augmentation": 3}

# Full-batch steps run before a CUDA graph is captured (cuDNN/allocator warm-up);
# their effect on the weights is undone, see LockstepTrainer._capture_step_graph.
_GRAPH_WARMUP_STEPS = 3


# ----------------------------------------------------------------------------- specs


class TrainingDivergedError(RuntimeError):
    """A network's loss or weights stopped being finite; names the network and the epoch."""


@dataclass(frozen=True)
class NetworkSpec:
    """Which network: architecture, dataset, fraction of corrupted labels, seed."""

    model: str
    dataset: str
    label_corruption: float
    seed: int

    def __post_init__(self):
        corruption = float(self.label_corruption)
        if not 0.0 <= corruption <= 1.0:
            raise ValueError(f"label_corruption must be a fraction in [0, 1], got {self.label_corruption!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        object.__setattr__(self, "label_corruption", corruption)
        object.__setattr__(self, "seed", int(self.seed))

    def identifiers(self) -> dict:
        return {
            "model": self.model,
            "dataset": self.dataset,
            "label_corruption": self.label_corruption,
            "seed": self.seed,
        }

    def path_fragment(self) -> str:
        return f"{self.model}/{self.dataset}/corruption{self.label_corruption:.2f}/seed{self.seed}"


@dataclass(frozen=True)
class TrainingSettings:
    """How to train (defaults: the author's Keras settings, docs/method.md §2).

    ``checkpoint_epochs`` are the epochs whose weights are saved (0 = initialisation);
    the last epoch is always saved too. ``precision`` must be ``"fp32"`` (IEEE fp32
    also on GPUs, no TF32; see ``PRECISIONS`` for why bf16 is refused). ``cuda_graphs``
    captures each training step as a CUDA graph on CUDA devices (no effect on the
    CPU). ``deterministic`` asks cuDNN for deterministic kernels on CUDA devices (the
    CPU kernels are deterministic already).
    """

    epochs: int
    batch_size: int = 32
    learning_rate: float = 1e-3
    adam_betas: tuple[float, float] = (0.9, 0.999)
    adam_epsilon: float = 1e-8
    checkpoint_epochs: tuple[int, ...] = (0,)
    augmentation: bool = True
    shift_range: float = 0.1
    horizontal_flip: bool = True
    evaluation_batch_size: int = 1000
    precision: str = "fp32"
    cuda_graphs: bool = False
    deterministic: bool = True

    def __post_init__(self):
        # Config files give lists; normalise so that equal settings hash equally.
        object.__setattr__(self, "adam_betas", tuple(float(b) for b in self.adam_betas))
        object.__setattr__(self, "checkpoint_epochs", tuple(sorted({int(e) for e in self.checkpoint_epochs})))
        for name in ("epochs", "batch_size", "evaluation_batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"training setting {name} must be a positive integer, got {value!r}")
        if not self.learning_rate > 0:
            raise ValueError(f"training setting learning_rate must be > 0, got {self.learning_rate!r}")
        if len(self.adam_betas) != 2 or not all(0.0 <= b < 1.0 for b in self.adam_betas):
            raise ValueError(
                f"training setting adam_betas must be two numbers in [0, 1), got {self.adam_betas!r}"
            )
        if not self.adam_epsilon > 0:
            raise ValueError(f"training setting adam_epsilon must be > 0, got {self.adam_epsilon!r}")
        for epoch in self.checkpoint_epochs:
            if not 0 <= epoch <= self.epochs:
                raise ValueError(
                    f"training setting checkpoint_epochs has epoch {epoch}, outside 0..{self.epochs} (epochs)"
                )
        if (
            isinstance(self.shift_range, bool)
            or not isinstance(self.shift_range, (int, float))
            or not 0 <= self.shift_range < 1
        ):
            raise ValueError(
                f"training setting shift_range must be a fraction in [0, 1), got {self.shift_range!r}"
            )
        if self.precision not in PRECISIONS:
            raise ValueError(
                f"training setting precision must be one of {PRECISIONS}, got {self.precision!r} "
                "(bf16 changes cnn7's gradients by ~19%, see selectivity.training.PRECISIONS)"
            )

    def saved_epochs(self) -> list[int]:
        """The epochs whose checkpoints are written: ``checkpoint_epochs`` plus the last epoch."""
        return sorted(set(self.checkpoint_epochs) | {self.epochs})

    def as_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["adam_betas"] = list(self.adam_betas)
        values["checkpoint_epochs"] = list(self.checkpoint_epochs)
        return values


@dataclass
class NetworkOutputs:
    """Where one network's results go: ``checkpoints`` maps each saved epoch to its file."""

    checkpoints: dict[int, Path]
    best_checkpoint: Path
    metrics: Path


# ----------------------------------------------------------------------- randomness


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


def initial_network(model: str, seed: int, num_classes: int = 10, input_size: int = 32) -> AnalysableNetwork:
    """The network's initialisation (Keras' Glorot-uniform), determined by ``seed`` alone.

    The global CPU RNG is forked, seeded from the ``initialisation`` stream and
    restored, so the result does not depend on, and does not change, global state.
    """
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(derive_seed(seed, "initialisation"))
        return build_model(model, num_classes=num_classes, input_size=input_size)


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


# ----------------------------------------------------------------------------- data


@dataclass
class DeviceData:
    """The preprocessed splits (float32 NCHW) and their labels, resident on the training device."""

    input_mean: torch.Tensor  # (C, H, W) on the CPU: what checkpoints store
    train_images: torch.Tensor
    train_labels: torch.Tensor
    validation_images: torch.Tensor
    validation_labels: torch.Tensor
    test_images: torch.Tensor
    test_labels: torch.Tensor
    num_classes: int

    @classmethod
    def from_dataset(cls, dataset: Dataset, split: Split, device: torch.device) -> "DeviceData":
        check_split(split, len(dataset.x_train))
        x_train = dataset.x_train[split.train_indices]
        input_mean = mean_image(x_train)

        def images(x: np.ndarray) -> torch.Tensor:
            return preprocess(x, input_mean).to(device)

        def labels(y: np.ndarray) -> torch.Tensor:
            return torch.as_tensor(np.asarray(y, dtype=np.int64), device=device)

        return cls(
            input_mean=input_mean,
            train_images=images(x_train),
            train_labels=labels(dataset.y_train[split.train_indices]),
            validation_images=images(dataset.x_train[split.validation_indices]),
            validation_labels=labels(dataset.y_train[split.validation_indices]),
            test_images=images(dataset.x_test),
            test_labels=labels(dataset.y_test),
            num_classes=dataset.num_classes,
        )


def check_split(split: Split, num_images: int) -> None:
    """Raise ValueError unless the split holds disjoint, valid, non-empty index sets."""
    for name in ("train_indices", "validation_indices"):
        indices = np.asarray(getattr(split, name))
        if indices.ndim != 1 or len(indices) == 0:
            raise ValueError(f"split {name} must be a non-empty 1-D index array, got shape {indices.shape}")
        if indices.min() < 0 or indices.max() >= num_images:
            raise ValueError(
                f"split {name} has indices outside 0..{num_images - 1} "
                f"({indices.min()}..{indices.max()}): is it the split of this dataset?"
            )
        if len(np.unique(indices)) != len(indices):
            raise ValueError(f"split {name} repeats indices")
    overlap = np.intersect1d(split.train_indices, split.validation_indices)
    if len(overlap):
        raise ValueError(
            f"split train and validation indices overlap ({len(overlap)} shared, e.g. {overlap[0]})"
        )


def data_fingerprint(dataset: Dataset, split: Split) -> str:
    """Digest of the images, labels and split: a resumed run must see the same data."""
    return array_digest(
        dataset.x_train,
        dataset.y_train,
        dataset.x_test,
        dataset.y_test,
        split.train_indices,
        split.validation_indices,
    )


# -------------------------------------------------------------------------- trainer


def build_optimizer(parameters, settings: TrainingSettings, device: torch.device) -> torch.optim.Adam:
    """Adam as in Keras: no weight decay, the settings' lr, betas and epsilon.

    On CUDA the fused kernel (one launch for all tensors) is used; it is what a
    captured CUDA graph needs (``capturable``). Note: PyTorch adds epsilon after the
    bias correction of the second moment, Keras before it; the two differ only
    while ``1 - beta2**t`` is far from 1, i.e. in the first few thousand steps, and
    there by an epsilon of 1e-8 against gradient magnitudes of 1e-5 and more.
    """
    on_cuda = device.type == "cuda"
    return torch.optim.Adam(
        parameters,
        lr=settings.learning_rate,
        betas=settings.adam_betas,
        eps=settings.adam_epsilon,
        weight_decay=0.0,
        fused=True if on_cuda else None,
        capturable=on_cuda and settings.cuda_graphs,
    )


class LockstepTrainer:
    """Trains K >= 1 networks of one architecture in lockstep on device-resident data.

    K = 1 trains the plain network; K > 1 stacks the networks into one
    :class:`~selectivity.grouped.GroupedConvNet`. ``train_labels`` (K, N) holds each
    network's own (possibly corrupted) labels of the training split.
    """

    def __init__(
        self,
        networks: Sequence[AnalysableNetwork],
        train_images: torch.Tensor,
        train_labels: torch.Tensor,
        settings: TrainingSettings,
        device: torch.device,
    ):
        if not networks:
            raise ValueError("LockstepTrainer needs at least one network")
        copies = len(networks)
        if train_labels.shape != (copies, len(train_images)):
            raise ValueError(
                f"train_labels must be (networks, images) = ({copies}, {len(train_images)}), "
                f"got {tuple(train_labels.shape)}"
            )
        self.copies = copies
        self.settings = settings
        self.device = torch.device(device)
        model = networks[0] if copies == 1 else stack_networks(networks)
        self.model: AnalysableNetwork | GroupedConvNet = model.to(self.device).train()
        self.optimizer = build_optimizer(self.model.parameters(), settings, self.device)
        self.train_images = train_images.to(self.device)
        self.train_labels = train_labels.to(self.device)
        count = len(train_images)
        # The epoch plan lives in fixed buffers, refilled in place every epoch, so that
        # a captured CUDA graph reads the current epoch's plan.
        self._order = torch.zeros((copies, count), dtype=torch.long, device=self.device)
        self._shifts = self._flips = None
        if settings.augmentation:
            self._shifts = torch.zeros((copies, count, 2), dtype=torch.long, device=self.device)
            self._flips = torch.zeros((copies, count), dtype=torch.bool, device=self.device)
        self._positions = torch.arange(count, device=self.device)
        self._use_graph = settings.cuda_graphs and self.device.type == "cuda"
        self._graph: torch.cuda.CUDAGraph | None = None
        self._graph_positions: torch.Tensor | None = None

    @property
    def steps_per_epoch(self) -> int:
        return math.ceil(len(self.train_images) / self.settings.batch_size)

    def set_plan(self, plan: EpochPlan) -> None:
        """Load an epoch's order and augmentation into the device buffers."""
        if plan.order.shape != self._order.shape:
            raise ValueError(
                f"epoch plan order has shape {tuple(plan.order.shape)}, expected {tuple(self._order.shape)}"
            )
        self._order.copy_(plan.order)
        if self._shifts is not None:
            if plan.shifts is None or plan.flips is None:
                raise ValueError("augmentation is on but the epoch plan has no shifts/flips")
            self._shifts.copy_(plan.shifts)
            self._flips.copy_(plan.flips)

    def train_steps(self, first: int, count: int, progress_bar: tqdm | None = None) -> None:
        """Run optimiser steps ``first .. first+count-1`` of the current epoch plan."""
        batch_size = self.settings.batch_size
        total = len(self.train_images)
        for step in range(first, first + count):
            start = step * batch_size
            stop = min(start + batch_size, total)
            if start >= total:
                raise ValueError(f"step {step} is past the end of the epoch ({self.steps_per_epoch} steps)")
            if self._use_graph and stop - start == batch_size:
                if self._graph is None:
                    self._capture_step_graph()
                self._graph_positions.copy_(self._positions[start:stop])
                self._graph.replay()
            else:
                # With a captured graph the gradients live in its memory pool: zero them
                # in place rather than dropping them.
                self.optimizer.zero_grad(set_to_none=self._graph is None)
                self._batch_loss(self._positions[start:stop]).backward()
                with _capturable_optimizer_runs_eagerly() if self._use_graph else contextlib.nullcontext():
                    self.optimizer.step()
            if progress_bar is not None:
                progress_bar.update(1)

    def _batch_loss(self, positions: torch.Tensor) -> torch.Tensor:
        """Sum over networks of each network's mean cross-entropy on its batch at ``positions``."""
        indices = self._order.index_select(1, positions)  # (K, B) training-split indices
        copies, batch = indices.shape
        images = self.train_images.index_select(0, indices.reshape(-1))  # (K*B, C, H, W)
        if self._shifts is not None:
            shifts = self._shifts.index_select(1, positions).reshape(-1, 2)
            flips = self._flips.index_select(1, positions).reshape(-1)
            images = shift_and_flip(images, shifts, flips)
        targets = self.train_labels.gather(1, indices)  # (K, B)
        if copies == 1:
            return F.cross_entropy(self.model(images), targets[0])
        channels, height, width = images.shape[1:]
        stacked = images.view(copies, batch, channels, height, width).transpose(0, 1)
        logits = self.model(stacked.reshape(batch, copies * channels, height, width))  # (B, K, classes)
        losses = F.cross_entropy(logits.reshape(batch * copies, -1), targets.t().reshape(-1), reduction="sum")
        return losses / batch

    def _capture_step_graph(self) -> None:
        """Capture one full-batch training step as a CUDA graph.

        Capture needs a few real warm-up steps first (cuDNN workspaces, Adam state);
        the weights, BN statistics and Adam state are restored afterwards, so the
        warm-up leaves no trace in the trained networks.
        """
        batch_size = self.settings.batch_size
        self._graph_positions = self._positions[:batch_size].clone()
        snapshot = self._snapshot()
        side_stream = torch.cuda.Stream(self.device)
        side_stream.wait_stream(torch.cuda.current_stream(self.device))
        with torch.cuda.stream(side_stream), _capturable_optimizer_runs_eagerly():
            for _ in range(_GRAPH_WARMUP_STEPS):
                self.optimizer.zero_grad(set_to_none=True)
                self._batch_loss(self._graph_positions).backward()
                self.optimizer.step()
        torch.cuda.current_stream(self.device).wait_stream(side_stream)
        graph = torch.cuda.CUDAGraph()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            self._batch_loss(self._graph_positions).backward()
            self.optimizer.step()
        self._restore(snapshot)
        self._graph = graph
        log.debug("captured the training step of %d network(s) as a CUDA graph", self.copies)

    def _model_tensors(self) -> list[torch.Tensor]:
        return list(self.model.parameters()) + list(self.model.buffers())

    def _snapshot(self) -> tuple[list[torch.Tensor], dict]:
        model = [t.detach().clone() for t in self._model_tensors()]
        optimizer = {
            p: {k: v.clone() for k, v in state.items() if torch.is_tensor(v)}
            for p, state in self.optimizer.state.items()
        }
        return model, optimizer

    def _restore(self, snapshot: tuple[list[torch.Tensor], dict]) -> None:
        model, optimizer = snapshot
        with torch.no_grad():
            for tensor, saved in zip(self._model_tensors(), model):
                tensor.copy_(saved)
            for parameter, state in self.optimizer.state.items():
                saved = optimizer.get(parameter)
                for key, value in state.items():
                    if torch.is_tensor(value):
                        # State created by the warm-up: zeros and step 0 act as a fresh state.
                        value.zero_() if saved is None else value.copy_(saved[key])

    @torch.no_grad()
    def evaluate(
        self, images: torch.Tensor, label_sets: Sequence[torch.Tensor]
    ) -> list[tuple[np.ndarray, np.ndarray]]:
        """Mean cross-entropy and accuracy of every network on ``images`` (evaluation mode).

        Each label set is (N,) (shared) or (K, N) (per network). Returns, per label
        set, ``(losses, accuracies)``, float64 arrays of length K. Sums stay on the
        device until the end: one host synchronisation per call.
        """
        was_training = self.model.training
        self.model.eval()
        count, copies = len(images), self.copies
        loss_sums = [torch.zeros(copies, dtype=torch.float64, device=self.device) for _ in label_sets]
        correct = [torch.zeros(copies, dtype=torch.long, device=self.device) for _ in label_sets]
        # evaluation_batch_size counts network-images, which bounds memory for large K.
        chunk = max(1, self.settings.evaluation_batch_size // copies)
        try:
            for start in range(0, count, chunk):
                x = images[start : start + chunk]
                if copies == 1:
                    logits = self.model(x).unsqueeze(1)
                else:
                    logits = self.model(x.repeat(1, copies, 1, 1))
                log_probabilities = logits.log_softmax(-1)  # (b, K, classes)
                predictions = logits.argmax(-1)
                for i, labels in enumerate(label_sets):
                    if labels.dim() == 1:  # shared labels
                        y = labels[start : start + chunk].unsqueeze(1).expand(-1, copies)
                    else:  # one row of labels per network
                        y = labels[:, start : start + chunk].t()
                    losses = -log_probabilities.gather(2, y.unsqueeze(2)).squeeze(2)
                    loss_sums[i] += losses.sum(0, dtype=torch.float64)
                    correct[i] += (predictions == y).sum(0)
        finally:
            self.model.train(was_training)
        return [
            ((loss_sum / count).cpu().numpy(), (hits.double() / count).cpu().numpy())
            for loss_sum, hits in zip(loss_sums, correct)
        ]

    def network_state_dict(self, index: int) -> dict[str, torch.Tensor]:
        """CPU copy of network ``index``'s plain-model weights and BN statistics."""
        if self.copies == 1:
            return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}
        return {k: v.cpu() for k, v in self.model.network_state_dict(index).items()}

    def plain_networks(self) -> list[AnalysableNetwork]:
        """The trained networks as plain models (the model itself when K = 1)."""
        return [self.model] if self.copies == 1 else unstack_networks(self.model)

    def training_state(self) -> dict[str, Any]:
        """Weights and optimiser state (CPU copies) for resuming."""
        return {
            "model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            "optimizer": _to_cpu(self.optimizer.state_dict()),
        }

    def load_training_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self._graph = None  # the optimiser state tensors were replaced: capture again


@contextlib.contextmanager
def _capturable_optimizer_runs_eagerly() -> Iterator[None]:
    """Silence PyTorch's advice against eager steps of a capturable optimiser.

    Graph mode runs the capture warm-up and an epoch's last, partial batch eagerly;
    that is intended, and the fused kernel is the same either way.
    """
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="This instance was constructed with capturable=True")
        yield


def _to_cpu(value: Any) -> Any:
    if torch.is_tensor(value):
        return value.detach().cpu().clone()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_to_cpu(v) for v in value]
    return value


@contextlib.contextmanager
def device_numerics(device: torch.device, settings: TrainingSettings) -> Iterator[None]:
    """Make ``device`` current and fix its numerics for the run, restoring the flags afterwards.

    On CUDA: IEEE fp32 convolutions and matmuls (no TF32: "fp32" means fp32) and,
    when ``settings.deterministic``, deterministic cuDNN kernels without autotuning.
    Nothing to do on the CPU.
    """
    if device.type != "cuda":
        yield
        return
    cudnn, matmul = torch.backends.cudnn, torch.backends.cuda.matmul
    saved = (cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32)
    cudnn.deterministic = settings.deterministic
    cudnn.benchmark = not settings.deterministic
    cudnn.allow_tf32 = False
    matmul.allow_tf32 = False
    try:
        with torch.cuda.device(device):
            yield
    finally:
        cudnn.deterministic, cudnn.benchmark, cudnn.allow_tf32, matmul.allow_tf32 = saved


def _synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


# ------------------------------------------------------------------- the whole run


def train_networks(
    networks: Sequence[NetworkSpec],
    dataset: Dataset,
    split: Split,
    settings: TrainingSettings,
    outputs: Sequence[NetworkOutputs],
    state_dir: Path,
    device: torch.device,
    grouped: bool = True,
    progress: bool = True,
    *,
    epoch_callback: Callable[[int], None] | None = None,
) -> None:
    """Train the networks and write every network's checkpoints, best checkpoint and metrics.

    All networks share the model, dataset, split and settings; each has its own seed
    and label corruption. With ``grouped`` (and more than one network) they train
    as one stacked network; otherwise one after the other. Either way each network
    gets the same files, equal up to float rounding.

    ``state_dir`` holds the resumable state of unfinished runs (one folder per set
    of networks; it may be shared by many jobs); it must lie outside the declared
    outputs. The state is removed once the outputs are written.
    ``epoch_callback(epoch)`` is called after each epoch's state is saved (epoch 0
    included), e.g. to stop a run for testing.
    """
    networks, outputs = list(networks), list(outputs)
    _check_request(networks, outputs, settings)
    device = torch.device(device)
    data = DeviceData.from_dataset(dataset, split, device)
    fingerprint = data_fingerprint(dataset, split)
    groups = [list(range(len(networks)))] if grouped else [[i] for i in range(len(networks))]
    with device_numerics(device, settings):
        for members in groups:
            run = _GroupRun(
                [networks[i] for i in members],
                [outputs[i] for i in members],
                data,
                split,
                settings,
                device,
                Path(state_dir),
                fingerprint,
                progress,
            )
            run.run(epoch_callback)


def _check_request(
    networks: list[NetworkSpec], outputs: list[NetworkOutputs], settings: TrainingSettings
) -> None:
    if not networks:
        raise ValueError("train_networks needs at least one network")
    if len(outputs) != len(networks):
        raise ValueError(f"got {len(networks)} networks but {len(outputs)} outputs")
    models = {n.model for n in networks}
    datasets = {n.dataset for n in networks}
    if len(models) > 1 or len(datasets) > 1:
        raise ValueError(
            f"networks trained together must share model and dataset, got models {sorted(models)} "
            f"and datasets {sorted(datasets)}"
        )
    if networks[0].model not in TRAINABLE_MODELS:
        raise ValueError(
            f"model {networks[0].model!r} cannot be trained; trainable: {', '.join(TRAINABLE_MODELS)}"
        )
    identities = [(n.label_corruption, n.seed) for n in networks]
    if len(set(identities)) != len(identities):
        raise ValueError(f"the same network is listed twice: {[n.path_fragment() for n in networks]}")
    expected = settings.saved_epochs()
    for spec, output in zip(networks, outputs):
        if sorted(output.checkpoints) != expected:
            raise ValueError(
                f"{spec.path_fragment()}: checkpoint outputs are for epochs {sorted(output.checkpoints)}, "
                f"but the settings save epochs {expected}"
            )


class _GroupRun:
    """One lockstep run of K networks: epochs, metrics, best weights, state, outputs."""

    def __init__(
        self,
        specs: list[NetworkSpec],
        outputs: list[NetworkOutputs],
        data: DeviceData,
        split: Split,
        settings: TrainingSettings,
        device: torch.device,
        state_root: Path,
        fingerprint: str,
        progress: bool,
    ):
        self.specs, self.outputs, self.data = specs, outputs, data
        self.settings, self.device, self.progress = settings, device, progress
        self.copies = len(specs)
        identities = [spec.identifiers() for spec in specs]
        self.folder = state_root / f"training-{config_hash({'networks': identities})}"
        self.state_path = self.folder / "state.pt"
        # What a resumed run must share with this one to continue it bit for bit.
        self.run_identity = {
            "networks": identities,
            "settings": {k: v for k, v in settings.as_dict().items() if k not in RESUME_INDIFFERENT_SETTINGS},
            "data": fingerprint,
            "code": source_digest(),
            "device type": device.type,
            "CPU threads": torch.get_num_threads() if device.type == "cpu" else None,
            "torch": str(torch.__version__),
        }
        self.name = (
            specs[0].path_fragment()
            if self.copies == 1
            else (
                f"{specs[0].model}/{specs[0].dataset} x{self.copies} ({', '.join(s.path_fragment() for s in specs)})"
            )
        )
        self.provenances = []
        for spec in specs:
            record = provenance(
                spec.seed,
                {**settings.as_dict(), **spec.identifiers(), "split_seed": split.split_seed},
                device,
            )
            record["training_group_size"] = self.copies  # grouped kernels round differently
            self.provenances.append(record)

        true_labels = data.train_labels.cpu().numpy()
        corrupted = [corrupt_labels(true_labels, s.label_corruption, data.num_classes, s.seed) for s in specs]
        self.shuffle_generators = [stream_generator(s.seed, "shuffling") for s in specs]
        self.augmentation_generators = [stream_generator(s.seed, "augmentation") for s in specs]
        input_size = int(data.train_images.shape[-1])
        networks = [initial_network(s.model, s.seed, data.num_classes, input_size) for s in specs]
        self.trainer = LockstepTrainer(
            networks, data.train_images, torch.as_tensor(np.stack(corrupted)), settings, device
        )
        self.rows: list[list[dict]] = [[] for _ in specs]
        self.best: list[dict | None] = [None for _ in specs]
        self.completed_epoch = -1

    # -- state

    def _checkpoint_path(self, index: int, epoch: int) -> Path:
        return self.folder / f"network{index}" / f"epoch{epoch}.pt"

    def _save_state(self) -> None:
        save_torch(
            {
                "format": STATE_FORMAT,
                "run_identity": self.run_identity,
                "completed_epoch": self.completed_epoch,
                "trainer": self.trainer.training_state(),
                "shuffle_generators": [g.get_state() for g in self.shuffle_generators],
                "augmentation_generators": [g.get_state() for g in self.augmentation_generators],
                "rows": self.rows,
                "best": self.best,
            },
            self.state_path,
        )

    def _discard_state(self, reason: str) -> None:
        if self.folder.exists():
            log.info(
                "%s: discarding training state in %s (%s); starting from scratch",
                self.name,
                self.folder,
                reason,
            )
            shutil.rmtree(self.folder)

    def _resume(self) -> bool:
        """Load the saved state if it belongs to this very run; else discard it."""
        if not self.state_path.exists():
            self._discard_state("no finished epoch recorded")
            return False
        try:
            state = load_torch(self.state_path, "training state")
        except UnsafeFileError:
            raise  # never silently replace a file that someone may have planted
        except Exception as error:  # an unreadable (e.g. truncated) state is not worth failing for
            self._discard_state(f"unreadable: {error}")
            return False
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            self._discard_state(f"it is not a {STATE_FORMAT} file")
            return False
        saved_identity = state.get("run_identity", {})
        differences = [key for key in self.run_identity if saved_identity.get(key) != self.run_identity[key]]
        if differences:
            self._discard_state(f"it was made with other {', '.join(differences)}")
            return False
        completed = int(state["completed_epoch"])
        missing = [
            str(self._checkpoint_path(i, e))
            for i in range(self.copies)
            for e in self.settings.saved_epochs()
            if e <= completed and not self._checkpoint_path(i, e).exists()
        ]
        if missing:
            self._discard_state(f"checkpoints missing: {missing[:3]}")
            return False
        self.trainer.load_training_state(state["trainer"])
        for generator, saved in zip(self.shuffle_generators, state["shuffle_generators"]):
            generator.set_state(saved)
        for generator, saved in zip(self.augmentation_generators, state["augmentation_generators"]):
            generator.set_state(saved)
        self.rows, self.best, self.completed_epoch = state["rows"], state["best"], completed
        log.info("%s: resuming after epoch %d from %s", self.name, completed, self.state_path)
        return True

    # -- epochs

    def run(self, epoch_callback: Callable[[int], None] | None) -> None:
        if not self._resume():
            log.info("%s: training %d epochs on %s", self.name, self.settings.epochs, self.device)
            self._finish_epoch(0, seconds=0.0, epoch_callback=epoch_callback)
        steps = self.trainer.steps_per_epoch
        bar = tqdm(
            total=self.settings.epochs * steps,
            initial=self.completed_epoch * steps,
            disable=not self.progress,
            desc=f"training {self.name}",
            unit="step",
        )
        try:
            for epoch in range(self.completed_epoch + 1, self.settings.epochs + 1):
                plan = draw_epoch_plan(
                    self.shuffle_generators,
                    self.augmentation_generators,
                    len(self.data.train_images),
                    self.settings,
                    tuple(self.data.train_images.shape[-2:]),
                )
                started = time.perf_counter()
                self.trainer.set_plan(plan)
                self.trainer.train_steps(0, steps, bar)
                _synchronise(self.device)
                self._finish_epoch(epoch, time.perf_counter() - started, epoch_callback)
        finally:
            bar.close()
        self._write_outputs()
        shutil.rmtree(self.folder, ignore_errors=True)

    def _finish_epoch(self, epoch: int, seconds: float, epoch_callback: Callable[[int], None] | None) -> None:
        """Evaluate, update best weights, write due checkpoints, save the state."""
        data, trainer = self.data, self.trainer
        train, train_true = trainer.evaluate(data.train_images, [trainer.train_labels, data.train_labels])
        (validation,) = trainer.evaluate(data.validation_images, [data.validation_labels])
        (test,) = trainer.evaluate(data.test_images, [data.test_labels])
        self._check_finite(epoch, train[0], validation[0])
        for k, spec in enumerate(self.specs):
            row = {
                **spec.identifiers(),
                "epoch": epoch,
                "train_loss": float(train[0][k]),
                "train_accuracy": float(train[1][k]),
                "train_loss_true_labels": float(train_true[0][k]),
                "train_accuracy_true_labels": float(train_true[1][k]),
                "validation_loss": float(validation[0][k]),
                "validation_accuracy": float(validation[1][k]),
                "test_loss": float(test[0][k]),
                "test_accuracy": float(test[1][k]),
                "epoch_seconds": float(seconds),
            }
            self.rows[k].append(row)
            log.info(
                "%s epoch %d/%d: train loss %.4f acc %.4f | validation loss %.4f acc %.4f | test acc %.4f (%.1f s)",
                spec.path_fragment(),
                epoch,
                self.settings.epochs,
                row["train_loss"],
                row["train_accuracy"],
                row["validation_loss"],
                row["validation_accuracy"],
                row["test_accuracy"],
                seconds,
            )
            # The author's ModelCheckpoint(save_best_only): strictly lower validation loss wins.
            best = self.best[k]
            if epoch >= 1 and (best is None or row["validation_loss"] < best["validation_loss"]):
                self.best[k] = {
                    "epoch": epoch,
                    "validation_loss": row["validation_loss"],
                    "state_dict": trainer.network_state_dict(k),
                    "metrics": row,
                }
        if epoch in self.settings.saved_epochs():
            for k, network in enumerate(trainer.plain_networks()):
                self._save_network_checkpoint(
                    self._checkpoint_path(k, epoch), k, network, epoch, self.rows[k][-1]
                )
        self.completed_epoch = epoch
        self._save_state()
        if epoch_callback is not None:
            epoch_callback(epoch)

    def _check_finite(self, epoch: int, train_losses, validation_losses) -> None:
        """Stop at the first epoch whose losses or weights are not finite, before anything is saved.

        The checkpoints and the resume state of the earlier epochs stay in the state folder,
        so nothing with non-finite weights is ever written and the run can be inspected.
        """
        for k, spec in enumerate(self.specs):
            train_loss, validation_loss = float(train_losses[k]), float(validation_losses[k])
            weights_finite = all(
                torch.isfinite(tensor).all() for tensor in self.trainer.network_state_dict(k).values()
            )
            if math.isfinite(train_loss) and math.isfinite(validation_loss) and weights_finite:
                continue
            kept = (
                f"the checkpoints and resume state up to epoch {epoch - 1} are kept in {self.folder}"
                if epoch > 0
                else "nothing was saved"
            )
            raise TrainingDivergedError(
                f"{spec.path_fragment()}: training diverged at epoch {epoch} (training loss {train_loss}, "
                f"validation loss {validation_loss}, weights {'finite' if weights_finite else 'not finite'}); "
                f"{kept}. Lower training.learning_rate or check the data."
            )

    # -- outputs

    def _save_network_checkpoint(
        self, path: Path, index: int, network: AnalysableNetwork, epoch: int, row: dict
    ) -> None:
        spec = self.specs[index]
        save_checkpoint(
            path,
            network,
            model_name=spec.model,
            input_mean=self.data.input_mean,
            epoch=epoch,
            network=spec.identifiers(),
            metrics=row,
            provenance=self.provenances[index],
            num_classes=self.data.num_classes,
        )

    def _write_outputs(self) -> None:
        input_size = int(self.data.train_images.shape[-1])
        for k, (spec, output) in enumerate(zip(self.specs, self.outputs)):
            for epoch, path in output.checkpoints.items():
                with atomic_path(path) as tmp:
                    shutil.copyfile(self._checkpoint_path(k, epoch), tmp)
            best = self.best[k]
            if best is None:
                raise RuntimeError(
                    f"{spec.path_fragment()}: no epoch had a finite validation loss, so there is no best checkpoint "
                    f"(losses: {[r['validation_loss'] for r in self.rows[k]]})"
                )
            with torch.random.fork_rng(devices=[]):  # the blank model's own init is overwritten
                network = build_model(spec.model, num_classes=self.data.num_classes, input_size=input_size)
            network.load_state_dict(best["state_dict"])
            self._save_network_checkpoint(
                Path(output.best_checkpoint), k, network, best["epoch"], best["metrics"]
            )
            save_table(pd.DataFrame(self.rows[k], columns=list(METRICS_COLUMNS)), output.metrics)
            log.info(
                "%s: done; best validation loss %.4f at epoch %d",
                spec.path_fragment(),
                best["validation_loss"],
                best["epoch"],
            )
