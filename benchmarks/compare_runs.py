"""Byte comparison of two finished runs: are their tables and figures identical?

    python benchmarks/compare_runs.py RUN_A RUN_B

RUN_A and RUN_B are working directories of the workflow (each with a ``results/``). Every
file under ``results/`` is compared by its SHA-256, except what records where and when a
job ran rather than what it computed: logs, benchmarks, provenance, the per-epoch timings
in ``metrics.csv`` (``epoch_seconds``) and the files that hold them; a checkpoint (``.pt``)
is compared by its tensors and fields, without its provenance (code digest, host) and epoch
timing. Used to show that a
refactoring changed no table and no figure (run the demo before and after, then compare).
Prints one line per differing or missing file and a summary; exits 1 if anything differs.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import sys
from pathlib import Path

import pandas as pd

# Paths (relative to results/) whose content is about the run, not the science.
SKIPPED_PARTS = {"logs", "benchmarks", "provenance"}
SKIPPED_SUFFIXES = {".log", ".json"}
TIMING_COLUMNS = ("epoch_seconds", "seconds", "wall_seconds")


def _digest_of_table(path: Path) -> str:
    """SHA-256 of a CSV without its timing columns (those differ on every run)."""
    table = pd.read_csv(path)
    kept = table.drop(columns=[column for column in TIMING_COLUMNS if column in table.columns])
    buffer = io.StringIO()
    kept.to_csv(buffer, index=False)
    return hashlib.sha256(buffer.getvalue().encode()).hexdigest()


def _digest_of_checkpoint(path: Path) -> str:
    """SHA-256 of a checkpoint's weights and fields, leaving out where and when it was made."""
    import torch  # only needed for checkpoints

    digest = hashlib.sha256()

    def add(value, key: str = "") -> None:
        if key.rsplit("/", 1)[-1] in ("provenance",) + TIMING_COLUMNS:
            return
        if isinstance(value, torch.Tensor):
            digest.update(f"{key}:{value.dtype}:{tuple(value.shape)}".encode())
            digest.update(value.detach().cpu().contiguous().numpy().tobytes())
        elif isinstance(value, dict):
            for name in sorted(value, key=str):
                add(value[name], f"{key}/{name}")
        else:
            digest.update(f"{key}={value!r}".encode())

    add(torch.load(path, map_location="cpu", weights_only=True))
    return digest.hexdigest()


def digest(path: Path) -> str:
    if path.suffix == ".pt":
        return _digest_of_checkpoint(path)
    if path.suffix == ".csv":
        header = path.open().readline()
        if any(column in header.strip().split(",") for column in TIMING_COLUMNS):
            return _digest_of_table(path)
    return hashlib.sha256(path.read_bytes()).hexdigest()


def compared_files(run: Path) -> dict[str, str]:
    results = run / "results"
    if not results.is_dir():
        raise SystemExit(f"{run} has no results/ folder: is it a working directory of the workflow?")
    files = {}
    for path in sorted(results.rglob("*")):
        relative = path.relative_to(run)
        if not path.is_file() or SKIPPED_PARTS & set(relative.parts) or path.suffix in SKIPPED_SUFFIXES:
            continue
        files[str(relative)] = digest(path)
    return files


def compare(first: Path, second: Path) -> list[str]:
    """One line per file that differs or exists in only one run."""
    return differences(first, compared_files(first), second, compared_files(second))


def differences(first: Path, a: dict[str, str], second: Path, b: dict[str, str]) -> list[str]:
    lines = [f"only in {first}: {name}" for name in sorted(a.keys() - b.keys())]
    lines += [f"only in {second}: {name}" for name in sorted(b.keys() - a.keys())]
    lines += [f"differs: {name}" for name in sorted(a.keys() & b.keys()) if a[name] != b[name]]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("first", type=Path)
    parser.add_argument("second", type=Path)
    arguments = parser.parse_args(argv)
    files = compared_files(arguments.first)
    found = differences(arguments.first, files, arguments.second, compared_files(arguments.second))
    by_kind: dict[str, int] = {}
    for name in files:
        by_kind[Path(name).suffix] = by_kind.get(Path(name).suffix, 0) + 1
    for line in found:
        print(line)
    kinds = ", ".join(f"{count} {suffix or '(no suffix)'}" for suffix, count in sorted(by_kind.items()))
    print(f"compared {len(files)} files ({kinds}): {len(found)} differences")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
