"""The workflow on real CIFAR-10 images: the shared subset as a local .npz
(../shared/datasets/cifar10-subset.npz, where CI provides it).

Trains the paper's CNN for a few epochs through the workflow's data and training rules and
checks that it generalises clearly above chance. Skips with a reason where the subset is absent.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from conftest import run_snakemake, write_config
from selectivity.networks.checkpoints import load_checkpoint

pytestmark = pytest.mark.slow


def test_paper_cnn_learns_real_cifar10_subset(tmp_path, cifar10_subset_path):
    config = {
        "dataset": {
            "name": "cifar10",
            "source": "local",
            "local_path": str(cifar10_subset_path),
            "validation_size": 2500,
        },
        "networks": {"models": ["cnn7"], "label_corruption": [0.0], "seeds": [0]},
        "training": {"epochs": 3, "checkpoint_epochs": [0, 3]},
    }
    relative = "results/networks/cnn7/cifar10/corruption0.00/seed0"
    network = tmp_path / relative
    run_snakemake(
        tmp_path,
        write_config(tmp_path, config),
        f"{relative}/metrics.csv",
        "--cores",
        "2",
        "--resources",
        "gpu=0",
    )
    with np.load(tmp_path / "results/data/cifar10.npz") as data:
        assert data["x_train"].shape == (12500, 32, 32, 3) and data["x_test"].shape == (5000, 32, 32, 3)
        assert list(data["y_train"][:10]) == [6, 9, 9, 4, 1, 1, 2, 7, 8, 3]
    metrics = pd.read_csv(network / "metrics.csv")
    final = metrics.iloc[-1]
    print(f"real CIFAR-10 subset, 3 epochs: test accuracy {final.test_accuracy:.3f}")
    assert final.test_accuracy > 0.35, metrics  # chance is 0.10
    assert final.train_accuracy == final.train_accuracy_true_labels  # no corruption
    assert load_checkpoint(network / "checkpoints/epoch3.pt").epoch == 3
