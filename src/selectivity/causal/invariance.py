"""Shift invariance of higher-layer representations, intact and with lower-layer units ablated.

docs/method.md §5; every choice here is ours [D] (the author's code has no such analysis):

* **representation** of an image at a measured layer: the layer's stage response (after
  ReLU, before BN) flattened over channels x positions. Spatial positions are kept on
  purpose: a spatial mean per channel would be nearly shift invariant by construction.
* **shift**: the image content moves right (horizontal) or down (vertical) by d pixels; the
  vacated columns/rows repeat the edge pixels (edge replication, the fill of the training
  augmentation). Images are shifted in [0, 1] before the network's preprocessing subtracts
  the mean image, i.e. the network sees a shifted photograph.
* **r_shift** per image: the Pearson correlation between the representations of the image
  and of its shifted copy. A constant representation (e.g. all zero) has correlation 0.
* **r_other**: each image is paired with one other test image through a seeded random
  cyclic derangement (:func:`other_image_partners`): the images are put in a random order
  and each is paired with the next. The same pairs serve every condition, so conditions
  differ only by the network. r_other = mean over images of the pair correlations.
* **normalised invariance** per image: (r_shift - r_other) / (1 - r_other), with the
  condition's r_other; reported as mean and SEM over images (the SEM treats r_other as fixed).
  An ablation that only makes all representations more alike raises r_shift and r_other
  together and leaves this measure unchanged.

Conditions: intact, and for each ablated layer its top / bottom / random ``fraction`` of units
by gOSI (:func:`selectivity.causal.ablation.rank_units`); random draw d ablates the same units as draw
d of the half ablation with the same seed (:func:`selectivity.causal.ablation.random_unit_orders`).
Measured layers are reported only for ablated layers below them. Per image batch, the intact
pass records the outputs of all ablated layers, and every ablation condition continues from
them (:meth:`AnalysableNetwork.forward_from`), all conditions of a layer in one pass.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Mapping, NamedTuple

import numpy as np
import pandas as pd
import torch

from selectivity.causal.ablation import (
    check_images_and_labels,
    image_batches,
    keep_mask,
    masked_copies,
    random_unit_orders,
    rank_units,
    require_evaluation_mode,
    units_to_ablate,
)
from selectivity.data.augmentation import shift_and_flip
from selectivity.networks.loaded import LoadedNetwork
from selectivity.causal.matching import matched_draws
from selectivity.statistics import mean_and_sem

logger = logging.getLogger(__name__)

DIRECTIONS = ("horizontal", "vertical")


@dataclass(frozen=True)
class InvarianceSettings:
    """Which layers, shifts and ablations; ``batch_size`` changes speed only, never results."""

    measured_layers: tuple[str, ...]
    ablated_layers: tuple[str, ...]
    shifts: tuple[int, ...] = (1, 2, 3, 4)
    directions: tuple[str, ...] = DIRECTIONS
    fraction: float = 0.5
    random_draws: int = 3
    seed: int = 0
    batch_size: int = 250

    def __post_init__(self):
        # Workflow params arrive as lists; store tuples so the settings stay hashable.
        for name in ("measured_layers", "ablated_layers", "shifts", "directions"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        if not self.measured_layers:
            raise ValueError("invariance settings: no measured layers given")
        if not self.shifts or any(int(s) != s for s in self.shifts):
            raise ValueError(f"shifts must be whole pixels, got {self.shifts}")
        unknown = [d for d in self.directions if d not in DIRECTIONS]
        if not self.directions or unknown:
            raise ValueError(f"directions must be among {DIRECTIONS}, got {self.directions}")
        if not 0 < self.fraction <= 1:
            raise ValueError(f"ablation fraction must be in (0, 1], got {self.fraction}")
        if self.random_draws < 1:
            raise ValueError(f"random_draws must be at least 1, got {self.random_draws}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")


def shift_images(images: torch.Tensor, shift_px: int, direction: str) -> torch.Tensor:
    """Move (N, C, H, W) image content right (horizontal) or down (vertical) by ``shift_px``
    pixels (negative: left/up), repeating the edge pixels into the vacated border: the shift
    of the training augmentation (:func:`selectivity.data.augmentation.shift_and_flip`)."""
    if direction not in DIRECTIONS:
        raise ValueError(f"shift direction must be one of {DIRECTIONS}, got {direction!r}")
    size = images.shape[-1] if direction == "horizontal" else images.shape[-2]
    if abs(shift_px) >= size:
        raise ValueError(f"a shift of {shift_px} px leaves nothing of a {size}-px image")
    shifts = torch.zeros(len(images), 2, dtype=torch.long)
    shifts[:, 1 if direction == "horizontal" else 0] = shift_px  # (row, column) shifts
    return shift_and_flip(images, shifts, torch.zeros(len(images), dtype=torch.bool))


def flatten_representation(response: torch.Tensor) -> torch.Tensor:
    """(N, units, ...) stage response -> (N, units x positions) representation vectors."""
    return response.flatten(1)


def representation(
    network: LoadedNetwork,
    images: torch.Tensor,
    layer: str,
    ablation: Mapping[str, torch.Tensor] | None = None,
) -> torch.Tensor:
    """The representation vectors (N, D) of ``layer`` for images in [0, 1], in one pass."""
    require_evaluation_mode(network)
    with torch.no_grad():
        inputs = network.prepare_inputs(images.to(network.device))
        run = network.model.run(inputs, ablation=ablation, record_responses=[layer], stop_after=layer)
    return flatten_representation(run.responses[layer])


def pearson_rows(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each row of ``a`` with the same row of ``b`` (float64).

    A row that is constant (exactly, e.g. all zero) has no defined correlation; it gets 0,
    the value of unrelated representations.
    """
    if a.shape != b.shape or a.dim() != 2:
        raise ValueError(
            f"pearson_rows needs two (N, D) tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}"
        )
    a, b = a.double(), b.double()
    constant = (a.amax(dim=1) == a.amin(dim=1)) | (b.amax(dim=1) == b.amin(dim=1))
    a = a - a.mean(dim=1, keepdim=True)
    b = b - b.mean(dim=1, keepdim=True)
    norms = (a.norm(dim=1) * b.norm(dim=1)).masked_fill(constant, 1.0)
    correlation = ((a * b).sum(dim=1) / norms).clamp(-1.0, 1.0)
    return correlation.masked_fill(constant, 0.0)


def normalised_invariance(shift_correlation: np.ndarray, other_correlation: float) -> np.ndarray:
    """(r_shift - r_other) / (1 - r_other): 1 = as alike as identical, 0 = as alike as unrelated
    images. NaN when r_other = 1 (every representation alike: invariance is undefined)."""
    if not -1 <= other_correlation <= 1:
        raise ValueError(f"other_correlation must be a correlation in [-1, 1], got {other_correlation}")
    shift_correlation = np.asarray(shift_correlation, dtype=np.float64)
    if other_correlation == 1:
        return np.full_like(shift_correlation, np.nan)
    return (shift_correlation - other_correlation) / (1.0 - other_correlation)


def other_image_partners(count: int, seed: int) -> np.ndarray:
    """partner[i] != i for every image: a random order in which each image meets the next."""
    if count < 2:
        raise ValueError(f"pairing images with other images needs at least 2 images, got {count}")
    order = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(1,))).permutation(count)
    partners = np.empty(count, dtype=np.int64)
    partners[order] = np.roll(order, -1)
    return partners


class _AblationGroup(NamedTuple):
    """The conditions of one ablated layer, evaluated together from its intact output."""

    layer: str
    condition_numbers: list[int]
    masks: torch.Tensor  # (conditions, units) on the network's device
    measured_layers: list[str]  # the measured layers above it, shallow to deep


def _ablation_groups(
    network: LoadedNetwork,
    unit_scores_gosi: Mapping[str, np.ndarray],
    settings: InvarianceSettings,
    measured: list[str],
    strata: Mapping[str, np.ndarray] | None = None,
    ranking: str = "gOSI",
) -> tuple[list[_AblationGroup], list[tuple[str, str, int]]]:
    """The ablation conditions per ablated layer, and every condition's (ablated_layer,
    condition, draw) by condition number; number 0 is the intact network. ``ranking`` names the
    scores in messages."""
    model = network.model
    groups, labels = [], [("none", "intact", 0)]
    for layer in settings.ablated_layers:
        layer_index, units = model.layer_index(layer), model.units(layer)
        above = [m for m in measured if model.layer_index(m) > layer_index]
        if not above:
            logger.warning("no measured layer lies above %s; its ablation is skipped", layer)
            continue
        if layer not in unit_scores_gosi:
            raise KeyError(
                f"no {ranking} scores for ablated layer {layer!r}; scored: {sorted(unit_scores_gosi)}"
            )
        scores = np.asarray(unit_scores_gosi[layer], dtype=np.float64)
        if scores.shape != (units,):
            raise ValueError(
                f"{ranking} scores of {layer} have shape {scores.shape}, the layer has {units} units"
            )
        count = units_to_ablate(settings.fraction, units)
        random_orders = random_unit_orders(units, settings.random_draws, settings.seed, layer_index)
        ablated = [("top", 0, rank_units(scores, settings.fraction, "top", None))]
        ablated.append(("bottom", 0, rank_units(scores, settings.fraction, "bottom", None)))
        ablated += [("random", draw, order[:count]) for draw, order in enumerate(random_orders)]
        if strata is not None:
            draws = matched_draws(
                ablated[0][2], strata[layer], settings.random_draws, settings.seed, layer_index
            )
            ablated += [("matched", draw, units_ablated) for draw, units_ablated in enumerate(draws)]
        numbers = list(range(len(labels), len(labels) + len(ablated)))
        labels += [(layer, condition, draw) for condition, draw, _ in ablated]
        masks = torch.stack([keep_mask(units, units_ablated) for *_, units_ablated in ablated]).to(
            network.device
        )
        groups.append(_AblationGroup(layer, numbers, masks, above))
    return groups, labels


def _condition_representations(
    network: LoadedNetwork, images: torch.Tensor, groups: list[_AblationGroup], measured: list[str]
) -> dict[tuple[int, str], torch.Tensor]:
    """(condition number, measured layer) -> representations of a batch; condition 0 = intact."""
    model = network.model
    inputs = network.prepare_inputs(images.to(network.device))
    intact = model.run(
        inputs,
        record_responses=measured,
        record_outputs=[group.layer for group in groups],
        stop_after=measured[-1],
    )
    representations = {(0, layer): flatten_representation(intact.responses[layer]) for layer in measured}
    batch = len(inputs)
    for group in groups:
        upstream = intact.outputs[group.layer]
        conditions = len(group.masks)
        run = model.forward_from(
            group.layer,
            masked_copies(upstream, group.masks),
            record_responses=group.measured_layers,
            stop_after=group.measured_layers[-1],
        )
        for layer in group.measured_layers:
            per_condition = flatten_representation(run.responses[layer]).view(conditions, batch, -1)
            for row, number in enumerate(group.condition_numbers):
                representations[(number, layer)] = per_condition[row]
    return representations


def shift_invariance(
    network: LoadedNetwork,
    images: torch.Tensor,
    unit_scores_gosi: Mapping[str, np.ndarray],
    settings: InvarianceSettings,
    identifiers: dict,
    *,
    strata: Mapping[str, np.ndarray] | None = None,
    progress: bool = False,
    ranking: str = "gOSI",
) -> pd.DataFrame:
    """Shift correlation, unrelated-image correlation and normalised invariance of each
    measured layer, per condition, direction and shift (columns: docs/architecture.md).

    With ``strata`` (per ablated layer, :func:`selectivity.causal.matching.layer_strata`) each
    ablated layer also gets ``settings.random_draws`` matched draws (condition "matched").
    ``unit_scores_gosi`` are gOSI, or another ranking's scores named by ``ranking`` (messages
    only; :mod:`selectivity.causal.feature_tests`)."""
    require_evaluation_mode(network)
    check_images_and_labels(images)
    if len(images) < 2:
        raise ValueError(f"shift invariance needs at least 2 images, got {len(images)}")
    model = network.model
    measured = sorted(settings.measured_layers, key=model.layer_index)
    groups, labels = _ablation_groups(network, unit_scores_gosi, settings, measured, strata, ranking)
    # (condition number, measured layer) pairs, grouped by measured layer; ablations only below it.
    keys = [
        (number, layer)
        for layer in measured
        for number in [0]
        + [n for group in groups if layer in group.measured_layers for n in group.condition_numbers]
    ]
    shifts = [(direction, shift) for direction in settings.directions for shift in settings.shifts]
    partners = other_image_partners(len(images), settings.seed)
    # Per-image correlations stay on the device until the end: no host synchronisation per batch.
    other = {key: torch.empty(len(images), dtype=torch.float64, device=network.device) for key in keys}
    shifted = {(*key, *shift): torch.empty_like(other[key]) for key in keys for shift in shifts}
    logger.info(
        "shift invariance: %d conditions, %d measured layers, %d shifts, %d images",
        len(labels),
        len(measured),
        len(shifts),
        len(images),
    )
    with torch.no_grad():
        for batch in image_batches(len(images), settings.batch_size, progress, "shift invariance"):
            originals = images[batch]
            reference = _condition_representations(network, originals, groups, measured)
            unrelated = _condition_representations(network, images[partners[batch]], groups, measured)
            for key in keys:
                other[key][batch] = pearson_rows(reference[key], unrelated[key])
            del unrelated
            for direction, shift in shifts:
                moved = _condition_representations(
                    network, shift_images(originals, shift, direction), groups, measured
                )
                for key in keys:
                    shifted[(*key, direction, shift)][batch] = pearson_rows(reference[key], moved[key])
    other = {key: values.cpu().numpy() for key, values in other.items()}
    shifted = {key: values.cpu().numpy() for key, values in shifted.items()}
    return _invariance_table(labels, keys, shifts, other, shifted, identifiers, len(images))


def _invariance_table(labels, keys, shifts, other, shifted, identifiers, count) -> pd.DataFrame:
    rows = []
    for number, layer in keys:
        ablated_layer, condition, draw = labels[number]
        other_mean = float(other[(number, layer)].mean())
        for direction, shift in shifts:
            correlations = shifted[(number, layer, direction, shift)]
            correlation_mean, correlation_sem = mean_and_sem(correlations)
            invariance_mean, invariance_sem = mean_and_sem(normalised_invariance(correlations, other_mean))
            rows.append(
                {
                    **identifiers,
                    "measured_layer": layer,
                    "ablated_layer": ablated_layer,
                    "condition": condition,
                    "draw": draw,
                    "direction": direction,
                    "shift_px": shift,
                    "shift_correlation_mean": correlation_mean,
                    "shift_correlation_sem": correlation_sem,
                    "other_correlation_mean": other_mean,
                    "normalised_invariance_mean": invariance_mean,
                    "normalised_invariance_sem": invariance_sem,
                    "n_images": count,
                }
            )
    return pd.DataFrame(rows)
