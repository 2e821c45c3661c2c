"""Time the full ablation sweep of one cnn7: upstream-once and batched conditions vs naive.

The sweep is what the workflow runs per network: half ablation (top / bottom by gOSI and by
class selectivity, plus random draws) and cumulative curves (every ordering x every fraction)
for all analysed layers. The efficient way (:func:`selectivity.causal.ablation.per_image_losses`)
computes each layer's upstream output once per image batch and evaluates all of that layer's
conditions from it in batched passes, identical masks once; the naive way
(:func:`selectivity.causal.ablation.naive_per_image_losses`) runs a full forward pass per condition.
Both run in this one process on one device, and their tables are checked to agree.

gOSI scores are seeded random stand-ins (which units are ablated does not change the amount
of work); class-selectivity scores are computed from the images. Examples::

    python benchmarks/ablation_sweep.py --images 500
    python benchmarks/ablation_sweep.py --checkpoint results/networks/.../best.pt --device cuda --images 10000
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from selectivity.causal.ablation import (
    AblationSettings,
    cumulative_ablation,
    half_ablation,
    naive_per_image_losses,
    per_image_losses,
)
from selectivity.networks.checkpoints import LoadedNetwork, load_checkpoint
from selectivity.causal.class_selectivity import class_conditional_means, class_selectivity_index
from selectivity.data.dataset import images_to_tensor, mean_image
from selectivity.networks.models import build_model

SUBSET = Path(__file__).resolve().parents[2] / "shared/datasets/cifar10-subset.npz"


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--checkpoint", type=Path, help="a cnn7 checkpoint (default: a freshly initialised cnn7)"
    )
    parser.add_argument("--images", type=int, default=200, help="test images (default 200)")
    parser.add_argument(
        "--data", type=Path, default=SUBSET, help="canonical .npz with x_test/y_test; random images if absent"
    )
    parser.add_argument("--random-draws", type=int, default=5)
    parser.add_argument(
        "--fractions",
        type=int,
        default=11,
        help="points on each cumulative curve (default 11: 0, 0.1, .., 1)",
    )
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=1, help="CPU threads (torch.set_num_threads)")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def test_images(args) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, str]:
    """(images in [0, 1], labels, training mean image, description)."""
    if args.data.exists():
        with np.load(args.data) as blob:
            x_test, y_test, x_train = (
                blob["x_test"][: args.images],
                blob["y_test"][: args.images],
                blob["x_train"],
            )
        return (
            images_to_tensor(x_test),
            torch.as_tensor(y_test),
            mean_image(x_train),
            f"first {len(x_test)} of {args.data.name}",
        )
    generator = torch.Generator().manual_seed(args.seed)
    images = torch.rand(args.images, 3, 32, 32, generator=generator)
    labels = torch.randint(0, 10, (args.images,), generator=generator)
    return (
        images,
        labels,
        torch.full((3, 32, 32), 0.5),
        f"{args.images} uniform random images ({args.data} absent)",
    )


def main() -> None:
    args = arguments()
    torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    images, labels, input_mean, description = test_images(args)
    if args.checkpoint:
        network = load_checkpoint(args.checkpoint, device)
        source = str(args.checkpoint)
    else:
        torch.manual_seed(args.seed)
        network = LoadedNetwork(
            build_model("cnn7").to(device).eval(), input_mean.to(device), epoch=0, info={}
        )
        source = f"cnn7 initialised with seed {args.seed}"
    images, labels = images.to(device), labels.to(device)
    layers = tuple(network.model.layer_names)
    rng = np.random.default_rng(args.seed)
    means = class_conditional_means(network, images, labels, layers, 10, args.batch_size)
    scores = {
        "gosi": {layer: rng.random(network.model.units(layer)) for layer in layers},
        "class_selectivity": {layer: class_selectivity_index(means[layer]) for layer in layers},
    }
    settings = AblationSettings(
        layers=layers,
        random_draws=args.random_draws,
        cumulative_fractions=tuple(np.linspace(0, 1, args.fractions).round(6)),
        seed=args.seed,
        batch_size=args.batch_size,
    )
    per_image_losses(
        network, images[:8], labels[:8], "conv3", [torch.ones(64)]
    )  # warm-up (lazy init, autotuning)
    identifiers = {"model": "cnn7"}
    timings, tables = {}, {}
    for name, evaluator in (("efficient", per_image_losses), ("naive", naive_per_image_losses)):
        start = time.perf_counter()
        half = half_ablation(network, images, labels, scores, settings, identifiers, loss_evaluator=evaluator)
        cumulative = cumulative_ablation(
            network, images, labels, scores, settings, identifiers, loss_evaluator=evaluator
        )
        timings[name] = (
            time.perf_counter() - start
        )  # both evaluators copy results to the host: no pending GPU work
        tables[name] = (*half, *cumulative)
    conditions_per_layer = 4 + args.random_draws
    half_conditions = len(layers) * conditions_per_layer + 1
    curve_points = len(layers) * conditions_per_layer * args.fractions
    print(f"network:   {source}")
    print(f"device:    {device} ({torch.get_num_threads()} CPU threads)")
    print(f"images:    {description}")
    print(
        f"sweep:     {len(layers)} layers; half ablation {half_conditions} conditions, cumulative {curve_points} points"
    )
    print(f"efficient: {timings['efficient']:.2f} s")
    print(f"naive:     {timings['naive']:.2f} s")
    print(f"speed-up:  {timings['naive'] / timings['efficient']:.2f}x")
    names = ("half ablation", "comparisons", "cumulative curves", "curve areas")
    for name, efficient, naive in zip(names, tables["efficient"], tables["naive"]):
        numbers = efficient.select_dtypes("number").columns
        difference = np.nanmax(np.abs(efficient[numbers].to_numpy(float) - naive[numbers].to_numpy(float)))
        pd.testing.assert_frame_equal(efficient, naive, rtol=1e-3, atol=1e-5)
        print(f"same numbers: {name} (largest difference {difference:.1e})")


if __name__ == "__main__":
    main()
