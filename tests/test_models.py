"""The analysed networks: architecture pinned by shapes and parameter counts, readout and ablation points."""

from __future__ import annotations

import pytest
import torch

from selectivity.networks.architectures import (
    CNN7_SPEC,
    CNN11_SPEC,
    DEFAULT_LAYER_ROLES,
    RESNET20_SPEC,
    VGG8BN_SPEC,
)
from selectivity.networks.models import KERAS_BN_EPSILON, KERAS_BN_MOMENTUM, apply_keep_mask, build_model


def trainable_parameters(model: torch.nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def test_cnn7_is_the_papers_network():
    model = build_model("cnn7")
    # conv 3x3 valid: 896 + 9,248 + 18,496 + 36,928 + 73,856 + 147,584; fc 66,048 + 5,130; BN 2 x 960
    assert trainable_parameters(model) == 360_106
    assert model.layer_names == ["conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "fc1"]
    assert CNN7_SPEC.conv_output_sizes() == [30, 14, 12, 5, 3, 1]
    strides = [stage.conv.stride[0] for stage in model.stages[:6]]
    paddings = [stage.conv.padding[0] for stage in model.stages[:6]]
    assert strides == [1, 2, 1, 2, 1, 2] and paddings == [0] * 6
    for stage in model.stages:
        assert stage.bn.momentum == KERAS_BN_MOMENTUM == 0.01 and stage.bn.eps == KERAS_BN_EPSILON == 1e-3
    assert isinstance(model.head, torch.nn.Linear) and model.head.out_features == 10


def test_cnn7_responses_are_post_relu_pre_bn_and_outputs_post_bn():
    torch.manual_seed(0)
    model = build_model("cnn7").eval()
    with torch.no_grad():
        for stage in model.stages:  # non-trivial BN so response and output differ
            stage.bn.running_mean.uniform_(0.1, 0.5)
            stage.bn.running_var.uniform_(0.5, 2.0)
        run = model.run(
            torch.randn(4, 3, 32, 32), record_responses=model.layer_names, record_outputs=model.layer_names
        )
    shapes = {name: tuple(r.shape) for name, r in run.responses.items()}
    assert shapes == {
        "conv1": (4, 32, 30, 30),
        "conv2": (4, 32, 14, 14),
        "conv3": (4, 64, 12, 12),
        "conv4": (4, 64, 5, 5),
        "conv5": (4, 128, 3, 3),
        "conv6": (4, 128, 1, 1),
        "fc1": (4, 512),
    }
    for name in model.layer_names:
        response, output = run.responses[name], run.outputs[name]
        assert (response >= 0).all()  # after ReLU
        assert torch.allclose(model.stage(name).bn(response), output)  # output = BN(response)
    assert run.logits.shape == (4, 10)


def test_glorot_uniform_weights_and_zero_biases():
    torch.manual_seed(1)
    conv = build_model("cnn7").stages[2].conv  # 32 -> 64 channels, 3x3
    limit = (6 / (32 * 9 + 64 * 9)) ** 0.5
    assert conv.weight.abs().max() <= limit and conv.weight.abs().max() > 0.9 * limit
    assert (conv.bias == 0).all()


def test_cnn11_is_the_morcos_network():
    model = build_model("cnn11")
    assert model.layer_names == [f"conv{i}" for i in range(1, 12)] + ["fc1"]
    assert [s.channels for s in CNN11_SPEC.convs] == [64, 64, 128, 128, 128, 256, 256, 256, 512, 512, 512]
    assert CNN11_SPEC.conv_output_sizes() == [32, 32, 16, 16, 16, 8, 8, 8, 4, 4, 4]
    assert model.stage("fc1").units == 256
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_ablation_by_mask_and_forward_from():
    torch.manual_seed(2)
    model = build_model("cnn7").eval()
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        intact = model.run(x, record_outputs=["conv2"])
        keep = torch.ones(32)
        keep[[3, 7]] = 0
        ablated = model.run(x, ablation={"conv2": keep}, record_outputs=["conv2"])
        resumed = model.forward_from("conv2", intact.outputs["conv2"], ablation={"conv2": keep})
    assert (ablated.outputs["conv2"][:, [3, 7]] == 0).all()
    assert torch.equal(ablated.outputs["conv2"][:, 0], intact.outputs["conv2"][:, 0])
    assert torch.allclose(resumed.logits, ablated.logits, atol=1e-6)
    assert not torch.allclose(ablated.logits, intact.logits)


def test_keep_mask_shapes_are_checked():
    output = torch.ones(2, 4, 5, 5)
    assert apply_keep_mask(output, torch.tensor([1.0, 0.0, 1.0, 1.0]))[:, 1].sum() == 0
    per_sample = apply_keep_mask(output, torch.tensor([[1.0, 1, 1, 1], [0, 0, 0, 0]]))
    assert per_sample[0].sum() == 100 and per_sample[1].sum() == 0
    with pytest.raises(ValueError, match="units"):
        apply_keep_mask(output, torch.ones(3))


def test_unknown_names_are_rejected():
    with pytest.raises(ValueError, match="unknown model 'resnet'"):
        build_model("resnet")
    with pytest.raises(KeyError, match="no layer 'conv9'"):
        build_model("cnn7").run(torch.zeros(1, 3, 32, 32), record_responses=["conv9"])


def test_resnet20_is_he_et_al_cifar_network():
    model = build_model("resnet20")
    # stem 432 + BN 32; stage 1: 6 convs of 2,304; stage 2: 4,608 + 5 x 9,216; stage 3: 18,432 + 5 x 36,864;
    # BN 2 x (16 x 7 + 32 x 6 + 64 x 6); linear 650. Option-A shortcuts have no parameters.
    assert trainable_parameters(model) == 269_722
    assert model.layer_names == RESNET20_SPEC.layer_names()
    assert model.layer_names == ["stem"] + [f"block{s}_{b}" for s in (1, 2, 3) for b in (1, 2, 3)]
    assert {name: model.units(name) for name in model.layer_names} == RESNET20_SPEC.layer_units()
    strides = [stage.conv1.stride[0] for stage in model.stages[1:]]
    assert strides == [1, 1, 1, 2, 1, 1, 2, 1, 1]
    assert isinstance(model.head[0], torch.nn.AdaptiveAvgPool2d) and model.head[-1].out_features == 10


def test_resnet20_units_are_block_outputs_after_the_addition_and_relu():
    torch.manual_seed(0)
    model = build_model("resnet20").eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        run = model.run(x, record_responses=model.layer_names, record_outputs=model.layer_names)
        block = model.stage("block2_1")  # halves the map and widens 16 -> 32 channels
        block_input = run.outputs["block1_3"]
        by_hand = torch.relu(
            block.bn2(block.conv2(torch.relu(block.bn1(block.conv1(block_input)))))
            + torch.nn.functional.pad(block_input[:, :, ::2, ::2], (0, 0, 0, 0, 0, 16))
        )
    assert torch.equal(run.responses["block2_1"], run.outputs["block2_1"])
    torch.testing.assert_close(run.responses["block2_1"], by_hand)
    assert tuple(run.responses["block2_1"].shape) == (2, 32, 16, 16)
    assert tuple(run.responses["block3_3"].shape) == (2, 64, 8, 8)
    assert (run.responses["stem"] >= 0).all()


def test_ablating_a_resnet_block_zeroes_whole_channels_for_the_next_block():
    torch.manual_seed(0)
    model = build_model("resnet20").eval()
    keep = torch.ones(16)
    keep[[0, 5]] = 0.0
    with torch.no_grad():
        run = model.run(torch.randn(2, 3, 32, 32), ablation={"block1_2": keep}, record_outputs=["block1_2"])
        intact = model.run(torch.randn(2, 3, 32, 32))
    assert (run.outputs["block1_2"][:, [0, 5]] == 0).all() and (run.outputs["block1_2"][:, 1] != 0).any()
    assert run.logits.shape == intact.logits.shape == (2, 10)


def test_vgg8bn_is_a_compact_vgg_with_batchnorm_and_max_pooling():
    model = build_model("vgg8bn")
    # convs 864 + 9,216 + 18,432 + 36,864 + 73,728 + 147,456 (no bias: BN follows); conv BN 2 x 448;
    # fc1 2,048 x 256 = 524,288 + BN 512; classifier 2,570.
    assert trainable_parameters(model) == 814_826
    assert model.layer_names == VGG8BN_SPEC.layer_names() == [
        "conv1_1", "conv1_2", "pool1", "conv2_1", "conv2_2", "pool2", "conv3_1", "conv3_2", "pool3", "fc1",
    ]  # fmt: skip
    assert {name: model.units(name) for name in model.layer_names} == VGG8BN_SPEC.layer_units()
    assert [model.stage(f"pool{b}").kind for b in (1, 2, 3)] == ["pool"] * 3
    assert all(model.stage(f"conv{b}_1").conv.padding == (1, 1) for b in (1, 2, 3))
    roles = DEFAULT_LAYER_ROLES["vgg8bn"]
    assert set(roles.lower) | set(roles.higher) <= set(model.layer_names)


def test_vgg8bn_units_are_post_relu_after_bn_and_pools_take_the_max():
    torch.manual_seed(0)
    model = build_model("vgg8bn").eval()
    with torch.no_grad():
        run = model.run(
            torch.randn(2, 3, 32, 32), record_responses=model.layer_names, record_outputs=model.layer_names
        )
        stage = model.stage("conv1_2")
        by_hand = torch.relu(stage.bn(stage.conv(run.outputs["conv1_1"])))
    torch.testing.assert_close(run.responses["conv1_2"], by_hand)
    assert torch.equal(run.responses["conv1_2"], run.outputs["conv1_2"])
    torch.testing.assert_close(run.responses["pool1"], torch.nn.functional.max_pool2d(by_hand, 2))
    assert tuple(run.responses["pool3"].shape) == (2, 128, 4, 4) and tuple(run.responses["fc1"].shape) == (
        2,
        256,
    )
    assert (run.responses["fc1"] >= 0).all() and run.logits.shape == (2, 10)


def test_ablating_a_vgg8bn_conv_zeroes_whole_channels_before_the_pool():
    torch.manual_seed(0)
    model = build_model("vgg8bn").eval()
    keep = torch.ones(32)
    keep[[3, 7]] = 0.0
    with torch.no_grad():
        run = model.run(torch.randn(2, 3, 32, 32), ablation={"conv1_2": keep}, record_responses=["pool1"])
    assert (run.responses["pool1"][:, [3, 7]] == 0).all() and (run.responses["pool1"][:, 0] != 0).any()
