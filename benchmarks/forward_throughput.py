"""Analysis forward passes: fp32 vs bf16 vs channels-last per architecture, side by side.

The analyses (tuning responses, class selectivity, ablation losses, shift invariance) are
forward passes in evaluation mode without gradients, in batches of a few hundred images. This
times one such pass per architecture (a trained network's numerics are set as
:func:`selectivity.networks.checkpoints.load_checkpoint` sets them: ``AnalysableNetwork.set_numerics``)
in four numerics:

    fp32 | fp32 channels-last | bf16 | bf16 channels-last

in interleaved rounds, with the machine's peak matmul rate measured in the same rounds
(benchmarks/numerics_timing.py), and prints images/s, the ratio to fp32 and the fraction of the
precision's peak reached by the pass's convolutions and matrix products, plus the load average,
as a Markdown table. Inputs are random CIFAR-shaped images (the amount of work does not depend
on them).

    python benchmarks/forward_throughput.py --threads 2 --rounds 7 --batch-size 500
"""

from __future__ import annotations

import argparse

import torch

from selectivity.networks.models import build_model
from selectivity.training import device_numerics, TrainingSettings

from numerics_timing import (
    counted_flops,
    device_name,
    interleaved_rates,
    load_average,
    markdown_table,
    matmul_work,
)

VARIANTS = (
    ("fp32", "fp32", False),
    ("fp32 channels-last", "fp32", True),
    ("bf16", "bf16", False),
    ("bf16 channels-last", "bf16", True),
)


def forward_work(model_name: str, precision: str, channels_last: bool, images: torch.Tensor, passes: int):
    """``passes`` forward passes of one batch through a network in the given numerics."""
    model = build_model(model_name).to(images.device).eval().set_numerics(precision, channels_last)

    def run() -> None:
        with torch.inference_mode():
            for _ in range(passes):
                model(images)

    run()  # warm-up: kernel selection, weight reorders
    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="cpu, cuda, cuda:N or auto (default)")
    parser.add_argument("--models", default="cnn7,resnet20,vgg8bn")
    parser.add_argument("--batch-size", type=int, default=500, help="images per pass (the causal tests' 500)")
    parser.add_argument(
        "--passes", type=int, default=None, help="passes per round (default 2 on CPU, 50 on CUDA)"
    )
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--matmul-size", type=int, default=None)
    parser.add_argument("--matmul-repeats", type=int, default=None)
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = torch.device(
        ("cuda" if torch.cuda.is_available() else "cpu") if args.device == "auto" else args.device
    )
    on_cuda = device.type == "cuda"
    passes = args.passes or (50 if on_cuda else 2)
    size = args.matmul_size or (8192 if on_cuda else 1024)
    repeats = args.matmul_repeats or (50 if on_cuda else 4)
    models = args.models.split(",")
    images = torch.randn(args.batch_size, 3, 32, 32, generator=torch.Generator().manual_seed(0)).to(device)
    load_before = load_average()
    with device_numerics(device, TrainingSettings(epochs=1)):  # IEEE fp32: no TF32 on CUDA
        work = {
            "peak fp32": matmul_work(torch.float32, device, size, repeats),
            "peak bf16": matmul_work(torch.bfloat16, device, size, repeats),
        }
        flops = {}
        for model in models:
            for label, precision, channels_last in VARIANTS:
                run = forward_work(model, precision, channels_last, images, passes)
                work[f"{model} {label}"] = (run, passes * args.batch_size)
            single = forward_work(model, "fp32", False, images, 1)
            flops[model] = counted_flops(single) / args.batch_size
        rates = interleaved_rates(work, args.rounds, device)
    peak = {"fp32": rates["peak fp32"], "bf16": rates["peak bf16"]}
    print(
        f"analysis forward passes (eval mode, no gradients), batch {args.batch_size}, on {device_name(device)}; "
        f"median of {args.rounds} interleaved rounds of {passes} passes; load average (1, 5, 15 min) before: "
        f"{load_before}, after: {load_average()}"
    )
    print(
        f"peak ({size}x{size} matmul, same rounds): fp32 {peak['fp32'] / 1e9:.0f} GFLOP/s, bf16 "
        f"{peak['bf16'] / 1e9:.0f} GFLOP/s; MFLOP per image (convolutions and matrix products): "
        + ", ".join(f"{m} {f / 1e6:.1f}" for m, f in flops.items())
    )
    print()
    rows = []
    for model in models:
        base = rates[f"{model} fp32"]
        cells = [model]
        for label, precision, _ in VARIANTS:
            rate = rates[f"{model} {label}"]
            cells.append(
                f"{rate:,.0f} ({rate / base:.2f}x, {100 * rate * flops[model] / peak[precision]:.0f}%)"
            )
        rows.append(cells)
    header = ["model"] + [
        f"{label}: images/s (vs fp32, % of {precision} peak)" for label, precision, _ in VARIANTS
    ]
    print(markdown_table(header, rows))


if __name__ == "__main__":
    main()
