"""Causal tests ranked by a low-level feature index: the NaN ranking rule, the matched control's
strata, the overlap diagnostic, the scores read from a tuning table, and the half-ablation and
shift-invariance tables (docs/method.md §4.1, §4.6, §5.3)."""

import numpy as np
import pandas as pd
import pytest
import torch

from selectivity.causal.ablation import AblationSettings, half_ablation, rank_units, unit_scores_from_tables
from selectivity.causal.feature_matching import (
    feature_strata,
    overlap_with_top,
    quantile_bins,
    ranking_scores,
)
from selectivity.causal.feature_tests import (
    ablated_sets,
    feature_layer_strata,
    feature_scores_from_table,
    half_ablation_by_feature,
    shift_invariance_by_feature,
)
from selectivity.causal.invariance import InvarianceSettings, shift_invariance
from selectivity.causal.matching import matched_draws
from selectivity.networks.loaded import LoadedNetwork
from selectivity.networks.models import build_model
from selectivity.tuning.features import measured_index, ranked_features

torch.set_num_threads(1)
IDENTIFIERS = {"model": "cnn7", "dataset": "synthetic", "label_corruption": 0.0, "seed": 3}
ALL_FEATURES = ["orientation", "spatial_frequency", "colour", "phase"]


# ---- ranking and strata ---------------------------------------------------------------


def test_an_undefined_index_ranks_below_every_defined_value():
    index = np.array([0.2, np.nan, -0.9, 0.8, np.nan, 0.1])
    scores = ranking_scores(index)
    assert np.isneginf(scores[[1, 4]]).all() and np.array_equal(scores[[0, 2, 3, 5]], index[[0, 2, 3, 5]])
    top = rank_units(scores, 0.5, "top", None)
    bottom = rank_units(scores, 0.5, "bottom", None)
    assert top.tolist() == [3, 0, 5] and bottom.tolist() == [1, 4, 2]  # NaN units first, in unit order
    # with more than half undefined the top half takes undefined units last, highest unit index first
    mostly = ranking_scores(np.array([np.nan, 0.5, np.nan, np.nan]))
    assert rank_units(mostly, 0.5, "top", None).tolist() == [1, 3]
    with pytest.raises(ValueError, match="inf"):
        ranking_scores(np.array([0.1, np.inf]))
    with pytest.raises(ValueError, match="one value per unit"):
        ranking_scores(np.zeros((2, 2)))


def test_quantile_bins_split_by_rank_and_give_nan_a_bin_of_its_own():
    values = np.array([0.1, 0.9, np.nan, 0.5, 0.3, 0.7, np.nan])
    assert quantile_bins(values, 2).tolist() == [0, 1, 2, 1, 0, 1, 2]
    ties = np.array([0.0, 0.0, 0.0, 1.0])  # tied values share their average rank, so one bin
    assert len(set(quantile_bins(ties, 2)[:3])) == 1


def test_feature_strata_cross_every_covariate_half_with_the_output_half():
    gosi = np.array([0.1, 0.2, 0.8, 0.9, 0.1, 0.2, 0.8, 0.9])
    colour = np.array([np.nan, 0.5, -0.5, 0.4, -0.4, 0.3, -0.3, np.nan])
    output = np.arange(8.0)
    strata = feature_strata({"orientation": gosi, "colour": colour}, output)
    output_half = (np.arange(8) * 2) // 8  # ranks 0-7 of the mean output, in halves
    keys = list(zip(output_half, quantile_bins(gosi, 2), quantile_bins(colour, 2)))
    # units share a stratum exactly when all three bins agree
    for i in range(8):
        for j in range(8):
            assert (strata[i] == strata[j]) == (keys[i] == keys[j])
    assert sorted(set(strata.tolist())) == list(range(len(set(keys))))
    with pytest.raises(ValueError, match="covariate 'colour'"):
        feature_strata({"colour": colour[:3]}, output)
    with pytest.raises(ValueError, match="finite"):
        feature_strata({}, np.array([1.0, np.nan]))


def test_overlap_with_top():
    assert overlap_with_top([1, 2, 3, 4], [4, 3, 2, 1]) == 1.0
    assert overlap_with_top([1, 2, 5, 6], [1, 2, 3, 4]) == 0.5
    assert np.isnan(overlap_with_top([], [1]))


def test_measured_index_and_ranked_features():
    dead = np.array([False, True, False])
    assert np.isnan(measured_index("orientation", np.array([0.3, 0.0, 0.1]), dead)[1])
    assert np.isnan(measured_index("spatial_frequency", np.array([0.3, 0.0, 0.1]), dead)[1])
    # colour and phase leave an undefined index NaN and keep a dead unit's colour index
    assert measured_index("colour", np.array([0.3, 0.9, np.nan]), dead)[1] == 0.9
    assert ranked_features(["phase", "orientation", "colour"]) == ["colour", "phase"]
    with pytest.raises(ValueError, match="feature must be one of"):
        measured_index("texture", np.zeros(3), dead)


# ---- scores from a tuning table -------------------------------------------------------


def fabricated_tuning(units: dict[str, int], seed: int = 0) -> pd.DataFrame:
    """Gratings and shuffled rows of one checkpoint with every feature's index."""
    rng = np.random.default_rng(seed)
    rows = []
    for layer_index, (layer, count) in enumerate(units.items()):
        for stimulus_set in ("gratings", "shuffled"):
            dead = rng.random(count) < 0.15
            colour = rng.uniform(-1, 1, count)
            colour[rng.random(count) < 0.2] = np.nan
            phase = rng.uniform(0, 2, count)
            phase[dead] = np.nan
            for unit in range(count):
                rows.append(
                    dict(
                        **IDENTIFIERS,
                        checkpoint="best",
                        epoch=1,
                        layer=layer,
                        layer_index=layer_index,
                        unit=unit,
                        stimulus_set=stimulus_set,
                        gosi=0.0 if dead[unit] else rng.random(),
                        dead=bool(dead[unit]),
                        spatial_frequency_selectivity=0.0 if dead[unit] else rng.random(),
                        colour_selectivity=colour[unit],
                        phase_modulation=phase[unit],
                    )
                )
    # units listed out of order: the scores must come back in unit order
    return pd.DataFrame(rows).sample(frac=1.0, random_state=1).reset_index(drop=True)


def test_feature_scores_read_the_gratings_rows_in_unit_order():
    tuning = fabricated_tuning({"conv1": 32, "conv2": 32})
    scores = feature_scores_from_table(tuning, "colour", ALL_FEATURES)
    gratings = tuning[(tuning["stimulus_set"] == "gratings") & (tuning["layer"] == "conv1")].sort_values(
        "unit"
    )
    index = gratings["colour_selectivity"].to_numpy()
    assert scores.ranking_name == "colour_selectivity"
    np.testing.assert_array_equal(scores.ranking["conv1"], np.where(np.isnan(index), -np.inf, index))
    assert scores.undefined["conv1"] == int(np.isnan(index).sum())
    assert set(scores.covariates["conv1"]) == {"orientation", "spatial_frequency", "phase"}
    dead = gratings["dead"].to_numpy()
    assert np.isnan(
        scores.covariates["conv1"]["orientation"][dead]
    ).all()  # gOSI of a dead unit: no measurement
    # only the features the table measured are covariates; orientation always is one
    assert set(feature_scores_from_table(tuning, "phase", ["orientation", "phase"]).covariates["conv2"]) == {
        "orientation"
    }


def test_feature_scores_refuse_what_they_cannot_rank():
    tuning = fabricated_tuning({"conv1": 8})
    with pytest.raises(ValueError, match="feature tests rank by one of"):
        feature_scores_from_table(tuning, "orientation", ALL_FEATURES)
    with pytest.raises(ValueError, match="not among the measured features"):
        feature_scores_from_table(tuning, "colour", ["orientation", "phase"])
    with pytest.raises(ValueError, match="lacks the columns \\['colour_selectivity'\\]"):
        feature_scores_from_table(tuning.drop(columns="colour_selectivity"), "phase", ALL_FEATURES)
    with pytest.raises(ValueError, match="exactly once"):
        feature_scores_from_table(pd.concat([tuning, tuning]), "phase", ALL_FEATURES)


# ---- the tests on a network -----------------------------------------------------------


@pytest.fixture(scope="module")
def network():
    torch.manual_seed(0)
    return LoadedNetwork(build_model("cnn7").eval(), torch.full((3, 32, 32), 0.5), epoch=0, info={})


@pytest.fixture(scope="module")
def data():
    generator = torch.Generator().manual_seed(1)
    return torch.rand(14, 3, 32, 32, generator=generator), torch.randint(0, 10, (14,), generator=generator)


@pytest.fixture(scope="module")
def tuning(network):
    return fabricated_tuning({layer: network.model.units(layer) for layer in network.model.layer_names})


def test_half_ablation_by_feature_table(network, data, tuning):
    images, labels = data
    scores = feature_scores_from_table(tuning, "colour", ALL_FEATURES)
    settings = AblationSettings(layers=("conv1", "fc1"), random_draws=3, batch_size=7)
    strata = feature_layer_strata(network, images, scores, settings.layers, 7)
    table, comparisons = half_ablation_by_feature(
        network, images, labels, scores, settings, IDENTIFIERS, strata=strata
    )
    assert list(table.columns[:7]) == [*IDENTIFIERS, "layer", "layer_index", "feature"]
    assert set(table["feature"]) == {"colour"} and set(table["ranking"]) == {"colour_selectivity"}
    assert table.groupby("layer")["condition"].value_counts().to_dict() == {
        (layer, condition): count
        for layer in settings.layers
        for condition, count in (("random", 3), ("matched", 3), ("top", 1), ("bottom", 1))
    }
    assert set(comparisons["comparison"]) == {"top_vs_bottom", "top_vs_random", "top_vs_matched"}
    # the overlaps are those of the sets ablated: top 1, bottom (disjoint) 0, matched = recomputed
    for layer in settings.layers:
        rows = table[table["layer"] == layer].set_index(["condition", "draw"])
        assert (
            rows.loc[("top", 0), "overlap_with_top"] == 1.0
            and rows.loc[("bottom", 0), "overlap_with_top"] == 0.0
        )
        sets = ablated_sets(
            scores.ranking[layer], strata[layer], 0.5, 3, settings.seed, network.model.layer_index(layer)
        )
        top = rank_units(scores.ranking[layer], 0.5, "top", None)
        draws = matched_draws(top, strata[layer], 3, settings.seed, network.model.layer_index(layer))
        for draw, units in enumerate(draws):
            assert np.array_equal(sets[("matched", draw)], units)
            assert rows.loc[("matched", draw), "overlap_with_top"] == overlap_with_top(units, top)
        assert (rows["n_undefined"] == scores.undefined[layer]).all()
        # no unit with an undefined colour index is in the top half (fewer than half are undefined)
        undefined = np.flatnonzero(np.isneginf(scores.ranking[layer]))
        assert not set(undefined) & set(top.tolist())
    # the random halves are those of the orientation test (same seed and generators)
    orientation, _ = half_ablation(
        network, images, labels, unit_scores_from_tables(tuning, None), settings, IDENTIFIERS
    )
    random = ["layer", "draw", "loss_increase_mean", "accuracy"]
    pd.testing.assert_frame_equal(
        orientation.loc[orientation["condition"] == "random", random].reset_index(drop=True),
        table.loc[table["condition"] == "random", random].reset_index(drop=True),
    )


def test_a_matched_draw_equal_to_the_top_half_costs_what_the_top_half_costs(network, data, tuning):
    """One stratum of top units only and one of others: every matched draw is the top half."""
    images, labels = data
    scores = feature_scores_from_table(tuning, "spatial_frequency", ALL_FEATURES)
    layer = "conv2"
    top = rank_units(scores.ranking[layer], 0.5, "top", None)
    strata = {layer: np.isin(np.arange(network.model.units(layer)), top).astype(int)}
    settings = AblationSettings(layers=(layer,), random_draws=2, batch_size=14)
    table, _ = half_ablation_by_feature(network, images, labels, scores, settings, IDENTIFIERS, strata=strata)
    matched = table[table["condition"] == "matched"]
    assert (matched["overlap_with_top"] == 1.0).all()
    top_row = table[table["condition"] == "top"].iloc[0]
    assert np.allclose(matched["loss_increase_mean"], top_row["loss_increase_mean"])


def test_shift_invariance_by_feature_table(network, data, tuning):
    images, _ = data
    scores = feature_scores_from_table(tuning, "phase", ALL_FEATURES)
    settings = InvarianceSettings(
        measured_layers=("conv5",),
        ablated_layers=("conv1", "conv2"),
        shifts=(1,),
        random_draws=2,
        batch_size=7,
    )
    strata = feature_layer_strata(network, images, scores, settings.ablated_layers, 7)
    table = shift_invariance_by_feature(network, images, scores, settings, IDENTIFIERS, strata=strata)
    assert set(table["feature"]) == {"phase"}
    assert table.loc[table["condition"] == "intact", "overlap_with_top"].isna().all()
    assert (table.loc[table["condition"] == "top", "overlap_with_top"] == 1.0).all()
    assert set(table.loc[table["condition"] == "matched", "draw"]) == {0, 1}
    # intact and random rows are those of the orientation test
    orientation = shift_invariance(
        network, images, unit_scores_from_tables(tuning, None)["gosi"], settings, IDENTIFIERS
    )
    same = ["measured_layer", "ablated_layer", "draw", "direction", "shift_px", "normalised_invariance_mean"]
    for condition in ("intact", "random"):
        pd.testing.assert_frame_equal(
            orientation.loc[orientation["condition"] == condition, same].reset_index(drop=True),
            table.loc[table["condition"] == condition, same].reset_index(drop=True),
        )
