"""The matched control of the ablations and the author's probability clip of the ablation loss."""

import math

import numpy as np
import pandas as pd
import pytest
import torch

from selectivity.causal.ablation import AblationSettings, clipped_cross_entropy, half_ablation, rank_units
from selectivity.networks.loaded import LoadedNetwork
from selectivity.causal.invariance import InvarianceSettings, shift_invariance
from selectivity.causal.matching import (
    layer_strata,
    matched_draws,
    matched_units,
    preferred_frequencies_from_table,
    unit_mean_outputs,
    unit_strata,
)
from selectivity.networks.models import build_model

torch.set_num_threads(1)
IDENTIFIERS = {"model": "cnn7", "dataset": "synthetic", "label_corruption": 0.0, "seed": 3}


@pytest.fixture(scope="module")
def network():
    torch.manual_seed(0)
    model = build_model("cnn7").eval()
    return LoadedNetwork(model, torch.full((3, 32, 32), 0.5), epoch=0, info={})


@pytest.fixture(scope="module")
def images():
    return torch.rand(12, 3, 32, 32, generator=torch.Generator().manual_seed(1))


def test_strata_cross_frequency_halves_with_output_terciles():
    frequencies = np.array([1, 1, 2, 2, 3, 3, 4, 4, np.nan, np.nan, np.nan, np.nan], dtype=float)
    outputs = np.array([1.0, 12.0, 2.0, 11.0, 3.0, 10.0, 4.0, 9.0, 5.0, 6.0, 7.0, 8.0])
    strata = unit_strata(frequencies, outputs)
    # frequency halves: {1, 2} -> 0, {3, 4} -> 1, dead -> 2; output terciles of the 12 ranks
    expected_frequency_bin = np.array([0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2])
    expected_output_bin = (np.argsort(np.argsort(outputs)) * 3) // 12
    assert strata.tolist() == (expected_frequency_bin * 3 + expected_output_bin).tolist()
    with pytest.raises(ValueError, match="one value per unit"):
        unit_strata(frequencies[:3], outputs)


def test_a_matched_draw_has_the_top_halfs_covariate_counts():
    strata = np.repeat([0, 1, 2, 3], 8)
    scores = np.random.default_rng(0).random(32)
    top = rank_units(scores, 0.5, "top", None)
    draws = matched_draws(top, strata, draws=3, seed=5, layer_index=1)
    expected = np.bincount(strata[top], minlength=4)
    for draw in draws:
        assert len(draw) == 16 and len(set(draw)) == 16
        assert np.bincount(strata[draw], minlength=4).tolist() == expected.tolist()
    assert not all(np.array_equal(draws[0], other) for other in draws[1:])  # random within strata
    again = matched_draws(top, strata, draws=3, seed=5, layer_index=1)
    assert all(np.array_equal(a, b) for a, b in zip(draws, again))


def test_a_stratum_of_top_units_only_is_taken_whole():
    strata = np.array([0, 0, 1, 1, 1, 1])
    chosen = matched_units([0, 1, 2], strata, np.random.default_rng(0))
    assert set(chosen[:2]) == {0, 1} and len(chosen) == 3


def test_unit_mean_outputs_average_the_ablation_point_over_images_and_positions(network, images):
    means = unit_mean_outputs(network, images, ["conv2", "fc1"], batch_size=5)
    with torch.no_grad():
        outputs = network.model.run(network.prepare_inputs(images), record_outputs=["conv2", "fc1"]).outputs
    np.testing.assert_allclose(
        means["conv2"], outputs["conv2"].mean(dim=(0, 2, 3)).numpy(), rtol=1e-5, atol=1e-6
    )
    np.testing.assert_allclose(means["fc1"], outputs["fc1"].mean(dim=0).numpy(), rtol=1e-5, atol=1e-6)


def tuning_rows(network, layers):
    rows = []
    for layer in layers:
        for unit in range(network.model.units(layer)):
            rows.append(
                dict(
                    layer=layer,
                    unit=unit,
                    stimulus_set="gratings",
                    preferred_spatial_frequency=[0.1, 0.2][unit % 2],
                )
            )
            rows.append(
                dict(layer=layer, unit=unit, stimulus_set="shuffled", preferred_spatial_frequency=9.9)
            )
    return pd.DataFrame(rows)


def test_half_ablation_and_shift_invariance_add_matched_draws(network, images):
    labels = torch.arange(len(images)) % 10
    layers = ("conv1", "conv2")
    frequencies = preferred_frequencies_from_table(tuning_rows(network, layers))
    assert set(frequencies["conv1"]) == {0.1, 0.2}  # the shuffled rows are not read
    strata = layer_strata(network, images, frequencies, layers)
    scores = {
        "gosi": {layer: np.random.default_rng(0).random(network.model.units(layer)) for layer in layers}
    }
    settings = AblationSettings(layers=layers, random_draws=2, batch_size=6)
    table, comparisons = half_ablation(network, images, labels, scores, settings, IDENTIFIERS, strata=strata)
    matched = table[table["condition"] == "matched"]
    assert len(matched) == 2 * 2 and set(matched["ranking"]) == {"gosi"}
    assert (matched["n_ablated"] == 16).all()
    assert "top_vs_matched" in set(comparisons["comparison"])
    without, _ = half_ablation(network, images, labels, scores, settings, IDENTIFIERS)
    assert "matched" not in set(without["condition"])
    # the random draws do not change when matched draws are added
    pd.testing.assert_frame_equal(
        table[table["condition"] != "matched"].reset_index(drop=True), without.reset_index(drop=True)
    )
    invariance = InvarianceSettings(
        measured_layers=("conv5",), ablated_layers=("conv1",), shifts=(1,), random_draws=2
    )
    shifted = shift_invariance(network, images, scores["gosi"], invariance, IDENTIFIERS, strata=strata)
    assert set(shifted.loc[shifted["condition"] == "matched", "draw"]) == {0, 1}


def test_ablation_loss_clips_probabilities_as_the_author_did():
    logits = torch.tensor([[100.0, 0.0, 0.0], [0.0, 0.0, 0.0], [0.0, 100.0, 0.0]])
    targets = torch.tensor([1, 1, 1])
    losses = clipped_cross_entropy(logits, targets)
    assert losses[0].item() == pytest.approx(-math.log(1e-7), rel=1e-6)  # capped at 16.1 nats
    assert losses[1].item() == pytest.approx(math.log(3.0), rel=1e-6)
    assert losses[2].item() == pytest.approx(-math.log(1 - 1e-7), abs=1e-6)
