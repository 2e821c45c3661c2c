"""Choosing the training device, and sharing a machine's GPUs between concurrent jobs.

Snakemake counts GPUs (``resources: gpu=1``) but never says *which* GPU a job gets.
On a cluster the scheduler does (``CUDA_VISIBLE_DEVICES`` / SLURM), so a job simply
takes ``cuda:0``. On a local multi-GPU machine each job instead leases a free GPU
by holding an exclusive ``flock`` on ``lock_dir/gpu{i}.lock`` for as long as it
runs; the kernel drops the lock when the process ends, even on SIGKILL, so a
crashed job never leaves a GPU marked busy.
"""

from __future__ import annotations

import fcntl
import logging
import os
import time
from pathlib import Path
from typing import IO

import torch

log = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cpu", "cuda")
# Where local jobs lease GPUs (relative to the working directory; not a result-affecting setting).
GPU_LOCK_DIR = ".snakemake/gpu_locks"
# On a CPU a forward pass is fastest in batches whose activations stay in the caches: at 64
# images cnn7, cnn11, resnet20 and vgg8bn evaluate 1.2-1.8x faster than at 500 and 1.4-2.0x
# faster than at 1000, on one thread and on two, and within 6% of their best size
# (benchmarks/forward_batch_size.py; docs/development.md, Performance).
CPU_FORWARD_BATCH_SIZE = 64
# On a GPU, large batches keep it busy: the sizes used before "auto" (not re-measured: no GPU here).
GPU_FORWARD_BATCH_SIZES = {"training": 1000, "tuning": 512, "causal": 500}
NO_CUDA_MESSAGE = "device: 'cuda' was requested (config key 'device') but this machine has no CUDA device; use 'auto' or 'cpu'"


class DeviceLease:
    """The device a job runs on; a context manager that holds the GPU's lock (if any) until exit."""

    def __init__(self, device: torch.device, lock_file: IO | None = None):
        self.device = device
        self._lock_file = lock_file

    @property
    def lock_path(self) -> Path | None:
        return None if self._lock_file is None else Path(self._lock_file.name)

    def release(self) -> None:
        if self._lock_file is not None:
            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None

    def __enter__(self) -> "DeviceLease":
        return self

    def __exit__(self, *exc_info) -> None:
        self.release()

    def __repr__(self) -> str:
        held = f", lock={self.lock_path}" if self._lock_file is not None else ""
        return f"DeviceLease({self.device}{held})"


def scheduler_assigned_gpus() -> bool:
    """True when a scheduler already chose the GPUs this process sees."""
    return "CUDA_VISIBLE_DEVICES" in os.environ or "SLURM_JOB_ID" in os.environ


def device_type(requested: str, gpus_allotted: int) -> str:
    """``"cpu"`` or ``"cuda"``: the kind of device :func:`select_device` gives a job, known before
    it leases one (the batch sizes depend on it)."""
    if requested not in DEVICE_CHOICES:
        raise ValueError(f"device must be one of {DEVICE_CHOICES} (config key 'device'), got {requested!r}")
    if requested == "cpu":
        return "cpu"
    if not torch.cuda.is_available():
        if requested == "cuda":
            raise ValueError(NO_CUDA_MESSAGE)
        return "cpu"
    if requested == "auto" and gpus_allotted <= 0:
        return "cpu"
    return "cuda"


def forward_batch_size(setting: int | str, kind: str, section: str) -> int:
    """Images per evaluation forward pass of a config ``section`` (``training``: the per-epoch
    evaluation; ``tuning``; ``causal``): ``setting`` itself, or for ``"auto"`` the size that is
    fast on this ``kind`` of device (:func:`device_type`). The batch never changes a result, only
    speed and memory."""
    if setting == "auto":
        return CPU_FORWARD_BATCH_SIZE if kind == "cpu" else GPU_FORWARD_BATCH_SIZES[section]
    if isinstance(setting, bool) or not isinstance(setting, int) or setting < 1:
        raise ValueError(f"{section} batch size must be a positive integer or 'auto', got {setting!r}")
    return setting


def select_device(
    requested: str, gpus_allotted: int, lock_dir: str | Path, wait_seconds: float = 0.0
) -> DeviceLease:
    """The device to train on, as a lease to hold while training.

    ``requested``: ``cpu``; ``auto`` (a GPU if the job was allotted one and CUDA is
    available, else the CPU); or ``cuda`` (a GPU, or an error if there is none).
    ``gpus_allotted`` is the job's Snakemake ``gpu`` resource. Locally, a free GPU is
    found by non-blocking locks in ``lock_dir``; if every GPU is leased the search is
    retried for up to ``wait_seconds`` before failing.
    """
    if device_type(requested, gpus_allotted) == "cpu":
        if requested == "auto" and torch.cuda.is_available():
            log.info(
                "device 'auto': the job was allotted no GPU (resource gpu=%s), using the CPU", gpus_allotted
            )
        return DeviceLease(torch.device("cpu"))
    if requested == "cuda" and gpus_allotted <= 0:
        log.warning("device 'cuda' requested but the job was allotted no GPU; GPUs may be oversubscribed")
    if scheduler_assigned_gpus():
        return DeviceLease(torch.device("cuda:0"))
    return _lease_free_gpu(Path(lock_dir), torch.cuda.device_count(), wait_seconds)


def _lease_free_gpu(lock_dir: Path, gpu_count: int, wait_seconds: float) -> DeviceLease:
    lock_dir.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_seconds
    while True:
        for index in range(gpu_count):
            lock_file = _try_lock(lock_dir / f"gpu{index}.lock")
            if lock_file is not None:
                log.info("leased GPU cuda:%d (lock %s)", index, lock_file.name)
                return DeviceLease(torch.device(f"cuda:{index}"), lock_file)
        if time.monotonic() >= deadline:
            raise RuntimeError(
                f"all {gpu_count} GPUs are leased by other jobs (locks in {lock_dir}); "
                f"give Snakemake at most --resources gpu={gpu_count}"
            )
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic())))


def _try_lock(path: Path) -> IO | None:
    """The open, exclusively locked file, or None if another process holds it."""
    handle = open(path, "a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.close()
        return None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")  # who holds it, for whoever looks
    handle.flush()
    return handle
