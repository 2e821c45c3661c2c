"""Orientation tuning of every unit of a network (docs/method.md §3).

Pipeline, per analysed layer:

1. :func:`measure_responses`: every grating through the network (eval mode, no grad); a
   unit's response is its post-ReLU, pre-BN activation, averaged over all spatial
   positions for conv and pool layers [A].
2. :func:`tuning_responses`: reshape to (units, n_sf, n_ori, n_phase).
3. Tuning curve [A]: maximum over phases -> R[sf, ori]; the preferred SF is the argmax
   over SFs of the maximum over orientations; the curve is R[preferred SF, :].
4. Indices on that curve, no baseline subtraction [A]: OSI and gOSI; a unit that never
   responds (all responses exactly 0) is *dead* and gets OSI = gOSI = 0.
5. Null control: the same analysis after :func:`shuffle_stimulus_labels`.

Ties (argmax over equal values) resolve to the first index: the lowest SF and the
smallest orientation, as ``numpy.argmax`` does in the author's code.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from selectivity.checkpoints import LoadedNetwork
from selectivity.stimuli import GratingStimuli, grating_stimuli

log = logging.getLogger(__name__)

STIMULUS_SETS = ("gratings", "shuffled")
TUNING_COLUMNS = (
    "layer",
    "layer_index",
    "unit",
    "stimulus_set",
    "osi",
    "gosi",
    "preferred_orientation_deg",
    "preferred_spatial_frequency",
    "preferred_period_px",
    "peak_response",
    "dead",
    "orientation_consistency",
    "selective",
)


@dataclass(frozen=True)
class TuningSettings:
    """Everything that determines a tuning table besides the network.

    ``spatial_frequencies=None`` means :func:`selectivity.stimuli.spatial_frequency_count`
    of the network's input size. ``shuffle_independent_units`` chooses the null control:
    True permutes each unit's responses on its own [D]; False uses one permutation for all
    units, which is what the author's code does by permuting the stimulus images [A]. Both
    give every unit the same chance distribution.
    """

    orientations: int = 12
    phases: int = 4
    spatial_frequencies: int | None = None
    selectivity_threshold: float = 0.33
    shuffle_seed: int = 0
    batch_size: int = 256
    shuffle_independent_units: bool = True

    def __post_init__(self):
        if self.orientations < 2 or self.orientations % 2:
            raise ValueError(
                f"orientations must be even (every orientation needs its orthogonal one), got {self.orientations}"
            )
        if self.phases < 1:
            raise ValueError(f"phases must be at least 1, got {self.phases}")
        if self.spatial_frequencies is not None and self.spatial_frequencies < 1:
            raise ValueError(
                f"spatial_frequencies must be at least 1 or None, got {self.spatial_frequencies}"
            )
        if not 0 <= self.selectivity_threshold < 1:
            raise ValueError(f"selectivity_threshold must be in [0, 1), got {self.selectivity_threshold}")
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")


@dataclass
class TuningResult:
    """The tuning table (one row per unit x stimulus set) and the npz-ready tuning curves.

    ``curves[layer]`` is float32 (units, n_sf, n_ori): the real gratings' responses after
    the maximum over phases; ``curves["orientations_deg"]`` and ``curves["periods_px"]``
    label its last two axes.
    """

    table: pd.DataFrame
    curves: dict[str, np.ndarray] = field(default_factory=dict)


def measure_responses(
    network: LoadedNetwork,
    images: torch.Tensor,
    layers: Sequence[str],
    batch_size: int,
    progress: bool = False,
) -> dict[str, torch.Tensor]:
    """Unit responses (N, units) float32 on the CPU for images in [0, 1] (N, 3, H, W).

    Conv and pool responses are averaged over space inside each batch, so memory stays
    bounded by ``batch_size`` whatever the number of stimuli. The model runs in eval
    mode (its previous mode is restored), in its own precision and memory format
    (:meth:`~selectivity.models.AnalysableNetwork.set_numerics`), and stops after the deepest
    requested layer.
    """
    model = network.model
    layers = list(layers)
    if not layers:
        raise ValueError("no layers requested")
    if len(set(layers)) != len(layers):
        raise ValueError(f"layers are repeated: {layers}")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if images.dim() != 4 or tuple(images.shape[1:]) != (3, model.input_size, model.input_size):
        raise ValueError(
            f"images must be (N, 3, {model.input_size}, {model.input_size}) for {model.name}, "
            f"got {tuple(images.shape)}"
        )
    deepest = max(layers, key=model.layer_index)  # also rejects unknown layer names
    kinds = {layer: model.stage(layer).kind for layer in layers}

    collected: dict[str, list[torch.Tensor]] = {layer: [] for layer in layers}
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in tqdm(
                range(0, len(images), batch_size),
                desc="grating responses",
                unit="batch",
                disable=not progress,
            ):
                batch = images[start : start + batch_size].to(network.device, torch.float32)
                run = model.run(network.prepare_inputs(batch), record_responses=layers, stop_after=deepest)
                for layer in layers:
                    collected[layer].append(_unit_responses(run.responses[layer], kinds[layer]).float().cpu())
    finally:
        model.train(was_training)
    return {layer: torch.cat(parts) for layer, parts in collected.items()}


def _unit_responses(response: torch.Tensor, kind: str) -> torch.Tensor:
    """(batch, units) fp32: spatial mean of a conv/pool map, the value itself for fc [A].

    A bf16 network's responses are averaged in fp32 (the mean of bf16 values rounded once).
    """
    response = response.float()
    if kind == "fc":
        return response.flatten(1)
    if response.dim() != 4:
        raise ValueError(
            f"a {kind} layer should give (batch, channels, H, W) maps, got {tuple(response.shape)}"
        )
    return response.mean(dim=(2, 3))


def tuning_responses(responses_flat: torch.Tensor | np.ndarray, stimuli: GratingStimuli) -> np.ndarray:
    """(N stimuli, units) responses in ``stimuli.flat_images()`` order -> (units, n_sf, n_ori, n_phase)."""
    if isinstance(responses_flat, torch.Tensor):
        responses_flat = responses_flat.detach().cpu().numpy()
    responses_flat = np.asarray(responses_flat)
    n_stimuli = int(np.prod(stimuli.grid_shape))
    if responses_flat.ndim != 2 or responses_flat.shape[0] != n_stimuli:
        raise ValueError(
            f"expected responses of shape ({n_stimuli} stimuli, units), got {responses_flat.shape}"
        )
    return np.ascontiguousarray(responses_flat.T).reshape(responses_flat.shape[1], *stimuli.grid_shape)


def phase_max_responses(responses: np.ndarray) -> np.ndarray:
    """(..., n_sf, n_ori, n_phase) -> R[..., sf, ori], the maximum over phases [A]."""
    return np.asarray(responses).max(axis=-1)


def preferred_spatial_frequency_curves(phase_max: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Preferred SF index (...) and the tuning curve at it (..., n_ori) from R[..., sf, ori] [A]."""
    phase_max = np.asarray(phase_max)
    preferred = phase_max.max(axis=-1).argmax(axis=-1)
    curves = np.take_along_axis(phase_max, preferred[..., None, None], axis=-2)[..., 0, :]
    return preferred, curves


def orientation_selectivity_index(curves: np.ndarray, orientations_deg: np.ndarray) -> np.ndarray:
    """OSI = (R_pref - R_orth) / (R_pref + R_orth), orth = pref + 90 deg; 0 for all-zero curves.

    ``curves`` (..., n_ori) are non-negative responses at ``orientations_deg``.
    """
    curves = _check_curves(curves, orientations_deg)
    orthogonal = orthogonal_orientation_indices(orientations_deg)
    preferred = curves.argmax(axis=-1)[..., None]
    r_pref = np.take_along_axis(curves, preferred, axis=-1)[..., 0]
    r_orth = np.take_along_axis(curves, orthogonal[preferred], axis=-1)[..., 0]
    total = r_pref + r_orth
    return np.divide(r_pref - r_orth, total, out=np.zeros_like(total), where=total > 0)


def global_orientation_selectivity_index(curves: np.ndarray, orientations_deg: np.ndarray) -> np.ndarray:
    """gOSI = |sum_k R_k exp(2i theta_k)| / sum_k R_k (1 - circular variance); 0 for all-zero curves."""
    curves = _check_curves(curves, orientations_deg)
    resultant = np.abs(curves @ np.exp(2j * np.deg2rad(orientations_deg)))
    total = curves.sum(axis=-1)
    index = np.divide(resultant, total, out=np.zeros_like(total), where=total > 0)
    # a curve with one non-zero point gives 1 + rounding error; the index is bounded by 1
    return np.minimum(index, 1.0)


def orientation_consistency(phase_max: np.ndarray, orientations_deg: np.ndarray) -> np.ndarray:
    """How much the preferred orientation agrees across the strongly driving SFs [D].

    From R[..., sf, ori] (maximum over phases): the SFs whose peak response (maximum over
    orientations) is above the midpoint of the largest and smallest per-SF peaks qualify
    [A]; if all peaks are equal, every SF qualifies. Each qualifying SF's preferred
    orientation becomes a unit vector at twice its angle, and the consistency is the
    length of their mean: 1 = the same orientation at every qualifying SF, 0 = evenly
    spread (e.g. two SFs preferring orthogonal orientations). NaN for all-zero units,
    which prefer nothing. (The author reports the angular range of those preferred
    orientations instead; the resultant length is less sensitive to a single outlier.)
    """
    phase_max = np.asarray(phase_max, dtype=np.float64)
    _check_curves(phase_max, orientations_deg)
    peaks = phase_max.max(axis=-1)
    midpoint = (peaks.max(axis=-1) + peaks.min(axis=-1)) / 2
    qualifying = peaks > midpoint[..., None]
    qualifying |= ~qualifying.any(axis=-1, keepdims=True)
    doubled_angles = 2 * np.deg2rad(np.asarray(orientations_deg, dtype=np.float64))[phase_max.argmax(axis=-1)]
    mean_vector = (qualifying * np.exp(1j * doubled_angles)).sum(axis=-1) / qualifying.sum(axis=-1)
    return np.where(peaks.max(axis=-1) > 0, np.abs(mean_vector), np.nan)


def orthogonal_orientation_indices(orientations_deg: np.ndarray) -> np.ndarray:
    """For each orientation, the index of the orientation 90 deg away (orientations are mod 180)."""
    orientations = np.mod(np.asarray(orientations_deg, dtype=np.float64), 180.0)
    targets = np.mod(orientations + 90.0, 180.0)
    # Circular distance on the 180-deg orientation circle, tolerant of float rounding.
    distance = np.abs((targets[:, None] - orientations[None, :] + 90.0) % 180.0 - 90.0)
    indices = distance.argmin(axis=1)
    missing = distance[np.arange(len(orientations)), indices] > 1e-6
    if missing.any():
        raise ValueError(
            f"orientation {orientations[missing][0]} deg has no orthogonal partner in {list(orientations_deg)}"
        )
    return indices


def _check_curves(curves: np.ndarray, orientations_deg: np.ndarray) -> np.ndarray:
    """float64 copy of non-negative, finite responses whose last axis matches the orientations."""
    curves = np.asarray(curves, dtype=np.float64)
    if curves.ndim < 1 or curves.shape[-1] != len(orientations_deg):
        raise ValueError(
            f"curves must end in an axis of {len(orientations_deg)} orientations, got shape {curves.shape}"
        )
    _check_responses(curves)
    return curves


def _check_responses(responses: np.ndarray) -> None:
    # The indices assume post-ReLU responses; anything else means the wrong tensor was read.
    if not np.isfinite(responses).all():
        raise ValueError(f"responses contain {int((~np.isfinite(responses)).sum())} non-finite values")
    if (responses < 0).any():
        raise ValueError(f"responses must be non-negative (post-ReLU); the smallest is {responses.min():g}")


def shuffle_stimulus_labels(
    responses: np.ndarray, seed: int | Sequence[int], independent_units: bool = True
) -> np.ndarray:
    """The null control: responses (units, n_sf, n_ori, n_phase) permuted across all stimuli.

    With ``independent_units`` each unit gets its own permutation [D]; otherwise one
    permutation is shared by all units, as when the stimulus images themselves are
    permuted [A]. ``seed`` is anything :func:`numpy.random.default_rng` accepts.
    """
    responses = np.asarray(responses)
    if responses.ndim != 4:
        raise ValueError(f"responses must be (units, n_sf, n_ori, n_phase), got shape {responses.shape}")
    rng = np.random.default_rng(seed)
    flat = responses.reshape(responses.shape[0], -1)
    if independent_units:
        order = rng.permuted(np.broadcast_to(np.arange(flat.shape[1]), flat.shape), axis=1)
        shuffled = np.take_along_axis(flat, order, axis=1)
    else:
        shuffled = flat[:, rng.permutation(flat.shape[1])]
    return shuffled.reshape(responses.shape)


def tuning_table(
    responses: np.ndarray,
    stimuli: GratingStimuli,
    layer: str,
    layer_index: int,
    threshold: float,
    stimulus_set: str,
) -> pd.DataFrame:
    """One row per unit with the columns :data:`TUNING_COLUMNS` (without identifiers).

    ``responses`` are (units, n_sf, n_ori, n_phase) for ``stimuli``. ``selective`` is
    gOSI > ``threshold``. Dead units have NaN preferred orientation, SF, period and
    consistency, OSI = gOSI = 0 and peak response 0.
    """
    if stimulus_set not in STIMULUS_SETS:
        raise ValueError(f"stimulus_set must be one of {STIMULUS_SETS}, got {stimulus_set!r}")
    responses = np.asarray(responses, dtype=np.float64)
    if responses.ndim != 4 or responses.shape[1:] != stimuli.grid_shape:
        raise ValueError(
            f"responses must be (units, *{stimuli.grid_shape}) for these stimuli, got {responses.shape}"
        )
    _check_responses(responses)
    phase_max = phase_max_responses(responses)
    preferred_sf, curves = preferred_spatial_frequency_curves(phase_max)
    orientations = stimuli.orientations_deg
    gosi = global_orientation_selectivity_index(curves, orientations)
    peak = curves.max(axis=-1)
    dead = peak == 0  # responses are non-negative (checked above), so the peak is 0 only if all are
    return pd.DataFrame(
        {
            "layer": layer,
            "layer_index": layer_index,
            "unit": np.arange(len(responses)),
            "stimulus_set": stimulus_set,
            "osi": orientation_selectivity_index(curves, orientations),
            "gosi": gosi,
            "preferred_orientation_deg": np.where(dead, np.nan, orientations[curves.argmax(axis=-1)]),
            "preferred_spatial_frequency": pd.Series(preferred_sf, dtype="Int64").mask(dead),
            "preferred_period_px": np.where(dead, np.nan, stimuli.periods_px[preferred_sf]),
            "peak_response": peak,
            "dead": dead,
            "orientation_consistency": orientation_consistency(phase_max, orientations),
            "selective": gosi > threshold,
        },
        columns=list(TUNING_COLUMNS),
    )


def analyse_tuning(
    network: LoadedNetwork,
    settings: TuningSettings,
    identifiers: dict,
    layers: Sequence[str] | None = None,
    progress: bool = False,
) -> TuningResult:
    """Tuning table (real gratings and shuffled control) and curves for ``layers`` (default: all).

    ``identifiers`` (model, dataset, label_corruption, seed, epoch, checkpoint) become the
    table's first columns. The shuffle of layer ``i`` is seeded by
    ``(settings.shuffle_seed, i)``, so every layer gets its own reproducible permutation.
    """
    model = network.model
    layers = list(model.layer_names if layers is None else layers)
    clashing = set(identifiers) & set(TUNING_COLUMNS)
    if clashing:
        raise ValueError(f"identifier columns {sorted(clashing)} clash with tuning columns")
    stimuli = grating_stimuli(
        model.input_size, settings.orientations, settings.phases, settings.spatial_frequencies
    )
    n_sf, n_ori, n_phase = stimuli.grid_shape
    log.info(
        "tuning of %s: %d gratings (%d SFs x %d orientations x %d phases), layers %s",
        model.name,
        n_sf * n_ori * n_phase,
        n_sf,
        n_ori,
        n_phase,
        ", ".join(layers),
    )
    flat_responses = measure_responses(network, stimuli.flat_images(), layers, settings.batch_size, progress)

    tables, curves = [], {}
    for layer in layers:
        layer_index = model.layer_index(layer)
        responses = tuning_responses(flat_responses.pop(layer), stimuli)
        shuffled = shuffle_stimulus_labels(
            responses, (settings.shuffle_seed, layer_index), settings.shuffle_independent_units
        )
        real = tuning_table(
            responses, stimuli, layer, layer_index, settings.selectivity_threshold, "gratings"
        )
        null = tuning_table(shuffled, stimuli, layer, layer_index, settings.selectivity_threshold, "shuffled")
        tables += [real, null]
        curves[layer] = phase_max_responses(responses).astype(np.float32)
        log.info(
            "%s: %d/%d units selective (gOSI > %.2f), %d dead; mean gOSI %.3f (shuffled %.3f)",
            layer,
            int(real["selective"].sum()),
            len(real),
            settings.selectivity_threshold,
            int(real["dead"].sum()),
            real["gosi"].mean(),
            null["gosi"].mean(),
        )
    table = pd.concat(tables, ignore_index=True)
    for position, (name, value) in enumerate(identifiers.items()):
        table.insert(position, name, value)
    curves["orientations_deg"] = stimuli.orientations_deg
    curves["periods_px"] = stimuli.periods_px
    return TuningResult(table, curves)
