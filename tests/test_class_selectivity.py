"""Class selectivity index (Morcos et al. 2018): formula and read-out on hand-built networks."""

import numpy as np
import pytest
import torch
from torch import nn

from selectivity.networks.loaded import LoadedNetwork
from selectivity.causal.class_selectivity import (
    class_conditional_means,
    class_selectivity_index,
    class_selectivity_table,
)
from selectivity.networks.models import AnalysableNetwork, ConvLayerSpec, ConvReluBN

torch.set_num_threads(1)

IDENTIFIERS = {"model": "toy", "dataset": "colours", "label_corruption": 0.0, "seed": 0, "epoch": 7}
COLUMNS = [
    *IDENTIFIERS,
    "layer",
    "layer_index",
    "unit",
    "class_selectivity_index",
    "preferred_class",
    "mean_activation",
    "dead",
]


def test_index_of_hand_computed_cases():
    means = np.array(
        [
            [4, 0, 0, 0, 0],  # responds to one class only
            [2, 2, 2, 2, 2],  # responds equally to all
            [3, 1, 1, 1, 1],  # (3 - 1) / (3 + 1)
            [0, 0, 0, 0, 0],  # never responds
            [1, 0, 2, 0, 1],  # mu_rest = (1 + 0 + 0 + 1) / 4 = 0.5 -> (2 - 0.5) / 2.5
        ],
        dtype=float,
    )
    np.testing.assert_allclose(class_selectivity_index(means), [1.0, 0.0, 0.5, 0.0, 0.6])


def test_index_rejects_negative_means_and_single_classes():
    with pytest.raises(ValueError, match="non-negative"):
        class_selectivity_index(np.array([[1.0, -0.5]]))
    with pytest.raises(ValueError, match="at least 2 classes"):
        class_selectivity_index(np.ones((3, 1)))


def colour_network() -> LoadedNetwork:
    """A 1x1-conv network on 8x8 images. Images of class c are a 0/2 checkerboard in channel c
    (spatial mean 1) and zero elsewhere, so unit u's response to class c is relu(w[u, c] * x)."""
    stage = ConvReluBN("conv1", 3, ConvLayerSpec(channels=4, stride=1, kernel_size=1))
    with torch.no_grad():
        stage.conv.weight.copy_(
            torch.tensor(
                [
                    [1.0, 0.0, 0.0],  # only class 0 -> index 1
                    [3.0, 1.0, 1.0],  # means (3, 1, 1) -> index 0.5
                    [1.0, 1.0, 1.0],  # means (1, 1, 1) -> index 0
                    [0.0, 0.0, 0.0],  # with bias -1: never responds -> dead, index 0
                ]
            ).view(4, 3, 1, 1)
        )
        stage.conv.bias.copy_(torch.tensor([0.0, 0.0, 0.0, -1.0]))
    head = nn.Sequential(nn.Flatten(), nn.Linear(4 * 8 * 8, 3))
    model = AnalysableNetwork("toy", [stage], head, input_size=8).eval()
    return LoadedNetwork(model, input_mean=None, epoch=7, info={})


def colour_images(labels: list[int]) -> torch.Tensor:
    checkerboard = (torch.arange(8).view(8, 1) + torch.arange(8).view(1, 8)) % 2 * 2.0
    images = torch.zeros(len(labels), 3, 8, 8)
    for index, label in enumerate(labels):
        images[index, label] = checkerboard
    return images


LABELS = [0, 0, 1, 1, 1, 2, 2, 2, 2, 2]  # unequal classes: 2, 3, 5 images


def test_class_conditional_means_of_the_hand_built_network():
    network = colour_network()
    means = class_conditional_means(
        network, colour_images(LABELS), torch.tensor(LABELS), ["conv1"], 3, batch_size=4
    )
    expected = np.array([[1, 0, 0], [3, 1, 1], [1, 1, 1], [0, 0, 0]], dtype=float)
    np.testing.assert_allclose(means["conv1"], expected, atol=1e-12)


def test_class_selectivity_table_of_the_hand_built_network():
    network = colour_network()
    table = class_selectivity_table(
        network,
        colour_images(LABELS),
        torch.tensor(LABELS),
        ["conv1"],
        IDENTIFIERS,
        num_classes=3,
        batch_size=3,
    )
    assert list(table.columns) == COLUMNS
    assert (table[list(IDENTIFIERS)] == list(IDENTIFIERS.values())).all().all()
    np.testing.assert_allclose(table.class_selectivity_index, [1.0, 0.5, 0.0, 0.0], atol=1e-12)
    assert table.preferred_class.tolist() == [0, 0, 0, 0]
    assert table.dead.tolist() == [False, False, False, True]
    # Mean over images (2, 3, 5 per class): unit 1 -> (2*3 + 3*1 + 5*1) / 10.
    np.testing.assert_allclose(table.mean_activation, [0.2, 1.4, 1.0, 0.0], atol=1e-12)
    assert table.unit.tolist() == [0, 1, 2, 3] and table.layer_index.eq(0).all()


def test_class_conditional_means_do_not_depend_on_the_batch_size():
    from selectivity.networks.models import build_model

    torch.manual_seed(0)
    model = build_model("cnn7").eval()
    network = LoadedNetwork(model, torch.full((3, 32, 32), 0.5), epoch=0, info={})
    generator = torch.Generator().manual_seed(0)
    images = torch.rand(20, 3, 32, 32, generator=generator)
    labels = torch.arange(20) % 4
    layers = ["conv2", "conv6", "fc1"]
    whole = class_conditional_means(network, images, labels, layers, 4, batch_size=20)
    pieces = class_conditional_means(network, images, labels, layers, 4, batch_size=6)
    for layer in layers:
        assert whole[layer].shape == (model.units(layer), 4)
        np.testing.assert_allclose(whole[layer], pieces[layer], rtol=1e-5, atol=1e-7)
    # conv responses are spatial means of the post-ReLU map.
    with torch.no_grad():
        response = model.run(network.prepare_inputs(images), record_responses=["conv2"]).responses["conv2"]
    expected = response[labels == 1].mean(dim=(0, 2, 3)).double().numpy()
    np.testing.assert_allclose(whole["conv2"][:, 1], expected, rtol=1e-5)


def test_class_conditional_means_reject_bad_labels():
    network = colour_network()
    images = colour_images([0, 1, 1])
    with pytest.raises(ValueError, match=r"classes \[2\] have no images"):
        class_conditional_means(network, images, torch.tensor([0, 1, 1]), ["conv1"], 3)
    with pytest.raises(ValueError, match="labels must be in 0..2"):
        class_conditional_means(network, images, torch.tensor([0, 1, 3]), ["conv1"], 3)
