"""One training of a network at a time: an operating-system lock per network.

A training job keeps its resume state under ``results/training_state/`` and resumes from it.
Two processes training the same network (an orphan of a Snakemake killed with SIGKILL, whose
jobs live on, and the job of the rerun) would share that state: the second resumes from files
the first is still rewriting. So a training job holds, for each of its networks, an exclusive
``fcntl.flock`` on ``<state folder>/<model>-<dataset>-corruption<X>-seed<N>.lock``. The kernel
releases it when the process ends, however it ends (``kill -9`` included), so a lock is never
stale. A second job for the same network waits up to ``wait_seconds`` and then stops with a
:class:`TrainingLockedError` naming the process that holds it.

The lock is per network, not per training group, so a job that trains the network in another
group (after ``training.group_size`` changed, say) waits for it too. Locks are taken in sorted
order, so jobs never wait for each other in a circle. The file is removed when the lock is
released; a process that locked a file just removed re-opens the new one (the inode check).
On NFS, Linux emulates ``flock`` with byte-range locks that hold across clients.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

log = logging.getLogger(__name__)

#: How long a training job waits for another process's training of the same network.
LOCK_WAIT_SECONDS = 60.0
POLL_SECONDS = 0.5


class TrainingLockedError(RuntimeError):
    """Another process is training the same network (it holds the network's lock)."""


def lock_path(state_dir: str | os.PathLike, network: str) -> Path:
    """The lock file of a network (``network``: its path fragment ``model/dataset/corruptionX/seedN``)."""
    return Path(state_dir) / (network.replace("/", "-") + ".lock")


@dataclass
class _HeldLock:
    path: Path
    descriptor: int

    def release(self) -> None:
        # Remove the file while still holding it: a waiter that locks the removed file sees that
        # its inode is no longer the path's and opens the path again.
        with contextlib.suppress(FileNotFoundError):
            if os.stat(self.path).st_ino == os.fstat(self.descriptor).st_ino:
                os.unlink(self.path)
        os.close(self.descriptor)


def _try_lock(path: Path) -> int | None:
    """The descriptor of ``path`` locked exclusively, or None if another process holds it."""
    descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(descriptor)
        return None
    try:
        current = os.stat(path).st_ino
    except FileNotFoundError:
        current = None
    if current != os.fstat(descriptor).st_ino:  # released and removed between open and flock
        os.close(descriptor)
        return _try_lock(path)
    return descriptor


def _holder(path: Path) -> str:
    """Who holds a lock, as its holder wrote it (pid, host, since when, which job)."""
    try:
        record = json.loads(path.read_text())
        return (
            f"process {record['pid']} on {record['host']}, training since {record['started']} "
            f"({', '.join(record['networks'])})"
        )
    except (OSError, ValueError, KeyError, TypeError):
        return "another process"


def _acquire(path: Path, network: str, networks: Sequence[str], wait_seconds: float) -> _HeldLock:
    path.parent.mkdir(parents=True, exist_ok=True)
    deadline = time.monotonic() + wait_seconds
    logged = False
    while True:
        descriptor = _try_lock(path)
        if descriptor is not None:
            break
        holder = _holder(path)
        if time.monotonic() >= deadline:
            raise TrainingLockedError(
                f"{network} is being trained by {holder}: it holds the lock {path} (waited {wait_seconds:g} s). "
                "Two trainings of one network would share its resume state, so this one stops. If no other "
                "Snakemake runs in this directory, that process is an orphan of a killed Snakemake: let it "
                "finish, or stop it (kill <pid>; its last finished epoch is kept and the rerun resumes "
                "from it), then rerun (docs/development.md, Interrupted runs)."
            )
        if not logged:
            log.info("waiting up to %g s for %s, which holds %s", wait_seconds, holder, path)
            logged = True
        time.sleep(min(POLL_SECONDS, max(0.0, deadline - time.monotonic())))
    record = {
        "pid": os.getpid(),
        "host": socket.gethostname(),
        "started": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        "networks": list(networks),
    }
    os.ftruncate(descriptor, 0)
    os.pwrite(descriptor, json.dumps(record).encode(), 0)
    return _HeldLock(path, descriptor)


@contextlib.contextmanager
def training_locks(
    state_dir: str | os.PathLike, networks: Sequence[str], wait_seconds: float = LOCK_WAIT_SECONDS
) -> Iterator[list[Path]]:
    """Hold the lock of every network (path fragments) while the block runs; yields the lock files."""
    held: list[_HeldLock] = []
    try:
        for network in sorted(set(networks)):
            held.append(_acquire(lock_path(state_dir, network), network, networks, wait_seconds))
        yield [lock.path for lock in held]
    finally:
        for lock in reversed(held):
            lock.release()
