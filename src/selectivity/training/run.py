"""The resumable run: epochs, metrics, best weights, training state and output files of K networks."""

from __future__ import annotations

import logging
import math
import shutil
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from selectivity import numerics
from selectivity.networks.checkpoints import CheckpointError, read_checkpoint, save_checkpoint
from selectivity.data.dataset import Dataset, Split
from selectivity.io import UnsafeFileError, atomic_path, load_torch, save_table, save_torch
from selectivity.networks.models import TRAINABLE_MODELS, AnalysableNetwork
from selectivity.provenance import config_hash, provenance
from selectivity.tables import NETWORK_COLUMNS
from selectivity.versions import source_digest
from selectivity.training.settings import (
    TrainingDivergedError,
    NetworkSpec,
    TrainingSettings,
    NetworkOutputs,
)
from selectivity.training.randomness import (
    blank_network,
    derive_seed,
    stream_generator,
    initial_network,
    corrupt_labels,
    draw_epoch_plan,
)
from selectivity.training.lock import LOCK_WAIT_SECONDS, training_locks
from selectivity.training.trainer import (
    DeviceData,
    data_fingerprint,
    LockstepTrainer,
    device_numerics,
    synchronise,
)

log = logging.getLogger(__name__)

METRICS_COLUMNS = NETWORK_COLUMNS + (
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
STATE_FORMAT = "selectivity-training-state/2"
# Settings that cannot change the trained weights, so a run may resume across them.
RESUME_INDIFFERENT_SETTINGS = ("evaluation_batch_size", "cuda_graphs")


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
    lock_wait_seconds: float = LOCK_WAIT_SECONDS,
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

    While it runs, the job holds each network's lock in ``state_dir``
    (:mod:`selectivity.training.lock`): another process training one of the same networks
    makes it wait up to ``lock_wait_seconds`` and then stop with a
    :class:`~selectivity.training.lock.TrainingLockedError`.
    """
    networks, outputs = list(networks), list(outputs)
    _check_request(networks, outputs, settings)
    if settings.precision != "fp32":
        log.warning(
            "training in %s: these networks are other draws than fp32 ones, and on the real CIFAR-10 "
            "subset bf16 networks were not shown to be draws of the same distribution (docs/results.md, "
            "'bf16 networks against fp32 networks'); the paper's setting is fp32",
            settings.precision,
        )
    device = torch.device(device)
    with training_locks(state_dir, [n.path_fragment() for n in networks], lock_wait_seconds):
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
    if networks[0].architecture is None and networks[0].architecture_model not in TRAINABLE_MODELS:
        raise ValueError(
            f"model {networks[0].model!r} cannot be trained; trainable: {', '.join(TRAINABLE_MODELS)} "
            "or a user architecture (NetworkSpec.architecture)"
        )
    _check_regularisation(networks[0], settings)
    if len({config_hash({"architecture": n.architecture}) for n in networks}) > 1:
        raise ValueError("networks trained together must share their architecture description")
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


def _check_regularisation(spec: NetworkSpec, settings: TrainingSettings) -> None:
    """A regularised variant needs the regulariser's settings, for its own feature; a plain network none."""
    regularisation, training = spec.regularisation, settings.selectivity_regularisation
    if regularisation is None and training is not None:
        raise ValueError(
            f"{spec.model} is not a regularised variant, but the settings hold a selectivity regulariser; "
            "its networks are named <architecture>+<feature><coefficient> (docs/method.md §2.10)"
        )
    if regularisation is not None and training is None:
        raise ValueError(
            f"{spec.model} is a regularised variant, but the settings hold no selectivity_regularisation"
        )
    if regularisation is not None and regularisation.feature != training.feature:
        raise ValueError(
            f"{spec.model} regularises {regularisation.feature}, but the settings regularise {training.feature}"
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
        architecture = specs[0].architecture
        if architecture is not None:  # a user architecture: its description is part of what is trained
            self.run_identity["architecture"] = dict(architecture)
        # A user architecture trained alone may draw random numbers in its forward pass (dropout):
        # they come from the global RNG, seeded from the network's own "forward" stream and saved
        # with the resume state, so the network is the same whatever else the job trains.
        self.seeds_global_rng = architecture is not None and self.copies == 1
        self.name = (
            specs[0].path_fragment()
            if self.copies == 1
            else (
                f"{specs[0].model}/{specs[0].dataset} x{self.copies} ({', '.join(s.path_fragment() for s in specs)})"
            )
        )
        true_labels = data.train_labels.cpu().numpy()
        corrupted = [corrupt_labels(true_labels, s.label_corruption, data.num_classes, s.seed) for s in specs]
        self.shuffle_generators = [stream_generator(s.seed, "shuffling") for s in specs]
        self.augmentation_generators = [stream_generator(s.seed, "augmentation") for s in specs]
        input_size = int(data.train_images.shape[-1])
        networks = [
            initial_network(s.architecture_model, s.seed, data.num_classes, input_size, s.architecture)
            for s in specs
        ]
        if self.seeds_global_rng:
            torch.manual_seed(derive_seed(specs[0].seed, "forward"))
        regulariser = None
        if settings.selectivity_regularisation is not None:
            from selectivity.training.regulariser import SelectivityRegulariser

            regulariser = SelectivityRegulariser(
                settings.selectivity_regularisation,
                [s.regularisation.coefficient for s in specs],
                data.input_mean,
                device,
                settings.precision,
            )
        self.trainer = LockstepTrainer(
            networks,
            data.train_images,
            torch.as_tensor(np.stack(corrupted)),
            settings,
            device,
            regulariser=regulariser,
        )
        memory_format = numerics.memory_format_name(self.trainer.channels_last)
        # Another layout rounds differently: a run resumes bit for bit only in the same one.
        self.run_identity["memory format"] = memory_format

        self.provenances = []
        for spec in specs:
            described = {**settings.as_dict(), **spec.identifiers(), "split_seed": split.split_seed}
            if spec.architecture is not None:
                described["architecture"] = dict(spec.architecture)
            record = provenance(spec.seed, described, device)
            record["training_group_size"] = self.copies  # grouped kernels round differently
            record["memory_format"] = memory_format  # so does another layout
            self.provenances.append(record)
        self.rows: list[list[dict]] = [[] for _ in specs]
        self.best: list[dict | None] = [None for _ in specs]
        self.completed_epoch = -1

    # -- state

    def _checkpoint_path(self, index: int, epoch: int) -> Path:
        return self.folder / f"network{index}" / f"epoch{epoch}.pt"

    def _verified_checkpoint(self, index: int, epoch: int) -> Path:
        """A saved checkpoint of the state folder, checked (digest, network, epoch) before it is used."""
        path = self._checkpoint_path(index, epoch)
        read_checkpoint(path, {**self.specs[index].identifiers(), "checkpoint": "epoch", "epoch": epoch})
        return path

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
                **({"global_rng": self._global_rng_state()} if self.seeds_global_rng else {}),
            },
            self.state_path,
            "training state",
        )

    def _global_rng_state(self) -> dict[str, torch.Tensor]:
        state = {"cpu": torch.get_rng_state()}
        if self.device.type == "cuda":
            state["cuda"] = torch.cuda.get_rng_state(self.device)
        return state

    def _restore_global_rng(self, state: dict[str, torch.Tensor]) -> None:
        torch.set_rng_state(state["cpu"])
        if "cuda" in state:
            torch.cuda.set_rng_state(state["cuda"], self.device)

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
        try:
            for i in range(self.copies):
                for e in self.settings.saved_epochs():
                    if e <= completed:
                        self._verified_checkpoint(i, e)
        except CheckpointError as error:  # damaged or foreign: retrain rather than copy it out later
            self._discard_state(str(error))
            return False
        self.trainer.load_training_state(state["trainer"])
        for generator, saved in zip(self.shuffle_generators, state["shuffle_generators"]):
            generator.set_state(saved)
        for generator, saved in zip(self.augmentation_generators, state["augmentation_generators"]):
            generator.set_state(saved)
        self.rows, self.best, self.completed_epoch = state["rows"], state["best"], completed
        if self.seeds_global_rng and "global_rng" in state:
            self._restore_global_rng(state["global_rng"])
        log.info("%s: resuming after epoch %d from %s", self.name, completed, self.state_path)
        return True

    # -- epochs

    def run(self, epoch_callback: Callable[[int], None] | None) -> None:
        if not self._resume():
            log.info(
                "%s: training %d epochs on %s in %s (%s)",
                self.name,
                self.settings.epochs,
                self.device,
                self.settings.precision,
                self.run_identity["memory format"],
            )
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
                synchronise(self.device)
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
            regulariser = trainer.regulariser
            if regulariser is not None and regulariser.last_indices is not None:
                log.info(
                    "%s epoch %d: mean %s index of %s at the last regularised step %.4f (coefficient %g)",
                    spec.path_fragment(),
                    epoch,
                    regulariser.settings.feature,
                    ", ".join(regulariser.settings.layers),
                    regulariser.last_indices[k],
                    regulariser.coefficients[k],
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
        self,
        path: Path,
        index: int,
        network: AnalysableNetwork,
        epoch: int,
        row: dict,
        checkpoint: str = "epoch",
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
            checkpoint=checkpoint,
            precision=self.settings.precision,
            architecture=spec.architecture,
            selectivity_regularisation=(
                None
                if spec.regularisation is None
                else {
                    **self.settings.selectivity_regularisation.record(),
                    "coefficient": spec.regularisation.coefficient,
                }
            ),
        )

    def _write_outputs(self) -> None:
        input_size = int(self.data.train_images.shape[-1])
        for k, (spec, output) in enumerate(zip(self.specs, self.outputs)):
            for epoch, path in output.checkpoints.items():
                try:
                    saved = self._verified_checkpoint(k, epoch)
                except CheckpointError as error:
                    raise RuntimeError(
                        f"{spec.path_fragment()}: a checkpoint saved during this run is damaged ({error}); "
                        f"delete {self.folder} and rerun to retrain the network"
                    ) from error
                with atomic_path(path) as tmp:
                    shutil.copyfile(saved, tmp)
            best = self.best[k]
            if best is None:
                raise RuntimeError(
                    f"{spec.path_fragment()}: no epoch had a finite validation loss, so there is no best checkpoint "
                    f"(losses: {[r['validation_loss'] for r in self.rows[k]]})"
                )
            with torch.random.fork_rng(devices=[]):  # the blank model's own init is overwritten
                network = blank_network(
                    spec.architecture_model, self.data.num_classes, input_size, spec.architecture
                )
            network.load_state_dict(best["state_dict"])
            self._save_network_checkpoint(
                Path(output.best_checkpoint), k, network, best["epoch"], best["metrics"], checkpoint="best"
            )
            save_table(pd.DataFrame(self.rows[k], columns=list(METRICS_COLUMNS)), output.metrics)
            log.info(
                "%s: done; best validation loss %.4f at epoch %d",
                spec.path_fragment(),
                best["validation_loss"],
                best["epoch"],
            )
