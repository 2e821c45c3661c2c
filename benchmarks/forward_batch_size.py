"""Evaluation forward passes on a CPU: images/s per batch size and architecture, side by side.

Every stage but the optimiser's steps is forward passes in evaluation mode without gradients:
the training job's per-epoch evaluation (training, validation and test sets), tuning responses,
class selectivity, ablation losses and shift invariance. On a CPU their speed depends on the
batch: a batch whose activations outgrow the core's caches is slower per image than a small one
(a cnn7 conv1 output is 128 KiB per image, so 500 images are 64 MiB, twice this machine's L3).
This times, per architecture, the same images pushed through in batches of each size, in
interleaved rounds, and prints images/s and the ratio to the largest batch, with the load
average, as a Markdown table. Inputs are random CIFAR-shaped images (the work does not depend
on them); the networks run in fp32 in the memory format the analyses use
(``selectivity.numerics.prefers_channels_last``).

    python benchmarks/forward_batch_size.py --threads 1 --rounds 5
    python benchmarks/forward_batch_size.py --threads 2 --rounds 5
"""

from __future__ import annotations

import argparse

import torch

from selectivity.networks.models import build_model
from selectivity.numerics import memory_format_name, prefers_channels_last

from numerics_timing import interleaved_rates, load_average, markdown_table


def batched_forward(model: torch.nn.Module, images: torch.Tensor, batch_size: int):
    """One pass over ``images`` in batches of ``batch_size``, as the analyses make it."""

    def run() -> None:
        with torch.inference_mode():
            for start in range(0, len(images), batch_size):
                model(images[start : start + batch_size])

    run()  # warm-up: kernel selection for this batch shape
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="cnn7,cnn11,resnet20,vgg8bn")
    parser.add_argument("--batch-sizes", default="32,64,128,256,500,1000")
    parser.add_argument("--images", type=int, default=2000, help="images per pass over the set")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    sizes = [int(size) for size in args.batch_sizes.split(",")]
    models = args.models.split(",")
    images = torch.randn(args.images, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    load_before = load_average()
    work = {}
    layouts = {}
    for name in models:
        channels_last = prefers_channels_last(name, "cpu", "fp32", training=False)
        layouts[name] = memory_format_name(channels_last)
        model = build_model(name).eval().set_numerics("fp32", channels_last)
        for size in sizes:
            work[f"{name} {size}"] = (batched_forward(model, images, size), args.images)
    rates = interleaved_rates(work, args.rounds, torch.device("cpu"))
    print(
        f"evaluation forward passes on the CPU, {torch.get_num_threads()} thread(s), {args.images} images "
        f"per pass; median of {args.rounds} interleaved rounds; load average (1, 5, 15 min) before: "
        f"{load_before}, after: {load_average()}"
    )
    print()
    largest = max(sizes)
    rows = []
    for name in models:
        base = rates[f"{name} {largest}"]
        cells = [f"{name} ({layouts[name]})"]
        for size in sizes:
            rate = rates[f"{name} {size}"]
            cells.append(f"{rate:,.0f} ({rate / base:.2f}x)")
        rows.append(cells)
    print(markdown_table(["model"] + [f"batch {size}: images/s (vs {largest})" for size in sizes], rows))


if __name__ == "__main__":
    main()
