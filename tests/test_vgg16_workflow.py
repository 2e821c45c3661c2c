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
from selectivity.networks.architectures import VGG16_LAYERS

pytestmark = pytest.mark.slow


def demo_with(**sections) -> dict:
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    for key, value in sections.items():
        config.setdefault(key, {}).update(value)
    return config


def tiny_with(**sections) -> dict:
    """tests/configs/tiny.yaml (one 2-epoch network beside VGG16: the combined tables that VGG16's
    figures read hold every network's rows) with ``sections`` laid over it."""
    config = yaml.safe_load((REPO / "tests" / "configs" / "tiny.yaml").read_text())
    config["networks"]["seeds"] = [0]
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


VGG16_TUNING_ONLY = "vgg16_imagenet/none/weights0"
VGG16_WITH_IMAGES = "vgg16_imagenet/imagenet/weights0"


def test_vgg16_is_a_given_network_planned_only_when_enabled(tmp_path):
    """VGG16 goes through the same rules as every other network: tuning always, the causal tests
    (class selectivity, half and cumulative ablation, shift invariance) with an ImageNet folder."""
    off = planned(tmp_path, write_config(tmp_path, demo_with()))
    assert not any("vgg16" in path for path in off.pending)
    on = planned(tmp_path, write_config(tmp_path, demo_with(vgg16={"enabled": True, "weights": "random"})))
    assert f"results/tuning/{VGG16_TUNING_ONLY}/tuning.csv" in on.outputs_of("measure_tuning")
    assert not any("vgg16" in path for path in on.outputs_of("half_ablation"))  # no images: no causal tests
    folder = fake_imagenet_folder(tmp_path / "imagenet_val")
    with_images = planned(
        tmp_path,
        write_config(
            tmp_path,
            demo_with(vgg16={"enabled": True, "weights": "random", "imagenet_val_dir": str(folder)}),
        ),
    )
    assert "results/data/image_folders/imagenet.npz" in with_images.outputs_of("image_folder_test_set")
    for rule, output in [
        ("class_selectivity", "class_selectivity.csv"),
        ("half_ablation", "half_ablation.csv"),
        ("cumulative_ablation", "cumulative_ablation.csv"),
        ("shift_invariance", "shift_invariance.csv"),
    ]:
        assert f"results/causal/{VGG16_WITH_IMAGES}/{output}" in with_images.outputs_of(rule), rule
    figures = {Path(path).name for path in with_images.outputs_of("plot_") if "vgg16_imagenet" in path}
    assert {"half_ablation.png", "shift_invariance.png", "cumulative_ablation.png"} <= figures
    assert "training_curves.png" not in figures and "claims.png" not in figures


def test_tuning_ablation_and_invariance_run_with_random_weights(tmp_path):
    folder = fake_imagenet_folder(tmp_path / "imagenet_val")
    config = tiny_with(
        tuning={"orientations": 4, "phases": 1, "spatial_frequencies": 2, "features": ["orientation"]},
        causal={
            "ablation": {"random_draws": 1, "cumulative_fractions": [0.0, 0.5, 1.0]},
            "invariance": {"shifts": [2], "directions": ["horizontal"], "random_draws": 1, "test_images": 50},
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
    results = f"results/causal/{VGG16_WITH_IMAGES}"
    targets = [
        "results/aggregate/selectivity_summary.csv",
        f"{results}/half_ablation.csv",
        f"{results}/shift_invariance.csv",
        "results/figures/vgg16_imagenet/selectivity_by_depth.png",
        "results/figures/vgg16_imagenet/half_ablation.png",
    ]
    run_snakemake(tmp_path, write_config(tmp_path, config), *targets, "--cores", "2", "--resources", "gpu=0")
    tuning = pd.read_csv(tmp_path / f"results/tuning/{VGG16_WITH_IMAGES}/tuning.csv")
    assert list(tuning.drop_duplicates("layer").sort_values("layer_index")["layer"]) == list(VGG16_LAYERS)
    assert set(tuning["checkpoint"]) == {"published"} and set(tuning["model"]) == {"vgg16_imagenet"}
    assert set(tuning["dataset"]) == {"imagenet"}
    units = tuning[tuning.stimulus_set == "gratings"].groupby("layer")["unit"].nunique()
    assert units["conv1_1"] == 64 and units["pool5"] == 512 and units["fc2"] == 4096
    summary = pd.read_csv(tmp_path / "results/aggregate/selectivity_summary.csv")
    assert len(summary[summary["model"] == "vgg16_imagenet"]) == 20 * 2
    half = pd.read_csv(tmp_path / f"{results}/half_ablation.csv")
    # the same controls as the trained networks: class selectivity and the matched-random units
    assert set(half["layer"]) == {"conv1_1"} and set(half["ranking"]) == {"gosi", "class_selectivity"}
    assert {"top", "bottom", "random", "matched"} == set(half[half["ranking"] == "gosi"]["condition"])
    assert (half["n_images"] == 4).all()
    selectivity = pd.read_csv(tmp_path / f"results/causal/{VGG16_WITH_IMAGES}/class_selectivity.csv")
    # 3 of the 3 class folders have images: preferred classes are folder indices
    assert set(selectivity["preferred_class"]) <= {0, 1, 2}
    invariance = pd.read_csv(tmp_path / f"{results}/shift_invariance.csv")
    assert set(invariance["measured_layer"]) == {"fc2"} and set(invariance["shift_px"]) == {2}
