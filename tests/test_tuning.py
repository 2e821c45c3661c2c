"""Orientation tuning: index formulas on hand-computed curves, and networks with known answers."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from selectivity.networks.loaded import LoadedNetwork
from selectivity.data.dataset import images_to_tensor, mean_image
from selectivity.tuning.features import FEATURES, tuning_feature_columns
from selectivity.networks.models import AnalysableNetwork, Stage, build_model
from selectivity.tuning.stimuli import grating_stimuli, grating_wavenumbers
from selectivity.tuning.analysis import (
    TUNING_COLUMNS,
    TuningSettings,
    analyse_tuning,
    global_orientation_selectivity_index,
    measure_responses,
    orientation_consistency,
    orientation_selectivity_index,
    orthogonal_orientation_indices,
    preferred_spatial_frequency_curves,
    shuffle_stimulus_labels,
    tuning_responses,
    tuning_table,
)

CIFAR_SUBSET = Path(__file__).resolve().parents[2] / "shared/datasets/cifar10-subset.npz"
ORIENTATIONS = np.arange(0, 180, 15.0)
IDENTIFIERS = {
    "model": "cnn7",
    "dataset": "cifar10",
    "label_corruption": 0.0,
    "seed": 3,
    "epoch": 5,
    "checkpoint": "epoch",
}


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def one_hot(*pairs):
    curve = np.zeros(12)
    for index, value in pairs:
        curve[index] = value
    return curve


# --- indices on hand-computed curves ------------------------------------------------------------

HAND_COMPUTED = [
    # curve, OSI, gOSI
    (one_hot((0, 1)), 1.0, 1.0),
    (one_hot((4, 1)), 1.0, 1.0),
    (one_hot((0, 3), (6, 1)), 0.5, 0.5),  # (3-1)/(3+1); |3 - 1| / 4
    (one_hot((0, 1), (6, 1)), 0.0, 0.0),  # orthogonal pair cancels
    (one_hot((0, 1), (3, 1)), 1.0, np.sqrt(2) / 2),  # 0 and 45 deg: |1 + i| / 2
    (1 + np.cos(2 * np.deg2rad(ORIENTATIONS)), 1.0, 0.5),  # sum R e^{2i theta} = 12/2, sum R = 12
    (np.full(12, 2.0), 0.0, 0.0),
    (np.zeros(12), 0.0, 0.0),  # a dead unit
]


@pytest.mark.parametrize("curve, osi, gosi", HAND_COMPUTED)
def test_indices_of_hand_computed_curves(curve, osi, gosi):
    assert orientation_selectivity_index(curve, ORIENTATIONS) == pytest.approx(osi, abs=1e-12)
    assert global_orientation_selectivity_index(curve, ORIENTATIONS) == pytest.approx(gosi, abs=1e-12)


def test_indices_are_computed_along_the_last_axis():
    curves = np.stack([c for c, _, _ in HAND_COMPUTED]).reshape(2, 4, 12)
    np.testing.assert_allclose(
        orientation_selectivity_index(curves, ORIENTATIONS).ravel(),
        [o for _, o, _ in HAND_COMPUTED],
        atol=1e-12,
    )
    np.testing.assert_allclose(
        global_orientation_selectivity_index(curves, ORIENTATIONS).ravel(),
        [g for _, _, g in HAND_COMPUTED],
        atol=1e-12,
    )


def test_orthogonal_orientations():
    np.testing.assert_array_equal(orthogonal_orientation_indices(ORIENTATIONS), (np.arange(12) + 6) % 12)
    np.testing.assert_array_equal(orthogonal_orientation_indices([0, 45, 90, 135]), [2, 3, 0, 1])
    with pytest.raises(ValueError, match="0.0 deg has no orthogonal partner"):
        orthogonal_orientation_indices([0, 60, 120])


def test_invalid_curves_are_rejected():
    with pytest.raises(ValueError, match="non-negative"):
        global_orientation_selectivity_index(one_hot((0, 1), (1, -0.5)), ORIENTATIONS)
    with pytest.raises(ValueError, match="non-finite"):
        orientation_selectivity_index(one_hot((0, np.nan)), ORIENTATIONS)
    with pytest.raises(ValueError, match="12 orientations"):
        orientation_selectivity_index(np.ones(8), ORIENTATIONS)


def test_preferred_spatial_frequency_is_the_one_with_the_highest_peak():
    phase_max = np.zeros((2, 3, 12))
    phase_max[0, 0] = 1.0  # broad but weak
    phase_max[0, 2, 5] = 4.0  # the strongest single response
    phase_max[1, 1, 7] = 2.0
    preferred, curves = preferred_spatial_frequency_curves(phase_max)
    np.testing.assert_array_equal(preferred, [2, 1])
    np.testing.assert_array_equal(curves, phase_max[[0, 1], [2, 1]])


# --- orientation consistency ------------------------------------------------------------------


def consistency_of(preferences):
    """R[sf, ori] with one response per SF: (preferred orientation index, peak)."""
    phase_max = np.zeros((len(preferences), 12))
    for sf, (orientation, peak) in enumerate(preferences):
        phase_max[sf, orientation] = peak
    return float(orientation_consistency(phase_max, ORIENTATIONS))


def test_orientation_consistency_known_answers():
    assert consistency_of([(2, 1.0), (2, 0.9), (2, 0.8)]) == pytest.approx(1.0)
    # two strong SFs 90 deg apart cancel; the weak SF (below the midpoint 0.6) does not count
    assert consistency_of([(0, 1.0), (6, 1.0), (2, 0.2)]) == pytest.approx(0.0, abs=1e-12)
    # 0 and 45 deg: doubled angles 0 and 90 deg, |1 + i| / 2
    assert consistency_of([(0, 1.0), (3, 0.9), (8, 0.1)]) == pytest.approx(np.sqrt(2) / 2)
    # equal peaks: every SF counts, 0, 0 and 90 deg -> |2 - 1| / 3
    assert consistency_of([(0, 1.0), (0, 1.0), (6, 1.0)]) == pytest.approx(1 / 3)
    assert np.isnan(consistency_of([(0, 0.0), (0, 0.0)]))


# --- shuffled control ---------------------------------------------------------------------------


def test_shuffle_permutes_each_unit_independently_and_reproducibly():
    responses = np.arange(3 * 2 * 4 * 2, dtype=float).reshape(3, 2, 4, 2) ** 1.5
    shuffled = shuffle_stimulus_labels(responses, seed=7)
    assert shuffled.shape == responses.shape
    for unit in range(3):  # same values, new order
        np.testing.assert_array_equal(np.sort(shuffled[unit], axis=None), np.sort(responses[unit], axis=None))
        assert not np.array_equal(shuffled[unit], responses[unit])
    orders = [np.argsort(np.argsort(shuffled[u], axis=None)) for u in range(3)]
    assert not np.array_equal(orders[0], orders[1])  # independent permutations per unit
    np.testing.assert_array_equal(shuffle_stimulus_labels(responses, seed=7), shuffled)
    assert not np.array_equal(shuffle_stimulus_labels(responses, seed=8), shuffled)


def test_shared_shuffle_uses_one_permutation_for_all_units():
    responses = np.arange(3 * 2 * 4 * 2, dtype=float).reshape(3, 2, 4, 2)
    shuffled = shuffle_stimulus_labels(responses, seed=(0, 1), independent_units=False)
    offsets = shuffled - shuffled[:1]
    np.testing.assert_array_equal(offsets, responses - responses[:1])  # rows moved together


# --- reshaping and the table --------------------------------------------------------------------


def test_tuning_responses_follow_the_flat_stimulus_order():
    stimuli = grating_stimuli(16, orientations=4, phases=2, spatial_frequencies=3)
    n = 3 * 4 * 2
    flat = torch.arange(n, dtype=torch.float32)[:, None] + 1000 * torch.arange(5.0)[None, :]
    responses = tuning_responses(flat, stimuli)
    assert responses.shape == (5, 3, 4, 2)
    assert responses[2, 1, 3, 0] == (1 * 4 + 3) * 2 + 0 + 2000
    with pytest.raises(ValueError, match="24 stimuli"):
        tuning_responses(flat[:-1], stimuli)


@pytest.fixture(scope="module")
def small_stimuli():
    return grating_stimuli(32, orientations=12, phases=4, spatial_frequencies=3)


def test_tuning_table_of_hand_built_responses(small_stimuli):
    responses = np.zeros((3, 3, 12, 4))
    responses[0, 2, 3, 1] = 2.0  # only SF 2, 45 deg, one phase
    responses[0, 0, :, :] = 0.5  # an untuned weaker response at SF 0
    responses[2] = 0.7  # untuned everywhere
    table = tuning_table(responses, small_stimuli, "conv1", 0, "gratings")
    assert list(table.columns) == list(TUNING_COLUMNS)
    tuned, dead, flat = table.to_dict("records")
    assert tuned == {
        "layer": "conv1",
        "layer_index": 0,
        "unit": 0,
        "stimulus_set": "gratings",
        "osi": 1.0,
        "gosi": 1.0,
        "preferred_orientation_deg": 45.0,
        "preferred_spatial_frequency": 2,
        "preferred_period_px": pytest.approx(40 / 3),
        "peak_response": 2.0,
        "dead": False,
        "orientation_consistency": 1.0,  # SF 0's peak (0.5) is below the midpoint 1.25
    }
    assert dead["dead"] and dead["osi"] == 0 and dead["gosi"] == 0
    assert np.isnan(dead["preferred_orientation_deg"]) and np.isnan(dead["preferred_period_px"])
    assert pd.isna(dead["preferred_spatial_frequency"]) and np.isnan(dead["orientation_consistency"])
    assert flat["gosi"] == pytest.approx(0, abs=1e-12) and not flat["dead"]
    assert flat["preferred_spatial_frequency"] == 0  # ties go to the first SF


def test_tuning_table_rejects_bad_input(small_stimuli):
    responses = np.ones((2, 3, 12, 4))
    with pytest.raises(ValueError, match="stimulus_set"):
        tuning_table(responses, small_stimuli, "conv1", 0, "permuted")
    with pytest.raises(ValueError, match="non-negative"):
        tuning_table(-responses, small_stimuli, "conv1", 0, "gratings")
    with pytest.raises(ValueError, match=r"\(units, \*\(3, 12, 4\)\)"):
        tuning_table(responses[:, :2], small_stimuli, "conv1", 0, "gratings")


def test_settings_reject_an_odd_number_of_orientations():
    with pytest.raises(ValueError, match="orientations must be even"):
        TuningSettings(orientations=9)


# --- hand-built networks ------------------------------------------------------------------------


class FilterBank(Stage):
    """A conv stage with given grey-level kernels (applied equally to R, G, B) and biases."""

    def __init__(self, name, kernels, biases):
        super().__init__(name, "conv", len(kernels))
        kernels = torch.as_tensor(np.asarray(kernels), dtype=torch.float32)
        self.conv = nn.Conv2d(3, len(kernels), kernels.shape[-1])
        with torch.no_grad():
            self.conv.weight.copy_(kernels[:, None].expand(-1, 3, -1, -1) / 3)
            self.conv.bias.copy_(torch.as_tensor(biases, dtype=torch.float32))

    def forward(self, h):
        response = torch.relu(self.conv(h))
        return response, response


class MeanOfMap(Stage):
    """fc stage whose two units are ReLU(+mean) and ReLU(-mean) of the previous map."""

    def __init__(self, name):
        super().__init__(name, "fc", 2)

    def forward(self, h):
        mean = h.mean(dim=(1, 2, 3))
        response = torch.relu(torch.stack([mean, -mean], dim=1))
        return response, response


def analysable(stages, input_mean=0.5, size=32):
    model = AnalysableNetwork("hand_built", stages, nn.Identity(), size).eval()
    mean = None if input_mean is None else torch.full((3, size, size), input_mean)
    return LoadedNetwork(model, mean, None, {})


KERNEL_SIZE = 15
_centred = np.arange(KERNEL_SIZE) - KERNEL_SIZE // 2
KERNEL_ROWS, KERNEL_COLS = np.meshgrid(_centred, _centred, indexing="ij")
ENVELOPE_SIGMA = 3.0


def gaussian(sigma):
    g = np.exp(-(KERNEL_ROWS**2 + KERNEL_COLS**2) / (2 * sigma**2))
    return g / g.sum()


def gabor(theta_deg, wavenumber):
    """The grating formula under a Gaussian envelope, made zero-mean so uniform light is ignored."""
    theta = np.deg2rad(theta_deg)
    carrier = np.cos(wavenumber * (-np.sin(theta) * KERNEL_ROWS + np.cos(theta) * KERNEL_COLS))
    envelope = gaussian(ENVELOPE_SIGMA)
    return envelope * (carrier - (envelope * carrier).sum())


GABOR_THETAS = [0, 20, 30, 45, 60, 90, 120, 135, 165]


@pytest.fixture(scope="module")
def filter_bank_table():
    wavenumber = grating_wavenumbers(32, 9)[4]  # a grating SF, 8-px period
    kernels = [gabor(theta, wavenumber) for theta in GABOR_THETAS]
    kernels += [gaussian(1.5) - gaussian(3.0), np.zeros((KERNEL_SIZE, KERNEL_SIZE))]
    biases = np.zeros(len(kernels))
    biases[-1] = -1.0  # never above zero: a dead unit
    network = analysable([FilterBank("filters", kernels, biases)])
    with torch.random.fork_rng():
        torch.manual_seed(0)
        table = analyse_tuning(network, TuningSettings(), {}).table
    return table[table["stimulus_set"] == "gratings"].set_index("unit")


@pytest.mark.parametrize("unit, theta", list(enumerate(GABOR_THETAS)))
def test_gabor_units_prefer_their_own_orientation(filter_bank_table, unit, theta):
    row = filter_bank_table.loc[unit]
    assert row["gosi"] > 0.5
    difference = abs((row["preferred_orientation_deg"] - theta + 90) % 180 - 90)
    assert difference <= 7.5  # the nearest 15-deg step (20 deg -> 15 deg)
    assert row["preferred_spatial_frequency"] == 4
    assert row["orientation_consistency"] > 0.9


def test_isotropic_difference_of_gaussians_is_untuned(filter_bank_table):
    row = filter_bank_table.loc[len(GABOR_THETAS)]
    assert not row["dead"] and row["peak_response"] > 0
    assert row["gosi"] < 0.1 and row["osi"] < 0.1


def test_silent_unit_is_dead(filter_bank_table):
    row = filter_bank_table.loc[len(GABOR_THETAS) + 1]
    assert row["dead"] and row["osi"] == 0 and row["gosi"] == 0 and row["peak_response"] == 0
    assert np.isnan(row["preferred_orientation_deg"])


def test_measure_responses_spatial_mean_for_conv_value_for_fc():
    channel_mean = np.ones((1, 1, 1))  # a 1x1 kernel averaging R, G, B
    network = analysable([FilterBank("mean", channel_mean, [0.0]), MeanOfMap("fc")], input_mean=0.25, size=8)
    images = torch.rand(10, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    responses = measure_responses(network, images, ["fc", "mean"], batch_size=3)
    expected_conv = torch.relu(images.mean(dim=1) - 0.25).mean(dim=(1, 2))
    torch.testing.assert_close(responses["mean"], expected_conv[:, None])
    torch.testing.assert_close(responses["fc"], torch.stack([expected_conv, torch.zeros(10)], dim=1))
    assert list(responses) == ["fc", "mean"]


def test_measure_responses_uses_eval_mode_and_restores_the_mode():
    torch.manual_seed(0)
    model = build_model("cnn7")
    network = LoadedNetwork(model.eval(), torch.zeros(3, 32, 32), 0, {})
    images = torch.rand(12, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    in_eval = measure_responses(network, images, ["conv3", "fc1"], batch_size=5)
    model.train()
    running_mean = model.stage("conv1").bn.running_mean.clone()
    from_train = measure_responses(network, images, ["conv3", "fc1"], batch_size=12)
    assert model.training
    assert torch.equal(model.stage("conv1").bn.running_mean, running_mean)
    for layer in ("conv3", "fc1"):
        torch.testing.assert_close(from_train[layer], in_eval[layer])
    assert in_eval["conv3"].shape == (12, 64) and in_eval["fc1"].shape == (12, 512)


def test_measure_responses_rejects_unknown_layers_and_wrong_sizes():
    network = LoadedNetwork(build_model("cnn7").eval(), None, 0, {})
    with pytest.raises(KeyError, match="conv9"):
        measure_responses(network, torch.zeros(2, 3, 32, 32), ["conv9"], batch_size=2)
    with pytest.raises(ValueError, match=r"\(N, 3, 32, 32\)"):
        measure_responses(network, torch.zeros(2, 3, 28, 28), ["conv1"], batch_size=2)


# --- the whole analysis -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cnn7_network():
    with torch.random.fork_rng():
        torch.manual_seed(0)
        model = build_model("cnn7").eval()
    return LoadedNetwork(model, torch.full((3, 32, 32), 0.45), 5, {})


def test_analyse_tuning_table_and_curves(cnn7_network):
    result = analyse_tuning(cnn7_network, TuningSettings(), IDENTIFIERS)
    table = result.table
    assert list(table.columns) == list(IDENTIFIERS) + list(TUNING_COLUMNS) + tuning_feature_columns(FEATURES)
    assert (table[list(IDENTIFIERS)] == pd.Series(IDENTIFIERS)).all().all()
    units = {"conv1": 32, "conv2": 32, "conv3": 64, "conv4": 64, "conv5": 128, "conv6": 128, "fc1": 512}
    counts = table.groupby(["layer", "stimulus_set"]).size()
    for layer, n in units.items():
        assert counts[(layer, "gratings")] == n and counts[(layer, "shuffled")] == n
    assert table.groupby("layer")["layer_index"].first().to_dict() == {l: i for i, l in enumerate(units)}
    assert table["gosi"].between(0, 1 + 1e-9).all() and table["osi"].between(0, 1).all()
    # whether a unit is selective is the summary's to decide (the threshold is not a tuning setting)
    assert "selective" not in table.columns

    assert set(result.curves) == set(units) | {"orientations_deg", "periods_px"}
    conv2 = result.curves["conv2"]
    assert conv2.shape == (32, 9, 12) and conv2.dtype == np.float32
    real = table[(table["layer"] == "conv2") & (table["stimulus_set"] == "gratings")]
    np.testing.assert_allclose(real["peak_response"], conv2.max(axis=(1, 2)), rtol=1e-6)
    np.testing.assert_allclose(result.curves["periods_px"], 40 / np.arange(1, 10))


def test_analyse_tuning_is_reproducible_and_the_seed_moves_only_the_control(cnn7_network):
    layers = ["conv1", "conv2"]
    first = analyse_tuning(cnn7_network, TuningSettings(), {}, layers=layers).table
    again = analyse_tuning(cnn7_network, TuningSettings(), {}, layers=layers).table
    reseeded = analyse_tuning(cnn7_network, TuningSettings(shuffle_seed=1), {}, layers=layers).table
    pd.testing.assert_frame_equal(first, again)
    real = first["stimulus_set"] == "gratings"
    pd.testing.assert_frame_equal(first[real], reseeded[real])
    assert not np.allclose(first.loc[~real, "gosi"], reseeded.loc[~real, "gosi"])
    # conv1 and conv2 have 32 units each; their controls must not reuse one permutation
    conv1, conv2 = (first[~real & (first["layer"] == layer)] for layer in layers)
    assert not np.array_equal(
        conv1["preferred_orientation_deg"].values, conv2["preferred_orientation_deg"].values
    )


def test_identifiers_must_not_clash_with_tuning_columns(cnn7_network):
    with pytest.raises(ValueError, match="layer"):
        analyse_tuning(cnn7_network, TuningSettings(), {"layer": "x"}, layers=["conv1"])


@pytest.mark.skipif(not CIFAR_SUBSET.exists(), reason=f"real CIFAR-10 subset not found at {CIFAR_SUBSET}")
def test_trained_first_layer_is_more_selective_than_its_shuffled_control():
    with np.load(CIFAR_SUBSET) as blob:
        x_train, y_train = blob["x_train"][:2000], torch.as_tensor(blob["y_train"][:2000])
    input_mean = mean_image(x_train)
    inputs = images_to_tensor(x_train) - input_mean
    torch.manual_seed(0)
    model = build_model("cnn7")
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    order = torch.randperm(len(inputs), generator=torch.Generator().manual_seed(0))
    model.train()
    for batch in order.split(32):  # one epoch, the optimiser and batch size of docs/method.md §2
        loss = nn.functional.cross_entropy(model(inputs[batch]), y_train[batch])
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    network = LoadedNetwork(model.eval(), input_mean, 1, {})

    table = analyse_tuning(network, TuningSettings(), {}, layers=["conv1"]).table
    real = table.loc[table["stimulus_set"] == "gratings", "gosi"]
    shuffled = table.loc[table["stimulus_set"] == "shuffled", "gosi"]
    assert real.mean() > 1.5 * shuffled.mean()
    assert real.quantile(0.75) > shuffled.quantile(0.95)  # a tail of tuned units the null lacks


def test_gosi_of_a_single_orientation_response_is_exactly_one():
    orientations = np.arange(12) * 15.0
    curves = np.zeros((12, 12))
    curves[np.arange(12), np.arange(12)] = 3.7  # every unit answers one orientation only
    gosi = global_orientation_selectivity_index(curves, orientations)
    assert (gosi <= 1.0).all() and np.allclose(gosi, 1.0)
