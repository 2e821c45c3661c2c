"""A user's own network through forward hooks: layers by name, unit layouts, ablation, the cut check."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from selectivity.networks.loading import given_identifiers
from selectivity.networks.hooked import (
    ExternalNetworkError,
    ExternalNetworkSpec,
    HookedNetwork,
    load_external_network,
    resolve_constructor,
)
from selectivity.tuning.stimuli import grating_stimuli
from selectivity.tuning.analysis import TuningSettings, analyse_tuning, measure_responses

RESNET_LAYERS = ("conv1", "layer1", "layer2", "layer3", "layer4", "avgpool")
VIT_ARGUMENTS = dict(
    image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=16, mlp_dim=32, num_classes=10
)


def small_cnn() -> nn.Sequential:
    """conv -> ReLU -> pool -> conv -> ReLU -> global pool -> linear: every module runs once."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10),
    )  # fmt: skip


@pytest.fixture(scope="module")
def resnet_weights(tmp_path_factory):
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("weights") / "resnet18.pt"
    torch.save(torchvision.models.resnet18(num_classes=10).state_dict(), path)
    return path


def resnet_spec(weights, layers=RESNET_LAYERS, **changes) -> ExternalNetworkSpec:
    fields = dict(
        name="my_resnet", constructor="resnet18", weights=str(weights), layers=tuple(layers), input_size=32,
        mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25), arguments={"num_classes": 10},
    )  # fmt: skip
    return ExternalNetworkSpec(**{**fields, **changes})


def test_layers_units_and_kinds_come_from_the_module_names(resnet_weights):
    network = load_external_network(resnet_spec(resnet_weights))
    model = network.model
    assert model.layer_names == list(RESNET_LAYERS)
    assert [model.units(layer) for layer in RESNET_LAYERS] == [64, 64, 128, 256, 512, 512]
    assert {model.stage(layer).kind for layer in RESNET_LAYERS} == {"conv"}
    assert not model.training and network.info["constructor"] == "resnet18"
    # images in [0, 1] are normalised with the configured mean and std
    torch.testing.assert_close(network.prepare_inputs(torch.full((1, 3, 2, 2), 0.75)), torch.ones(1, 3, 2, 2))


def test_responses_are_the_modules_outputs_and_ablation_zeroes_whole_channels():
    module = small_cnn().eval()
    model = HookedNetwork("small", module, ["1", "4", "6"], 16)
    x = torch.rand(4, 3, 16, 16)
    with torch.no_grad():
        run = model.run(x, record_responses=["1", "6"])
        torch.testing.assert_close(run.responses["1"], module[1](module[0](x)))
        torch.testing.assert_close(run.logits, module(x))
        assert model.stage("6").kind == "fc" and model.units("6") == 16
        keep = torch.ones(8)
        keep[[0, 3]] = 0
        ablated = model.run(x, ablation={"1": keep}, record_outputs=["1"])
        by_hand = module[3:](module[2](module[1](module[0](x)) * keep.view(1, 8, 1, 1)))
    assert (ablated.outputs["1"][:, [0, 3]] == 0).all()
    torch.testing.assert_close(ablated.logits, by_hand)


def test_responses_of_a_layer_that_can_be_negative_are_rectified(resnet_weights):
    network = load_external_network(resnet_spec(resnet_weights, ("conv1", "layer1")))
    x = network.prepare_inputs(torch.rand(2, 3, 32, 32))
    with torch.no_grad():
        run = network.model.run(x, record_responses=["conv1"], record_outputs=["conv1"])
        conv = network.model.head.conv1(x)  # before BN and ReLU: negative values
    assert (conv < 0).any()
    torch.testing.assert_close(run.outputs["conv1"], conv)
    torch.testing.assert_close(run.responses["conv1"], torch.relu(conv))


def test_a_pass_continued_from_a_layer_equals_the_full_pass_and_stop_after_ends_it():
    module = small_cnn().eval()
    model = HookedNetwork("small", module, ["2", "4"], 16)
    x = torch.rand(3, 3, 16, 16)
    keep = torch.ones(16)
    keep[5] = 0
    with torch.no_grad():
        upstream = model.run(x, record_outputs=["2"], stop_after="2")
        assert upstream.logits.numel() == 0
        continued = model.forward_from("2", upstream.outputs["2"], ablation={"4": keep})
        full = model.run(x, ablation={"4": keep})
    torch.testing.assert_close(continued.logits, full.logits)
    with pytest.raises(ValueError, match="lies before 4"):
        model.forward_from("4", torch.zeros(3, 16, 8, 8), record_responses=["2"])


def test_token_layers_are_channels_averaged_over_tokens(tmp_path):
    torch.manual_seed(0)
    vit = torchvision.models.VisionTransformer(**VIT_ARGUMENTS)
    torch.save(vit.state_dict(), tmp_path / "vit.pt")
    layers = ("conv_proj", "encoder.layers.encoder_layer_0", "encoder.layers.encoder_layer_1")
    spec = ExternalNetworkSpec(
        "my_vit",
        "torchvision.models:VisionTransformer",
        str(tmp_path / "vit.pt"),
        layers,
        32,
        arguments=VIT_ARGUMENTS,
    )
    network = load_external_network(spec)
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        run = network.model.run(x, record_responses=list(layers))
        tokens = vit.encoder.layers.encoder_layer_0  # (batch, 1 + 16 tokens, 16 channels) by hand
        captured = []
        handle = tokens.register_forward_hook(lambda m, i, o: captured.append(o))
        vit.eval()(x)
        handle.remove()
    assert tuple(run.responses["encoder.layers.encoder_layer_0"].shape) == (2, 16, 17, 1)
    torch.testing.assert_close(
        run.responses["encoder.layers.encoder_layer_0"][..., 0],
        torch.relu(captured[0].transpose(1, 2)),  # rectified: the residual stream can be negative
    )
    responses = measure_responses(network, torch.rand(5, 3, 32, 32), [layers[1]], batch_size=5)
    assert tuple(responses[layers[1]].shape) == (5, 16)  # one value per channel: the mean over tokens


def test_tuning_of_a_hooked_network_matches_the_responses_by_hand(tmp_path):
    module = small_cnn().eval()
    torch.save(module.state_dict(), tmp_path / "cnn.pt")
    spec = ExternalNetworkSpec(
        "small", "any", str(tmp_path / "cnn.pt"), ("1", "4"), 32, mean=(0.5,) * 3, std=(0.2,) * 3
    )
    network = load_external_network_from_module(spec, module)
    images = grating_stimuli(32, 4, 2, 2).images.reshape(-1, 3, 32, 32)
    with torch.no_grad():
        by_hand = module[:5](network.prepare_inputs(images)).mean(dim=(2, 3))
    torch.testing.assert_close(measure_responses(network, images, ["4"], batch_size=7)["4"], by_hand)
    settings = TuningSettings(orientations=4, phases=4, spatial_frequencies=2, batch_size=16)
    table = analyse_tuning(
        network, settings, given_identifiers({"name": "small", "dataset": "none", "index": 0})
    ).table
    assert set(table["model"]) == {"small"} and set(table["checkpoint"]) == {"published"}
    assert set(table["dataset"]) == {"none"}
    assert table.groupby("layer")["unit"].nunique().to_dict() == {"1": 8, "4": 16}


def load_external_network_from_module(spec: ExternalNetworkSpec, module: nn.Module):
    """load_external_network with the constructor replaced by a module of this test."""
    from unittest import mock

    with mock.patch("selectivity.networks.hooked.resolve_constructor", return_value=lambda: module):
        return load_external_network(spec)


@pytest.mark.parametrize(
    "layers, message",
    [
        (("layer1.0.conv1",), "'layer1.0.conv1' is not on every path from the input to the output"),
        (("layer1.0.relu",), "'layer1.0.relu' runs 2 times per forward pass"),
        (
            ("layer9",),
            r"layers \['layer9'\] are not modules of the network; module names look like \['conv1'",
        ),
        (("fc",), None),  # the classifier itself is a layer like any other
    ],
)
def test_layers_that_cannot_be_analysed_are_refused_naming_the_key(resnet_weights, layers, message):
    spec = resnet_spec(resnet_weights, layers)
    if message is None:
        assert load_external_network(spec).model.units("fc") == 10
        return
    with pytest.raises(ExternalNetworkError, match=r"external_networks\.my_resnet\.layers: .*" + message):
        load_external_network(spec)


def test_constructors_weights_and_arguments_are_checked(resnet_weights, tmp_path):
    assert resolve_constructor("torchvision.models:resnet18") is torchvision.models.resnet18
    with pytest.raises(ExternalNetworkError, match="'resnet_huge' is not a torchvision model name"):
        load_external_network(resnet_spec(resnet_weights, constructor="resnet_huge"))
    with pytest.raises(ExternalNetworkError, match="'no_such_package.models:net' cannot be imported"):
        resolve_constructor("no_such_package.models:net")
    with pytest.raises(
        ExternalNetworkError, match=r"my_resnet\.weights: .* does not fit resnet34: missing keys"
    ):
        load_external_network(resnet_spec(resnet_weights, constructor="resnet34"))
    with pytest.raises(ExternalNetworkError, match=r"my_resnet\.arguments: resnet18 refused them"):
        load_external_network(resnet_spec(resnet_weights, arguments={"num_classes": 10, "colour": True}))
    with pytest.raises(
        ExternalNetworkError, match=r"my_resnet\.weights: .* does not fit resnet18: size mismatch"
    ):
        load_external_network(resnet_spec(resnet_weights, arguments={"num_classes": 5}))
    # a weights file with anything but tensors is refused before it runs
    torch.save({"state_dict": {"conv1.weight": torch.zeros(1)}, "hook": print}, tmp_path / "unsafe.pt")
    with pytest.raises(Exception, match="refusing to load network weights"):
        load_external_network(resnet_spec(tmp_path / "unsafe.pt"))
