"""Two ways to train K networks in lockstep, side by side: which one the trainer should use.

- ``separate``: K plain networks, one step each (the reference: no stacking at all);
- ``grouped``: the hand-built stacked networks (``selectivity.networks.grouped``: grouped convolutions,
  batched linear layers; ``GroupedConvNet``, ``GroupedResNet``, ``GroupedVGGNet``), the trainer's;
- ``vmap``: ``torch.func.stack_module_state`` + ``functional_call`` + ``vmap`` over the plain
  model, which works for any architecture.

Each path runs the same training step (forward, summed per-network mean cross-entropy,
backward, one Adam step over all parameters) on random batch-32 CIFAR-sized inputs, and the
table prints network-steps per second and the ratio to ``separate``.

    python benchmarks/grouped_mechanisms.py --threads 2 --steps 30 --group-sizes 2,4,8
"""

from __future__ import annotations

import argparse
import copy
import time

import torch
import torch.nn.functional as F
from torch.func import functional_call, stack_module_state, vmap

from selectivity.networks.grouped import stack_networks
from selectivity.networks.models import build_model


def timed(step, steps: int, device: torch.device, warmup: int = 3) -> float:
    for _ in range(warmup):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    start = time.perf_counter()
    for _ in range(steps):
        step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return time.perf_counter() - start


def separate_path(networks, images, labels):
    optimisers = [torch.optim.Adam(n.parameters(), 1e-3) for n in networks]

    def step():
        for k, (network, optimiser) in enumerate(zip(networks, optimisers)):
            optimiser.zero_grad(set_to_none=True)
            F.cross_entropy(network(images[k]), labels[k]).backward()
            optimiser.step()

    return step


def grouped_path(networks, images, labels):
    model = stack_networks(networks).train()
    optimiser = torch.optim.Adam(model.parameters(), 1e-3)
    copies, batch = labels.shape
    stacked = images.transpose(0, 1).reshape(batch, copies * images.shape[2], *images.shape[3:])

    def step():
        optimiser.zero_grad(set_to_none=True)
        logits = model(stacked)  # (B, K, classes)
        loss = F.cross_entropy(logits.reshape(batch * copies, -1), labels.t().reshape(-1), reduction="sum")
        (loss / batch).backward()
        optimiser.step()

    return step


def vmap_path(networks, images, labels):
    parameters, buffers = stack_module_state(networks)
    base = copy.deepcopy(networks[0]).to("meta")
    optimiser = torch.optim.Adam(parameters.values(), 1e-3)

    def logits_of(p, b, x):
        return functional_call(base, (p, b), (x,))

    batched = vmap(logits_of)

    def step():
        optimiser.zero_grad(set_to_none=True)
        logits = batched(parameters, buffers, images)  # (K, B, classes)
        losses = F.cross_entropy(logits.flatten(0, 1), labels.flatten(), reduction="sum")
        (losses / labels.shape[1]).backward()
        optimiser.step()

    return step


PATHS = {"separate": separate_path, "grouped": grouped_path, "vmap": vmap_path}


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=30)
    parser.add_argument("--group-sizes", default="2,4,8")
    parser.add_argument("--models", default="cnn7,resnet20,vgg8bn")
    arguments = parser.parse_args()
    torch.set_num_threads(arguments.threads)
    device = torch.device(arguments.device)
    rows = []
    for model in arguments.models.split(","):
        for copies in map(int, arguments.group_sizes.split(",")):
            torch.manual_seed(0)
            images = torch.randn(copies, 32, 3, 32, 32, device=device)
            labels = torch.randint(0, 10, (copies, 32), device=device)
            rates = {}
            for path, build in PATHS.items():
                networks = [build_model(model).to(device).train() for _ in range(copies)]
                seconds = timed(build(networks, images, labels), arguments.steps, device)
                rates[path] = copies * arguments.steps / seconds
            for path, rate in rates.items():
                rows.append((model, copies, path, rate, rate / rates["separate"]))
    where = (
        f"CPU, {arguments.threads} threads" if device.type == "cpu" else torch.cuda.get_device_name(device)
    )
    print(f"{where}, batch 32, {arguments.steps} timed steps")
    print(f"{'model':>9} {'K':>3} {'path':>9} {'network-steps/s':>16} {'ratio to separate':>18}")
    for model, copies, path, rate, ratio in rows:
        print(f"{model:>9} {copies:>3} {path:>9} {rate:16.1f} {ratio:18.2f}")


if __name__ == "__main__":
    main()
