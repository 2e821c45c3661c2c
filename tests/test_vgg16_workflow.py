"""The VGG16 branch of the DAG: planned only when enabled, and run end to end with random weights.

Offline here, so the weights are random (``vgg16.weights: random``): the code path is the one the
published weights take, but no number from these runs says anything about VGG16 itself. The
stimulus set and the ImageNet folder are reduced to keep CI time small.
"""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest
import yaml
from PIL import Image

from pathlib import Path

from conftest import REPO, planned, run_snakemake, write_config
from selectivity.architectures import VGG16_LAYERS

pytestmark = pytest.mark.slow


def demo_with(**sections) -> dict:
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    for key, value in sections.items():
        config.setdefault(key, {}).update(value)
    return config


def fake_imagenet_folder(root, classes=3, per_class=2):
    """A tiny ImageFolder (WordNet-like ids) of random 64-px RGB images."""
    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / f"n0000000{c}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            Image.fromarray(rng.integers(0, 256, (64, 80, 3), dtype=np.uint8)).save(folder / f"img{i}.png")
    return root


def test_branch_is_planned_only_when_enabled(tmp_path):
    off = planned(tmp_path, write_config(tmp_path, demo_with()))
    assert not off.rules("vgg16") and not any("vgg16" in path for path in off.pending)
    on = planned(tmp_path, write_config(tmp_path, demo_with(vgg16={"enabled": True, "weights": "random"})))
    assert {"vgg16_tuning", "vgg16_summary"} <= on.rules()
    assert "vgg16_half_ablation" not in on.rules()  # no ImageNet folder: no causal tests
    folder = fake_imagenet_folder(tmp_path / "imagenet_val")
    with_images = planned(
        tmp_path,
        write_config(
            tmp_path,
            demo_with(vgg16={"enabled": True, "weights": "random", "imagenet_val_dir": str(folder)}),
        ),
    )
    assert {"vgg16_half_ablation", "vgg16_shift_invariance"} <= with_images.rules()
    figures = {Path(path).name for path in with_images.outputs_of("plot_figure") if "vgg16_imagenet" in path}
    assert {"half_ablation.png", "shift_invariance.png"} <= figures


def test_tuning_ablation_and_invariance_run_with_random_weights(tmp_path):
    folder = fake_imagenet_folder(tmp_path / "imagenet_val")
    config = demo_with(
        tuning={"orientations": 4, "phases": 1, "spatial_frequencies": 2, "features": ["orientation"]},
        causal={
            "ablation": {"random_draws": 1},
            "invariance": {"shifts": [2], "directions": ["horizontal"], "random_draws": 1},
        },
        vgg16={
            "enabled": True,
            "weights": "random",
            "imagenet_val_dir": str(folder),
            "images": 4,
            "ablation_layers": ["conv1_1"],
            "measured_layers": ["fc2"],
            "batch_size": 8,
        },
    )
    targets = [
        "results/vgg16/selectivity_summary.csv",
        "results/vgg16/half_ablation.csv",
        "results/vgg16/shift_invariance.csv",
        "results/figures/vgg16_imagenet/selectivity_by_depth.png",
        "results/figures/vgg16_imagenet/half_ablation.png",
    ]
    run_snakemake(tmp_path, write_config(tmp_path, config), *targets, "--cores", "2", "--resources", "gpu=0")
    tuning = pd.read_csv(tmp_path / "results/vgg16/tuning.csv")
    assert list(tuning.drop_duplicates("layer").sort_values("layer_index")["layer"]) == list(VGG16_LAYERS)
    assert set(tuning["checkpoint"]) == {"published"} and set(tuning["model"]) == {"vgg16_imagenet"}
    units = tuning[tuning.stimulus_set == "gratings"].groupby("layer")["unit"].nunique()
    assert units["conv1_1"] == 64 and units["pool5"] == 512 and units["fc2"] == 4096
    summary = pd.read_csv(tmp_path / "results/vgg16/selectivity_summary.csv")
    assert len(summary) == 20 * 2
    half = pd.read_csv(tmp_path / "results/vgg16/half_ablation.csv")
    assert set(half["layer"]) == {"conv1_1"} and set(half["ranking"]) == {"gosi"}
    assert (half["n_images"] == 4).all()
    invariance = pd.read_csv(tmp_path / "results/vgg16/shift_invariance.csv")
    assert set(invariance["measured_layer"]) == {"fc2"} and set(invariance["shift_px"]) == {2}
