"""Atomic file output: a killed job never leaves a half-written file under its final name.

Everything is first written to a temporary file in the destination folder and then
moved into place with :func:`os.replace`, which is atomic on POSIX file systems. A write that
fails (a full disk, say) removes the temporary file and names the file and the free space.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pandas as pd


def _umask() -> int:
    """The process umask (reading it means setting it, so it is set straight back)."""
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


class DiskFullError(OSError):
    """A file could not be written because its file system is full (or the user's quota is)."""


#: errno values that mean "no room": a full device, an exceeded quota.
NO_SPACE_ERRNOS = (errno.ENOSPC, errno.EDQUOT)


def _format_bytes(count: float) -> str:
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(count) < 1024 or unit == "TiB":
            return f"{count:.0f} {unit}" if unit == "B" else f"{count:.1f} {unit}"
        count /= 1024
    return f"{count} B"


def free_space(folder: str | os.PathLike) -> int | None:
    """Bytes free for this user on ``folder``'s file system (None if it cannot be asked)."""
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def disk_full_error(path: str | os.PathLike, detail: str, needed: int | None = None) -> DiskFullError:
    """The error for a write of ``path`` that ran out of space, with the free space now."""
    folder = Path(path).parent
    free = free_space(folder)
    free_text = "unknown space" if free is None else _format_bytes(free)
    needed_text = "" if needed is None else f", about {_format_bytes(needed)} needed"
    return DiskFullError(
        errno.ENOSPC,
        f"no space left on the device while writing {path} ({free_text} free in {folder}{needed_text}; {detail}). "
        "Nothing was written under that name (the partial file was removed) and finished files are kept: "
        "free some space and rerun",
    )


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it to ``path`` only on success.

    A full disk while writing (ENOSPC or EDQUOT) becomes a :class:`DiskFullError` naming
    ``path`` and the free space; the temporary file is always removed on failure.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        try:
            yield tmp_path
        except DiskFullError:
            raise
        except OSError as error:
            if error.errno in NO_SPACE_ERRNOS:
                raise disk_full_error(path, error.strerror or str(error)) from error
            raise
        # mkstemp creates the file owner-only (0600); give it the mode a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def _tensor_bytes(obj: Any) -> int:
    """Bytes of the tensors in a (nested) dict or list: about the size of its torch file."""
    import torch

    if isinstance(obj, torch.Tensor):
        return obj.numel() * obj.element_size()
    if isinstance(obj, dict):
        return sum(_tensor_bytes(value) for value in obj.values())
    if isinstance(obj, (list, tuple)):
        return sum(_tensor_bytes(value) for value in obj)
    return 0


def save_torch(obj: Any, path: str | os.PathLike, what: str = "file") -> None:
    """``torch.save`` atomically; a full disk is reported as such (:class:`DiskFullError`).

    torch's zip writer reports a short write as ``RuntimeError: [enforce fail at
    inline_container.cc:...] . unexpected pos``; when the free space is then smaller than the
    tensors being written, that is a full disk, and it is named so.
    """
    import torch  # here, so that table and figure jobs do not pay for importing torch

    with atomic_path(path) as tmp:
        try:
            torch.save(obj, tmp)
        except RuntimeError as error:
            needed = _tensor_bytes(obj)
            free = free_space(tmp.parent)
            written = tmp.stat().st_size if tmp.exists() else 0
            if free is not None and free < needed - written + 1024 * 1024:
                raise disk_full_error(path, f"torch: {str(error).strip()}", needed) from error
            raise OSError(
                f"writing {what} {path} failed: {str(error).strip()} "
                f"({_format_bytes(free) if free is not None else 'unknown space'} free in {tmp.parent}); "
                "nothing was written under that name"
            ) from error


class UnsafeFileError(ValueError):
    """A torch file holds something other than tensors and plain values, so it was not loaded."""


def load_torch(path: str | os.PathLike, what: str) -> Any:
    """Load a ``torch.save``'d file safely: tensors and plain values only (``weights_only=True``).

    Checkpoints and training states travel between people; a pickle that names any other
    object (a code-execution payload, say) is refused before anything in it runs. ``what``
    names the kind of file in the error message.
    """
    import pickle

    import torch

    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        reason = str(error).strip().splitlines()
        detail = next((line for line in reason if "Unsupported global" in line), reason[0] if reason else "")
        raise UnsafeFileError(
            f"refusing to load {what} {path}: it holds objects other than tensors and plain values "
            f"(torch.load weights_only=True: {detail.strip()})"
        ) from None


def save_table(table: pd.DataFrame, path: str | os.PathLike) -> None:
    """Write a tidy table as CSV (or Parquet when the name ends in .parquet)."""
    with atomic_path(path) as tmp:
        if str(path).endswith(".parquet"):
            table.to_parquet(tmp, index=False)
        else:
            table.to_csv(tmp, index=False)


def save_npz(path: str | os.PathLike, **arrays: Any) -> None:
    """``np.savez_compressed``'s format with a fixed time stamp: equal arrays give equal bytes.

    numpy stamps every member with the current time, so a rebuilt file would differ from
    the old one and Snakemake's checksum check (which spares jobs whose inputs were
    rebuilt identically) could never match.
    """
    with atomic_path(path) as tmp:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, allowZip64=True) as archive:
            for name, value in arrays.items():
                member = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
                member.compress_type = zipfile.ZIP_DEFLATED
                with archive.open(member, "w", force_zip64=True) as handle:
                    np.lib.format.write_array(handle, np.asanyarray(value), allow_pickle=False)


def save_json(obj: Any, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def save_text(text: str, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
