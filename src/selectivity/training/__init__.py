"""Training one network, or K networks stacked into one, as the author did (docs/method.md §1 and §2).

The training rule [A]: inputs are ``preprocess(x, mean_image(x_train[train_indices]))``;
every epoch visits the training split in a fresh random order in batches of 32 (the
last, partial batch is kept, as Keras does); each image is shifted as Keras 2.0.8's
ImageDataGenerator does (a uniform shift of up to 10% of the image size, rounded to
whole pixels, edge-replicated fill; :mod:`selectivity.data.augmentation`) and flipped
left-right with p = 0.5; Adam (lr 1e-3, betas 0.9/0.999, epsilon 1e-8, Keras 2.0.8's
default) minimises the cross-entropy, with no schedule and no weight decay.

What this module adds around the rule:

- *Own randomness per network.* A network's initialisation, label corruption, data
  order and augmentation draws come only from generators derived from its seed
  (:func:`derive_seed`), never from global RNG state. That makes a network's result
  independent of which other networks it was trained with, so K networks trained as
  one stacked network (:mod:`selectivity.networks.grouped`) equal K separate runs.
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
- *One training of a network at a time.* A job holds an operating-system lock per
  network (:mod:`.lock`), so an orphaned job of a killed Snakemake and the rerun's job
  never share a resume state.

Metrics are measured after every epoch in evaluation mode on the whole training
split (against the labels trained with, and against the true labels), the
validation split and the test set. Epoch 0 is the initialisation.

The modules: :mod:`.settings` (which network, how to train, where results go),
:mod:`.randomness` (seed streams, initialisation, label corruption, epoch plans),
:mod:`.trainer` (device-resident data, Adam, the training step and its CUDA graph) and
:mod:`.run` (the resumable run of K networks and the files it writes), :mod:`.lock`
(the per-network training lock).
"""

from selectivity.training.settings import (
    PRECISIONS,
    TrainingDivergedError,
    NetworkSpec,
    TrainingSettings,
    NetworkOutputs,
)
from selectivity.training.randomness import (
    SEED_STREAMS,
    derive_seed,
    stream_generator,
    initial_network,
    corrupt_labels,
    EpochPlan,
    draw_epoch_plan,
)
from selectivity.training.trainer import (
    DeviceData,
    check_split,
    data_fingerprint,
    build_optimizer,
    LockstepTrainer,
    device_numerics,
)
from selectivity.training.lock import LOCK_WAIT_SECONDS, TrainingLockedError, training_locks
from selectivity.training.run import (
    METRICS_COLUMNS,
    STATE_FORMAT,
    RESUME_INDIFFERENT_SETTINGS,
    train_networks,
)

__all__ = [
    "PRECISIONS",
    "TrainingDivergedError",
    "NetworkSpec",
    "TrainingSettings",
    "NetworkOutputs",
    "SEED_STREAMS",
    "derive_seed",
    "stream_generator",
    "initial_network",
    "corrupt_labels",
    "EpochPlan",
    "draw_epoch_plan",
    "DeviceData",
    "check_split",
    "data_fingerprint",
    "build_optimizer",
    "LockstepTrainer",
    "device_numerics",
    "METRICS_COLUMNS",
    "STATE_FORMAT",
    "RESUME_INDIFFERENT_SETTINGS",
    "train_networks",
    "LOCK_WAIT_SECONDS",
    "TrainingLockedError",
    "training_locks",
]
