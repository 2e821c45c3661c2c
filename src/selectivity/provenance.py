"""What every output records about how it was made: seed, config hash, versions, device."""

from __future__ import annotations

import hashlib
import json
import platform
import random
from typing import Any, Mapping

import numpy as np
import torch

import selectivity


def config_hash(settings: Mapping[str, Any]) -> str:
    """A short, stable hash of the settings that determine a result (key order ignored)."""
    canonical = json.dumps(settings, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def package_versions() -> dict[str, str]:
    import pandas
    import scipy

    return {
        "python": platform.python_version(),
        "selectivity": selectivity.__version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pandas.__version__,
    }


def device_description(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda:{device.index or 0} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def provenance(seed: int | None, settings: Mapping[str, Any], device: torch.device | str) -> dict[str, Any]:
    """The record attached to checkpoints and written beside tables."""
    return {
        "seed": seed,
        "config_hash": config_hash(settings),
        "settings": dict(settings),
        "versions": package_versions(),
        "device": device_description(device),
    }


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch for this process and return a torch generator with the same seed."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)
