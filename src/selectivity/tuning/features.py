"""Per-unit indices of low-level features besides orientation (docs/method.md §3.5-§3.9).

Every index is a pure function of a unit's responses, so that synthetic units with known
tuning can be checked against it analytically:

- :func:`spatial_frequency_selectivity_index`: the sparseness of the SF curve at the
  preferred orientation (0 = flat, 1 = one SF only);
- :func:`colour_selectivity_index` and :func:`preferred_colour`: the best isoluminant
  grating's response against the achromatic one at equal RGB modulation (-1 = luminance
  only, +1 = colour only);
- :func:`phase_modulation_index`: F1/F0 over the phases at the preferred orientation and SF
  (0 = phase-invariant, complex-like; above 1 simple-like).

:func:`feature_columns` turns one layer's responses into the tuning table's feature columns;
:func:`shuffled_feature_columns` does the same after each feature's own permutation of the
responses across stimuli (the null control of §3.9). Nothing here imports torch.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

#: The low-level features, in the order their columns appear in the tuning table.
FEATURES = ("orientation", "spatial_frequency", "colour", "phase")
#: Columns each feature adds to the tuning table; orientation's are the base columns. Indices
#: only: whether a unit counts as selective depends on a threshold, which the tables that use it
#: (summaries, claims, figures) apply themselves, so a threshold change reruns no tuning job.
FEATURE_COLUMNS: dict[str, tuple[str, ...]] = {
    "orientation": (),
    "spatial_frequency": ("spatial_frequency_selectivity",),
    "colour": ("colour_selectivity", "preferred_colour"),
    "phase": ("phase_modulation",),
}
#: Per feature, the column that ranks units, and the name of the flag "index above threshold"
#: where a summary or figure computes it (:func:`selective_units`).
FEATURE_INDEX_COLUMNS = {
    "orientation": "gosi",
    "spatial_frequency": "spatial_frequency_selectivity",
    "colour": "colour_selectivity",
    "phase": "phase_modulation",
}
FEATURE_SELECTIVE_COLUMNS = {
    "orientation": "selective",
    "spatial_frequency": "spatial_frequency_selective",
    "colour": "colour_selective",
    "phase": "phase_sensitive",
}
#: Default thresholds for "selective" (docs/method.md §3.6-§3.8); orientation's is 0.33 (§3.2).
DEFAULT_THRESHOLDS = {"spatial_frequency": 0.5, "colour": 0.33, "phase": 1.0}
#: The setting (TuningSettings field, config key under ``tuning``) holding each threshold.
THRESHOLD_SETTINGS = {
    "spatial_frequency": "spatial_frequency_selectivity_threshold",
    "colour": "colour_selectivity_threshold",
    "phase": "phase_modulation_threshold",
}
#: Each threshold's allowed range [low, high): the index's range without its maximum.
THRESHOLD_RANGES = {"spatial_frequency": (0.0, 1.0), "colour": (-1.0, 1.0), "phase": (0.0, 2.0)}
#: The third entry of each feature's shuffle seed (shuffle_seed, layer_index, stream). Never 0:
#: numpy's SeedSequence ignores trailing zeros, so (seed, layer, 0) would be gOSI's (seed, layer).
SHUFFLE_STREAMS = {"spatial_frequency": 1, "colour": 2, "phase": 3}
#: Fewest phases for F1: with N evenly spaced phases harmonic h lands in bin h mod N, so from
#: N = 4 on, the fundamental of a half-wave rectified sinusoid (harmonics 0, 1, 2, 4, 6, ...)
#: is measured without aliasing (docs/method.md §3.8).
MIN_PHASES = 4
#: The colour directions of the colour set, in order (selectivity.tuning.stimuli.COLOUR_DIRECTIONS).
COLOURS = ("achromatic", "red_green", "blue_yellow")


def tuning_feature_columns(features: Sequence[str]) -> list[str]:
    """The feature columns a tuning table with ``features`` has, in table order."""
    return [column for feature in FEATURES if feature in features for column in FEATURE_COLUMNS[feature]]


def check_feature_settings(
    features: Sequence[str],
    phases: int,
    spatial_frequencies: int | None,
    thresholds: Mapping[str, float] | None = None,
) -> None:
    """ValueError naming the setting when the features cannot be measured as asked.

    ``thresholds`` (checked when given) maps each feature besides orientation to its threshold;
    messages start with the setting's name (``features``, ``phases``,
    ``colour_selectivity_threshold``, ...).
    """
    if isinstance(features, str) or not features:
        raise ValueError(f"features must be a non-empty list of {list(FEATURES)}, got {features!r}")
    unknown = [feature for feature in features if feature not in FEATURES]
    if unknown:
        raise ValueError(f"features: {unknown} are not features; choose from {list(FEATURES)}")
    if len(set(features)) != len(features):
        raise ValueError(f"features: {list(features)} lists a feature twice")
    if "orientation" not in features:
        raise ValueError(
            f"features: {list(features)} lacks orientation; the tuning table, the claims and every "
            "ablation rest on gOSI, so orientation is always measured"
        )
    if "phase" in features and phases < MIN_PHASES:
        raise ValueError(
            f"phases: {phases} is too few for the phase feature; F1/F0 needs at least {MIN_PHASES} "
            "evenly spaced phases (with fewer, F1 has no bin of its own or takes in the second harmonic); "
            "add phases or drop phase from features"
        )
    if "spatial_frequency" in features and spatial_frequencies is not None and spatial_frequencies < 2:
        raise ValueError(
            f"spatial_frequencies: {spatial_frequencies} leaves no SF axis for the spatial_frequency "
            "feature; use at least 2 or drop spatial_frequency from features"
        )
    for feature, (low, high) in THRESHOLD_RANGES.items() if thresholds is not None else ():
        value = thresholds[feature]
        if not low <= value < high:
            raise ValueError(f"{THRESHOLD_SETTINGS[feature]}: {value!r} must lie in [{low:g}, {high:g})")


# --- the indices ------------------------------------------------------------------------------


def preferred_grating(phase_max: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(s*, o*) per unit from R[units, sf, ori]: the first maximum in (SF, orientation) order.

    The same choice as docs/method.md §3.2 (s* = argmax_s max_o R, then o* = argmax_o R[s*]):
    the first maximum of the flattened grid is at the lowest SF, then the smallest orientation.
    """
    phase_max = np.asarray(phase_max)
    flat = phase_max.reshape(len(phase_max), -1).argmax(axis=1)
    return np.unravel_index(flat, phase_max.shape[1:])


def spatial_frequency_curves(phase_max: np.ndarray) -> np.ndarray:
    """F[units, sf] = R[sf, o*]: each unit's SF curve at its preferred orientation."""
    phase_max = np.asarray(phase_max)
    _, preferred_orientation = preferred_grating(phase_max)
    return np.take_along_axis(phase_max, preferred_orientation[:, None, None], axis=2)[:, :, 0]


def spatial_frequency_selectivity_index(curves: np.ndarray) -> np.ndarray:
    """Sparseness over the last axis: (1 - (sum F)^2 / (N sum F^2)) / (1 - 1/N).

    1 when one SF alone drives the unit, 0 for a flat curve, (N - k)/(N - 1) for k equal
    responses and N - k zeros. All-zero curves give 0 (as gOSI does, §3.2); a single SF
    (N = 1) has no axis and gives NaN.
    """
    curves = _non_negative(curves)
    n = curves.shape[-1]
    if n < 2:
        return np.full(curves.shape[:-1], np.nan)
    total, energy = curves.sum(axis=-1), (curves**2).sum(axis=-1)
    ratio = np.divide(total**2, n * energy, out=np.ones_like(total), where=energy > 0)
    return np.clip((1 - ratio) / (1 - 1 / n), 0.0, 1.0)  # the clip only removes rounding


def phase_modulation_index(responses: np.ndarray, phases_deg: np.ndarray) -> np.ndarray:
    """F1/F0 over the last axis: responses at ``phases_deg`` (evenly spaced over 360 deg).

    F0 = mean_p a_p; F1 = 2 |mean_p a_p exp(-i phi_p)|, the amplitude of the fundamental, so
    b + A cos(phi - psi) gives exactly A/b. The ratio lies in [0, 2] for non-negative responses
    (capped at 2 against rounding); NaN where F0 = 0 or a response is NaN.
    """
    responses = np.asarray(responses, dtype=np.float64)
    phases_deg = np.asarray(phases_deg, dtype=np.float64)
    n = len(phases_deg)
    if n < MIN_PHASES:
        raise ValueError(f"F1/F0 needs at least {MIN_PHASES} phases, got {n}")
    if responses.shape[-1] != n:
        raise ValueError(f"responses must end in an axis of {n} phases, got shape {responses.shape}")
    steps = np.diff(np.append(phases_deg, phases_deg[0] + 360.0))
    if not np.allclose(steps, 360.0 / n):
        raise ValueError(f"phases must be evenly spaced over 360 deg, got {list(phases_deg)}")
    finite = responses[np.isfinite(responses)]
    if (finite < 0).any():
        raise ValueError(f"responses must be non-negative (post-ReLU); the smallest is {finite.min():g}")
    f0 = responses.mean(axis=-1)
    f1 = 2 * np.abs(responses @ np.exp(-1j * np.deg2rad(phases_deg))) / n
    with np.errstate(invalid="ignore"):
        ratio = np.divide(f1, f0, out=np.full_like(f0, np.nan), where=f0 > 0)
    return np.minimum(ratio, 2.0)


def colour_response_maxima(colour_responses: np.ndarray) -> np.ndarray:
    """R[units, colour]: each unit's largest response to each colour direction's gratings.

    ``colour_responses`` are (units, n_colour, n_sf, n_ori, n_phase) for the colour set.
    """
    colour_responses = _non_negative(colour_responses)
    if colour_responses.ndim != 5:
        raise ValueError(
            f"colour responses must be (units, colour, sf, orientation, phase), got {colour_responses.shape}"
        )
    return colour_responses.reshape(*colour_responses.shape[:2], -1).max(axis=-1)


def colour_selectivity_index(maxima: np.ndarray, colours: Sequence[str] = COLOURS) -> np.ndarray:
    """(R_C - R_A) / (R_C + R_A) with R_C = max(R_red_green, R_blue_yellow); NaN if both are 0.

    ``maxima`` are :func:`colour_response_maxima` (units, colour) in the order of ``colours``.
    +1: only isoluminant gratings drive the unit; -1: only the achromatic one; 0: equally.
    """
    maxima = _colour_maxima(maxima, colours)
    achromatic = maxima[:, colours.index("achromatic")]
    chromatic = maxima[:, [colours.index("red_green"), colours.index("blue_yellow")]].max(axis=1)
    total = achromatic + chromatic
    return np.divide(chromatic - achromatic, total, out=np.full_like(total, np.nan), where=total > 0)


def preferred_colour(maxima: np.ndarray, colours: Sequence[str] = COLOURS) -> np.ndarray:
    """The colour direction with the largest response (object array); None if all are 0.

    Ties go to the first direction in ``colours`` (achromatic first), as ``numpy.argmax``.
    """
    maxima = _colour_maxima(maxima, colours)
    names = np.asarray(colours, dtype=object)[maxima.argmax(axis=1)]
    names[maxima.max(axis=1) <= 0] = None
    return names


def _colour_maxima(maxima: np.ndarray, colours: Sequence[str]) -> np.ndarray:
    maxima = _non_negative(maxima)
    colours = list(colours)
    missing = sorted(set(COLOURS) - set(colours))
    if missing or maxima.ndim != 2 or maxima.shape[1] != len(colours):
        raise ValueError(
            f"colour maxima must be (units, {len(colours)}) for colours {colours} including {list(COLOURS)}, "
            f"got shape {maxima.shape}"
        )
    return maxima


def _non_negative(responses: np.ndarray) -> np.ndarray:
    # The indices assume post-ReLU rates; anything else means the wrong tensor was read.
    responses = np.asarray(responses, dtype=np.float64)
    if not np.isfinite(responses).all():
        raise ValueError(f"responses contain {int((~np.isfinite(responses)).sum())} non-finite values")
    if (responses < 0).any():
        raise ValueError(f"responses must be non-negative (post-ReLU); the smallest is {responses.min():g}")
    return responses


# --- one layer's feature columns ----------------------------------------------------------------


def feature_columns(
    features: Sequence[str],
    grating_responses: np.ndarray,
    phases_deg: np.ndarray,
    centre_responses: np.ndarray | None = None,
    colour_responses: np.ndarray | None = None,
    colours: Sequence[str] = COLOURS,
) -> dict[str, np.ndarray]:
    """The columns :func:`tuning_feature_columns` of ``features``: column -> one value per unit.

    ``grating_responses`` are a layer's spatial-mean responses (units, n_sf, n_ori, n_phase)
    to the achromatic gratings; ``centre_responses`` the same stimuli read at the centre
    position of each map (needed for phase); ``colour_responses`` (units, n_colour, n_sf_c,
    n_ori_c, n_phase) to the colour set, or None for a network without RGB inputs, whose colour
    columns are then empty.
    """
    grating_responses = _non_negative(grating_responses)
    if grating_responses.ndim != 4:
        raise ValueError(
            f"grating responses must be (units, sf, orientation, phase), got {grating_responses.shape}"
        )
    units = len(grating_responses)
    phase_max = grating_responses.max(axis=-1)
    columns: dict[str, np.ndarray] = {}
    if "spatial_frequency" in features:
        index = spatial_frequency_selectivity_index(spatial_frequency_curves(phase_max))
        columns["spatial_frequency_selectivity"] = index
    if "colour" in features:
        if colour_responses is None:
            index, preferred = np.full(units, np.nan), np.full(units, None, dtype=object)
        else:
            if len(colour_responses) != units:
                raise ValueError(f"colour responses hold {len(colour_responses)} units, the gratings {units}")
            maxima = colour_response_maxima(colour_responses)
            index, preferred = colour_selectivity_index(maxima, colours), preferred_colour(maxima, colours)
        columns["colour_selectivity"] = index
        columns["preferred_colour"] = preferred
    if "phase" in features:
        if centre_responses is None or np.shape(centre_responses) != grating_responses.shape:
            raise ValueError(
                f"the phase feature needs centre responses of shape {grating_responses.shape}, "
                f"got {None if centre_responses is None else np.shape(centre_responses)}"
            )
        sf, orientation = preferred_grating(phase_max)
        at_preferred = np.asarray(centre_responses, dtype=np.float64)[np.arange(units), sf, orientation]
        index = phase_modulation_index(at_preferred, phases_deg)
        columns["phase_modulation"] = index
    return {column: columns[column] for column in tuning_feature_columns(features)}


def shuffled_feature_columns(
    features: Sequence[str],
    grating_responses: np.ndarray,
    phases_deg: np.ndarray,
    seed: int,
    layer_index: int,
    independent_units: bool = True,
    centre_responses: np.ndarray | None = None,
    colour_responses: np.ndarray | None = None,
    colours: Sequence[str] = COLOURS,
) -> dict[str, np.ndarray]:
    """:func:`feature_columns` of the null control: each feature's responses permuted across stimuli.

    Each feature draws its own permutations from ``numpy.random.default_rng((seed, layer_index,
    SHUFFLE_STREAMS[feature]))``, so adding or dropping a feature changes no other feature's
    control, and gOSI's (seeded by (seed, layer_index)) is untouched. Phase permutes the
    spatial-mean and the centre responses together, so that both still belong to one stimulus.
    """
    responses = {
        "grating_responses": grating_responses,
        "centre_responses": centre_responses,
        "colour_responses": colour_responses,
    }
    columns: dict[str, np.ndarray] = {}
    for feature in FEATURES:
        if feature == "orientation" or feature not in features:
            continue
        rng = np.random.default_rng((seed, layer_index, SHUFFLE_STREAMS[feature]))
        shuffled = dict(responses)
        if feature == "spatial_frequency":
            (shuffled["grating_responses"],) = permute_stimuli(grating_responses, rng, independent_units)
        elif feature == "phase":
            shuffled["grating_responses"], shuffled["centre_responses"] = permute_stimuli(
                [grating_responses, centre_responses], rng, independent_units
            )
        elif colour_responses is not None:  # colour; without RGB inputs its columns stay empty
            (shuffled["colour_responses"],) = permute_stimuli(colour_responses, rng, independent_units)
        columns.update(feature_columns((feature,), phases_deg=phases_deg, colours=colours, **shuffled))
    return {column: columns[column] for column in tuning_feature_columns(features)}


def permute_stimuli(
    arrays: np.ndarray | Sequence[np.ndarray], rng: np.random.Generator, independent_units: bool = True
) -> list[np.ndarray]:
    """The same permutation of the stimuli (every axis after the first) applied to each array.

    With ``independent_units`` each unit (first axis) gets its own permutation [D], otherwise
    all units share one, as in ``selectivity.tuning.analysis.shuffle_stimulus_labels``.
    """
    arrays = [np.asarray(arrays)] if isinstance(arrays, np.ndarray) else [np.asarray(a) for a in arrays]
    shape = arrays[0].shape
    if any(a.shape != shape for a in arrays):
        raise ValueError(f"arrays to permute together must share a shape, got {[a.shape for a in arrays]}")
    units, stimuli = shape[0], int(np.prod(shape[1:]))
    if independent_units:
        order = rng.permuted(np.broadcast_to(np.arange(stimuli), (units, stimuli)), axis=1)
    else:
        order = np.broadcast_to(rng.permutation(stimuli), (units, stimuli))
    return [np.take_along_axis(a.reshape(units, stimuli), order, axis=1).reshape(shape) for a in arrays]


def selective_units(index: np.ndarray, threshold: float) -> np.ndarray:
    """Whether each unit is selective for a feature: its index above the feature's threshold
    (NaN, an index that is undefined for the unit, is never selective)."""
    with np.errstate(invalid="ignore"):
        return np.asarray(index, dtype=np.float64) > threshold


#: Features whose index is 0 by convention for a dead unit (no response to any grating) rather
#: than undefined: gOSI (§3.2) and SF selectivity (§3.6). Colour (§3.7) and F1/F0 (§3.8) leave an
#: undefined index empty instead, and a dead unit may still have a colour index.
ZERO_FOR_DEAD_UNITS = ("orientation", "spatial_frequency")


def measured_index(feature: str, index: np.ndarray, dead: np.ndarray) -> np.ndarray:
    """A feature's index where it is a measurement of the unit, NaN elsewhere.

    NaN where the index is undefined, and for gOSI and SF selectivity also where the unit is dead
    (their 0 there is a convention, not a measurement). What the layer means of responsive units
    (docs/method.md §6.4) average and what the matched control of §4.2 matches on.
    """
    if feature not in FEATURES:
        raise ValueError(f"feature must be one of {FEATURES}, got {feature!r}")
    index = np.asarray(index, dtype=np.float64)
    if feature in ZERO_FOR_DEAD_UNITS:
        return np.where(np.asarray(dead, dtype=bool), np.nan, index)
    return index.copy()


#: The features whose index ranks units in causal tests of their own (docs/method.md §4.2, §5.3):
#: all but orientation, whose tests are the paper's (claims C4, C5).
RANKED_FEATURES = tuple(feature for feature in FEATURES if feature != "orientation")


def ranked_features(features: Sequence[str]) -> list[str]:
    """The features of ``features`` (tuning.features) that get causal tests of their own, in table order."""
    return [feature for feature in RANKED_FEATURES if feature in features]
