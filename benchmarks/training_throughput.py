"""Training throughput: a naive PyTorch port vs the device-resident and grouped paths.

Times, on one device and in one run:

(a) ``naive``: what a straight port of the author's Keras script looks like: a
    DataLoader over a dataset whose items are augmented one by one by torchvision
    transforms (RandomCrop(32, padding=3, padding_mode="edge") +
    RandomHorizontalFlip), batches copied to the device, ``loss.item()`` every step;
(b) ``fast``: :class:`selectivity.training.LockstepTrainer` with one network
    (device-resident data, batched augmentation, no host synchronisation);
(c) ``grouped``: the same with K networks stacked into one.
With ``--graphs`` on a CUDA device, (b) and (c) are also timed with the training
step captured as a CUDA graph (``TrainingSettings.cuda_graphs``).

Throughput is in network-steps per second (K networks x steps / s): one
network-step is one optimiser step of one network on a batch of 32. The data are
synthetic random images of CIFAR shape, so no files are needed.

    python benchmarks/training_throughput.py --device cuda --steps 300 --group-sizes 1,4,16,64 --graphs
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    parser.add_argument("--steps", type=int, default=200, help="timed steps per path")
    parser.add_argument("--warmup-steps", type=int, default=10, help="untimed steps before timing")
    parser.add_argument("--group-sizes", default="1,2,4,8", help="comma-separated K for the lockstep paths")
    parser.add_argument("--model", default="cnn7")
    parser.add_argument(
        "--naive-workers", type=int, default=0, help="DataLoader worker processes of the naive path"
    )
    parser.add_argument("--graphs", action="store_true", help="also time CUDA-graph steps (CUDA only)")
    parser.add_argument(
        "--nondeterministic",
        dest="deterministic",
        action="store_false",
        help="let cuDNN autotune and use nondeterministic kernels in the fast paths",
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
    group_sizes = [int(k) for k in args.group_sizes.split(",") if k.strip()]
    if any(k < 1 for k in group_sizes) or args.steps < 1 or args.warmup_steps < 0:
        parser.error("group sizes and --steps must be positive, --warmup-steps non-negative")
    images, labels = synthetic_cifar(32 * (args.warmup_steps + args.steps))
    device_name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads)"
    )

    rows = []
    # the naive path runs with the fast paths' numerics (IEEE fp32, same cuDNN determinism)
    with device_numerics(device, TrainingSettings(epochs=1, deterministic=args.deterministic)):
        naive_seconds = time_naive(args, images, labels, device)
    naive_rate = args.steps / naive_seconds
    rows.append(
        {
            "device": device_name,
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
                    "device": device_name,
                    "path": path,
                    "K": copies,
                    "network_steps_per_s": copies * args.steps / seconds,
                }
            )
    table = pd.DataFrame(rows)
    table["ratio_to_naive"] = table.network_steps_per_s / naive_rate
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.1f}"))
    if args.csv:
        table.to_csv(args.csv, index=False)


if __name__ == "__main__":
    main()
