"""The claims by low-level feature on small fabricated tables: the feature summary, the C1-C5
analogues through the claims' own machinery (the phase C1 on phase-invariant units), the
comparison across features (CF), the feature column of the claims and depth-profile tables, and
the figures of the report's "Low-level features" (docs/method.md §6.3-§6.5)."""

import numpy as np
import pandas as pd
import pytest

from selectivity.claims.depth_profiles import depth_profiles
from selectivity.claims.evaluation import FeatureTables, evaluate_claims, headline_claims
from selectivity.claims.features import COMPARISON, feature_view
from selectivity.claims.report import claims_figure, claims_html
from selectivity.claims.table import CLAIM_COLUMNS, ClaimSettings
from selectivity.figures.architecture_figures import depth_profiles_figure, feature_depth_profiles_figure
from selectivity.figures.catalogue import CATEGORIES, FIGURE_TABLE, figures_in_group, figures_of
from selectivity.figures.feature_figures import (
    feature_ablation_figure,
    feature_development_figure,
    feature_distributions_figure,
)
from selectivity.tuning.feature_summaries import feature_summary
from selectivity.tuning.summaries import selectivity_summary

LAYERS = ("conv1", "conv2", "conv5", "conv6", "fc1")
LOWER, HIGHER = ("conv1", "conv2"), ("conv5", "conv6", "fc1")
LAYER_ROLES = {"cnn7": {"lower_layers": list(LOWER), "higher_layers": list(HIGHER)}}
SETTINGS = ClaimSettings(lower_layers=LOWER, higher_layers=HIGHER, n_permutations=199, seed=1)
RANKED = ("spatial_frequency", "colour", "phase")
EPOCHS = (0, 1, 3, 5)
UNITS = 12
SEEDS = range(6)


def network(label_corruption, seed):
    return dict(model="cnn7", dataset="cifar10", label_corruption=label_corruption, seed=seed)


def unit_indices(rng, stimulus_set, training, units):
    """Per unit indices: gratings become more selective (and phase more invariant) with training."""
    if stimulus_set == "shuffled":
        return dict(
            gosi=rng.uniform(0.0, 0.3, units),
            spatial_frequency_selectivity=rng.uniform(0.2, 0.5, units),
            colour_selectivity=rng.uniform(-0.3, 0.3, units),
            phase_modulation=rng.uniform(1.2, 1.8, units),
        )
    return dict(
        gosi=rng.uniform(0.1, 0.3, units) + 0.5 * training,
        spatial_frequency_selectivity=rng.uniform(0.2, 0.4, units) + 0.5 * training,
        colour_selectivity=rng.uniform(-0.4, 0.0, units) + 0.9 * training,
        phase_modulation=rng.uniform(1.3, 1.8, units) - 1.1 * training,
    )


@pytest.fixture(scope="module")
def tables():
    """Tuning, metrics and causal tables of 12 networks (two corruption levels x 6 seeds)."""
    rng = np.random.default_rng(0)
    tuning, metrics, orientation, features, invariance = [], [], [], [], []
    for corruption in (0.0, 0.5):
        for seed in SEEDS:
            identity = network(corruption, seed)
            for epoch in EPOCHS:
                # training progress: rises with epoch, less with corrupted labels
                training = (epoch / 5) * (1.0 - corruption) * rng.uniform(0.8, 1.0)
                accuracy = 0.1 + 0.7 * training + rng.uniform(0, 0.01)
                metrics.append(
                    dict(
                        identity,
                        epoch=epoch,
                        test_accuracy=accuracy,
                        test_loss=2.3 - accuracy,
                        validation_accuracy=accuracy,
                        validation_loss=2.3 - accuracy,
                        train_accuracy=accuracy,
                        train_accuracy_true_labels=accuracy,
                    )
                )
                checkpoints = [("epoch", epoch)] + ([("best", epoch)] if epoch == 5 else [])
                for checkpoint, _ in checkpoints:
                    for layer_index, layer in enumerate(LAYERS):
                        for stimulus_set in ("gratings", "shuffled"):
                            indices = unit_indices(rng, stimulus_set, training, UNITS)
                            dead = np.zeros(UNITS, dtype=bool)
                            dead[0] = True  # one dead unit per layer: gOSI, SF 0; F1/F0 undefined
                            indices["gosi"][dead] = 0.0
                            indices["spatial_frequency_selectivity"][dead] = 0.0
                            indices["phase_modulation"][dead] = np.nan
                            indices["colour_selectivity"][1] = np.nan
                            for unit in range(UNITS):
                                tuning.append(
                                    dict(
                                        identity,
                                        checkpoint=checkpoint,
                                        epoch=epoch,
                                        layer=layer,
                                        layer_index=layer_index,
                                        unit=unit,
                                        stimulus_set=stimulus_set,
                                        osi=indices["gosi"][unit],
                                        dead=bool(dead[unit]),
                                        peak_response=1.0,
                                        **{name: values[unit] for name, values in indices.items()},
                                    )
                                )
            if corruption:
                continue
            # causal tables of the clean networks: the top half costs more than every control, by
            # colour most, then phase, SF, orientation
            top_cost = {
                "gosi": 0.3,
                "spatial_frequency_selectivity": 0.4,
                "colour_selectivity": 0.6,
                "phase_modulation": 0.5,
            }
            for layer_index, layer in enumerate(LAYERS):
                for ranking, cost in top_cost.items():
                    feature = {
                        "gosi": None,
                        "spatial_frequency_selectivity": "spatial_frequency",
                        "colour_selectivity": "colour",
                        "phase_modulation": "phase",
                    }[ranking]
                    conditions = [("top", 0, cost), ("bottom", 0, 0.05)]
                    conditions += [("random", d, 0.1 + 0.01 * d) for d in range(2)]
                    conditions += [("matched", d, 0.15) for d in range(2)]
                    for condition, draw, value in conditions:
                        row = dict(
                            identity,
                            checkpoint="best",
                            epoch=5,
                            layer=layer,
                            layer_index=layer_index,
                            ranking=ranking,
                            condition=condition,
                            draw=draw,
                            loss_increase_mean=value + rng.normal(0, 0.01),
                        )
                        (orientation if feature is None else features).append(
                            row if feature is None else dict(row, feature=feature)
                        )
            for feature in RANKED:
                for ablated in LOWER:
                    for measured in HIGHER:
                        for condition, draw, value in [
                            ("top", 0, 0.4),
                            ("bottom", 0, 0.7),
                            ("random", 0, 0.6),
                            ("matched", 0, 0.55),
                        ]:
                            invariance.append(
                                dict(
                                    identity,
                                    checkpoint="best",
                                    epoch=5,
                                    feature=feature,
                                    measured_layer=measured,
                                    ablated_layer=ablated,
                                    condition=condition,
                                    draw=draw,
                                    direction="horizontal",
                                    shift_px=1,
                                    normalised_invariance_mean=value + rng.normal(0, 0.01),
                                )
                            )
    return dict(
        tuning=pd.DataFrame(tuning),
        metrics=pd.DataFrame(metrics),
        orientation=pd.DataFrame(orientation),
        features=pd.DataFrame(features),
        invariance=pd.DataFrame(invariance),
    )


THRESHOLDS = {"orientation": 0.33, "spatial_frequency": 0.5, "colour": 0.33, "phase": 1.0}


@pytest.fixture(scope="module")
def summaries(tables):
    return (
        selectivity_summary(tables["tuning"], tables["metrics"], 0.33),
        feature_summary(tables["tuning"], tables["metrics"], THRESHOLDS),
    )


# ---------------------------------------------------------------- the feature summary


def test_the_feature_summary_repeats_the_gosi_summary_and_counts_measured_units(tables, summaries):
    gosi, features = summaries
    orientation = features[features["feature"] == "orientation"].reset_index(drop=True)
    for ours, theirs in [
        ("fraction_selective", "fraction_selective"),
        ("mean_index", "mean_gosi"),
        ("mean_index_measured", "mean_gosi_responsive"),
        ("median_index", "median_gosi"),
    ]:
        np.testing.assert_allclose(orientation[ours], gosi[theirs])
    assert (orientation["n_measured"] == UNITS - 1).all()  # the dead unit's gOSI is no measurement
    phase = features[features["feature"] == "phase"]
    assert (phase["n_measured"] == UNITS - 1).all() and (phase["index"] == "phase_modulation").all()
    colour = features[features["feature"] == "colour"]
    assert (colour["n_measured"] == UNITS - 1).all()  # unit 1's colour index is undefined
    # the fractions by hand for one layer
    rows = tables["tuning"]
    one = rows[(rows["seed"] == 2) & (rows["label_corruption"] == 0.0) & (rows["checkpoint"] == "best")]
    one = one[(one["layer"] == "conv2") & (one["stimulus_set"] == "gratings")]
    row = phase[
        (phase["seed"] == 2)
        & (phase["label_corruption"] == 0.0)
        & (phase["checkpoint"] == "best")
        & (phase["layer"] == "conv2")
        & (phase["stimulus_set"] == "gratings")
    ].iloc[0]
    assert row["fraction_below_threshold"] == pytest.approx((one["phase_modulation"] < 1.0).sum() / UNITS)
    assert row["fraction_selective"] == pytest.approx((one["phase_modulation"] > 1.0).sum() / UNITS)
    assert row["mean_index_measured"] == pytest.approx(one["phase_modulation"].mean())  # NaN left out
    assert {"test_accuracy", "validation_loss"} <= set(features.columns)


def test_the_feature_summary_refuses_bad_thresholds(tables):
    with pytest.raises(ValueError, match="no threshold given for the feature 'phase'"):
        feature_summary(
            tables["tuning"], tables["metrics"], {"orientation": 0.33, "colour": 0.3}, ["colour", "phase"]
        )
    with pytest.raises(ValueError, match="phase threshold 2.5"):
        feature_summary(tables["tuning"], tables["metrics"], {**THRESHOLDS, "phase": 2.5})


# ---------------------------------------------------------------- the claims


@pytest.fixture(scope="module")
def claims(tables, summaries):
    gosi, features = summaries
    feature_tables = FeatureTables(features, tables["features"], tables["invariance"], RANKED)
    return evaluate_claims(gosi, tables["orientation"], pd.DataFrame(), SETTINGS, LAYER_ROLES, feature_tables)


def test_orientation_rows_are_those_without_the_feature_tables(tables, summaries, claims):
    gosi, _ = summaries
    alone = evaluate_claims(gosi, tables["orientation"], pd.DataFrame(), SETTINGS, LAYER_ROLES)
    assert list(claims.columns) == list(CLAIM_COLUMNS)
    assert set(alone["feature"]) == {"orientation"}
    pd.testing.assert_frame_equal(
        claims[(claims["feature"] == "orientation") & (claims["claim"] != COMPARISON)].reset_index(drop=True),
        alone,
        check_dtype=False,
    )


def test_every_feature_has_the_c1_to_c5_analogues_and_one_headline_each(claims):
    for feature in RANKED:
        rows = claims[claims["feature"] == feature]
        assert set(rows["claim"]) >= {"C1", "C2", "C3", "C4", "C5"}
        heads = headline_claims(rows)
        assert heads.groupby("claim").size().to_dict() == {
            "C1": 1,
            "C2": 1,
            "C3": 1,
            "C4": 1,
            "C5": 1,
            COMPARISON: 1,
        }
        assert rows["statement"].str.len().min() > 20 and rows["rule"].str.len().min() > 20
    heads = headline_claims(claims)
    assert not heads.duplicated(["model", "claim", "feature"]).any()


def verdict(claims, feature, claim, test="claim", layer=None):
    rows = claims[(claims["feature"] == feature) & (claims["claim"] == claim) & (claims["test"] == test)]
    if layer is not None:
        rows = rows[rows["layer"] == layer]
    else:
        rows = rows[rows["headline"].astype(bool)]
    assert len(rows) == 1, rows
    return rows.iloc[0]


def test_feature_claims_are_decided_from_the_feature_tables(claims):
    for feature in ("spatial_frequency", "colour"):
        assert verdict(claims, feature, "C1")["verdict"] == "supported"
        assert (
            verdict(claims, feature, "C2", f"{feature_view(feature, 0.5).test_prefix}_vs_accuracy", "lower")[
                "verdict"
            ]
            == "supported"
        )
        assert verdict(claims, feature, "C2")["verdict"] in ("supported", "supported, not specific")
        assert verdict(claims, feature, "C3")["verdict"] == "supported"
    for feature in RANKED:
        assert verdict(claims, feature, "C4")["verdict"] == "supported"
        assert verdict(claims, feature, "C5")["verdict"] == "supported"
    # the statistic names the feature's index, not gOSI
    c4 = verdict(claims, "colour", "C4", "top_minus_random", "pooled")
    assert "by colour selectivity" in c4["statistic"] and "gOSI" not in c4["statistic"]


def test_the_phase_c1_counts_phase_invariant_units(claims, summaries):
    _, features = summaries
    row = verdict(claims, "phase", "C1", "gratings_minus_shuffled", "lower")
    assert "F1/F0 < 1.0" in row["statistic"] and row["verdict"] == "supported"
    # by hand: the median over clean networks of the lower layers' fraction below 1, gratings minus shuffled
    best = features[
        (features["feature"] == "phase")
        & (features["checkpoint"] == "best")
        & (features["label_corruption"] == 0.0)
    ]
    best = best[best["layer"].isin(LOWER)]
    per_network = best.pivot_table(
        index=["seed", "layer"], columns="stimulus_set", values="fraction_below_threshold"
    )
    values = (per_network["gratings"] - per_network["shuffled"]).groupby(level="seed").mean()
    assert row["effect_size"] == pytest.approx(values.median())
    # phase's C2 correlates mean F1/F0, which falls with training here: not supported (the mirror rule)
    assert (
        verdict(claims, "phase", "C2", "phase_modulation_vs_accuracy", "lower")["verdict"] == "not supported"
    )


def test_the_comparison_across_features_finds_the_costliest_feature(claims, tables):
    rows = claims[claims["claim"] == COMPARISON]
    assert set(rows["feature"]) == {"all", "orientation", *RANKED}
    # colour's top half costs most in every layer; orientation's least
    assert verdict(claims, "colour", COMPARISON)["verdict"] == "supported"
    assert verdict(claims, "orientation", COMPARISON)["verdict"] == "not supported"
    for layer in ("pooled", *LOWER):
        pair = rows[(rows["test"] == "spatial_frequency_minus_colour") & (rows["layer"] == layer)]
        assert pair.iloc[0]["verdict"] == "not supported" and pair.iloc[0]["feature"] == "all"
    # the effect of a pair: the median over networks of the difference of top-half losses, mean over lower layers
    clean = tables["features"]
    top = clean[clean["condition"] == "top"].pivot_table(
        index=["seed", "layer"], columns="ranking", values="loss_increase_mean"
    )
    top = top[top.index.get_level_values("layer").isin(LOWER)]
    expected = (top["colour_selectivity"] - top["phase_modulation"]).groupby(level="seed").mean().median()
    pair = rows[(rows["test"] == "colour_minus_phase") & (rows["layer"] == "pooled")].iloc[0]
    assert pair["effect_size"] == pytest.approx(expected)
    assert pair["ci_low"] <= pair["effect_size"] <= pair["ci_high"]


def test_without_feature_tables_of_a_network_the_comparison_is_inconclusive(summaries, tables):
    gosi, features = summaries
    feature_tables = FeatureTables(features, pd.DataFrame(), pd.DataFrame(), RANKED)
    claims = evaluate_claims(
        gosi, tables["orientation"], pd.DataFrame(), SETTINGS, LAYER_ROLES, feature_tables
    )
    comparison = claims[claims["claim"] == COMPARISON]
    assert len(comparison) == 1 and comparison.iloc[0]["verdict"].startswith("inconclusive")
    assert "fewer than two features" in comparison.iloc[0]["statistic"]
    assert verdict(claims, "colour", "C4")["verdict"].startswith("inconclusive")


def test_feature_thresholds_are_settings_and_validated():
    assert ClaimSettings().threshold_of("phase") == 1.0
    assert ClaimSettings(feature_thresholds={"phase": 1.2}).threshold_of("phase") == 1.2
    assert ClaimSettings(selectivity_threshold=0.4).threshold_of("orientation") == 0.4
    with pytest.raises(ValueError, match="the colour threshold 1.5"):
        ClaimSettings(feature_thresholds={"colour": 1.5})
    with pytest.raises(ValueError, match="texture"):
        ClaimSettings(feature_thresholds={"texture": 0.2})


def test_claims_html_and_figure_by_feature(claims):
    html = claims_html(claims, SETTINGS, LAYER_ROLES)
    assert "C1 (colour)" in html and "C4 (spatial_frequency)" in html
    paper = claims_figure(claims, "cnn7")
    assert len(paper.axes) == 6  # C1-C6, the paper's claims only
    by_feature = claims_figure(claims, "cnn7", by_feature=True)
    titles = [ax.get_title(loc="left") for ax in by_feature.axes]
    assert [title.split(":")[0] for title in titles] == ["C1", "C2", "C3", "C4", "C5", COMPARISON]
    labels = [label.get_text() for label in by_feature.axes[3].get_yticklabels()]
    assert any(label.startswith("colour: claim [pooled]") for label in labels)


# ---------------------------------------------------------------- depth profiles and figures


def test_depth_profiles_have_a_feature_column_and_every_features_claims(tables, summaries):
    gosi, features = summaries
    feature_tables = FeatureTables(features, tables["features"], tables["invariance"], RANKED)
    profiles = depth_profiles(
        gosi, tables["orientation"], pd.DataFrame(), SETTINGS, LAYER_ROLES, feature_tables
    )
    assert list(profiles["feature"].unique()) == ["orientation", *RANKED]
    colour_c4 = profiles[(profiles["feature"] == "colour") & (profiles["claim"] == "C4")]
    assert set(colour_c4["layer"]) == set(LAYERS)
    assert "colour selectivity" in colour_c4["quantity"].iloc[0]
    assert (colour_c4["estimate"] > 0.4).all()  # top 0.6 minus random about 0.105
    assert set(profiles.loc[profiles["feature"] == "phase", "claim"]) == {"C1", "C2", "C3", "C4", "C5"}
    alone = depth_profiles(gosi, tables["orientation"], pd.DataFrame(), SETTINGS, LAYER_ROLES)
    pd.testing.assert_frame_equal(
        profiles[profiles["feature"] == "orientation"].reset_index(drop=True), alone
    )
    figure = depth_profiles_figure(profiles, feature="colour")
    assert "(colour)" in figure._suptitle.get_text()
    assert len(feature_depth_profiles_figure(profiles).axes) == 5
    with pytest.raises(ValueError, match="no rows of the feature 'texture'"):
        depth_profiles_figure(profiles, feature="texture")


def test_feature_figures(tables, summaries):
    _, features = summaries
    tuning = tables["tuning"]
    best = tuning[tuning["checkpoint"] == "best"]
    figure = feature_distributions_figure(
        best, thresholds={"spatial_frequency": 0.5, "colour": 0.33, "phase": 1.0}
    )
    panels = [ax for ax in figure.axes if ax.get_ylabel()]
    assert [ax.get_ylabel() for ax in panels] == ["SF selectivity", "colour selectivity", "F1/F0"]
    assert "330 units with a measured index (+30 without)" in panels[1].get_title()  # 6 networks x 5 layers
    development = feature_development_figure(features)
    assert [ax.get_title() for ax in development.axes if ax.get_title()] == [
        "gOSI",
        "SF selectivity",
        "colour selectivity",
        "F1/F0",
    ]
    ablation = feature_ablation_figure(tables["orientation"], tables["features"])
    assert "cost the most" in ablation._suptitle.get_text()


def test_the_feature_figures_are_a_report_category_of_their_own():
    entries = {entry.figure: entry for entry in FIGURE_TABLE}
    for figure in (
        "feature_distributions",
        "feature_development",
        "feature_claims",
        "feature_ablation",
        "feature_depth_profiles",
    ):
        assert entries[figure].category == CATEGORIES["features"] and "features" in entries[figure].needs
    assert (
        entries["feature_distributions"].group == "tuning" and entries["feature_ablation"].group == "causal"
    )
    assert (
        entries["feature_development"].group == "training"
        and entries["feature_depth_profiles"].group == "across"
    )
    # a run without a feature besides orientation draws none of them
    assert not {f for f in figures_of("model", has_features=False) if f.startswith("feature_")}
    assert "feature_depth_profiles" not in figures_in_group("across", has_features=False)
    assert "feature_distributions" in figures_of("model", trained=False, has_test_images=False)
    assert "feature_ablation" not in figures_of("model", trained=False, has_test_images=False)


def test_the_readme_tables_script_prints_every_table_from_a_runs_files(
    tmp_path, tables, summaries, claims, capsys
):
    """benchmarks/feature_tables.py (docs/results.md, the real-subset features run) on fabricated results."""
    from conftest import load_benchmark

    script = load_benchmark("feature_tables")
    aggregate = tmp_path / "results" / "aggregate"
    aggregate.mkdir(parents=True)
    summaries[1].to_csv(aggregate / "feature_summary.csv", index=False)
    tables["orientation"].to_csv(aggregate / "half_ablation.csv", index=False)
    features = tables["features"].assign(
        overlap_with_top=np.where(tables["features"]["condition"] == "matched", 0.75, 1.0)
    )
    features.to_csv(aggregate / "feature_half_ablation.csv", index=False)
    claims.to_csv(tmp_path / "results" / "claims.csv", index=False)
    script.main([str(tmp_path)])
    printed = capsys.readouterr().out
    assert printed.count("\n### ") + printed.startswith("### ") == 5 and "## cnn7" in printed
    paper = printed.split("### The paper's claims C1-C6 (orientation)")[1].split("###")[0]
    assert (
        paper.count("\n| C") >= 6 and "| C1 | lower+higher | yes | gratings_minus_shuffled [lower]" in paper
    )
    assert "| F1/F0 | conv1 | 1 |" in printed  # phase rows with their threshold
    assert "| CF | colour | claim [pooled] |" in printed and "supported" in printed
    assert "| colour selectivity | conv1 | 0.75 | 0 of 12 |" in printed  # 6 networks x 2 matched draws
    ablation = printed.split("### Ablation cost")[1].split("###")[0]
    assert ablation.index("| conv1 | F1/F0 |") < ablation.index("| conv2 | gOSI |")  # by layer, then feature
