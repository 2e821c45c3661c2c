"""Time the tuning of one checkpoint with orientation only and with every low-level feature.

Two configurations of :class:`selectivity.tuning.analysis.TuningSettings`: ``features=("orientation",)``
(what the workflow computed before docs/method.md §3.5-§3.9: the 432 achromatic gratings of a
32-px network) and all four features (the same gratings, read out also at the centre of each map,
plus the colour set). Each repeat times, for both, what the tuning rule does per checkpoint:
load the checkpoint, :func:`~selectivity.tuning.analysis.analyse_tuning`, write the table (CSV) and the
curves (npz); the analysis alone is timed too. The two alternate, so that a change of machine
load hits both. Printed: medians over the repeats of wall-clock seconds and of this process's
CPU seconds (which other processes on a busy machine disturb less), their ratios, the load
average, and whether the orientation columns of the two tables are identical. Examples::

    python benchmarks/tuning_features.py --repeats 9 --threads 1
    python benchmarks/tuning_features.py --checkpoint results/networks/.../best.pt --device cuda
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import torch

from selectivity.networks.checkpoints import load_checkpoint, save_checkpoint
from selectivity.tuning.features import FEATURES
from selectivity.io import save_npz, save_table
from selectivity.networks.models import build_model
from selectivity.tuning.analysis import TUNING_COLUMNS, TuningSettings, analyse_tuning

CONFIGURATIONS = {"orientation only": ("orientation",), "all four features": FEATURES}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkpoint", type=Path, help="a checkpoint (default: a freshly initialised cnn7)")
    parser.add_argument("--repeats", type=int, default=9, help="timed runs of each configuration (default 9)")
    parser.add_argument("--batch-size", type=int, default=512, help="stimuli per pass (config default 512)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (the tuning rule uses 1)")
    parser.add_argument("--device", default="cpu")
    return parser.parse_args()


def fresh_checkpoint(folder: Path) -> Path:
    torch.manual_seed(0)
    path = folder / "cnn7_epoch0.pt"
    network = {"model": "cnn7", "dataset": "none", "label_corruption": 0.0, "seed": 0}
    save_checkpoint(
        path,
        build_model("cnn7"),
        model_name="cnn7",
        input_mean=torch.full((3, 32, 32), 0.45),
        epoch=0,
        network=network,
    )
    return path


def one_checkpoint(path: Path, settings: TuningSettings, device: str, folder: Path) -> dict:
    """Seconds (wall, CPU) of the rule's work for one checkpoint and of the analysis in it."""
    start, start_cpu = time.perf_counter(), time.process_time()
    network = load_checkpoint(path, device)
    analysis, analysis_cpu = time.perf_counter(), time.process_time()
    result = analyse_tuning(network, settings, {})
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    analysis, analysis_cpu = time.perf_counter() - analysis, time.process_time() - analysis_cpu
    save_table(result.table, folder / "tuning.csv")
    save_npz(folder / "curves.npz", **result.curves)
    return {
        "checkpoint wall": time.perf_counter() - start,
        "checkpoint CPU": time.process_time() - start_cpu,
        "analysis wall": analysis,
        "analysis CPU": analysis_cpu,
        "table": result.table,
    }


def main() -> None:
    args = arguments()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        path = args.checkpoint or fresh_checkpoint(folder)
        settings = {
            name: TuningSettings(batch_size=args.batch_size, features=features)
            for name, features in CONFIGURATIONS.items()
        }
        for name in CONFIGURATIONS:  # warm-up (allocator, lazy imports, file cache)
            one_checkpoint(path, settings[name], args.device, folder)
        load_before = os.getloadavg()
        runs: dict[str, list[dict]] = {name: [] for name in CONFIGURATIONS}
        for _ in range(args.repeats):
            for name in CONFIGURATIONS:
                runs[name].append(one_checkpoint(path, settings[name], args.device, folder))
        load_after = os.getloadavg()

    before, after = (runs[name][-1]["table"] for name in CONFIGURATIONS)
    identical = before.equals(after[list(TUNING_COLUMNS)])
    print(
        f"{path.name}: {args.device}, {args.threads} thread(s), batch {args.batch_size}, {args.repeats} repeats"
    )
    print(
        "load average (1, 5, 15 min): before "
        + " ".join(f"{value:.2f}" for value in load_before)
        + ", after "
        + " ".join(f"{value:.2f}" for value in load_after)
    )
    measures = ("checkpoint wall", "checkpoint CPU", "analysis wall", "analysis CPU")
    print(f"{'median seconds':<20}" + "".join(f"{measure:>17}" for measure in measures))
    medians = {
        name: {measure: statistics.median(run[measure] for run in runs[name]) for measure in measures}
        for name in CONFIGURATIONS
    }
    for name in CONFIGURATIONS:
        print(f"{name:<20}" + "".join(f"{medians[name][measure]:17.3f}" for measure in measures))
    ratios = [medians["all four features"][m] / medians["orientation only"][m] for m in measures]
    print(f"{'ratio all / only':<20}" + "".join(f"{ratio:16.2f}x" for ratio in ratios))
    print(f"orientation columns identical: {identical}")


if __name__ == "__main__":
    main()
