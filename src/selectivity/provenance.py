"""What every output records about how it was made: seed, config hash, versions, device."""

from __future__ import annotations

import hashlib
import json
import platform
from typing import Any, Mapping

import numpy as np
import torch

import selectivity
from selectivity.versions import code_version


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
        "torch": str(torch.__version__),  # TorchVersion is not a plain type (weights_only loads)
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "pandas": pandas.__version__,
    }


def device_description(device: torch.device | str) -> str:
    device = torch.device(device)
    if device.type == "cuda":
        return f"cuda:{device.index or 0} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({platform.processor() or platform.machine()}, {torch.get_num_threads()} threads)"


def plain(value: Any) -> Any:
    """``value`` as JSON-like plain types (dict, list, str, int, float, bool, None).

    Checkpoints are read with ``torch.load(weights_only=True)``, which refuses arbitrary
    objects, so everything stored beside the tensors must be plain.
    """
    if isinstance(value, Mapping):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(item) for item in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, np.generic):
        return value.item()
    return str(value)


def provenance(seed: int | None, settings: Mapping[str, Any], device: torch.device | str) -> dict[str, Any]:
    """The record attached to checkpoints and written beside tables (plain types only)."""
    return plain(
        {
            "seed": seed,
            "config_hash": config_hash(settings),
            "settings": dict(settings),
            "versions": package_versions(),
            "code": code_version(),
            "device": device_description(device),
        }
    )


def provenance_html(table, config: Mapping[str, Any]) -> str:
    """The provenance table and the run's full configuration as an HTML page for the report."""
    from html import escape

    import yaml

    return (
        "<!DOCTYPE html><html><head><meta charset='utf-8'><title>Provenance</title>"
        "<style>body{font-family:sans-serif;font-size:13px} table{border-collapse:collapse}"
        "td,th{border:1px solid #999;padding:3px}</style></head><body>"
        "<h2>Networks: seeds, settings hashes, versions, devices</h2>"
        + table.to_html(index=False, border=0)
        + "<h2>Configuration of this run</h2><pre>"
        + escape(yaml.safe_dump(dict(config), sort_keys=False))
        + "</pre></body></html>\n"
    )
