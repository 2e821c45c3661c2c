"""The residual network through the whole workflow: trained, tuned, ablated, in the claims.

One tiny configuration trains one ResNet-20 (2 epochs of the synthetic stand-in) and runs every
rule. The tuning table's gOSI of a block is then recomputed from the checkpoint by another path:
forward hooks on the block module (not the network's own readout) and the index written out here.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import TINY_CONFIG, merged_config, run_snakemake, write_config
from selectivity.architectures import DEFAULT_LAYER_ROLES, RESNET20_SPEC
from selectivity.checkpoints import load_checkpoint
from selectivity.stimuli import grating_stimuli

pytestmark = pytest.mark.slow

RESNET = merged_config(TINY_CONFIG, {"networks": {"models": ["resnet20"], "seeds": [0]}})
NETWORK = "resnet20/synthetic/corruption0.00/seed0"


@pytest.fixture(scope="module")
def resnet_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("resnet")
    run_snakemake(workdir, write_config(workdir, RESNET), "--cores", "2", "--resources", "gpu=0")
    return workdir


def test_every_layer_and_unit_is_tuned_and_the_lower_layers_are_ablated(resnet_run):
    tuning = pd.read_csv(resnet_run / f"results/tuning/{NETWORK}/best.csv")
    gratings = tuning[tuning["stimulus_set"] == "gratings"]
    assert gratings.groupby("layer", sort=False)["unit"].nunique().to_dict() == RESNET20_SPEC.layer_units()
    half = pd.read_csv(resnet_run / f"results/causal/{NETWORK}/half_ablation.csv")
    assert set(half["layer"]) == set(RESNET20_SPEC.layer_names())  # every layer is ablated in turn
    invariance = pd.read_csv(resnet_run / f"results/causal/{NETWORK}/shift_invariance.csv")
    roles = DEFAULT_LAYER_ROLES["resnet20"]
    assert set(invariance["measured_layer"]) == set(roles.higher)
    assert set(invariance["ablated_layer"]) - {"none"} == set(roles.lower)
    claims = pd.read_csv(resnet_run / "results/claims.csv")
    assert set(claims["model"]) == {"resnet20"} and set(claims["claim"]) == {f"C{n}" for n in range(1, 7)}


def test_gosi_of_a_block_recomputed_from_the_checkpoint_with_hooks(resnet_run):
    network = load_checkpoint(resnet_run / f"results/networks/{NETWORK}/checkpoints/best.pt", "cpu")
    model = network.model.eval()
    stimuli = grating_stimuli(32)
    images = stimuli.images.reshape(-1, 3, 32, 32)  # (sf, orientation, phase) order
    captured = []
    block = model.stage("block2_2")
    handle = block.register_forward_hook(
        lambda module, inputs, result: captured.append(result[1].mean((2, 3)))
    )
    try:
        with torch.no_grad():
            for start in range(0, len(images), 256):
                model(network.prepare_inputs(images[start : start + 256]))
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

    tuning = pd.read_csv(resnet_run / f"results/tuning/{NETWORK}/best.csv")
    table = tuning[(tuning["layer"] == "block2_2") & (tuning["stimulus_set"] == "gratings")].sort_values(
        "unit"
    )
    assert len(table) == 32
    np.testing.assert_allclose(table["gosi"].to_numpy(), np.minimum(gosi, 1.0), atol=1e-5)
    np.testing.assert_array_equal(table["preferred_spatial_frequency"].to_numpy(), preferred_sf)
