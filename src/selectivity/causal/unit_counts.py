"""How many units an ablation silences (torch-free: the config checks use it before any job)."""

from __future__ import annotations

import math


def units_to_ablate(fraction: float, units: int) -> int:
    """``round(fraction * units)`` with halves rounded up (Python's round would go to even).

    The tolerance keeps a nominal half a half: 0.35 * 90 is 31.499999999999996 in floats.
    """
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction of units to ablate must be in [0, 1], got {fraction}")
    return min(units, int(math.floor(fraction * units + 0.5 + 1e-9)))
