"""The lockstep trainer: device-resident data, Adam, the training step (optionally one CUDA graph)."""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from selectivity import numerics
from selectivity.data.augmentation import shift_and_flip
from selectivity.data.dataset import Dataset, Split, array_digest, mean_image, preprocess
from selectivity.networks.grouped import StackedNetwork, stack_networks, unstack_networks
from selectivity.networks.models import AnalysableNetwork
from selectivity.training.settings import (
    TrainingSettings,
)
from selectivity.training.randomness import (
    EpochPlan,
)

if TYPE_CHECKING:
    from selectivity.training.regulariser import SelectivityRegulariser

log = logging.getLogger(__name__)

# Full-batch steps run before a CUDA graph is captured (cuDNN/allocator warm-up);
# their effect on the weights is undone, see LockstepTrainer._capture_step_graph.
_GRAPH_WARMUP_STEPS = 3

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

    K = 1 trains the plain network; K > 1 stacks the networks into one stacked network of
    :mod:`selectivity.networks.grouped` (any trainable architecture). ``train_labels`` (K, N) holds each
    network's own (possibly corrupted) labels of the training split.

    Forward passes run in ``settings.precision`` (:func:`selectivity.numerics.autocast`); the
    loss is computed from fp32 logits, and the weights, gradients and Adam state stay fp32.
    ``channels_last`` (default: :func:`selectivity.numerics.prefers_channels_last` for the
    architecture, device and precision) lays out the model and its input batches channels-last;
    the evaluation passes of one network lay out their input in the analysis layout (the same
    function with ``training=False``), which changes their losses by rounding only.

    ``regulariser`` (docs/method.md §2.10): at the steps it is due, its term (each network's
    coefficient x mean index of its regularised layers on the gratings) is added to the summed loss
    before the one backward pass and optimiser step; steps are counted over the whole run
    (:attr:`completed_steps`, part of the resume state).
    """

    def __init__(
        self,
        networks: Sequence[AnalysableNetwork],
        train_images: torch.Tensor,
        train_labels: torch.Tensor,
        settings: TrainingSettings,
        device: torch.device,
        channels_last: bool | None = None,
        regulariser: SelectivityRegulariser | None = None,
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
        architecture = getattr(networks[0], "name", None)
        if channels_last is None:
            channels_last = numerics.prefers_channels_last(
                architecture, self.device, settings.precision, training=True
            )
        self.channels_last = bool(channels_last)
        # Evaluation passes are analysis passes: their input takes the analysis layout where that
        # is faster (the weights keep the training layout; results differ by rounding only).
        # Stacked networks keep the training layout: their analysis layout was never measured.
        self.evaluation_channels_last = self.channels_last or (
            copies == 1
            and numerics.prefers_channels_last(architecture, self.device, settings.precision, training=False)
        )
        model = networks[0] if copies == 1 else stack_networks(networks)
        memory_format = torch.channels_last if self.channels_last else torch.contiguous_format
        self.model: AnalysableNetwork | StackedNetwork = model.to(
            self.device, memory_format=memory_format
        ).train()
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
        if regulariser is not None and regulariser.copies != copies:
            raise ValueError(
                f"the regulariser has {regulariser.copies} coefficient(s) for {copies} network(s)"
            )
        self.regulariser = regulariser
        #: optimiser steps taken so far in the run (the regulariser's schedule counts them)
        self.completed_steps = 0

    def _logits(self, images: torch.Tensor) -> torch.Tensor:
        """The model's logits in the training precision and memory format, cast to fp32 for the loss."""
        with numerics.autocast(self.settings.precision, self.device, graph_capture=self._use_graph):
            logits = self.model(numerics.in_memory_format(images, self.channels_last))
        return logits.float()

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
            regularised = self.regulariser is not None and self.regulariser.due(self.completed_steps)
            if self._use_graph and stop - start == batch_size and not regularised:
                if self._graph is None:
                    self._capture_step_graph()
                self._graph_positions.copy_(self._positions[start:stop])
                self._graph.replay()
            else:
                # With a captured graph the gradients live in its memory pool: zero them
                # in place rather than dropping them.
                self.optimizer.zero_grad(set_to_none=self._graph is None)
                loss = self._batch_loss(self._positions[start:stop])
                if regularised:  # its steps run eagerly: the captured graph is the plain step
                    loss = loss + self.regulariser.penalty(self.model)
                loss.backward()
                with _capturable_optimizer_runs_eagerly() if self._use_graph else contextlib.nullcontext():
                    self.optimizer.step()
            self.completed_steps += 1
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
            return F.cross_entropy(self._logits(images), targets[0])
        channels, height, width = images.shape[1:]
        stacked = images.view(copies, batch, channels, height, width).transpose(0, 1)
        logits = self._logits(stacked.reshape(batch, copies * channels, height, width))  # (B, K, classes)
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
                x = numerics.in_memory_format(images[start : start + chunk], self.evaluation_channels_last)
                if copies == 1:
                    logits = self._logits(x).unsqueeze(1)
                else:
                    logits = self._logits(x.repeat(1, copies, 1, 1))
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
        """CPU copy of network ``index``'s plain-model weights and BN statistics (default layout)."""
        if self.copies == 1:
            return {k: v.detach().cpu().contiguous().clone() for k, v in self.model.state_dict().items()}
        return {k: v.cpu().contiguous() for k, v in self.model.network_state_dict(index).items()}

    def plain_networks(self) -> list[AnalysableNetwork]:
        """The trained networks as plain models (the model itself when K = 1, in its training layout)."""
        return [self.model] if self.copies == 1 else unstack_networks(self.model)

    def training_state(self) -> dict[str, Any]:
        """Weights and optimiser state (CPU copies) for resuming."""
        return {
            "model": {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()},
            "optimizer": _to_cpu(self.optimizer.state_dict()),
            "completed_steps": self.completed_steps,
        }

    def load_training_state(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.completed_steps = int(state.get("completed_steps", 0))
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


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
