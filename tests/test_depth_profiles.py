"""Claims across architectures: per-layer effects at relative depth (docs/method.md §6.5), and their figure."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from selectivity.claims.table import ClaimSettings
from selectivity.claims.depth_profiles import DEPTH_PROFILE_COLUMNS, depth_profiles, relative_depths
from selectivity.figures.plots import depth_profiles_figure, plot_depth_profiles

SEEDS = (0, 1, 2)
# Two layers of each architecture: its first and its last analysed layer.
LAYERS = {"cnn7": (("conv1", 0), ("fc1", 6)), "resnet20": (("stem", 0), ("block3_3", 9))}
SETTINGS = ClaimSettings(lower_layers=("conv1",), higher_layers=("fc1",))
LAYERS_BY_MODEL = {
    "cnn7": {"lower_layers": ["conv1"], "higher_layers": ["fc1"]},
    "resnet20": {"lower_layers": ["stem"], "higher_layers": ["block3_3"]},
}


def network(model, seed, corruption=0.0):
    return dict(model=model, dataset="synthetic", label_corruption=corruption, seed=seed)


def half_ablation_table() -> pd.DataFrame:
    """Top minus random (mean of the draws 0.2 and 0.4) is 0.2 + 0.1 x seed in every layer;
    class-selectivity ranking: top minus random is -0.05 everywhere."""
    rows = []
    for model, layers in LAYERS.items():
        for seed in SEEDS:
            for layer, index in layers:
                for ranking, top in (("gosi", 0.5 + 0.1 * seed), ("class_selectivity", 0.25)):
                    for condition, draw, increase in (
                        ("top", 0, top),
                        ("random", 0, 0.2),
                        ("random", 1, 0.4),
                    ):
                        rows.append(
                            dict(
                                network(model, seed), checkpoint="best", epoch=3, layer=layer, layer_index=index,
                                ranking=ranking, condition=condition, draw=draw, loss_increase_mean=increase,
                            )
                        )  # fmt: skip
    return pd.DataFrame(rows)


def invariance_table() -> pd.DataFrame:
    """Random minus top is 0.1 in the higher layer of each model and 0.3 in another measured layer."""
    rows = []
    for model, ((lower, _), (higher, _)) in LAYERS.items():
        for seed in SEEDS:
            for measured, gap in ((higher, 0.1), ("other", 0.3)):
                for shift in (1, 2):
                    cell = dict(
                        network(model, seed), checkpoint="best", epoch=3, measured_layer=measured,
                        direction="horizontal", shift_px=shift, draw=0,
                    )  # fmt: skip
                    rows.append(
                        dict(cell, ablated_layer="none", condition="intact", normalised_invariance_mean=0.9)
                    )
                    for condition, value in (("top", 0.5 - 0.1 * shift), ("random", 0.5 - 0.1 * shift + gap)):
                        rows.append(
                            dict(
                                cell,
                                ablated_layer=lower,
                                condition=condition,
                                normalised_invariance_mean=value,
                            )
                        )
    return pd.DataFrame(rows)


def summary_table() -> pd.DataFrame:
    """Clean and half-corrupted networks; gOSI and accuracy rise together over epochs 1-3; across
    the 6 networks at the final epoch, gOSI and accuracy ranks differ in two networks by one."""
    rows = []
    for model, layers in LAYERS.items():
        for corruption in (0.0, 0.5):
            for seed in SEEDS:
                for checkpoint, epoch in (
                    ("epoch", 0),
                    ("epoch", 1),
                    ("epoch", 2),
                    ("epoch", 3),
                    ("best", 3),
                ):
                    accuracy = 0.2 + 0.1 * epoch * (1 - corruption) + 0.01 * seed
                    for layer, index in layers:
                        for stimulus_set, fraction in (("gratings", 0.4 + 0.1 * seed), ("shuffled", 0.1)):
                            gosi = 0.1 + 0.05 * epoch * (1 - corruption) + 0.04 * seed
                            rows.append(
                                dict(
                                    network(model, seed, corruption), checkpoint=checkpoint, epoch=epoch,
                                    layer=layer, layer_index=index, stimulus_set=stimulus_set,
                                    fraction_selective=fraction,
                                    mean_gosi_responsive=gosi if stimulus_set == "gratings" else 0.05,
                                    test_accuracy=accuracy,
                                )
                            )  # fmt: skip
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def profiles() -> pd.DataFrame:
    return depth_profiles(
        summary_table(), half_ablation_table(), invariance_table(), SETTINGS, LAYERS_BY_MODEL
    )


def row(profiles, model, claim, layer):
    rows = profiles[
        (profiles["model"] == model) & (profiles["claim"] == claim) & (profiles["layer"] == layer)
    ]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_columns_and_relative_depth_of_architectures_of_different_depth(profiles):
    assert list(profiles.columns) == list(DEPTH_PROFILE_COLUMNS)
    assert set(profiles["claim"]) == {"C1", "C2", "C3", "C4", "C5", "C6"}
    # fc1 is cnn7's 7th of 7 layers, block3_3 resnet20's 10th of 10: both at depth 1
    for model, ((first, _), (last, _)) in LAYERS.items():
        assert row(profiles, model, "C4", first)["relative_depth"] == 0.0
        assert row(profiles, model, "C4", last)["relative_depth"] == 1.0
    np.testing.assert_allclose(
        relative_depths("resnet20", pd.Series([0, 1, 9])).to_numpy(), [0.0, 1 / 9, 1.0]
    )
    # a model the package does not know: its deepest layer in the table sits at 1
    np.testing.assert_allclose(relative_depths("my_net", pd.Series([0, 2, 4])).to_numpy(), [0.0, 0.5, 1.0])


def test_ablation_effects_are_medians_over_clean_networks_with_the_claims_bounds(profiles):
    # top minus mean of the random draws: 0.2 + 0.1 x seed; 3 networks: the bounds are min and max
    for model, layers in LAYERS.items():
        for layer, _ in layers:
            c4 = row(profiles, model, "C4", layer)
            assert c4["n_networks"] == 3 and c4["confidence"] == 0.95
            np.testing.assert_allclose([c4["estimate"], c4["ci_low"], c4["ci_high"]], [0.3, 0.2, 0.4])
            np.testing.assert_allclose(row(profiles, model, "C6", layer)["estimate"], -0.05)


def test_invariance_effect_is_per_ablated_layer_over_each_models_own_higher_layers(profiles):
    for model, ((lower, _), _) in LAYERS.items():
        c5 = row(profiles, model, "C5", lower)
        np.testing.assert_allclose([c5["estimate"], c5["ci_low"], c5["ci_high"]], [0.1, 0.1, 0.1])
    # with "other" counted as a higher layer too, the mean over measured layers moves to 0.2
    wider = {
        model: {"lower_layers": [lower[0]], "higher_layers": [higher[0], "other"]}
        for model, (lower, higher) in LAYERS.items()
    }
    both = depth_profiles(pd.DataFrame(), pd.DataFrame(), invariance_table(), SETTINGS, wider)
    np.testing.assert_allclose(row(both, "cnn7", "C5", "conv1")["estimate"], 0.2)


def test_selectivity_and_correlation_profiles(profiles):
    c1 = row(profiles, "cnn7", "C1", "conv1")  # gratings 0.4 + 0.1 x seed minus shuffled 0.1 at "best"
    np.testing.assert_allclose(c1["estimate"], 0.4)
    c2 = row(profiles, "resnet20", "C2", "stem")  # every clean network: gOSI rises with accuracy
    assert c2["estimate"] == 1.0 and c2["n_networks"] == 3
    c3 = row(profiles, "cnn7", "C3", "fc1")  # final epoch, all 6 networks
    r = 1 - 6 * 2 / (6 * 35)  # Spearman with rank differences (1, 1)
    z, se = np.arctanh(r), np.sqrt((1 + r**2 / 2) / 3)  # Bonett & Wright's SE of z for Spearman
    expected = [r, np.tanh(z - 1.959964 * se), np.tanh(z + 1.959964 * se)]
    assert c3["n_networks"] == 6
    np.testing.assert_allclose([c3["estimate"], c3["ci_low"], c3["ci_high"]], expected, rtol=1e-5)


def test_missing_tables_give_only_the_claims_they_can(profiles):
    only_ablation = depth_profiles(pd.DataFrame(), half_ablation_table(), pd.DataFrame(), SETTINGS)
    assert set(only_ablation["claim"]) == {"C4", "C6"}
    assert depth_profiles(pd.DataFrame(), pd.DataFrame(), pd.DataFrame(), SETTINGS).empty


def test_figure_has_a_panel_per_claim_and_a_line_per_architecture(profiles, tmp_path):
    figure = depth_profiles_figure(profiles)
    panels = [ax for ax in figure.axes if ax.get_title()]
    assert [ax.get_title().split(":")[0] for ax in panels] == ["C1", "C2", "C3", "C4", "C5", "C6"]
    legend_labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert legend_labels == ["cnn7", "resnet20"]
    c4 = panels[3]
    plotted = [list(container.lines[0].get_xdata()) for container in c4.containers]
    assert plotted == [[0.0, 1.0], [0.0, 1.0]]
    np.testing.assert_allclose(c4.containers[0].lines[0].get_ydata(), [0.3, 0.3])
    plot_depth_profiles(profiles, tmp_path / "depth.pdf", tmp_path / "depth.png")
    assert (tmp_path / "depth.pdf").stat().st_size > 0 and (tmp_path / "depth.png").stat().st_size > 0


def test_a_panel_without_a_defined_value_says_so(profiles):
    undefined = profiles.copy()
    undefined.loc[undefined["claim"] == "C3", ["estimate", "ci_low", "ci_high"]] = np.nan
    figure = depth_profiles_figure(undefined)
    c3 = next(ax for ax in figure.axes if ax.get_title().startswith("C3"))
    assert [text.get_text() for text in c3.texts] == ["not defined for these networks"]
    c4 = next(ax for ax in figure.axes if ax.get_title().startswith("C4"))
    assert not c4.texts


def test_every_panel_names_its_unit_and_the_fraction_is_the_runs(profiles):
    """Units on every axis (issue 31): the table's unit column labels each panel's y axis."""
    units = profiles.drop_duplicates("claim").set_index("claim")["unit"]
    assert units["C4"] == units["C6"] == "nats per image"
    assert units["C1"] == "fraction of units with gOSI > 0.33" and "correlation" in units["C3"]
    figure = depth_profiles_figure(profiles)
    panels = [ax for ax in figure.axes if ax.get_title()]
    for ax, claim in zip(panels, ["C1", "C2", "C3", "C4", "C5", "C6"]):
        assert ax.get_ylabel().replace("\n", " ") == units[claim]
        if ax.get_xlabel():
            assert ax.get_xlabel() == "relative depth (0 = first, 1 = last)"
    quarter = depth_profiles(
        pd.DataFrame(), half_ablation_table(), pd.DataFrame(), replace(SETTINGS, ablation_fraction=0.25)
    )
    assert set(quarter.loc[quarter.claim == "C4", "quantity"]) == {
        "test-loss increase, top-25% gOSI minus random-25% ablation (median)"
    }
