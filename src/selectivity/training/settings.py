"""What to train and how: a network's identity, the training settings, where results go."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from selectivity.identity import Regularisation, architecture_of, model_regularisation
from selectivity.numerics import PRECISIONS
from selectivity.regularisation import RegularisationSettings


class TrainingDivergedError(RuntimeError):
    """A network's loss or weights stopped being finite; names the network and the epoch."""


@dataclass(frozen=True)
class NetworkSpec:
    """Which network: architecture, dataset, fraction of corrupted labels, seed.

    ``architecture`` describes a user's own architecture (constructor, arguments, class argument,
    layers: :func:`selectivity.networks.user_architectures.architecture_record`); None for a
    built-in model, which ``model`` names. A ``model`` such as ``cnn7+orientation-0.5`` is a
    regularised variant (:mod:`selectivity.identity`, docs/method.md §2.10): the architecture
    cnn7 trained with -0.5 x mean gOSI added to its loss (:attr:`regularisation`).
    """

    model: str
    dataset: str
    label_corruption: float
    seed: int
    architecture: Mapping[str, Any] | None = field(default=None, hash=False)

    def __post_init__(self):
        corruption = float(self.label_corruption)
        if not 0.0 <= corruption <= 1.0:
            raise ValueError(f"label_corruption must be a fraction in [0, 1], got {self.label_corruption!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, (int, np.integer)) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {self.seed!r}")
        object.__setattr__(self, "label_corruption", corruption)
        object.__setattr__(self, "seed", int(self.seed))
        if "+" in str(self.model) and model_regularisation(self.model) is None:
            raise ValueError(
                f"model {self.model!r} is neither an architecture nor a regularised variant "
                "(<architecture>+<feature><signed non-zero coefficient>, e.g. cnn7+orientation-0.5)"
            )

    @property
    def architecture_model(self) -> str:
        """The architecture the network is built from (its own name, or a regularised variant's architecture)."""
        return architecture_of(self.model)

    @property
    def regularisation(self) -> Regularisation | None:
        """Feature and coefficient of a regularised variant; None for a network without the regulariser."""
        return model_regularisation(self.model)

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
    the last epoch is always saved too. ``precision``: ``"fp32"`` (IEEE fp32, also on GPUs:
    no TF32) or ``"bf16"`` (bf16 autocast with fp32 weights, Adam state, BatchNorm statistics
    and loss; :mod:`selectivity.numerics`); it changes the trained weights. ``cuda_graphs``
    captures each training step as a CUDA graph on CUDA devices (no effect on the
    CPU). ``deterministic`` asks cuDNN for deterministic kernels on CUDA devices (the
    CPU kernels are deterministic already). ``selectivity_regularisation``: how regularised
    variants are trained (a :class:`~selectivity.regularisation.RegularisationSettings` or its
    record; docs/method.md §2.10); None for networks without the regulariser.
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
    selectivity_regularisation: RegularisationSettings | None = None

    def __post_init__(self):
        if isinstance(self.selectivity_regularisation, Mapping):
            object.__setattr__(
                self,
                "selectivity_regularisation",
                RegularisationSettings.from_record(self.selectivity_regularisation),
            )
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
                f"training setting precision must be one of {PRECISIONS}, got {self.precision!r}"
            )

    def saved_epochs(self) -> list[int]:
        """The epochs whose checkpoints are written: ``checkpoint_epochs`` plus the last epoch."""
        return sorted(set(self.checkpoint_epochs) | {self.epochs})

    def as_dict(self) -> dict[str, Any]:
        """Plain values; ``selectivity_regularisation`` only where it is set, so that networks without
        the regulariser keep the record (provenance, resume identity) they always had."""
        values = dataclasses.asdict(self)
        values["adam_betas"] = list(self.adam_betas)
        values["checkpoint_epochs"] = list(self.checkpoint_epochs)
        del values["selectivity_regularisation"]
        if self.selectivity_regularisation is not None:
            values["selectivity_regularisation"] = self.selectivity_regularisation.record()
        return values


@dataclass
class NetworkOutputs:
    """Where one network's results go: ``checkpoints`` maps each saved epoch to its file."""

    checkpoints: dict[int, Path]
    best_checkpoint: Path
    metrics: Path
