"""What the numerics benchmarks share: interleaved timing, the machine's peak, FLOP counts.

Used by benchmarks/training_throughput.py and benchmarks/forward_throughput.py (run as scripts
from the repository root; this file sits beside them).

- *Interleaved rounds.* On a shared machine a variant timed alone can land in a quiet or a busy
  minute. Every round times every variant (and the peak matmuls) once, in forward order on
  even rounds and reverse order on odd ones (ABBA...), and each rate is the median over rounds,
  so the variants see the same load.
- *Peak.* The machine's attainable rate is measured in the same rounds as a large square
  matrix product (fp32 and bf16 inputs, ``torch.matmul``: oneDNN/MKL on the CPU, cuBLAS on
  CUDA with TF32 off), so "fraction of peak" compares each variant with its own precision's
  best case on this machine at this load.
- *FLOPs.* ``torch.utils.flop_counter.FlopCounterMode`` counts a pass's convolutions and matrix
  products (2 FLOPs per multiply-add; backward passes included when they run); elementwise
  work (BatchNorm, ReLU, Adam, augmentation) is not counted, so the fraction of peak is that of
  the matrix work alone.
"""

from __future__ import annotations

import os
import statistics
import time
from typing import Callable, Mapping

import torch
from torch.utils.flop_counter import FlopCounterMode


def load_average() -> str:
    """The 1-, 5- and 15-minute load averages, as the kernel reports them."""
    try:
        return " ".join(f"{value:.2f}" for value in os.getloadavg())
    except OSError:
        return "unknown"


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def interleaved_rates(
    work: Mapping[str, tuple[Callable[[], None], float]], rounds: int, device: torch.device
) -> dict[str, float]:
    """Median rate of each ``name -> (run once, units per run)`` over ``rounds`` interleaved rounds."""
    names = list(work)
    rates: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(rounds):
        for name in names if round_number % 2 == 0 else reversed(names):
            run, units = work[name]
            synchronise(device)
            started = time.perf_counter()
            run()
            synchronise(device)
            rates[name].append(units / (time.perf_counter() - started))
    return {name: statistics.median(values) for name, values in rates.items()}


def matmul_work(dtype: torch.dtype, device: torch.device, size: int, repeats: int) -> tuple[Callable, float]:
    """``repeats`` products of two ``size`` x ``size`` matrices, and their FLOPs."""
    generator = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(size, size, generator=generator).to(device, dtype)
    b = torch.randn(size, size, generator=generator).to(device, dtype)
    torch.matmul(a, b)  # warm-up (kernel selection, packing buffers)

    def run() -> None:
        for _ in range(repeats):
            torch.matmul(a, b)

    return run, 2.0 * size**3 * repeats


def counted_flops(run: Callable[[], None]) -> float:
    """FLOPs of the convolutions and matrix products of one call of ``run``."""
    counter = FlopCounterMode(display=False)
    with counter:
        run()
    return float(counter.get_total_flops())


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"CPU ({torch.get_num_threads()} threads, torch {torch.__version__}, {torch.backends.cpu.get_cpu_capability()})"


def markdown_table(header: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)
