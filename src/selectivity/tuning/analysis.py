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
6. The other low-level features of ``settings.features`` (docs/method.md §3.5-§3.9): more
   columns of the same table, from the same pass plus the colour set
   (:mod:`selectivity.tuning.features`), each with its own shuffled control.

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

from selectivity.networks.loaded import LoadedNetwork
from selectivity.tuning.features import (
    FEATURE_INDEX_COLUMNS,
    FEATURES,
    check_feature_settings,
    feature_columns,
    shuffled_feature_columns,
    tuning_feature_columns,
)
from selectivity.tuning.stimuli import GratingStimuli, colour_grating_stimuli, grating_stimuli

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
)


@dataclass(frozen=True)
class TuningSettings:
    """Everything that determines a tuning table besides the network.

    ``spatial_frequencies=None`` means :func:`selectivity.tuning.stimuli.spatial_frequency_count`
    of the network's input size. ``shuffle_independent_units`` chooses the null control:
    True permutes each unit's responses on its own [D]; False uses one permutation for all
    units, which is what the author's code does by permuting the stimulus images [A]. Both
    give every unit the same chance distribution.

    ``features`` (docs/method.md §3.5-§3.9) adds the indices of spatial frequency, colour
    and phase to the table; orientation is always measured. No threshold: whether a unit is
    selective is decided where a threshold is applied (summaries, claims, figures).
    """

    orientations: int = 12
    phases: int = 4
    spatial_frequencies: int | None = None
    shuffle_seed: int = 0
    batch_size: int = 256
    shuffle_independent_units: bool = True
    features: tuple[str, ...] = FEATURES

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
        if self.batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {self.batch_size}")
        if not isinstance(self.features, str):  # a config list becomes a (hashable) tuple
            object.__setattr__(self, "features", tuple(self.features))
        check_feature_settings(self.features, self.phases, self.spatial_frequencies)


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
    (:meth:`~selectivity.networks.models.AnalysableNetwork.set_numerics`), and stops after the deepest
    requested layer.
    """
    return measure_readouts(network, images, layers, batch_size, ("mean",), progress)["mean"]


#: How a layer's response map becomes one value per unit: the spatial mean [A], or the
#: value at the centre position of the map (the phase index, docs/method.md §3.8) [D].
READOUTS = ("mean", "centre")


def measure_readouts(
    network: LoadedNetwork,
    images: torch.Tensor,
    layers: Sequence[str],
    batch_size: int,
    readouts: Sequence[str] = ("mean",),
    progress: bool = False,
    description: str = "grating responses",
) -> dict[str, dict[str, torch.Tensor]]:
    """:func:`measure_responses` read out in several ways from one pass: readout -> layer -> (N, units)."""
    unknown = [readout for readout in readouts if readout not in READOUTS]
    if unknown or not readouts:
        raise ValueError(f"readouts must be some of {READOUTS}, got {list(readouts)}")
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

    read = {"mean": _unit_responses, "centre": _centre_responses}
    collected = {readout: {layer: [] for layer in layers} for readout in readouts}
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in tqdm(
                range(0, len(images), batch_size),
                desc=description,
                unit="batch",
                disable=not progress,
            ):
                batch = images[start : start + batch_size].to(network.device, torch.float32)
                run = model.run(network.prepare_inputs(batch), record_responses=layers, stop_after=deepest)
                for readout in readouts:
                    for layer in layers:
                        values = read[readout](run.responses[layer], kinds[layer])
                        collected[readout][layer].append(values.float().cpu())
    finally:
        model.train(was_training)
    return {
        readout: {layer: torch.cat(parts) for layer, parts in by_layer.items()}
        for readout, by_layer in collected.items()
    }


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


def _centre_responses(response: torch.Tensor, kind: str) -> torch.Tensor:
    """(batch, units): the value at the centre position (H//2, W//2) of a square conv/pool map,
    the value itself for fc; NaN for maps that are not square (token sequences, read as
    (tokens, 1) maps, have no centre position)."""
    if kind == "fc":
        return response.flatten(1)
    if response.dim() != 4:
        raise ValueError(
            f"a {kind} layer should give (batch, channels, H, W) maps, got {tuple(response.shape)}"
        )
    height, width = response.shape[-2:]
    if height != width:
        return torch.full(response.shape[:2], float("nan"), dtype=response.dtype, device=response.device)
    return response[:, :, height // 2, width // 2]


def tuning_responses(responses_flat: torch.Tensor | np.ndarray, stimuli: GratingStimuli) -> np.ndarray:
    """(N stimuli, units) responses in ``stimuli.flat_images()`` order -> (units, n_sf, n_ori, n_phase).

    Works for any stimulus set with ``grid_shape`` and ``flat_images``: the colour set gives
    (units, n_colour, n_sf, n_ori, n_phase).
    """
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
    stimulus_set: str,
) -> pd.DataFrame:
    """One row per unit with the columns :data:`TUNING_COLUMNS` (without identifiers).

    ``responses`` are (units, n_sf, n_ori, n_phase) for ``stimuli``. Dead units have NaN
    preferred orientation, SF, period and consistency, OSI = gOSI = 0 and peak response 0.
    Whether a unit counts as selective (gOSI above ``tuning.selectivity_threshold``) is
    decided where it is used (:func:`selectivity.tuning.summaries.selectivity_summary`,
    the figures), so a threshold change reruns no tuning job.
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
    The columns of ``settings.features`` follow :data:`TUNING_COLUMNS`; the colour set is
    shown after the gratings, in batches of its own, so the grating responses are the same
    whichever features are measured.
    """
    model = network.model
    layers = list(model.layer_names if layers is None else layers)
    features = settings.features
    clashing = set(identifiers) & (set(TUNING_COLUMNS) | set(tuning_feature_columns(FEATURES)))
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
    readouts = ("mean", "centre") if "phase" in features else ("mean",)
    grating_readouts = measure_readouts(
        network, stimuli.flat_images(), layers, settings.batch_size, readouts, progress
    )
    flat_responses, flat_centre = grating_readouts["mean"], grating_readouts.get("centre", {})
    colour, flat_colour = None, {}
    if "colour" in features:
        # Every network built here takes RGB; one that declares another channel count has no colour.
        channels = getattr(model, "input_channels", 3)
        if channels == 3:
            colour = colour_grating_stimuli(stimuli)
            log.info("colour set: %d gratings (%s)", len(colour.flat_images()), ", ".join(colour.colours))
            flat_colour = measure_readouts(
                network,
                colour.flat_images(),
                layers,
                settings.batch_size,
                ("mean",),
                progress,
                "colour grating responses",
            )["mean"]
        else:
            log.warning(
                "%s takes %d input channel(s): no colour set, colour columns empty", model.name, channels
            )

    tables, curves = [], {}
    for layer in layers:
        layer_index = model.layer_index(layer)
        responses = tuning_responses(flat_responses.pop(layer), stimuli)
        shuffled = shuffle_stimulus_labels(
            responses, (settings.shuffle_seed, layer_index), settings.shuffle_independent_units
        )
        real = tuning_table(responses, stimuli, layer, layer_index, "gratings")
        null = tuning_table(shuffled, stimuli, layer, layer_index, "shuffled")
        feature_responses = {
            "grating_responses": responses,
            "phases_deg": stimuli.phases_deg,
            "centre_responses": (
                tuning_responses(flat_centre.pop(layer), stimuli) if layer in flat_centre else None
            ),
            "colour_responses": (
                tuning_responses(flat_colour.pop(layer), colour) if layer in flat_colour else None
            ),
        }
        real_features = feature_columns(features, **feature_responses)
        null_features = shuffled_feature_columns(
            features,
            seed=settings.shuffle_seed,
            layer_index=layer_index,
            independent_units=settings.shuffle_independent_units,
            **feature_responses,
        )
        for column in real_features:  # appended after TUNING_COLUMNS, which stay as they were
            real[column], null[column] = real_features[column], null_features[column]
        tables += [real, null]
        curves[layer] = phase_max_responses(responses).astype(np.float32)
        log.info(
            "%s: %d units, %d dead; mean gOSI %.3f (shuffled %.3f)",
            layer,
            len(real),
            int(real["dead"].sum()),
            real["gosi"].mean(),
            null["gosi"].mean(),
        )
        for feature in (feature for feature in features if feature != "orientation"):
            column = FEATURE_INDEX_COLUMNS[feature]
            log.info(
                "%s: mean %s %.3f (shuffled %.3f) over %d units",
                layer,
                column,
                real[column].mean(),
                null[column].mean(),
                len(real),
            )
    table = pd.concat(tables, ignore_index=True)
    for position, (name, value) in enumerate(identifiers.items()):
        table.insert(position, name, value)
    curves["orientations_deg"] = stimuli.orientations_deg
    curves["periods_px"] = stimuli.periods_px
    return TuningResult(table, curves)


#: Arrays of a curves file that label the axes, shared by every checkpoint.
CURVE_AXES = ("orientations_deg", "periods_px")


def checkpoint_curves(checkpoint_name: str, curves: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """One checkpoint's curves (:attr:`TuningResult.curves`) keyed for a network's curves file:
    ``"<checkpoint>/<layer>"`` per layer, plus the axis arrays under their own names."""
    return {
        (key if key in CURVE_AXES else f"{checkpoint_name}/{key}"): value for key, value in curves.items()
    }


def curves_of_checkpoint(arrays: dict[str, np.ndarray], checkpoint_name: str) -> dict[str, np.ndarray]:
    """The layer -> curves of one checkpoint from a network's curves file (see :func:`checkpoint_curves`)."""
    prefix = f"{checkpoint_name}/"
    layers = {key[len(prefix) :]: value for key, value in arrays.items() if key.startswith(prefix)}
    if not layers:
        checkpoints = sorted({key.split("/")[0] for key in arrays if "/" in key})
        raise ValueError(f"the curves file has no checkpoint {checkpoint_name!r}; it has {checkpoints}")
    return layers


def rows_of_checkpoint(table: pd.DataFrame, checkpoint_name: str) -> pd.DataFrame:
    """A network's tuning rows of one checkpoint: ``epoch<E>``, ``best``, or a given network's
    ``weights`` (whose rows say checkpoint "published") or ``untrained``."""
    if checkpoint_name == "best":
        rows = table[table["checkpoint"] == "best"]
    elif checkpoint_name.startswith("epoch") and checkpoint_name[5:].isdigit():
        rows = table[(table["checkpoint"] == "epoch") & (table["epoch"] == int(checkpoint_name[5:]))]
    elif checkpoint_name == "untrained":  # a given network's untrained comparison
        rows = table[table["checkpoint"] == "untrained"]
    else:
        rows = table[table["checkpoint"] == "published"]
    if rows.empty:
        raise ValueError(f"the tuning table has no rows of checkpoint {checkpoint_name!r}")
    return rows
