"""CPU time of training with the selectivity regulariser against without it (docs/method.md §2.10).

For each architecture, one network trained by the project's trainer
(:class:`selectivity.training.LockstepTrainer`, batch 32, augmentation on) on random CIFAR-shaped
images, timed side by side in interleaved rounds in one process:

    no regulariser | the term every k-th step, for each k of --every

The term is the model's default regularised layers' mean index (its claims lower layers, e.g.
conv1-conv2 of cnn7) of --feature on the tuning gratings (432 at 32 px; the colour set: 288). Each
variant runs --steps optimiser steps (a multiple of every k, so each pays its share of terms) per
round; the table gives the median over rounds of seconds per step, the per-network CPU time of one
epoch of --images training images (training steps plus the epoch's evaluation of --evaluated images,
measured once per model: the same with and without the term), and the ratio to no regulariser.

    python benchmarks/regulariser_cost.py --threads 1 --rounds 5 --steps 20 --every 1,10
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import pandas as pd
import torch

from selectivity.networks.architectures import DEFAULT_LAYER_ROLES
from selectivity.regularisation import RegularisationSettings
from selectivity.training import (
    LockstepTrainer,
    TrainingSettings,
    draw_epoch_plan,
    initial_network,
    stream_generator,
)
from selectivity.training.regulariser import SelectivityRegulariser
from numerics_timing import load_average, markdown_table

IMAGES = 1024  # random training images the steps draw from


def trainer(model: str, every: int | None, feature: str, images, labels) -> LockstepTrainer:
    settings = TrainingSettings(epochs=1, batch_size=32)
    regulariser = None
    if every is not None:
        layers = tuple(DEFAULT_LAYER_ROLES[model].lower)
        regulariser = SelectivityRegulariser(
            RegularisationSettings(feature, layers, every), [-1.0], torch.zeros(3, 32, 32), "cpu"
        )
    result = LockstepTrainer(
        [initial_network(model, 0)], images, labels, settings, torch.device("cpu"), regulariser=regulariser
    )
    plan = draw_epoch_plan(
        [stream_generator(0, "shuffling")],
        [stream_generator(0, "augmentation")],
        len(images),
        settings,
        (32, 32),
    )
    result.set_plan(plan)
    return result


def seconds_per_step(run: LockstepTrainer, steps: int) -> float:
    start = time.perf_counter()
    done = 0
    while done < steps:
        count = min(steps - done, run.steps_per_epoch)
        run.train_steps(0, count)
        done += count
    return (time.perf_counter() - start) / steps


def evaluation_seconds(run: LockstepTrainer, evaluated: int) -> float:
    """One epoch's evaluation (train, validation and test images: ``evaluated`` in all)."""
    images = torch.randn(min(evaluated, 2000), 3, 32, 32)
    labels = torch.zeros(len(images), dtype=torch.long)
    start = time.perf_counter()
    run.evaluate(images, [labels])
    return (time.perf_counter() - start) * evaluated / len(images)


def measure(model, every_list, feature, rounds, steps, images_per_epoch, evaluated) -> list[dict]:
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(IMAGES, 3, 32, 32, generator=generator)
    labels = torch.randint(0, 10, (1, IMAGES), generator=generator)
    variants = [None, *every_list]
    runs = {every: trainer(model, every, feature, images, labels) for every in variants}
    for run in runs.values():  # warm-up: allocator, kernels, the regulariser's grating pass
        seconds_per_step(run, max(every_list))
    timings = {every: [] for every in variants}
    for _ in range(rounds):
        for every, run in runs.items():  # interleaved: drifting load hits every variant alike
            timings[every].append(seconds_per_step(run, steps))
    evaluation = evaluation_seconds(runs[None], evaluated)
    steps_per_epoch = int(np.ceil(images_per_epoch / 32))
    plain = statistics.median(timings[None]) * steps_per_epoch + evaluation
    rows = []
    for every in variants:
        per_step = statistics.median(timings[every])
        epoch = per_step * steps_per_epoch + evaluation
        rows.append(
            {
                "model": model,
                "regulariser": "none" if every is None else f"every {every} step(s)",
                "layers": ", ".join(DEFAULT_LAYER_ROLES[model].lower) if every is not None else "",
                "s/step": f"{per_step:.4f}",
                f"s/epoch ({images_per_epoch} images)": f"{epoch:.1f}",
                "ratio to none": f"{epoch / plain:.2f}",
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="cnn7,resnet20,vgg8bn")
    parser.add_argument("--feature", default="orientation")
    parser.add_argument("--every", default="1,10", help="comma-separated k of 'every k-th step'")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--steps", type=int, default=20, help="steps per variant and round (a multiple of every k)"
    )
    parser.add_argument("--images", type=int, default=10_000, help="training images per epoch")
    parser.add_argument("--evaluated", type=int, default=17_500, help="images evaluated per epoch")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    every_list = [int(k) for k in arguments.every.split(",")]
    if any(arguments.steps % k for k in every_list):
        parser.error(f"--steps {arguments.steps} must be a multiple of every k in {every_list}")
    before = load_average()
    rows = []
    for model in arguments.models.split(","):
        rows += measure(
            model,
            every_list,
            arguments.feature,
            arguments.rounds,
            arguments.steps,
            arguments.images,
            arguments.evaluated,
        )
    print(
        f"CPU, {arguments.threads} thread(s), torch {torch.__version__}; feature {arguments.feature}; medians of "
        f"{arguments.rounds} interleaved rounds of {arguments.steps} steps; load averages {before} before, "
        f"{load_average()} after"
    )
    table = pd.DataFrame(rows)
    print(markdown_table(list(table.columns), table.astype(str).to_numpy().tolist()))


if __name__ == "__main__":
    main()
