"""End to end: the whole DAG on the offline demo configuration, and the contents of what it wrote.

The demo (config/demo.yaml) trains 10 small networks on the synthetic stand-in dataset and runs
every later stage; these tests read its tables, checkpoints, figures and report as a user would.
"""

from __future__ import annotations

import html
import json

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import REPO, run_snakemake
from selectivity.networks.checkpoints import load_checkpoint
from selectivity.config import saved_epochs
from selectivity.figures.catalogue import figures_of
from selectivity.tuning.summaries import select_checkpoint
from selectivity.claims.verdicts import VERDICTS

pytestmark = pytest.mark.slow

DEMO = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
SEEDS = DEMO["networks"]["seeds"]
CORRUPTIONS = DEMO["networks"]["label_corruption"]
EPOCHS = DEMO["training"]["epochs"]
SAVED = saved_epochs({"checkpoint_epochs": DEMO["training"]["checkpoint_epochs"], "epochs": EPOCHS})
N_NETWORKS = len(SEEDS) * len(CORRUPTIONS)
CNN7_UNITS = {"conv1": 32, "conv2": 32, "conv3": 64, "conv4": 64, "conv5": 128, "conv6": 128, "fc1": 512}
NETWORK_DIRS = [
    f"cnn7/synthetic/corruption{c:.2f}/seed{s}" for c in sorted(CORRUPTIONS) for s in sorted(SEEDS)
]
CAUSAL_CORRUPTIONS = DEMO["causal"]["label_corruption"]  # the networks that get the causal tests
N_CAUSAL = len(SEEDS) * len(CAUSAL_CORRUPTIONS)
# The low-level features besides orientation (the demo measures all four, the default).
RANKED = ("spatial_frequency", "colour", "phase")
RANKINGS = {
    "spatial_frequency": "spatial_frequency_selectivity",
    "colour": "colour_selectivity",
    "phase": "phase_modulation",
}


def paper_claims(claims: pd.DataFrame) -> pd.DataFrame:
    """The rows of the paper's claims C1-C6 (about orientation; not the other features' analogues or CF)."""
    return claims[(claims["feature"] == "orientation") & (claims["claim"] != "CF")]


def test_dataset_and_split(demo_run):
    with np.load(demo_run / "results/data/synthetic.npz") as data:
        assert data["x_train"].shape == (DEMO["dataset"]["synthetic"]["train_size"], 32, 32, 3)
        assert data["x_test"].shape == (DEMO["dataset"]["synthetic"]["test_size"], 32, 32, 3)
        assert str(data["description"]).startswith("synthetic stand-in")
        y_train = data["y_train"]
    with np.load(demo_run / "results/data/synthetic_split.npz") as split:
        train, validation = split["train_indices"], split["validation_indices"]
    assert len(validation) == DEMO["dataset"]["validation_size"]
    assert len(np.intersect1d(train, validation)) == 0 and len(train) + len(validation) == len(y_train)
    # stratified: every class holds its share of the validation images (+-1)
    counts = np.bincount(y_train[validation], minlength=10)
    expected = np.bincount(y_train, minlength=10) * len(validation) / len(y_train)
    assert np.all(np.abs(counts - expected) <= 1)


@pytest.mark.parametrize("network", NETWORK_DIRS)
def test_checkpoints_and_metrics(demo_run, network):
    directory = demo_run / "results/networks" / network
    metrics = pd.read_csv(directory / "metrics.csv")
    assert list(metrics["epoch"]) == list(range(EPOCHS + 1))
    assert metrics[["train_loss", "validation_loss", "test_loss"]].notna().all().all()
    assert metrics.loc[0, "test_accuracy"] < 0.2  # initialisation is at chance
    if "corruption0.00" in network:
        assert metrics["test_accuracy"].max() > 0.3  # the clean networks learn (chance is 0.1)
    for epoch in SAVED:
        loaded = load_checkpoint(directory / f"checkpoints/epoch{epoch}.pt")
        assert loaded.epoch == epoch
        assert loaded.info["network"]["seed"] == int(network.rsplit("seed", 1)[1])
        assert loaded.info["provenance"]["config_hash"]
    best = load_checkpoint(directory / "checkpoints/best.pt")
    best_epoch = int(metrics.loc[metrics["epoch"] >= 1, "validation_loss"].idxmin())
    assert best.epoch == metrics.loc[best_epoch, "epoch"]


def test_tuning_tables_cover_every_unit_layer_checkpoint_network(demo_run):
    tuning = pd.read_csv(demo_run / "results/aggregate/tuning.csv")
    checkpoints_per_network = len(SAVED) + 1  # + best
    units = sum(CNN7_UNITS.values())
    assert len(tuning) == units * 2 * checkpoints_per_network * N_NETWORKS
    one = tuning[(tuning.seed == SEEDS[0]) & (tuning.label_corruption == 0) & (tuning.checkpoint == "best")]
    assert one.groupby("layer")["unit"].nunique().to_dict() == CNN7_UNITS
    assert set(one["stimulus_set"]) == {"gratings", "shuffled"}
    assert tuning["gosi"].between(0, 1).all() and tuning["osi"].between(0, 1).all()
    network_table = pd.read_csv(demo_run / f"results/tuning/{NETWORK_DIRS[0]}/tuning.csv")
    assert len(network_table) == units * 2 * checkpoints_per_network  # every checkpoint of one network
    with np.load(demo_run / f"results/tuning/{NETWORK_DIRS[0]}/curves.npz") as curves:
        assert curves["best/conv1"].shape == (32, 9, 12)
        assert curves["best/fc1"].shape == (512, 9, 12)
        assert {f"epoch{epoch}/conv1" for epoch in SAVED} <= set(curves.files)


def test_selectivity_summary_and_correlations(demo_run):
    summary = pd.read_csv(demo_run / "results/aggregate/selectivity_summary.csv")
    assert len(summary) == N_NETWORKS * (len(SAVED) + 1) * len(CNN7_UNITS) * 2
    assert summary["test_accuracy"].notna().all()
    trained = summary[(summary.checkpoint == "best") & (summary.label_corruption == 0)]
    real = trained[trained.stimulus_set == "gratings"].groupby("layer")["mean_gosi"].mean()
    shuffled = trained[trained.stimulus_set == "shuffled"].groupby("layer")["mean_gosi"].mean()
    assert (real > shuffled).all()  # trained units are more selective than chance in every layer
    across_networks = pd.read_csv(demo_run / "results/aggregate/correlations_across_networks.csv")
    assert set(across_networks["layer"]) == set(CNN7_UNITS)
    assert (across_networks["n_networks"] == N_NETWORKS).all()


def test_causal_tables(demo_run):
    half = pd.read_csv(demo_run / "results/aggregate/half_ablation.csv")
    draws = DEMO["causal"]["ablation"]["random_draws"]
    # per layer: top and bottom per ranking, random draws per ranking, matched draws for gOSI only
    assert len(half) == N_CAUSAL * len(CNN7_UNITS) * (2 * (2 + draws) + draws)
    assert set(half["label_corruption"]) == set(CAUSAL_CORRUPTIONS)
    assert set(half["ranking"]) == {"gosi", "class_selectivity"}
    assert set(half.loc[half.condition == "matched", "ranking"]) == {"gosi"}
    assert (half["n_ablated"] == (half["n_units"] / 2).round()).all()
    assert (half["n_images"] == DEMO["causal"]["test_images"]).all()
    class_selectivity = pd.read_csv(demo_run / "results/aggregate/class_selectivity.csv")
    assert len(class_selectivity) == N_CAUSAL * sum(CNN7_UNITS.values())
    assert class_selectivity["class_selectivity_index"].between(0, 1).all()
    invariance = pd.read_csv(demo_run / "results/aggregate/shift_invariance.csv")
    assert set(invariance["shift_px"]) == set(DEMO["causal"]["invariance"]["shifts"])
    assert set(invariance["condition"]) == {"intact", "top", "bottom", "random", "matched"}
    assert invariance["normalised_invariance_mean"].notna().all()
    curves = pd.read_csv(demo_run / "results/aggregate/cumulative_ablation.csv")
    full = curves[curves.fraction_ablated == 1.0]
    assert (full["n_ablated"] == full["layer"].map(CNN7_UNITS)).all()


def test_causal_summaries_across_networks(demo_run):
    summary = pd.read_csv(demo_run / "results/aggregate/half_ablation_summary.csv")
    loss = summary[(summary.value == "loss_increase_mean") & (summary.ranking == "gosi")]
    assert len(loss) == len(CAUSAL_CORRUPTIONS) * len(CNN7_UNITS) * 4  # top, bottom, random, matched
    assert (loss["n_networks"] == len(SEEDS)).all()
    assert ((loss["ci_low"] <= loss["estimate"]) & (loss["estimate"] <= loss["ci_high"])).all()
    invariance = pd.read_csv(demo_run / "results/aggregate/shift_invariance_summary.csv")
    assert set(invariance["value"]) == {"normalised_invariance_mean", "shift_correlation_mean"}


def test_claims_are_computed(demo_run):
    claims = paper_claims(pd.read_csv(demo_run / "results/claims.csv"))
    headline = claims[claims["headline"]]
    assert list(headline["claim"]) == ["C1", "C2", "C3", "C4", "C5", "C6"]
    assert set(claims["verdict"]) <= set(VERDICTS)
    # 5 clean networks: enough for every test to reach its level, so none is "too few"
    assert "inconclusive (too few networks)" not in set(headline["verdict"])
    across = claims[(claims.claim == "C3") & (claims.test == "across_levels")]
    assert across["n_networks"].item() == N_NETWORKS
    assert (claims.loc[claims.claim.isin(["C1", "C4", "C5", "C6"]), "n_networks"] == len(SEEDS)).all()
    assert headline["effect_size"].notna().all() and headline["p_value"].notna().all()
    # how far each row is from a decision: defined, or NaN with the reason
    for column in ("detectable_effect", "networks_needed"):
        undefined = claims[column].isna()
        assert (claims.loc[undefined, "power_note"].fillna("") != "").all(), column
    needed = paper_claims(pd.read_csv(demo_run / "results/aggregate/networks_needed.csv"))
    assert list(needed["claim"]) == ["C1", "C2", "C3", "C4", "C5", "C6"]
    assert "needed/level" in (demo_run / "logs/aggregate/networks_needed.log").read_text()
    layers = set(claims.loc[(claims.claim == "C4") & (claims.test == "claim"), "layer"])
    assert layers == {"pooled", "conv1", "conv2"}  # a verdict per lower layer and pooled
    html = (demo_run / "results/claims.html").read_text()
    assert all(claim in html for claim in ["C1", "C6"]) and "Verdict rules" in html


def test_depth_profiles_per_layer_are_the_claims_per_layer_tests(demo_run):
    every_feature = pd.read_csv(demo_run / "results/aggregate/depth_profiles.csv")
    assert list(every_feature["feature"].unique()) == ["orientation", *RANKED]
    profiles = every_feature[every_feature["feature"] == "orientation"]
    claims = paper_claims(pd.read_csv(demo_run / "results/claims.csv"))
    assert set(profiles["claim"]) == {"C1", "C2", "C3", "C4", "C5", "C6"}
    c4 = profiles[profiles["claim"] == "C4"].set_index("layer")
    assert list(c4.index) == list(CNN7_UNITS)  # every layer is ablated, shallow to deep
    np.testing.assert_allclose(c4["relative_depth"], np.arange(7) / 6)
    for claim, test in (("C4", "top_minus_random"), ("C5", "random_minus_top")):
        for layer in ("conv1", "conv2"):
            per_layer = claims[(claims.claim == claim) & (claims.test == test) & (claims.layer == layer)]
            profile = profiles[(profiles.claim == claim) & (profiles.layer == layer)]
            np.testing.assert_allclose(
                profile[["estimate", "ci_low", "ci_high"]].to_numpy(),
                per_layer[["effect_size", "ci_low", "ci_high"]].to_numpy(),
            )
    # C1 per layer: the median over clean networks of the fraction selective, gratings minus shuffled
    summary = pd.read_csv(demo_run / "results/aggregate/selectivity_summary.csv")
    rows = select_checkpoint(summary[summary.label_corruption == 0], DEMO["causal"].get("checkpoint", "best"))
    fractions = rows.pivot_table(index=["seed", "layer"], columns="stimulus_set", values="fraction_selective")
    expected = (fractions["gratings"] - fractions["shuffled"]).groupby(level="layer").median()
    c1 = profiles[profiles.claim == "C1"].set_index("layer")["estimate"]
    np.testing.assert_allclose(c1.to_numpy(), expected[c1.index].to_numpy())


def test_causal_tables_by_feature(demo_run):
    half = pd.read_csv(demo_run / "results/aggregate/feature_half_ablation.csv")
    draws = DEMO["causal"]["ablation"]["random_draws"]
    # per network, feature and layer: top, bottom, the random draws and as many matched draws
    assert len(half) == N_CAUSAL * len(RANKED) * len(CNN7_UNITS) * (2 + 2 * draws)
    assert dict(half.groupby("feature")["ranking"].unique().map(list)) == {f: [RANKINGS[f]] for f in RANKED}
    assert (half.loc[half.condition == "top", "overlap_with_top"] == 1).all()
    assert (half.loc[half.condition == "bottom", "overlap_with_top"] == 0).all()
    assert half.loc[half.condition == "matched", "overlap_with_top"].between(0, 1).all()
    # the random halves are the orientation test's own draws
    orientation = pd.read_csv(demo_run / "results/aggregate/half_ablation.csv")
    key = ["seed", "layer", "draw"]
    random = orientation[(orientation.condition == "random") & (orientation.ranking == "gosi")].set_index(key)
    for feature in RANKED:
        ours = half[(half.condition == "random") & (half.feature == feature)].set_index(key)
        np.testing.assert_array_equal(
            ours["loss_increase_mean"], random.loc[ours.index, "loss_increase_mean"]
        )
    invariance = pd.read_csv(demo_run / "results/aggregate/feature_shift_invariance.csv")
    assert set(invariance["feature"]) == set(RANKED)
    assert set(invariance["condition"]) == {"intact", "top", "bottom", "random", "matched"}
    summary = pd.read_csv(demo_run / "results/aggregate/feature_summary.csv")
    assert set(summary["feature"]) == {"orientation", *RANKED}


def test_claims_by_feature(demo_run):
    claims = pd.read_csv(demo_run / "results/claims.csv")
    for feature in RANKED:
        rows = claims[claims["feature"] == feature]
        headline = rows[rows["headline"]]
        assert list(headline["claim"]) == ["C1", "C2", "C3", "C4", "C5", "CF"], feature
        assert "inconclusive (too few networks)" not in set(headline["verdict"])
        assert (rows.loc[rows.claim.isin(["C1", "C4", "C5"]), "n_networks"] == len(SEEDS)).all()
    comparison = claims[claims["claim"] == "CF"]
    pairs = comparison[comparison["feature"] == "all"]
    assert len(pairs) == 6 * 3  # every pair of the four features, in conv1, conv2 and pooled
    assert set(comparison.loc[comparison.test == "claim", "feature"]) == {"orientation", *RANKED}
    # at most one feature costs more than every other, per layer
    supported = comparison[(comparison.test == "claim") & (comparison.verdict == "supported")]
    assert not supported["layer"].duplicated().any()


def test_figures_are_real_images(demo_run):
    figures = sorted((demo_run / "results/figures/cnn7").glob("*.png"))
    assert [png.stem for png in figures] == sorted(figures_of("model"))
    # one architecture: no figure across architectures (the report's workflow page says why)
    assert not (demo_run / "results/figures/architectures").exists()
    for png in figures:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
        assert png.with_suffix(".pdf").read_bytes()[:4] == b"%PDF"


def test_provenance(demo_run):
    provenance = pd.read_csv(demo_run / "results/provenance.csv")
    assert len(provenance) == N_NETWORKS and provenance["config_hash"].notna().all()
    assert set(provenance["seed"]) == set(SEEDS)
    record = json.loads((demo_run / f"results/tuning/{NETWORK_DIRS[0]}/tuning.provenance.json").read_text())
    assert {"seed", "config_hash", "versions", "device"} <= set(record)
    # the page shows the run's whole configuration (its script reads it; the rule's param is a digest)
    page = (demo_run / "results/provenance.html").read_text()
    configuration = yaml.safe_load(html.unescape(page.split("<pre>")[1].split("</pre>")[0]))
    assert configuration["dataset"]["synthetic"]["train_size"] == 4000  # config/demo.yaml
    assert configuration["tuning"]["selectivity_threshold"] == 0.33  # config.yaml


def test_html_report(demo_run):
    run_snakemake(demo_run, REPO / "config" / "demo.yaml", "--report", "report.html")
    report = (demo_run / "report.html").read_text(errors="replace")
    assert len(report) > 100_000  # figures are embedded: a self-contained file
    for expected in [
        "claims.html",
        "claims.png",
        "training_curves.png",
        "half_ablation.png",
        "provenance.html",
        "claims.csv",  # the tables are attached too
        "half_ablation_summary.csv",
    ]:
        assert expected in report
