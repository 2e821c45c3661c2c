"""Atomic file output: a killed job never leaves a half-written file under its final name.

Everything is first written to a temporary file in the destination folder and then
moved into place with :func:`os.replace`, which is atomic on POSIX file systems.
"""

from __future__ import annotations

import contextlib
import json
import os
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


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; move it to ``path`` only on success."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp creates the file owner-only (0600); give it the mode a plain open() would.
        os.chmod(tmp_path, 0o666 & ~_umask())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def save_torch(obj: Any, path: str | os.PathLike) -> None:
    import torch  # here, so that table and figure jobs do not pay for importing torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


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
