"""The matched control of the ablations: random units that look like the top half.

Ablating the top half of a layer by gOSI differs from ablating the bottom half in more
than orientation selectivity: the selective units of a layer tend to prefer other
spatial frequencies and to carry larger (or smaller) outputs, and zeroing a large
output perturbs the next layer more. The *matched* condition ablates a random set of
units drawn to match the top half on those covariates, so that "top hurts more than
matched" is a test of orientation selectivity itself (docs/method.md §4.3):

* every unit falls in a stratum: the half of the layer its preferred spatial frequency
  for gratings falls in (dead units, which have none, form their own group) x the
  tercile of its mean output over the test images at the ablation point;
* a matched draw takes, from each stratum, as many units (uniformly at random, without
  replacement) as the top half has there, so it has the top half's size and its
  covariate distribution. Units of the top half may be drawn; where a stratum holds
  only top units, the matched draw takes them all.

Matched draws of a layer come from their own generator (settings seed, layer index,
spawn key 1), so adding them changes none of the random draws.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from scipy import stats

from selectivity.networks.loaded import LoadedNetwork

#: Quantile bins per layer: preferred spatial frequency in halves, mean output in terciles.
#: Finer strata would leave strata of one unit, whose matched draw is that unit itself.
FREQUENCY_BINS = 2
ACTIVATION_BINS = 3


def unit_strata(
    preferred_frequency: np.ndarray,
    mean_output: np.ndarray,
    frequency_bins: int = FREQUENCY_BINS,
    activation_bins: int = ACTIVATION_BINS,
) -> np.ndarray:
    """One integer stratum per unit: preferred-frequency bin x mean-output bin.

    Both bins are quantiles within the layer (by rank, ties of the discrete preferred
    frequency sharing their average rank); dead units (NaN preferred frequency) form a
    frequency bin of their own.
    """
    preferred_frequency = np.asarray(preferred_frequency, dtype=np.float64)
    mean_output = np.asarray(mean_output, dtype=np.float64)
    if preferred_frequency.shape != mean_output.shape or preferred_frequency.ndim != 1:
        raise ValueError(
            f"preferred frequencies {preferred_frequency.shape} and mean outputs {mean_output.shape} "
            "must be one value per unit of the same layer"
        )
    if not np.isfinite(mean_output).all():
        raise ValueError("mean outputs must be finite")
    units = len(mean_output)
    activation_bin = ((stats.rankdata(mean_output, method="ordinal") - 1) * activation_bins) // units
    responsive = np.isfinite(preferred_frequency)
    frequency_bin = np.full(units, frequency_bins, dtype=np.int64)  # dead units: their own bin
    if responsive.any():
        ranks = stats.rankdata(preferred_frequency[responsive], method="average")
        frequency_bin[responsive] = np.minimum(
            ((ranks - 0.5) * frequency_bins) // responsive.sum(), frequency_bins - 1
        ).astype(np.int64)
    return (frequency_bin * activation_bins + activation_bin).astype(np.int64)


def matched_generator(seed: int, layer_index: int) -> np.random.Generator:
    """The generator of a layer's matched draws (independent of its random draws)."""
    return np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1, layer_index)))


def matched_units(top: Sequence[int], strata: np.ndarray, generator: np.random.Generator) -> np.ndarray:
    """A random set of units with as many units in every stratum as ``top`` has there."""
    top = np.asarray(top, dtype=np.int64)
    strata = np.asarray(strata)
    chosen = []
    for stratum, needed in zip(*np.unique(strata[top], return_counts=True)):
        members = np.flatnonzero(strata == stratum)
        chosen.append(generator.choice(members, size=needed, replace=False))
    return np.sort(np.concatenate(chosen)) if chosen else np.empty(0, dtype=np.int64)


def matched_draws(
    top: Sequence[int], strata: np.ndarray, draws: int, seed: int, layer_index: int
) -> list[np.ndarray]:
    """``draws`` matched sets for one layer, draw d always the same for the same inputs."""
    generator = matched_generator(seed, layer_index)
    return [matched_units(top, strata, generator) for _ in range(draws)]


def unit_mean_outputs(
    network: LoadedNetwork, images: torch.Tensor, layers: Sequence[str], batch_size: int = 500
) -> dict[str, np.ndarray]:
    """Each unit's mean stage output (the value an ablation zeroes) over images and positions."""
    model = network.model
    layers = list(layers)
    deepest = max(layers, key=model.layer_index)
    sums = {layer: torch.zeros(model.units(layer), dtype=torch.float64) for layer in layers}
    counts = dict.fromkeys(layers, 0)
    with torch.no_grad():
        for start in range(0, len(images), batch_size):
            inputs = network.prepare_inputs(images[start : start + batch_size].to(network.device))
            outputs = model.run(inputs, record_outputs=layers, stop_after=deepest).outputs
            for layer in layers:
                per_unit = outputs[layer].transpose(0, 1).reshape(model.units(layer), -1)
                sums[layer] += per_unit.double().sum(dim=1).cpu()
                counts[layer] += per_unit.shape[1]
    return {layer: (sums[layer] / counts[layer]).numpy() for layer in layers}


def preferred_frequencies_from_table(tuning: pd.DataFrame) -> dict[str, np.ndarray]:
    """Per layer, each unit's preferred spatial frequency for gratings (NaN for dead units)."""
    gratings = tuning[tuning["stimulus_set"] == "gratings"]
    if gratings.empty:
        raise ValueError("the tuning table has no gratings rows to take preferred spatial frequencies from")
    return {
        layer: rows.sort_values("unit")["preferred_spatial_frequency"].to_numpy(dtype=np.float64)
        for layer, rows in gratings.groupby("layer", sort=False)
    }


def layer_strata(
    network: LoadedNetwork,
    images: torch.Tensor,
    preferred_frequency: Mapping[str, np.ndarray],
    layers: Sequence[str],
    batch_size: int = 500,
) -> dict[str, np.ndarray]:
    """The strata of every unit of ``layers`` (preferred-frequency half x mean-output tercile)."""
    missing = [layer for layer in layers if layer not in preferred_frequency]
    if missing:
        raise KeyError(
            f"no preferred spatial frequencies for layers {missing}; have {sorted(preferred_frequency)}"
        )
    means = unit_mean_outputs(network, images, layers, batch_size)
    return {layer: unit_strata(preferred_frequency[layer], means[layer]) for layer in layers}
