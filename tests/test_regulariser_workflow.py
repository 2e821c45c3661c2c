"""The selectivity regulariser through the workflow (docs/method.md §2.10, claim C7 of §6.3).

Reruns (dry runs of tests/configs/tiny.yaml after a finished run): listing coefficient 0 plans no job
but the provenance page, and adding coefficients trains and tunes only the new networks (no causal
test, no other network's job). The regulariser's own config (tests/configs/regulariser.yaml: five seeds
at coefficients -2, 0, +2, trained stacked) runs through every rule: its claims table has C7's rows,
its report category the two figures; mean gOSI recomputed from a regularised network's checkpoint
with a plain forward hook equals its tuning table; adding a coefficient, or changing the regulariser's
schedule, plans only the regularised networks it changes; a finished run plans nothing."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import (
    REPO,
    TINY_CONFIG,
    TINY_CONFIG_FILE,
    load_benchmark,
    merged_config,
    planned,
    read_yaml,
    run_snakemake,
    touch_every_output,
    write_config,
)
from selectivity.config import networks, training_groups
from selectivity.identity import is_regularised
from selectivity.networks.models import build_model
from selectivity.tuning.stimuli import grating_stimuli

pytestmark = pytest.mark.slow

REGULARISER_FILE = REPO / "tests" / "configs" / "regulariser.yaml"
REGULARISER = read_yaml(REGULARISER_FILE)
CAUSAL_RULES = ("class_selectivity", "half_ablation", "cumulative_ablation", "shift_invariance")


def network_of(path: str) -> str:
    """results/<stage>/<model>/<dataset>/corruption<p>/seed<s>/... -> <model>/<dataset>/corruption<p>/seed<s>."""
    return "/".join(Path(path).parts[2:6])


def with_coefficients(config: dict, coefficients, **more) -> dict:
    return merged_config(
        config, {"training": {"selectivity_regularisation": {"coefficients": list(coefficients), **more}}}
    )


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """tests/configs/tiny.yaml without the regulariser, every output touched (the tests here only plan)."""
    return touch_every_output(tmp_path_factory.mktemp("tiny"), TINY_CONFIG_FILE)


@pytest.fixture(scope="module")
def regulariser_run(tmp_path_factory) -> Path:
    workdir = tmp_path_factory.mktemp("regulariser")
    run_snakemake(workdir, REGULARISER_FILE, "--cores", "2", "--resources", "gpu=0", timeout=3600)
    return workdir


def test_listing_coefficient_zero_reruns_no_network_and_no_analysis(tiny_run, tmp_path):
    change = write_config(tmp_path, with_coefficients(TINY_CONFIG, [0.0]))
    assert planned(tiny_run, change).rules() <= {"provenance"}


def test_adding_coefficients_trains_and_tunes_only_the_new_networks(tiny_run, tmp_path):
    config = with_coefficients(TINY_CONFIG, [-1.0, 0.0, 1.0])
    plan = planned(tiny_run, write_config(tmp_path, config))
    new = {n.path for n in networks(config) if is_regularised(n.model)}
    assert len(new) == 4 and not {n.path for n in networks(TINY_CONFIG)} & new
    assert plan.rules("train_") == {
        f"train_{g.name}" for g in training_groups(config) if is_regularised(g.model)
    }
    assert all(plan.statuses(rule) == {"missing"} for rule in plan.rules("train_"))
    assert {network_of(path) for path in plan.outputs_of("train_")} == new
    assert {network_of(path) for path in plan.outputs_of("measure_tuning")} == new
    assert not set(CAUSAL_RULES) & plan.rules() and not {"prepare_dataset", "split_dataset"} & plan.rules()
    assert {"evaluate_claims", "plot_regularisation_figures"} <= plan.rules()


def test_the_regulariser_config_runs_through_every_rule_to_claim_c7_and_its_figures(regulariser_run):
    claims = pd.read_csv(regulariser_run / "results" / "claims.csv")
    c7 = claims[claims["claim"] == "C7"]
    assert set(c7["model"]) == {"cnn7"} and set(c7["feature"]) == {"orientation"}
    assert c7["headline"].sum() == 1 and (c7["n_networks"] == 15).all() and (c7["n_seeds"] == 5).all()
    assert {"accuracy_slope", "loss_slope", "selectivity_slope", "claim"} <= set(c7["test"])
    # the regularised variants are no models of the paper's claims
    assert set(claims.loc[claims["claim"] != "C7", "model"]) == {"cnn7"}
    for figure in ("selectivity_vs_coefficient", "accuracy_vs_selectivity"):
        assert (regulariser_run / "results" / "figures" / "cnn7" / f"{figure}.png").stat().st_size > 0
    # tuned like every network, without causal tests
    for network in networks(REGULARISER):
        assert (regulariser_run / "results" / "tuning" / network.path / "tuning.csv").exists()
        assert (regulariser_run / "results" / "causal" / network.path).exists() != is_regularised(
            network.model
        )
    summary = pd.read_csv(regulariser_run / "results" / "aggregate" / "selectivity_summary.csv")
    assert set(summary["model"]) == {"cnn7", "cnn7+orientation-2", "cnn7+orientation+2"}


def test_mean_gosi_recomputed_from_a_regularised_checkpoint_equals_its_tuning_table(regulariser_run):
    """The tuning rule's gOSI of a regularised network, from its checkpoint file with a plain cnn7, a forward
    hook on the convolutions (ReLU'd, as §1.4) and the gratings; the checkpoint records its regulariser."""
    network = "cnn7+orientation-2/synthetic/corruption0.00/seed3"
    blob = torch.load(regulariser_run / f"results/networks/{network}/checkpoints/best.pt", weights_only=True)
    assert blob["selectivity_regularisation"]["coefficient"] == -2.0
    assert blob["selectivity_regularisation"]["layers"] == ["conv1", "conv2"]
    model = build_model("cnn7").eval()
    model.load_state_dict(blob["state_dict"])
    stimuli = grating_stimuli(32)
    images = stimuli.images.reshape(-1, 3, 32, 32) - blob["input_mean"]
    captured = {}

    def recorder(layer):
        def record(module, inputs, output):
            captured[layer] = output.clamp(min=0).mean((2, 3))

        return record

    for index, layer in enumerate(("conv1", "conv2")):
        model.stages[index].conv.register_forward_hook(recorder(layer))
    with torch.no_grad():
        model(images)
    tuning = pd.read_csv(regulariser_run / f"results/tuning/{network}/tuning.csv")
    n_sf, n_ori, n_phase = stimuli.images.shape[:3]
    for layer, responses in captured.items():
        phase_max = responses.numpy().astype(np.float64).reshape(n_sf, n_ori, n_phase, -1).max(axis=2)
        curves = phase_max[phase_max.max(axis=1).argmax(axis=0), :, np.arange(phase_max.shape[2])]
        totals = curves.sum(axis=1)
        vector = np.abs(curves @ np.exp(2j * np.deg2rad(stimuli.orientations_deg)))
        gosi = np.minimum(np.where(totals > 0, vector / np.where(totals > 0, totals, 1), 0.0), 1.0)
        rows = tuning[
            (tuning["checkpoint"] == "best")
            & (tuning["layer"] == layer)
            & (tuning["stimulus_set"] == "gratings")
        ].sort_values("unit")
        np.testing.assert_allclose(rows["gosi"].to_numpy(), gosi, atol=1e-5)


def test_a_new_coefficient_or_schedule_retrains_only_regularised_networks(regulariser_run, tmp_path):
    assert planned(regulariser_run, REGULARISER_FILE).pending == {}
    added = with_coefficients(REGULARISER, [-2.0, 0.0, 2.0, 4.0])
    plan = planned(regulariser_run, write_config(tmp_path, added, "added.yaml"))
    assert plan.rules("train_") == {"train_cnn7_orientation_p4_synthetic_c0p00_s0_1_2_3_4"}
    assert {network_of(path) for path in plan.outputs_of("measure_tuning")} == {
        f"cnn7+orientation+4/synthetic/corruption0.00/seed{seed}" for seed in range(5)
    }
    assert not set(CAUSAL_RULES) & plan.rules()
    schedule = with_coefficients(REGULARISER, [-2.0, 0.0, 2.0], every_steps=3)
    plan = planned(regulariser_run, write_config(tmp_path, schedule, "schedule.yaml"))
    assert plan.rules("train_") == {
        "train_cnn7_orientation_m2_synthetic_c0p00_s0_1_2_3_4",
        "train_cnn7_orientation_p2_synthetic_c0p00_s0_1_2_3_4",
    }
    assert all(plan.statuses(rule) == {"params changed"} for rule in plan.rules("train_"))


def test_the_regularisation_tables_print_every_table_of_a_finished_run(regulariser_run, capsys):
    tables = load_benchmark("regularisation_tables")
    tables.main([str(regulariser_run)])
    printed = capsys.readouterr().out
    assert "| **conv1** | -2 |" in printed and "| conv3 | 2 |" in printed
    assert "| -2 | 5 |" in printed and "| 2 | 5 |" in printed
    assert "| selectivity_slope | specificity |" in printed and "| claim |" in printed
    assert "| cnn7_orientation_m2_synthetic |" in printed and "| cnn7_synthetic |" in printed
    # CPU time per network: the plain networks' ratio is 1, the regularised ones' measured against them
    assert "| cnn7_synthetic | 0.00 | 5 |" in printed and "ratio of medians to no regulariser" in printed
