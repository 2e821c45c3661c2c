"""Architectures through the whole workflow: trained, tuned, ablated, claimed; and users' own networks.

One tiny configuration, one Snakemake run: it trains one ResNet-20 and one vgg8bn (2 epochs of
the synthetic stand-in) and analyses two user networks given as random weights saved to files
(torchvision's ResNet-18, a small vision transformer), through every rule. The tuning table's
gOSI of a layer is then recomputed by another path: forward hooks on the layer's module of the
checkpoint (not the network's own readout), or torchvision's feature extractor for the user
network, and the index written out here.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
from torchvision.models.feature_extraction import create_feature_extractor

from conftest import TINY_CONFIG, load_benchmark, merged_config, run_snakemake, write_config
from selectivity.networks.architectures import DEFAULT_LAYER_ROLES, trainable_layer_units
from selectivity.networks.checkpoints import load_checkpoint
from selectivity.figures.catalogue import figures_of
from selectivity.tuning.stimuli import grating_stimuli
from selectivity.tuning.summaries import select_checkpoint
from selectivity.tuning.analysis import rows_of_checkpoint

pytestmark = pytest.mark.slow

architecture_table = load_benchmark("architecture_table")

MODELS = ("resnet20", "vgg8bn")
RESNET18_LAYERS = ["conv1", "layer1", "layer2", "layer3", "layer4"]
VIT_ARGUMENTS = dict(
    image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=10
)
USER_NETWORKS = {
    "my_resnet18": {
        "constructor": "resnet18",
        "arguments": {"num_classes": 10},
        "weights": "weights/resnet18.pt",
        "input_size": 32,
        "normalisation": {"mean": [0.49, 0.48, 0.45], "std": [0.25, 0.24, 0.26]},
        "layers": RESNET18_LAYERS,
        "lower_layers": ["conv1", "layer1"],
        "higher_layers": ["layer3", "layer4"],
    },
    "my_vit": {
        "constructor": "torchvision.models:VisionTransformer",
        "arguments": VIT_ARGUMENTS,
        "weights": "weights/vit.pt",
        "input_size": 32,
        "layers": ["conv_proj", "encoder.layers.encoder_layer_0", "encoder.layers.encoder_layer_1"],
        "test_images": "none",
    },
}
RESNET18 = "my_resnet18/synthetic/weights0"
VIT = "my_vit/none/weights0"
# Orientation and one other feature: every rule of the by-feature tests runs on every architecture
# (the other features' indices are the same code for any network; the demo runs all four), at a
# third of those jobs' cost.
FEATURES = ["orientation", "spatial_frequency"]
ARCHITECTURES = merged_config(
    TINY_CONFIG,
    {
        "networks": {"models": list(MODELS), "seeds": [0]},
        "tuning": {"features": FEATURES},
        "external_networks": USER_NETWORKS,
    },
)


def save_random_user_networks(workdir) -> None:
    torch.manual_seed(0)
    (workdir / "weights").mkdir()
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), workdir / "weights/resnet18.pt")
    torch.save(torchvision.models.VisionTransformer(**VIT_ARGUMENTS).state_dict(), workdir / "weights/vit.pt")


def network(model: str) -> str:
    return f"{model}/synthetic/corruption0.00/seed0"


def best_tuning(run, network_path: str) -> pd.DataFrame:
    """A network's tuning rows of the checkpoint its causal tests use (best; a given network's weights)."""
    tuning = pd.read_csv(run / f"results/tuning/{network_path}/tuning.csv")
    return rows_of_checkpoint(tuning, "best" if "/seed" in network_path else "weights")


@pytest.fixture(scope="module")
def architectures_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("architectures")
    save_random_user_networks(workdir)
    run_snakemake(workdir, write_config(workdir, ARCHITECTURES), "--cores", "2", "--resources", "gpu=0")
    return workdir


@pytest.mark.parametrize("model", MODELS)
def test_every_layer_and_unit_is_tuned_and_the_lower_layers_are_ablated(architectures_run, model):
    tuning = best_tuning(architectures_run, network(model))
    gratings = tuning[tuning["stimulus_set"] == "gratings"]
    layer_units = trainable_layer_units(model)
    assert gratings.groupby("layer", sort=False)["unit"].nunique().to_dict() == layer_units
    half = pd.read_csv(architectures_run / f"results/causal/{network(model)}/half_ablation.csv")
    assert set(half["layer"]) == set(layer_units)  # every layer is ablated in turn
    invariance = pd.read_csv(architectures_run / f"results/causal/{network(model)}/shift_invariance.csv")
    roles = DEFAULT_LAYER_ROLES[model]
    assert set(invariance["measured_layer"]) == set(roles.higher)
    assert set(invariance["ablated_layer"]) - {"none"} == set(roles.lower)


def test_the_claims_table_has_one_block_per_architecture(architectures_run):
    claims = pd.read_csv(architectures_run / "results/claims.csv")
    assert set(claims["model"]) == set(MODELS) | set(USER_NETWORKS)  # given networks: claims without history
    for model in MODELS:
        rows = claims[claims["model"] == model]
        paper = rows[(rows["feature"] == "orientation") & (rows["claim"] != "CF")]
        assert set(paper["claim"]) == {f"C{n}" for n in range(1, 7)}
        assert set(rows["feature"]) == {*FEATURES, "all"}  # "all": the features compared (CF)
        for feature in FEATURES[1:]:
            assert set(rows.loc[rows["feature"] == feature, "claim"]) == {"C1", "C2", "C3", "C4", "C5", "CF"}


def gosi_by_hand(layer_means) -> tuple[np.ndarray, np.ndarray]:
    """gOSI and preferred SF index per unit from ``layer_means(images) -> (N, units)`` of the gratings."""
    stimuli = grating_stimuli(32)
    images = stimuli.images.reshape(-1, 3, 32, 32)  # (sf, orientation, phase) order
    with torch.no_grad():
        means = torch.cat([layer_means(images[start : start + 256]) for start in range(0, len(images), 256)])
    n_sf, n_ori, n_phase = stimuli.images.shape[:3]
    responses = means.numpy().astype(np.float64).reshape(n_sf, n_ori, n_phase, -1)
    best_phase = responses.max(axis=2)  # (sf, orientation, unit)
    preferred_sf = best_phase.max(axis=1).argmax(axis=0)  # per unit
    curves = best_phase[preferred_sf, :, np.arange(best_phase.shape[2])]  # (unit, orientation)
    angles = np.exp(2j * np.deg2rad(stimuli.orientations_deg))
    totals = curves.sum(axis=1)
    gosi = np.where(totals > 0, np.abs(curves @ angles) / np.where(totals > 0, totals, 1), 0.0)
    return np.minimum(gosi, 1.0), preferred_sf


def assert_tuning_table_matches(tuning, layer, gosi, preferred_sf) -> None:
    table = tuning[(tuning["layer"] == layer) & (tuning["stimulus_set"] == "gratings")].sort_values("unit")
    assert len(table) == len(gosi)
    np.testing.assert_allclose(table["gosi"].to_numpy(), gosi, atol=1e-5)
    np.testing.assert_array_equal(table["preferred_spatial_frequency"].to_numpy(), preferred_sf)


@pytest.mark.parametrize("model, layer", [("resnet20", "block2_2"), ("vgg8bn", "pool2")])
def test_gosi_of_a_layer_recomputed_from_the_checkpoint_with_hooks(architectures_run, model, layer):
    checkpoint = architectures_run / f"results/networks/{network(model)}/checkpoints/best.pt"
    loaded = load_checkpoint(checkpoint, "cpu")
    model_module = loaded.model.eval()
    captured = []
    handle = model_module.stage(layer).register_forward_hook(
        lambda module, inputs, result: captured.append(result[1].mean((2, 3)))
    )

    def layer_means(images):
        model_module(loaded.prepare_inputs(images))
        return captured.pop()

    try:
        gosi, preferred_sf = gosi_by_hand(layer_means)
    finally:
        handle.remove()
    assert len(gosi) == trainable_layer_units(model)[layer]
    assert_tuning_table_matches(best_tuning(architectures_run, network(model)), layer, gosi, preferred_sf)


def test_a_user_network_gets_tuning_class_selectivity_ablation_and_invariance(architectures_run):
    """User networks go through the same rules as trained ones: their tables sit beside those of
    the trained networks, and the combined tables hold their rows."""
    tuning = best_tuning(architectures_run, RESNET18)
    assert set(tuning["model"]) == {"my_resnet18"} and set(tuning["checkpoint"]) == {"published"}
    units = {"conv1": 64, "layer1": 64, "layer2": 128, "layer3": 256, "layer4": 512}
    gratings = tuning[tuning["stimulus_set"] == "gratings"]
    assert gratings.groupby("layer", sort=False)["unit"].nunique().to_dict() == units
    summary = pd.read_csv(architectures_run / "results/aggregate/selectivity_summary.csv")
    summary = summary[summary["model"] == "my_resnet18"]
    for checkpoint in ("published", "untrained"):  # its weights, and its constructor's initialisation (C1)
        rows = summary[(summary["checkpoint"] == checkpoint) & (summary["stimulus_set"] == "gratings")]
        assert list(rows["layer"]) == RESNET18_LAYERS, checkpoint
    results = architectures_run / f"results/causal/{RESNET18}"
    selectivity = pd.read_csv(results / "class_selectivity.csv")
    assert selectivity.groupby("layer")["unit"].nunique().to_dict() == units
    half = pd.read_csv(results / "half_ablation.csv")
    assert set(half["layer"]) == set(RESNET18_LAYERS) and set(half["ranking"]) == {
        "gosi",
        "class_selectivity",
    }
    assert "matched" in set(half["condition"])  # the same controls as the trained networks
    assert (results / "cumulative_ablation.csv").exists()
    invariance = pd.read_csv(results / "shift_invariance.csv")
    assert set(invariance["measured_layer"]) == {"layer3", "layer4"}
    assert set(invariance["ablated_layer"]) == {"none", "conv1", "layer1"}
    # tuning only for the transformer (test_images: none): channels of the token embedding
    vit = pd.read_csv(architectures_run / f"results/tuning/{VIT}/tuning.csv")
    assert vit.groupby("layer")["unit"].nunique().to_dict() == {
        "conv_proj": 16, "encoder.layers.encoder_layer_0": 16, "encoder.layers.encoder_layer_1": 16,
    }  # fmt: skip
    assert not (architectures_run / f"results/causal/{VIT}").exists()
    for name, has_images in (("my_resnet18", True), ("my_vit", False)):
        figures = sorted(png.stem for png in (architectures_run / f"results/figures/{name}").glob("*.png"))
        assert figures == sorted(figures_of("model", trained=False, has_test_images=has_images)), name


def test_gosi_of_a_user_network_recomputed_with_torchvisions_feature_extractor(architectures_run):
    torch.manual_seed(0)
    resnet = torchvision.models.resnet18(num_classes=10)
    resnet.load_state_dict(torch.load(architectures_run / "weights/resnet18.pt", weights_only=True))
    extractor = create_feature_extractor(resnet.eval(), return_nodes=["layer2"])
    entry = USER_NETWORKS["my_resnet18"]["normalisation"]
    mean, std = (torch.tensor(entry[key]).view(1, 3, 1, 1) for key in ("mean", "std"))
    gosi, preferred_sf = gosi_by_hand(lambda images: extractor((images - mean) / std)["layer2"].mean((2, 3)))
    assert_tuning_table_matches(best_tuning(architectures_run, RESNET18), "layer2", gosi, preferred_sf)


def test_the_readme_tables_of_architectures_are_the_runs_numbers(architectures_run):
    text = architecture_table.tables(architectures_run)
    metrics = pd.read_csv(architectures_run / "results/aggregate/training_metrics.csv")
    summary = pd.read_csv(architectures_run / "results/aggregate/selectivity_summary.csv")
    best = select_checkpoint(summary, "best").set_index(["model", "layer", "stimulus_set"])["mean_gosi"]
    headline = architecture_table.paper_claims(pd.read_csv(architectures_run / "results/claims.csv"))
    for model in MODELS:
        rows = metrics[metrics["model"] == model]
        last_accuracy = rows.loc[rows["epoch"] == rows["epoch"].max(), "test_accuracy"].iloc[0]
        assert f"| {model} | 1 | {last_accuracy:.3f} (range" in text
        for layer in trainable_layer_units(model):
            gratings, shuffled = best[model, layer, "gratings"], best[model, layer, "shuffled"]
            assert f" {layer} {gratings:.2f}/{shuffled:.2f}" in text, (model, layer)
    assert text.count("\n| C") == headline["claim"].nunique() == 6
    for claim, rows in headline.groupby("claim"):
        verdicts = [rows.loc[rows["model"] == model, "verdict"].iloc[0] for model in MODELS]
        assert f"| {claim} | {verdicts[0]} (" in text and f" | {verdicts[1]} (" in text
