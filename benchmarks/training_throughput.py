"""Training throughput: fp32 vs bf16 vs channels-last per architecture, and the trainer's paths.

Default (``--models``): for each architecture, one training step of the project's trainer
(:class:`selectivity.training.LockstepTrainer`, one network, batch 32: gather, augmentation,
forward, cross-entropy, backward, Adam) in four numerics, side by side in one process:

    fp32 | fp32 channels-last | bf16 | bf16 channels-last

timed in interleaved rounds with the machine's peak matmul rate (fp32 and bf16) measured in
the same rounds (benchmarks/numerics_timing.py says how). It prints steps/s, the ratio to fp32,
and the fraction of the peak of the variant's precision that the step's convolutions and matrix
products reach (FLOPs per step counted by torch's FlopCounterMode, forward and backward), plus
the 1-minute load average before and after, as a Markdown table for docs/development.md.

``--paths`` instead times, for ``--model``, (a) ``naive``, a straight port of the author's
Keras script (a DataLoader over images augmented one by one by torchvision transforms,
``loss.item()`` every step), (b) ``fast``, the trainer with one network, and (c) ``grouped``,
K networks stacked into one (``--group-sizes``); with ``--graphs`` on CUDA also the
CUDA-graph step. Throughput is in network-steps per second.

The data are synthetic random images of CIFAR shape, so no files are needed.

    python benchmarks/training_throughput.py --threads 2 --rounds 7 --steps 10
    python benchmarks/training_throughput.py --device cuda --rounds 7 --steps 100
    python benchmarks/training_throughput.py --paths --device cuda --steps 300 --group-sizes 1,4,16,64 --graphs
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from selectivity.data.dataset import mean_image, preprocess
from selectivity.networks.models import build_model
from selectivity.training import (
    LockstepTrainer,
    TrainingSettings,
    device_numerics,
    draw_epoch_plan,
    initial_network,
    stream_generator,
)
from selectivity.training.trainer import synchronise

from numerics_timing import (
    counted_flops,
    device_name,
    interleaved_rates,
    load_average,
    markdown_table,
    matmul_work,
)

#: The four numerics compared: (label, precision, channels-last).
VARIANTS = (
    ("fp32", "fp32", False),
    ("fp32 channels-last", "fp32", True),
    ("bf16", "bf16", False),
    ("bf16 channels-last", "bf16", True),
)


class PerSampleAugmentedImages(Dataset):
    """Preprocessed images augmented one at a time on the CPU, as a naive port would."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, max_shift: int):
        self.images, self.labels = images, labels
        self.augment = transforms.Compose(
            [
                transforms.RandomCrop(images.shape[-1], padding=max_shift, padding_mode="edge"),
                transforms.RandomHorizontalFlip(),
            ]
        )

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int):
        return self.augment(self.images[index]), self.labels[index]


def synthetic_cifar(count: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Random uint8 images of CIFAR shape, preprocessed like the real ones, and random labels."""
    rng = np.random.default_rng(seed)
    raw = rng.integers(0, 256, (count, 32, 32, 3), dtype=np.uint8)
    return preprocess(raw, mean_image(raw)), torch.as_tensor(rng.integers(0, 10, count))


def time_naive(args, images, labels, device) -> float:
    """Seconds for ``args.steps`` naive steps (after ``args.warmup_steps`` untimed ones)."""
    loader = DataLoader(
        PerSampleAugmentedImages(images, labels, 3),
        batch_size=32,
        shuffle=True,
        num_workers=args.naive_workers,
        drop_last=True,
        persistent_workers=args.naive_workers > 0,
    )
    model = build_model(args.model).to(device).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7)
    batches = iter(loader)
    started = None
    for step in range(args.warmup_steps + args.steps):
        if step == args.warmup_steps:
            synchronise(device)
            started = time.perf_counter()
        x, y = next(batches)
        x, y = x.to(device), y.to(device)
        optimizer.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimizer.step()
        loss.item()  # what a port logging the running loss does every step
    synchronise(device)
    return time.perf_counter() - started


def time_lockstep(args, copies, images, labels, device, graphs) -> float:
    """Seconds for ``args.steps`` steps of K stacked networks (after untimed warm-up steps)."""
    settings = TrainingSettings(epochs=1, cuda_graphs=graphs, deterministic=args.deterministic)
    seeds = list(range(copies))
    networks = [initial_network(args.model, seed) for seed in seeds]
    with device_numerics(device, settings):
        trainer = LockstepTrainer(networks, images, labels.expand(copies, -1), settings, device)
        plan = draw_epoch_plan(
            [stream_generator(s, "shuffling") for s in seeds],
            [stream_generator(s, "augmentation") for s in seeds],
            len(images),
            settings,
            tuple(images.shape[-2:]),
        )
        trainer.set_plan(plan)
        trainer.train_steps(0, args.warmup_steps)  # includes the graph capture
        synchronise(device)
        started = time.perf_counter()
        trainer.train_steps(args.warmup_steps, args.steps)
        synchronise(device)
        return time.perf_counter() - started


def numerics_trainer(
    model: str, precision: str, channels_last: bool, images, labels, device
) -> LockstepTrainer:
    """The trainer of one network of ``model`` in the given numerics, with an epoch plan loaded."""
    settings = TrainingSettings(epochs=1, precision=precision)
    trainer = LockstepTrainer(
        [initial_network(model, 0)], images, labels, settings, device, channels_last=channels_last
    )
    trainer.set_plan(
        draw_epoch_plan(
            [stream_generator(0, "shuffling")],
            [stream_generator(0, "augmentation")],
            len(images),
            settings,
            tuple(images.shape[-2:]),
        )
    )
    return trainer


def compare_numerics(args, device: torch.device) -> None:
    """Steps/s of every architecture in every numerics variant, and the fraction of peak."""
    images, labels = synthetic_cifar(32 * args.steps)
    images, labels = images.to(device), labels.to(device).unsqueeze(0)
    load_before = load_average()
    work = {
        "peak fp32": matmul_work(torch.float32, device, args.matmul_size, args.matmul_repeats),
        "peak bf16": matmul_work(torch.bfloat16, device, args.matmul_size, args.matmul_repeats),
    }
    flops_per_step = {}
    for model in args.models.split(","):
        for label, precision, channels_last in VARIANTS:
            trainer = numerics_trainer(model, precision, channels_last, images, labels, device)
            trainer.train_steps(0, min(args.warmup_steps, args.steps))  # allocator, kernels, Adam state
            work[f"{model} {label}"] = (lambda t=trainer: t.train_steps(0, args.steps), args.steps)
        flops_per_step[model] = counted_flops(lambda t=trainer: t.train_steps(0, 1))
    rates = interleaved_rates(work, args.rounds, device)
    peak = {"fp32": rates["peak fp32"], "bf16": rates["peak bf16"]}
    print(
        f"training steps, batch 32, one network, on {device_name(device)}; median of {args.rounds} interleaved "
        f"rounds of {args.steps} steps; load average (1, 5, 15 min) before: {load_before}, after: {load_average()}"
    )
    print(
        f"peak (a {args.matmul_size}x{args.matmul_size} matmul, same rounds): fp32 {peak['fp32'] / 1e9:.0f} GFLOP/s, "
        f"bf16 {peak['bf16'] / 1e9:.0f} GFLOP/s; GFLOP per step (forward + backward convolutions and matrix "
        "products): " + ", ".join(f"{m} {f / 1e9:.3f}" for m, f in flops_per_step.items())
    )
    print()
    rows = []
    for model in args.models.split(","):
        base = rates[f"{model} fp32"]
        cells = [model]
        for label, precision, _ in VARIANTS:
            rate = rates[f"{model} {label}"]
            fraction = rate * flops_per_step[model] / peak[precision]
            cells.append(f"{rate:.1f} ({rate / base:.2f}x, {100 * fraction:.0f}%)")
        rows.append(cells)
    header = ["model"] + [
        f"{label}: steps/s (vs fp32, % of {precision} peak)" for label, precision, _ in VARIANTS
    ]
    print(markdown_table(header, rows))
    if args.csv:
        pd.DataFrame(
            [
                {
                    "model": model,
                    "variant": label,
                    "steps_per_s": rates[f"{model} {label}"],
                    "ratio_to_fp32": rates[f"{model} {label}"] / rates[f"{model} fp32"],
                    "fraction_of_peak": rates[f"{model} {label}"] * flops_per_step[model] / peak[precision],
                    "flops_per_step": flops_per_step[model],
                    "peak_flops": peak[precision],
                }
                for model in args.models.split(",")
                for label, precision, _ in VARIANTS
            ]
        ).to_csv(args.csv, index=False)


def compare_paths(args, device: torch.device) -> None:
    """The naive port vs the trainer's fast and grouped paths (network-steps/s)."""
    group_sizes = [int(k) for k in args.group_sizes.split(",") if k.strip()]
    if any(k < 1 for k in group_sizes):
        raise SystemExit(f"--group-sizes must be positive integers, got {args.group_sizes!r}")
    images, labels = synthetic_cifar(32 * (args.warmup_steps + args.steps))
    where = device_name(device)
    rows = []
    naive_rate = args.steps / time_naive(args, images, labels, device)
    rows.append(
        {
            "device": where,
            "path": f"naive (workers={args.naive_workers})",
            "K": 1,
            "network_steps_per_s": naive_rate,
        }
    )
    resident_images = images.to(device)
    resident_labels = labels.to(device).unsqueeze(0)
    graph_modes = [False, True] if (args.graphs and device.type == "cuda") else [False]
    for graphs in graph_modes:
        for copies in group_sizes:
            seconds = time_lockstep(args, copies, resident_images, resident_labels, device, graphs)
            path = ("fast" if copies == 1 else "grouped") + (" + CUDA graph" if graphs else "")
            rows.append(
                {
                    "device": where,
                    "path": path,
                    "K": copies,
                    "network_steps_per_s": copies * args.steps / seconds,
                }
            )
    table = pd.DataFrame(rows)
    table["ratio_to_naive"] = table.network_steps_per_s / naive_rate
    print(f"load average (1, 5, 15 min) after: {load_average()}")
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.1f}"))
    if args.csv:
        table.to_csv(args.csv, index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    parser.add_argument(
        "--models", default="cnn7,resnet20,vgg8bn", help="architectures of the numerics table"
    )
    parser.add_argument("--rounds", type=int, default=7, help="interleaved timing rounds (numerics table)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per round / per path")
    parser.add_argument("--warmup-steps", type=int, default=10, help="untimed steps before timing")
    parser.add_argument(
        "--matmul-size",
        type=int,
        default=None,
        help="side of the peak matmul (default 1024 on CPU, 8192 on CUDA)",
    )
    parser.add_argument(
        "--matmul-repeats", type=int, default=None, help="matmuls per round (default 4 on CPU, 50 on CUDA)"
    )
    parser.add_argument(
        "--paths", action="store_true", help="compare the naive port and the trainer's paths instead"
    )
    parser.add_argument(
        "--group-sizes", default="1,2,4,8", help="--paths: comma-separated K for the lockstep paths"
    )
    parser.add_argument("--model", default="cnn7", help="--paths: the architecture")
    parser.add_argument(
        "--naive-workers", type=int, default=0, help="--paths: DataLoader worker processes of the naive path"
    )
    parser.add_argument(
        "--graphs", action="store_true", help="--paths: also time CUDA-graph steps (CUDA only)"
    )
    parser.add_argument(
        "--nondeterministic",
        dest="deterministic",
        action="store_false",
        help="let cuDNN autotune and use nondeterministic kernels",
    )
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    parser.add_argument("--csv", default=None, help="also write the table to this CSV file")
    args = parser.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    if args.device == "auto":
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    else:
        device = torch.device(args.device)
    on_cuda = device.type == "cuda"
    args.steps = args.steps or (200 if args.paths else (100 if on_cuda else 10))
    args.matmul_size = args.matmul_size or (8192 if on_cuda else 1024)
    args.matmul_repeats = args.matmul_repeats or (50 if on_cuda else 4)
    if args.steps < 1 or args.warmup_steps < 0 or args.rounds < 1:
        parser.error("--steps and --rounds must be positive, --warmup-steps non-negative")
    # IEEE fp32 (no TF32 on CUDA) and the chosen cuDNN determinism, as in training
    with device_numerics(device, TrainingSettings(epochs=1, deterministic=args.deterministic)):
        if args.paths:
            compare_paths(args, device)
        else:
            compare_numerics(args, device)


if __name__ == "__main__":
    main()
