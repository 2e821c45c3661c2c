"""The arithmetic of a network's passes: its precision (fp32 or bf16) and memory format.

docs/method.md §2 and §7. Two settings, of different kinds:

``precision`` is part of a network's identity. ``fp32`` (the paper's setting) computes
everything in IEEE float32. ``bf16`` runs the forward pass under ``torch.autocast`` with
bfloat16: convolutions, linear layers and the batched matmuls of stacked networks take bf16
inputs (8-bit mantissa) and accumulate in fp32; on the CPU they use the AVX512-BF16 (or AMX)
units. What stays fp32 (checked by tests/test_precision.py):

- the master weights, their gradients and Adam's moments (autocast casts a copy of each
  weight for the matmul; the parameters themselves stay fp32);
- BatchNorm's batch and running statistics (the CPU and CUDA kernels accumulate a bf16
  input in fp32 and keep the fp32 running buffers; the normalised output is rounded to bf16
  like any activation);
- the loss: softmax and cross-entropy are computed from the logits cast to fp32, outside
  autocast (on the CPU autocast would leave ``log_softmax`` in bf16).

A bf16 network is therefore another draw of trained weights, not an fp32 network rounded;
the training records its precision in every checkpoint, and the analyses of a network run in
the precision it was trained with (:func:`selectivity.networks.checkpoints.load_checkpoint`).

The memory format is a speed choice only: channels-last (NHWC) lays out the same tensors
differently, so results differ by float rounding at most. It is chosen per device type,
precision and architecture by measurement (:data:`CHANNELS_LAST`, from
``benchmarks/training_throughput.py`` and ``benchmarks/forward_throughput.py``).
"""

from __future__ import annotations

import contextlib
from typing import ContextManager

import torch

#: The precisions a network can be trained (and analysed) in; fp32 is the default and the paper's.
PRECISIONS = ("fp32", "bf16")
DEFAULT_PRECISION = "fp32"

#: (device type, precision, pass) -> architectures whose passes run channels-last; the pass is
#: "training" (forward and backward in training mode) or "analysis" (evaluation-mode forward
#: passes, the trainer's evaluation of a single network after each epoch included: its input
#: takes this layout, its weights the training one). Chosen by measurement on this project's
#: 2-core CPU (AMD EPYC with AVX-512 and AVX512-BF16, no AMX; docs/development.md "Performance":
#: benchmarks/training_throughput.py, batch 32, and benchmarks/forward_throughput.py, batch 500),
#: subject to changing results by rounding only:
#:
#: - bf16 training: channels-last was faster for every architecture (1.04-1.26x over bf16 in the
#:   run with the machine to itself) and its gradients are as close to exact (float64) ones as
#:   the default layout's (both 17-25% off in norm: bf16 itself);
#: - fp32 training: channels-last was 1.2-1.3x faster for all three, but for cnn7 and vgg8bn the
#:   CPU's channels-last kernels put the gradient 1.5e-3 and 7e-3 off the exact one (in norm, at
#:   initialisation), against 2e-6 in the default layout, so they keep the default layout; for
#:   resnet20 both layouts are 3e-3 off (its fp32 gradient is that ill-conditioned at
#:   initialisation), so it runs channels-last (tests/test_precision.py);
#: - analysis passes: channels-last logits are as close to exact as the default layout's, and it
#:   was never slower (fp32 1.35-1.8x, resnet20 once equal; bf16 1.3-2.2x over bf16).
#:
#: Timings on the shared machine were noisy (see docs/development.md); a quiet rerun may move an entry. cnn11
#: was not measured and keeps the default layout; so does CUDA until benchmarks/gpu_check.sh has
#: measured it there.
CHANNELS_LAST: dict[tuple[str, str, str], frozenset[str]] = {
    ("cpu", "fp32", "training"): frozenset({"resnet20"}),
    ("cpu", "bf16", "training"): frozenset({"cnn7", "resnet20", "vgg8bn"}),
    ("cpu", "fp32", "analysis"): frozenset({"cnn7", "resnet20", "vgg8bn"}),
    ("cpu", "bf16", "analysis"): frozenset({"cnn7", "resnet20", "vgg8bn"}),
}
PASSES = ("training", "analysis")


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    return precision


def autocast(precision: str, device: torch.device | str, *, graph_capture: bool = False) -> ContextManager:
    """The context of a forward pass in ``precision`` on ``device`` (nothing to do for fp32).

    ``graph_capture``: the pass is captured in a CUDA graph, where autocast must not cache the
    bf16 copies of the weights (the cached copy would be stale at replay).
    """
    check_precision(precision)
    if precision == "fp32":
        return contextlib.nullcontext()
    device_type = torch.device(device).type
    return torch.autocast(device_type, dtype=torch.bfloat16, cache_enabled=not graph_capture)


def prefers_channels_last(
    architecture: str, device: torch.device | str, precision: str, training: bool
) -> bool:
    """Whether ``architecture``'s training (or analysis) passes in ``precision`` on ``device`` run
    channels-last (:data:`CHANNELS_LAST`)."""
    check_precision(precision)
    key = (torch.device(device).type, precision, "training" if training else "analysis")
    return architecture in CHANNELS_LAST.get(key, frozenset())


def memory_format_name(channels_last: bool) -> str:
    """How the memory format is recorded in provenance and run identities."""
    return "channels_last" if channels_last else "contiguous"


def in_memory_format(tensor: torch.Tensor, channels_last: bool) -> torch.Tensor:
    """``tensor`` laid out channels-last if asked and it is a batch of maps (4-D), else unchanged."""
    if channels_last and tensor.dim() == 4:
        return tensor.contiguous(memory_format=torch.channels_last)
    return tensor
