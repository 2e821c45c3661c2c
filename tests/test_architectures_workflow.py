"""The residual and the VGG-style network through the whole workflow: trained, tuned, ablated, claimed.

One tiny configuration trains one ResNet-20 and one vgg8bn (2 epochs of the synthetic stand-in)
in one run of every rule. The tuning table's gOSI of a layer is then recomputed from the
checkpoint by another path: forward hooks on the layer's module (not the network's own readout)
and the index written out here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import TINY_CONFIG, merged_config, run_snakemake, write_config
from selectivity.architectures import DEFAULT_LAYER_ROLES, trainable_layer_units
from selectivity.checkpoints import load_checkpoint
from selectivity.stimuli import grating_stimuli

pytestmark = pytest.mark.slow

MODELS = ("resnet20", "vgg8bn")
ARCHITECTURES = merged_config(TINY_CONFIG, {"networks": {"models": list(MODELS), "seeds": [0]}})


def network(model: str) -> str:
    return f"{model}/synthetic/corruption0.00/seed0"


@pytest.fixture(scope="module")
def architectures_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("architectures")
    run_snakemake(workdir, write_config(workdir, ARCHITECTURES), "--cores", "2", "--resources", "gpu=0")
    return workdir


@pytest.mark.parametrize("model", MODELS)
def test_every_layer_and_unit_is_tuned_and_the_lower_layers_are_ablated(architectures_run, model):
    tuning = pd.read_csv(architectures_run / f"results/tuning/{network(model)}/best.csv")
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
    assert set(claims["model"]) == set(MODELS)
    for model in MODELS:
        assert set(claims.loc[claims["model"] == model, "claim"]) == {f"C{n}" for n in range(1, 7)}


@pytest.mark.parametrize("model, layer", [("resnet20", "block2_2"), ("vgg8bn", "pool2")])
def test_gosi_of_a_layer_recomputed_from_the_checkpoint_with_hooks(architectures_run, model, layer):
    checkpoint = architectures_run / f"results/networks/{network(model)}/checkpoints/best.pt"
    loaded = load_checkpoint(checkpoint, "cpu")
    model_module = loaded.model.eval()
    stimuli = grating_stimuli(32)
    images = stimuli.images.reshape(-1, 3, 32, 32)  # (sf, orientation, phase) order
    captured = []
    block = model_module.stage(layer)
    handle = block.register_forward_hook(
        lambda module, inputs, result: captured.append(result[1].mean((2, 3)))
    )
    try:
        with torch.no_grad():
            for start in range(0, len(images), 256):
                model_module(loaded.prepare_inputs(images[start : start + 256]))
    finally:
        handle.remove()
    n_sf, n_ori, n_phase = stimuli.images.shape[:3]
    responses = torch.cat(captured).numpy().astype(np.float64).reshape(n_sf, n_ori, n_phase, -1)
    best_phase = responses.max(axis=2)  # (sf, orientation, unit)
    preferred_sf = best_phase.max(axis=1).argmax(axis=0)  # per unit
    curves = best_phase[preferred_sf, :, np.arange(best_phase.shape[2])]  # (unit, orientation)
    angles = np.exp(2j * np.deg2rad(stimuli.orientations_deg))
    totals = curves.sum(axis=1)
    gosi = np.where(totals > 0, np.abs(curves @ angles) / np.where(totals > 0, totals, 1), 0.0)

    tuning = pd.read_csv(architectures_run / f"results/tuning/{network(model)}/best.csv")
    table = tuning[(tuning["layer"] == layer) & (tuning["stimulus_set"] == "gratings")].sort_values("unit")
    assert len(table) == trainable_layer_units(model)[layer]
    np.testing.assert_allclose(table["gosi"].to_numpy(), np.minimum(gosi, 1.0), atol=1e-5)
    np.testing.assert_array_equal(table["preferred_spatial_frequency"].to_numpy(), preferred_sf)
