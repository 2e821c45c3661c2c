"""Spatial-frequency, colour and phase indices (docs/method.md §3.5-§3.9): analytic values on
synthetic units, hand-built networks with known tuning, the shuffled controls, and the columns
of the tuning table recomputed independently from a network's raw responses."""

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from selectivity.networks.loaded import LoadedNetwork
from selectivity.tuning.features import (
    COLOURS,
    DEFAULT_THRESHOLDS,
    FEATURE_INDEX_COLUMNS,
    FEATURES,
    SHUFFLE_STREAMS,
    check_feature_settings,
    colour_response_maxima,
    colour_selectivity_index,
    feature_columns,
    permute_stimuli,
    phase_modulation_index,
    preferred_colour,
    preferred_grating,
    selective_units,
    shuffled_feature_columns,
    spatial_frequency_curves,
    spatial_frequency_selectivity_index,
    tuning_feature_columns,
)
from selectivity.networks.models import AnalysableNetwork, Stage, build_model
from selectivity.tuning.stimuli import grating_stimuli, grating_wavenumbers
from selectivity.tuning.analysis import TUNING_COLUMNS, TuningSettings, analyse_tuning, measure_readouts

PHASES_4 = np.array([0.0, 90.0, 180.0, 270.0])
RNG_SEED = 20250


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# --- spatial-frequency selectivity (§3.6) ----------------------------------------------------------


@pytest.mark.parametrize("n, k", [(9, 1), (9, 2), (9, 5), (9, 9), (4, 2), (57, 3)])
def test_k_equal_responses_among_n_sfs_give_n_minus_k_over_n_minus_1(n, k):
    curve = np.zeros(n)
    curve[np.random.default_rng(k).choice(n, k, replace=False)] = 2.5
    assert spatial_frequency_selectivity_index(curve) == pytest.approx((n - k) / (n - 1), abs=1e-12)


def test_spatial_frequency_selectivity_known_values():
    one_and_half = np.zeros(9)
    one_and_half[[2, 6]] = [1.0, 0.5]  # (sum)^2 / (N sum^2) = 2.25 / (9 * 1.25) = 0.2 -> 0.8 / (8/9)
    assert spatial_frequency_selectivity_index(one_and_half) == pytest.approx(0.9, abs=1e-12)
    assert spatial_frequency_selectivity_index(np.zeros(9)) == 0  # silent: 0, as gOSI
    assert np.isnan(spatial_frequency_selectivity_index(np.ones(1)))  # one SF: no axis
    curves = np.random.default_rng(0).exponential(size=(5, 9))
    np.testing.assert_allclose(  # scale-free, computed along the last axis
        spatial_frequency_selectivity_index(7 * curves),
        [spatial_frequency_selectivity_index(c) for c in curves],
        rtol=1e-12,
    )
    with pytest.raises(ValueError, match="non-negative"):
        spatial_frequency_selectivity_index(-np.ones(9))


def test_sf_curve_is_taken_at_the_orientation_of_the_peak_first_maximum_on_ties():
    phase_max = np.zeros((2, 3, 4))
    phase_max[0, 1, 2] = 5.0
    phase_max[0, :, 2] += 1.0  # SF curve at orientation 2: [1, 6, 1]
    phase_max[0, 0, 0] = 3.0  # a weaker response at another orientation does not enter
    phase_max[1] = 1.0  # flat: ties go to SF 0, orientation 0
    sf, orientation = preferred_grating(phase_max)
    np.testing.assert_array_equal(sf, [1, 0])
    np.testing.assert_array_equal(orientation, [2, 0])
    np.testing.assert_array_equal(spatial_frequency_curves(phase_max), [[1, 6, 1], [1, 1, 1]])


# --- phase modulation, F1/F0 (§3.8) -----------------------------------------------------------------


@pytest.mark.parametrize("n_phases", [4, 5, 8, 12])
@pytest.mark.parametrize("offset_deg", [0.0, 17.0, 45.0, 200.0])
def test_f1_over_f0_of_a_sinusoid_plus_baseline_is_amplitude_over_baseline(n_phases, offset_deg):
    phases = np.arange(n_phases) * 360.0 / n_phases
    responses = 2.0 + 1.5 * np.cos(np.deg2rad(phases - offset_deg))
    assert phase_modulation_index(responses, phases) == pytest.approx(1.5 / 2.0, abs=1e-12)


def test_half_wave_rectified_linear_unit_with_four_phases():
    # [cos psi, cos(90 - psi), ...]^+ : F1 = 1/2 exactly for every psi (harmonics 3, 5, .. are absent);
    # F0 aliases the 4th harmonic, so the ratio runs from sqrt(2) (psi = 45) to 2 (psi = 0), pi/2 between.
    def rectified(offset_deg, phases=PHASES_4):
        return np.maximum(np.cos(np.deg2rad(phases - offset_deg)), 0)

    assert phase_modulation_index(rectified(0.0), PHASES_4) == pytest.approx(2.0)
    assert phase_modulation_index(rectified(45.0), PHASES_4) == pytest.approx(np.sqrt(2))
    offsets = np.linspace(0, 360, 73)
    ratios = np.array([phase_modulation_index(rectified(o), PHASES_4) for o in offsets])
    assert ratios.min() == pytest.approx(np.sqrt(2)) and ratios.max() == pytest.approx(2.0)
    f1 = [2 * abs(np.sum(rectified(o) * np.exp(-1j * np.deg2rad(PHASES_4)))) / 4 for o in offsets]
    np.testing.assert_allclose(f1, 0.5, atol=1e-12)
    # with 8 phases F0 aliases only the 8th, 16th, .. harmonics: 1.53 .. 4 (sqrt 2 - 1) = 1.66, around pi/2
    phases_8 = np.arange(8) * 45.0
    ratios_8 = np.array([phase_modulation_index(rectified(o, phases_8), phases_8) for o in offsets])
    assert ratios_8.max() == pytest.approx(4 * (np.sqrt(2) - 1)) and ratios_8.min() > 1.53


def test_energy_unit_constant_and_silent_responses():
    phases = PHASES_4
    energy = np.cos(np.deg2rad(phases - 30)) ** 2 + np.sin(np.deg2rad(phases - 30)) ** 2
    assert phase_modulation_index(energy, phases) == pytest.approx(0, abs=1e-12)
    assert phase_modulation_index(np.full(4, 3.0), phases) == pytest.approx(0, abs=1e-12)
    assert phase_modulation_index(np.array([1.0, 0, 0, 0]), phases) == 2.0  # one phase only: the maximum
    assert np.isnan(phase_modulation_index(np.zeros(4), phases))  # F0 = 0: undefined
    assert np.isnan(phase_modulation_index(np.array([1.0, np.nan, 0, 0]), phases))  # no centre readout


def test_phase_modulation_rejects_too_few_or_uneven_phases():
    with pytest.raises(ValueError, match="at least 4 phases, got 2"):
        phase_modulation_index(np.ones(2), [0.0, 180.0])
    with pytest.raises(ValueError, match="evenly spaced"):
        phase_modulation_index(np.ones(4), [0.0, 90.0, 180.0, 300.0])
    with pytest.raises(ValueError, match="non-negative"):
        phase_modulation_index(np.array([1.0, -1.0, 0, 0]), PHASES_4)


# --- colour selectivity (§3.7) ----------------------------------------------------------------------

COLOUR_CASES = [
    # R_achromatic, R_red_green, R_blue_yellow -> index, preferred colour
    ((0.0, 1.0, 0.0), 1.0, "red_green"),
    ((0.0, 0.0, 2.0), 1.0, "blue_yellow"),
    ((3.0, 0.0, 0.0), -1.0, "achromatic"),
    ((1.0, 3.0, 0.5), 0.5, "red_green"),  # (3 - 1) / (3 + 1)
    ((2.0, 0.5, 1.0), -1 / 3, "achromatic"),  # (1 - 2) / (1 + 2)
    ((1.0, 1.0, 1.0), 0.0, "achromatic"),  # ties go to the first direction
    ((0.0, 0.0, 0.0), np.nan, None),  # silent to the whole colour set
]


def test_colour_index_and_preferred_colour_known_values():
    maxima = np.array([m for m, _, _ in COLOUR_CASES])
    np.testing.assert_allclose(colour_selectivity_index(maxima), [i for _, i, _ in COLOUR_CASES], atol=1e-12)
    assert list(preferred_colour(maxima)) == [c for _, _, c in COLOUR_CASES]
    reordered = ("blue_yellow", "achromatic", "red_green")  # the colours argument names the columns
    np.testing.assert_allclose(
        colour_selectivity_index(maxima[:, [2, 0, 1]], reordered),
        colour_selectivity_index(maxima),
        atol=1e-12,
    )
    with pytest.raises(ValueError, match="including"):
        colour_selectivity_index(maxima[:, :2], COLOURS[:2])


def test_colour_maxima_are_over_sf_orientation_and_phase_of_each_direction():
    responses = np.zeros((2, 3, 4, 6, 4))
    responses[0, 1, 3, 5, 2] = 4.0
    responses[0, 0, 0, 0, 0] = 1.0
    responses[1, 2] = 0.25
    np.testing.assert_array_equal(colour_response_maxima(responses), [[1.0, 4.0, 0.0], [0.0, 0.0, 0.25]])
    with pytest.raises(ValueError, match="colour, sf, orientation, phase"):
        colour_response_maxima(responses[:, 0])


# --- settings --------------------------------------------------------------------------------------


def test_settings_take_the_feature_list_and_no_threshold():
    settings = TuningSettings(features=["orientation", "colour"])
    assert settings.features == ("orientation", "colour")
    with pytest.raises(TypeError):  # thresholds are applied where "selective" is used, not in tuning
        TuningSettings(colour_selectivity_threshold=-0.2)
    assert TuningSettings().features == FEATURES
    assert TuningSettings(phases=2, features=("orientation", "colour")).phases == 2  # no phase, no limit


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"features": ("colour",)}, r"features: \['colour'\] lacks orientation"),
        ({"features": ("orientation", "texture")}, r"features: \['texture'\] are not features"),
        ({"features": ("orientation", "colour", "colour")}, "lists a feature twice"),
        ({"features": ()}, "non-empty list"),
        ({"phases": 2}, "phases: 2 is too few for the phase feature"),
        ({"spatial_frequencies": 1}, "spatial_frequencies: 1 leaves no SF axis"),
    ],
)
def test_settings_reject_features_that_cannot_be_measured(settings, message):
    with pytest.raises(ValueError, match=message):
        TuningSettings(**settings)


@pytest.mark.parametrize(
    "thresholds, message",
    [
        ({"colour": 1.0}, r"colour_selectivity_threshold: 1.0 must lie in \[-1, 1\)"),
        ({"phase": -0.1}, r"phase_modulation_threshold: -0.1 must lie in \[0, 2\)"),
        ({"spatial_frequency": 1.2}, "spatial_frequency_selectivity_threshold: 1.2"),
    ],
)
def test_thresholds_outside_their_index_range_are_refused(thresholds, message):
    with pytest.raises(ValueError, match=message):
        check_feature_settings(FEATURES, 4, None, {**DEFAULT_THRESHOLDS, **thresholds})


# --- synthetic units through the columns ------------------------------------------------------------


def synthetic_layer(units=6, n_sf=9, n_ori=12):
    """Grating responses (units, sf, ori, phase), centre responses and colour responses, all zero."""
    shape = (units, n_sf, n_ori, 4)
    return np.zeros(shape), np.zeros(shape), np.zeros((units, 3, 4, n_ori // 2, 4))


def test_columns_of_units_built_for_one_sf_one_colour_axis_simple_and_complex():
    gratings, centre, colour = synthetic_layer()
    orientation_tuning = np.exp(np.cos(2 * np.deg2rad(np.arange(12) * 15.0 - 45)))  # peak at 45 deg
    # unit 0: only SF 4 (at every orientation and phase); centre: a simple cell [1, 0, 0, 0]
    gratings[0, 4] = orientation_tuning[:, None]
    centre[0, 4, 3] = [1.0, 0, 0, 0]
    # unit 1: equal at SFs 2, 3, 4 of its preferred orientation; centre: an energy unit (constant)
    gratings[1, 2:5, 3] = 1.0
    centre[1, 2, 3] = 0.7  # (s*, o*) = (2, 3): the first of the equal peaks
    # unit 2: responds to red-green gratings only; unit 3: to achromatic ones only; unit 4: 1 : 3 : 2
    colour[2, 1, 2, 4, 1] = 1.0
    colour[3, 0, 0, 0, 3] = 2.0
    colour[4, :, 1, 1, 0] = [1.0, 3.0, 2.0]
    # unit 5: silent everywhere
    columns = pd.DataFrame(
        feature_columns(FEATURES, gratings, PHASES_4, centre_responses=centre, colour_responses=colour)
    )
    assert list(columns.columns) == tuning_feature_columns(FEATURES)
    np.testing.assert_allclose(
        columns["spatial_frequency_selectivity"][:2], [1.0, (9 - 3) / (9 - 1)], atol=1e-12
    )
    assert columns["spatial_frequency_selectivity"][5] == 0
    selective = {
        feature: list(selective_units(columns[FEATURE_INDEX_COLUMNS[feature]], DEFAULT_THRESHOLDS[feature]))
        for feature in DEFAULT_THRESHOLDS
    }
    assert selective["spatial_frequency"] == [True, True, False, False, False, False]
    np.testing.assert_allclose(columns["phase_modulation"][:2], [2.0, 0.0], atol=1e-12)
    assert columns["phase_modulation"][2:].isna().all()  # the centre never responds at (s*, o*)
    assert selective["phase"] == [True] + [False] * 5
    np.testing.assert_allclose(columns["colour_selectivity"][2:5], [1.0, -1.0, 0.5], atol=1e-12)
    assert list(columns["preferred_colour"][2:5]) == ["red_green", "achromatic", "red_green"]
    assert np.isnan(columns["colour_selectivity"][5]) and pd.isna(columns["preferred_colour"][5])
    assert selective["colour"] == [False, False, True, False, True, False]


def test_columns_follow_the_features_and_colour_is_empty_without_rgb_inputs():
    gratings, centre, colour = synthetic_layer(units=2)
    gratings[:] = 1.0
    assert list(feature_columns(("orientation",), gratings, PHASES_4)) == []
    no_rgb = feature_columns(("orientation", "colour"), gratings, PHASES_4)
    assert list(no_rgb) == ["colour_selectivity", "preferred_colour"]
    assert np.isnan(no_rgb["colour_selectivity"]).all()
    assert not selective_units(no_rgb["colour_selectivity"], DEFAULT_THRESHOLDS["colour"]).any()
    with pytest.raises(ValueError, match="phase feature needs centre responses"):
        feature_columns(("orientation", "phase"), gratings, PHASES_4)


# --- the shuffled controls (§3.9) --------------------------------------------------------------------


def test_each_feature_is_shuffled_with_its_own_documented_seed():
    rng = np.random.default_rng(RNG_SEED)
    gratings = rng.exponential(size=(20, 9, 12, 4)) * (rng.random((20, 9, 12, 4)) < 0.3)
    centre = rng.exponential(size=gratings.shape)
    colour = rng.exponential(size=(20, 3, 4, 6, 4))
    arguments = dict(
        grating_responses=gratings, phases_deg=PHASES_4, centre_responses=centre, colour_responses=colour
    )
    shuffled = shuffled_feature_columns(FEATURES, seed=3, layer_index=5, **arguments)

    def orders(feature, stimuli):  # the documented stream: default_rng((shuffle_seed, layer, stream))
        generator = np.random.default_rng((3, 5, SHUFFLE_STREAMS[feature]))
        return generator.permuted(np.tile(np.arange(stimuli), (20, 1)), axis=1)

    def permuted(array, order):
        return np.take_along_axis(array.reshape(20, -1), order, axis=1).reshape(array.shape)

    by_hand = {}
    by_hand.update(
        feature_columns(
            ("spatial_frequency",),
            permuted(gratings, orders("spatial_frequency", 432)),
            PHASES_4,
        )
    )
    colour_order = orders("colour", 288)
    by_hand.update(
        feature_columns(
            ("colour",),
            gratings,
            PHASES_4,
            colour_responses=permuted(colour, colour_order),
        )
    )
    phase_order = orders("phase", 432)
    by_hand.update(
        feature_columns(
            ("phase",),
            permuted(gratings, phase_order),
            PHASES_4,
            centre_responses=permuted(centre, phase_order),
        )
    )
    for column in tuning_feature_columns(FEATURES):
        np.testing.assert_array_equal(shuffled[column], by_hand[column], err_msg=column)
    # no stream reuses gOSI's permutations (seeded (shuffle_seed, layer_index)), nor another's
    first_rows = {f: orders(f, 432)[0] for f in SHUFFLE_STREAMS}
    gosi_row = np.random.default_rng((3, 5)).permuted(np.tile(np.arange(432), (20, 1)), axis=1)[0]
    rows = list(first_rows.values()) + [gosi_row]
    assert all(not np.array_equal(a, b) for i, a in enumerate(rows) for b in rows[i + 1 :])


def test_shuffled_colour_index_of_single_response_units_is_plus_or_minus_one_two_thirds_plus():
    # One non-zero response among 3 x 96 colour stimuli: after the shuffle it lies in a chromatic
    # direction with probability 2/3 (index +1) and in the achromatic one with 1/3 (index -1).
    units = 1500
    gratings, _, colour = synthetic_layer(units=units)
    colour[:, 1, 0, 0, 0] = 1.0  # every unit: red-green only
    shuffled = shuffled_feature_columns(
        ("orientation", "colour"),
        gratings,
        PHASES_4,
        seed=0,
        layer_index=0,
        colour_responses=colour,
    )
    index = shuffled["colour_selectivity"]
    assert set(np.unique(index)) == {-1.0, 1.0}
    assert abs((index == 1).mean() - 2 / 3) < 4 * np.sqrt(2 / 9 / units)
    counts = pd.Series(shuffled["preferred_colour"]).value_counts() / units
    assert all(abs(counts[c] - 1 / 3) < 4 * np.sqrt(2 / 9 / units) for c in COLOURS)


def monte_carlo_chance(index_of, responses, draws, seed):
    """Mean and SE of an index over independent permutations of one unit's responses (plain loop)."""
    rng = np.random.default_rng(seed)
    flat = responses.reshape(-1)
    values = [index_of(rng.permutation(flat).reshape(responses.shape)) for _ in range(draws)]
    return np.mean(values), np.std(values) / np.sqrt(draws)


def test_shuffled_sf_and_phase_indices_sit_at_chance_for_tuned_units():
    # A unit tuned to SF 4 (Gaussian, 0.6 SF steps) and to 0 deg, complex-like (constant over phase).
    # Its shuffled indices must be distributed as the chance level that plain permutations of its
    # responses give (computed here by a loop of independent permutations); its real SF index lies
    # far above that chance, its real F1/F0 (0) far below: chance responses are strongly modulated.
    units = 400
    gratings, centre, _ = synthetic_layer(units=units)
    sf_profile = np.exp(-0.5 * ((np.arange(9) - 4) / 0.6) ** 2)
    orientation_profile = np.exp(0.5 * np.cos(2 * np.deg2rad(np.arange(12) * 15.0)))
    unit = sf_profile[:, None, None] * orientation_profile[None, :, None] * np.ones(4)
    gratings[:] = unit
    centre[:] = unit
    features = ("orientation", "spatial_frequency", "phase")
    real = feature_columns(features, gratings, PHASES_4, centre_responses=centre)
    shuffled = shuffled_feature_columns(
        features, gratings, PHASES_4, seed=1, layer_index=2, centre_responses=centre
    )

    def sf_index(responses):
        return spatial_frequency_selectivity_index(spatial_frequency_curves(responses.max(axis=-1)[None]))[0]

    def phase_index(responses):
        sf, orientation = preferred_grating(responses.max(axis=-1)[None])
        return phase_modulation_index(responses[sf[0], orientation[0]], PHASES_4)

    for column, index_of, direction in [
        ("spatial_frequency_selectivity", sf_index, 1),
        ("phase_modulation", phase_index, -1),
    ]:
        real_value = index_of(unit)
        np.testing.assert_allclose(real[column], real_value, rtol=1e-12, atol=1e-12)
        chance, chance_se = monte_carlo_chance(index_of, unit, 2000, RNG_SEED)
        values = shuffled[column]
        se = np.std(values) / np.sqrt(units)
        assert abs(values.mean() - chance) < 4 * np.hypot(se, chance_se), column
        assert direction * (real_value - chance) > 20 * np.hypot(se, chance_se), column
    assert sf_index(unit) == pytest.approx(0.873, abs=1e-3) and phase_index(unit) == pytest.approx(
        0, abs=1e-12
    )


def test_permute_stimuli_moves_arrays_together_and_shared_mode_moves_units_together():
    a = np.arange(2 * 3 * 4, dtype=float).reshape(2, 3, 4)
    b = a + 100
    pa, pb = permute_stimuli([a, b], np.random.default_rng(0))
    np.testing.assert_array_equal(pb - pa, 100)
    assert not np.array_equal(pa[0].ravel() - a[0, 0, 0], pa[1].ravel() - a[1, 0, 0])  # own order per unit
    (shared,) = permute_stimuli(a, np.random.default_rng(0), independent_units=False)
    np.testing.assert_array_equal(shared - shared[:1], a - a[:1])
    with pytest.raises(ValueError, match="share a shape"):
        permute_stimuli([a, b[:1]], np.random.default_rng(0))


# --- hand-built networks with known tuning ------------------------------------------------------------

KERNEL = 15
_centred = np.arange(KERNEL) - KERNEL // 2
ROWS, COLS = np.meshgrid(_centred, _centred, indexing="ij")
ENVELOPE = np.exp(-(ROWS**2 + COLS**2) / (2 * 3.0**2))
K4 = grating_wavenumbers(32, 9)[4]  # SF 4: an 8-px period, whose gratings at 0 deg hit exactly -1 and +1


class ColourConv(Stage):
    """An unpadded conv stage with given (units, 3, k, k) kernels, zero bias, then ReLU: on 32-px
    inputs a 15-px kernel gives 18 x 18 maps whose centre position (9, 9) sees pixel (16, 16)."""

    def __init__(self, name, kernels):
        super().__init__(name, "conv", len(kernels))
        kernels = torch.as_tensor(np.asarray(kernels), dtype=torch.float32)
        self.conv = nn.Conv2d(3, len(kernels), kernels.shape[-1], bias=False)
        with torch.no_grad():
            self.conv.weight.copy_(kernels)

    def forward(self, h):
        response = torch.relu(self.conv(h))
        return response, response


class EnergyConv(Stage):
    """A complex-cell-like stage: sqrt(even^2 + odd^2) of two achromatic unpadded filters."""

    def __init__(self, name, even, odd):
        super().__init__(name, "conv", 1)
        self.even, self.odd = (ColourConv("part", grey(kernel)[None]) for kernel in (even, odd))

    def forward(self, h):
        response = torch.sqrt(self.even.conv(h) ** 2 + self.odd.conv(h) ** 2)
        return response, response


def zero_mean(kernel):
    """The kernel minus its envelope-weighted mean, so that uniform light drives it not at all."""
    return kernel - ENVELOPE * kernel.sum() / ENVELOPE.sum()


def grey(kernel):
    """A spatial kernel applied to R, G and B alike: (3, k, k)."""
    return np.repeat(np.asarray(kernel)[None] / 3, 3, axis=0)


def coloured(kernel, achromatic=0.0, red_green=0.0, blue_yellow=0.0):
    """A spatial kernel with RGB weights achromatic * (1,1,1)/sqrt3 + red_green * (1,-1,0)/sqrt2 + ..."""
    weights = (
        achromatic * np.ones(3) / np.sqrt(3)
        + red_green * np.array([1.0, -1.0, 0.0]) / np.sqrt(2)
        + blue_yellow * np.array([1.0, 1.0, -2.0]) / np.sqrt(6)
    )
    return weights[:, None, None] * np.asarray(kernel)[None]


def hand_built(stage, input_channels=None):
    model = AnalysableNetwork("hand_built", [stage], nn.Identity(), 32).eval()
    if input_channels is not None:
        model.input_channels = input_channels
    return LoadedNetwork(model, torch.full((3, 32, 32), 0.5), None, {})


def gratings_table(network, **settings):
    with torch.random.fork_rng():
        table = analyse_tuning(network, TuningSettings(**settings), {}).table
    return table[table["stimulus_set"] == "gratings"].set_index("unit")


COLOUR_UNITS = [  # (achromatic, red-green, blue-yellow) weights -> colour index, preferred colour
    ((0.0, 1.0, 0.0), 1.0, "red_green"),
    ((0.0, 0.0, 1.0), 1.0, "blue_yellow"),
    ((1.0, 0.0, 0.0), -1.0, "achromatic"),
    ((1.0, 3.0, 0.0), 0.5, "red_green"),
    ((2.0, -1.0, 0.5), -1 / 3, "achromatic"),  # the sign of a weight only moves the best phase
]


def test_colour_units_of_a_network_give_the_index_of_their_rgb_weights():
    # The colour gratings are 0.5 + m * d * u; minus the grey mean image the input is m * d * u, so a
    # unit with RGB weights w responds m * (w . d) * (its spatial response to u): R_d is proportional
    # to |w . d|, and the index is (max(|w.rg|, |w.by|) - |w.a|) / (max(..) + |w.a|) exactly.
    spatial = ENVELOPE * np.cos(grating_wavenumbers(32, 9)[3] * COLS)
    kernels = [coloured(spatial, *weights) for weights, _, _ in COLOUR_UNITS]
    table = gratings_table(hand_built(ColourConv("colour", kernels)))
    np.testing.assert_allclose(table["colour_selectivity"], [i for _, i, _ in COLOUR_UNITS], atol=1e-5)
    assert list(table["preferred_colour"]) == [c for _, _, c in COLOUR_UNITS]
    assert list(selective_units(table["colour_selectivity"], 0.33)) == [True, True, False, True, False]
    # the colour-only units hardly see the achromatic gratings that the orientation index uses
    assert (table["peak_response"][:2] < 1e-5 * table["peak_response"][2]).all()


def test_a_network_without_rgb_inputs_has_empty_colour_columns(caplog):
    network = hand_built(
        ColourConv("colour", [coloured(ENVELOPE * np.cos(K4 * COLS), 1.0)]), input_channels=1
    )
    with caplog.at_level("WARNING"):
        table = gratings_table(network)
    assert table["colour_selectivity"].isna().all() and table["preferred_colour"].isna().all()
    assert not selective_units(table["colour_selectivity"], 0.33).any()
    assert "takes 1 input channel(s): no colour set" in caplog.text


def test_linear_units_are_simple_like_and_the_energy_unit_is_complex_like():
    # At the centre position (the grating's origin) a linear filter w sees phi as
    # A cos(phi) - B sin(phi) with A = sum w cos(kx) / 2, B = sum w sin(kx) / 2; after the ReLU the four
    # phases give [A, 0, 0, B]^+ and F1/F0 = 2 sqrt(A^2 + B^2) / (A + B): 2 for an even filter
    # (B = 0), near sqrt(2) for one at 45 deg. The energy unit sqrt(even^2 + odd^2) with matched
    # amplitudes is constant over phase: F1/F0 = 0. The gratings of SF 4 at 0 deg reach exactly -1
    # and +1 at every phase, so minus the grey mean image they are exactly cos(k col + phi) / 2.
    carrier = K4 * COLS
    even, at_45, odd = (zero_mean(ENVELOPE * np.cos(carrier - shift)) for shift in (0, np.pi / 4, np.pi / 2))
    odd *= (even * np.cos(carrier)).sum() / (odd * np.sin(carrier)).sum()
    linear = hand_built(ColourConv("simple", [grey(even), grey(at_45)]))
    energy = hand_built(EnergyConv("complex", even, odd))
    simple_table, complex_table = gratings_table(linear), gratings_table(energy)
    for table in (simple_table, complex_table):  # the premise: all prefer SF 4 at 0 deg
        assert (table["preferred_spatial_frequency"] == 4).all() and (
            table["preferred_orientation_deg"] == 0
        ).all()

    def expected(kernel):
        a, b = (kernel * np.cos(carrier)).sum(), (kernel * np.sin(carrier)).sum()
        return 2 * np.hypot(a, b) / (a + b)

    np.testing.assert_allclose(simple_table["phase_modulation"], [expected(even), expected(at_45)], rtol=1e-4)
    assert expected(even) == pytest.approx(2.0) and expected(at_45) == pytest.approx(np.sqrt(2), abs=0.02)
    assert complex_table["phase_modulation"].iloc[0] == pytest.approx(0, abs=1e-4)
    assert list(selective_units(simple_table["phase_modulation"], 1.0)) == [True, True]
    assert not selective_units(complex_table["phase_modulation"], 1.0)[0]
    # averaged over the map (the readout of the other indices) the same linear units hardly vary with
    # phase: a full-field grating only shifts the map, so the spatial mean hides most of the phase
    stimuli = grating_stimuli(32)
    mean = measure_readouts(linear, stimuli.flat_images(), ["simple"], 512)["mean"]["simple"].numpy()
    at_preferred = mean.reshape(9, 12, 4, 2)[4, 0].T
    assert (phase_modulation_index(at_preferred, PHASES_4) < 0.2).all()


def test_centre_readout_of_conv_fc_and_token_maps():
    class Maps(Stage):
        def __init__(self, name, kind, shape):
            super().__init__(name, kind, shape[0])
            self.shape = shape
            self.unused = nn.Parameter(torch.zeros(1))  # LoadedNetwork finds the device from a parameter

        def forward(self, h):
            values = torch.arange(h.shape[0] * int(np.prod(self.shape)), dtype=torch.float32)
            response = values.reshape(h.shape[0], *self.shape)
            return response, h

    stages = [
        Maps("square", "conv", (2, 5, 5)),
        Maps("tokens", "conv", (2, 7, 1)),
        Maps("vector", "fc", (3,)),
    ]
    network = LoadedNetwork(AnalysableNetwork("maps", stages, nn.Identity(), 32).eval(), None, None, {})
    images = torch.zeros(2, 3, 32, 32)
    read = measure_readouts(network, images, ["square", "tokens", "vector"], 2, ("mean", "centre"))
    maps = torch.arange(2 * 50, dtype=torch.float32).reshape(2, 2, 5, 5)
    torch.testing.assert_close(read["centre"]["square"], maps[:, :, 2, 2])
    torch.testing.assert_close(read["mean"]["square"], maps.mean(dim=(2, 3)))
    assert read["centre"]["tokens"].isnan().all()
    torch.testing.assert_close(read["centre"]["vector"], torch.arange(6, dtype=torch.float32).reshape(2, 3))
    with pytest.raises(ValueError, match="readouts must be some of"):
        measure_readouts(network, images, ["square"], 2, ("middle",))


# --- the whole analysis ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def trained_looking_cnn7():
    """cnn7 whose conv1 holds the filters trained CNNs learn first (oriented luminance edges, colour-
    opponent blobs and edges) and whose BatchNorm statistics are those of a trained network's scale."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model("cnn7").eval()
        rows, cols = np.meshgrid([-1, 0, 1], [-1, 0, 1], indexing="ij")
        kernels = []
        for unit in range(32):
            angle = np.deg2rad(unit * 22.5)
            edge = np.cos(angle) * cols - np.sin(angle) * rows
            blob = np.exp(-(rows**2 + cols**2))
            weights = [(1, 0, 0), (0, 1, 0), (0, 0, 1), (0.5, 0.7, 0.2)][unit % 4]
            kernels.append(coloured(edge if unit % 3 else blob, *weights) * 0.6)
        generator = torch.Generator().manual_seed(1)
        with torch.no_grad():
            model.stage("conv1").conv.weight.copy_(torch.as_tensor(np.array(kernels), dtype=torch.float32))
            model.stage("conv1").conv.bias.uniform_(-0.05, 0.02, generator=generator)
            for stage in model.stages:
                stage.bn.running_mean.uniform_(0.0, 0.3, generator=generator)
                stage.bn.running_var.uniform_(0.05, 0.5, generator=generator)
    return LoadedNetwork(model, torch.full((3, 32, 32), 0.47), 3, {})


@pytest.fixture(scope="module")
def cnn7_table(trained_looking_cnn7):
    return analyse_tuning(trained_looking_cnn7, TuningSettings(), {}).table


def test_indices_of_units_recomputed_independently_from_raw_responses(trained_looking_cnn7, cnn7_table):
    """For three units of each layer with a clear peak: render the stimuli from the formulas of
    docs/method.md §3.1 and §3.7, run the network in one batch, read the maps by hand and recompute
    every index with explicit loops; then recompute each feature's shuffled control from its seed."""
    model = trained_looking_cnn7.model
    gratings = grating_stimuli(32)  # its pixels are checked against §3.1 in tests/test_stimuli.py
    grey_images = gratings.images[:, :, :, 0].double()  # (9, 12, 4, H, W)
    directions = {
        "achromatic": np.ones(3) / np.sqrt(3),
        "red_green": np.array([1, -1, 0]) / np.sqrt(2),
        "blue_yellow": np.array([1, 1, -2]) / np.sqrt(6),
    }
    amplitude = np.sqrt(6) / 4  # the largest common length: blue-yellow's B swing reaches 0 and 1
    colour_images = torch.stack(
        [
            0.5
            + amplitude
            * torch.tensor(d)[:, None, None, None, None, None]
            * (2 * grey_images[[0, 1, 3, 7]][:, ::2] - 1)
            for d in directions.values()
        ]
    )  # (colour, channel, sf, ori, phase, H, W)
    colour_images = colour_images.permute(0, 2, 3, 4, 1, 5, 6).float()  # (colour, sf, ori, phase, 3, H, W)
    images = torch.cat([gratings.flat_images(), colour_images.reshape(-1, 3, 32, 32)])
    with torch.inference_mode():
        run = model.run(trained_looking_cnn7.prepare_inputs(images), record_responses=model.layer_names)
    table = cnn7_table.set_index(["layer", "stimulus_set", "unit"])
    checked = 0
    for layer_index, layer in enumerate(model.layer_names):
        maps = run.responses[layer].double()
        if maps.dim() == 4:
            mean, centre = maps.mean(dim=(2, 3)), maps[:, :, maps.shape[2] // 2, maps.shape[3] // 2]
        else:
            mean = centre = maps
        grating_mean = mean[:432].T.reshape(-1, 9, 12, 4).numpy()
        grating_centre = centre[:432].T.reshape(-1, 9, 12, 4).numpy()
        colour_mean = mean[432:].T.reshape(-1, 3, 4, 6, 4).numpy()
        phase_max = grating_mean.max(axis=-1)
        for unit in clear_peaks(phase_max)[:3]:
            row = table.loc[(layer, "gratings", unit)]
            expected = recomputed_indices(grating_mean[unit], grating_centre[unit], colour_mean[unit])
            assert row["preferred_spatial_frequency"] == expected["sf"]
            assert row["preferred_orientation_deg"] == expected["orientation"] * 15
            for column in ("spatial_frequency_selectivity", "colour_selectivity", "phase_modulation"):
                np.testing.assert_allclose(
                    row[column], expected[column], rtol=2e-4, atol=1e-6, err_msg=f"{layer} {column}"
                )
            assert row["preferred_colour"] == expected["preferred_colour"]
            checked += 1
        # each feature's control: permute by hand with its seed (0, layer_index, stream), recompute
        shuffled_rows = table.xs((layer, "shuffled"), level=("layer", "stimulus_set"))
        by_stream = {
            feature: np.random.default_rng((0, layer_index, stream))
            for feature, stream in SHUFFLE_STREAMS.items()
        }

        def permuted(array, feature):
            flat = array.reshape(len(array), -1)
            order = by_stream[feature].permuted(np.tile(np.arange(flat.shape[1]), (len(flat), 1)), axis=1)
            return np.take_along_axis(flat, order, axis=1).reshape(array.shape)

        sf_gratings = permuted(grating_mean, "spatial_frequency")
        colour_shuffled = permuted(colour_mean, "colour")
        phase_order_source = np.stack([grating_mean, grating_centre], axis=-1)  # one order for both
        flat = phase_order_source.reshape(len(grating_mean), -1, 2)
        order = by_stream["phase"].permuted(np.tile(np.arange(flat.shape[1]), (len(flat), 1)), axis=1)
        phase_pair = np.take_along_axis(flat, order[:, :, None], axis=1).reshape(phase_order_source.shape)
        for unit in clear_peaks(sf_gratings.max(axis=-1))[:3]:
            expected = recomputed_indices(sf_gratings[unit], grating_centre[unit], colour_mean[unit])
            value = shuffled_rows.loc[unit, "spatial_frequency_selectivity"]
            np.testing.assert_allclose(value, expected["spatial_frequency_selectivity"], rtol=2e-4, atol=1e-6)
        for unit in clear_peaks(phase_pair[..., 0].max(axis=-1))[:3]:
            expected = recomputed_indices(
                phase_pair[unit, ..., 0], phase_pair[unit, ..., 1], colour_mean[unit]
            )
            value = shuffled_rows.loc[unit, "phase_modulation"]
            np.testing.assert_allclose(value, expected["phase_modulation"], rtol=2e-4, atol=1e-6)
        for unit in range(len(colour_mean)):  # maxima only: no argmax to be fragile
            expected = recomputed_indices(grating_mean[unit], grating_centre[unit], colour_shuffled[unit])
            value = shuffled_rows.loc[unit, "colour_selectivity"]
            np.testing.assert_allclose(value, expected["colour_selectivity"], rtol=2e-4, atol=1e-6)
    assert checked == 3 * len(model.layer_names)


def clear_peaks(phase_max):
    """Units whose largest R[s, o] beats the second by 0.1%: their (s*, o*) survives float rounding."""
    flat = np.sort(phase_max.reshape(len(phase_max), -1), axis=1)
    return [u for u in range(len(flat)) if flat[u, -1] > 1.001 * flat[u, -2] and flat[u, -1] > 0]


def recomputed_indices(gratings, centre, colour):
    """Every index of one unit with explicit loops (docs/method.md §3.2 and §3.6-§3.8)."""
    n_sf, n_ori, n_phase = gratings.shape
    best, sf_star, orientation_star = -1.0, None, None
    for s in range(n_sf):
        for o in range(n_ori):
            value = max(gratings[s, o, p] for p in range(n_phase))
            if value > best:
                best, sf_star, orientation_star = value, s, o
    curve = [max(gratings[s, orientation_star, p] for p in range(n_phase)) for s in range(n_sf)]
    energy = sum(c * c for c in curve)
    sparseness = (1 - sum(curve) ** 2 / (n_sf * energy)) / (1 - 1 / n_sf) if energy > 0 else 0.0
    a = [centre[sf_star, orientation_star, p] for p in range(n_phase)]
    f0 = sum(a) / n_phase
    real = sum(a[p] * np.cos(2 * np.pi * p / n_phase) for p in range(n_phase))
    imaginary = sum(a[p] * np.sin(2 * np.pi * p / n_phase) for p in range(n_phase))
    f1 = 2 * np.hypot(real, imaginary) / n_phase
    maxima = [colour[c].max() for c in range(3)]
    chromatic = max(maxima[1], maxima[2])
    return {
        "sf": sf_star,
        "orientation": orientation_star,
        "spatial_frequency_selectivity": sparseness,
        "phase_modulation": f1 / f0 if f0 > 0 else np.nan,
        "colour_selectivity": (
            (chromatic - maxima[0]) / (chromatic + maxima[0]) if chromatic + maxima[0] > 0 else np.nan
        ),
        "preferred_colour": COLOURS[int(np.argmax(maxima))],
    }


def test_feature_columns_leave_the_orientation_columns_and_each_other_unchanged(
    trained_looking_cnn7, cnn7_table
):
    layers = ["conv1", "conv4", "fc1"]
    full = cnn7_table[cnn7_table["layer"].isin(layers)].reset_index(drop=True)
    orientation_only = analyse_tuning(
        trained_looking_cnn7, TuningSettings(features=["orientation"]), {}, layers
    ).table
    assert list(orientation_only.columns) == list(TUNING_COLUMNS)
    pd.testing.assert_frame_equal(orientation_only, full[list(TUNING_COLUMNS)], check_exact=True)
    colour_only = analyse_tuning(
        trained_looking_cnn7, TuningSettings(features=["colour", "orientation"]), {}, layers
    ).table  # the list's order does not matter
    assert list(colour_only.columns) == list(TUNING_COLUMNS) + ["colour_selectivity", "preferred_colour"]
    pd.testing.assert_frame_equal(colour_only, full[list(colour_only.columns)], check_exact=True)
    reseeded = analyse_tuning(trained_looking_cnn7, TuningSettings(shuffle_seed=4), {}, layers).table
    real = full["stimulus_set"] == "gratings"
    pd.testing.assert_frame_equal(reseeded[real], full[real], check_exact=True)
    for column in ("spatial_frequency_selectivity", "colour_selectivity", "phase_modulation"):
        assert not np.allclose(reseeded.loc[~real, column], full.loc[~real, column], equal_nan=True)


def test_table_columns_and_ranges_for_every_layer(cnn7_table):
    table = cnn7_table
    assert list(table.columns) == list(TUNING_COLUMNS) + tuning_feature_columns(FEATURES)
    assert table["spatial_frequency_selectivity"].between(0, 1).all()
    assert table["colour_selectivity"].dropna().between(-1, 1).all()
    assert table["phase_modulation"].dropna().between(0, 2).all()
    assert set(table["preferred_colour"].dropna()) <= set(COLOURS)
    assert not {"spatial_frequency_selective", "colour_selective", "phase_sensitive"} & set(table.columns)
    real = table[table["stimulus_set"] == "gratings"]
    conv1 = real[real["layer"] == "conv1"]
    # conv1 is linear + ReLU: its centre units with luminance edges are simple-like; its colour-opponent
    # filters are colour-selective, and the achromatic gratings do not modulate them at all (F1/F0 ~ 0)
    luminance_edges = [u for u in range(32) if u % 3 and u % 4 in (0, 3)]
    chromatic = [u for u in range(32) if u % 4 in (1, 2)]
    assert (conv1.set_index("unit").loc[luminance_edges, "phase_modulation"] > 1.0).all()
    assert (conv1.set_index("unit").loc[chromatic, "colour_selectivity"] > 0.33).mean() > 0.8
    assert (conv1.set_index("unit").loc[chromatic, "phase_modulation"].fillna(0) < 1e-3).all()
