"""Architectures as plain data (no torch import), so the workflow controller can read
layer names without loading PyTorch. :mod:`selectivity.networks.models` builds modules from them.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConvLayerSpec:
    """One 3x3 convolution of a plain CNN: its channels, stride and zero padding."""

    channels: int
    stride: int
    padding: int = 0
    kernel_size: int = 3


@dataclass(frozen=True)
class ConvNetSpec:
    """The architecture of a conv -> ReLU -> BN network with a BN'd fully connected part.

    Grouped training (:mod:`selectivity.networks.grouped`) builds K stacked copies from the
    same spec, so the spec, not the module, is the single source of the architecture.
    """

    name: str
    convs: tuple[ConvLayerSpec, ...]
    hidden_units: tuple[int, ...]
    input_size: int = 32
    input_channels: int = 3
    num_classes: int = 10

    def conv_output_sizes(self) -> list[int]:
        """Spatial size of every conv layer's map for a square input."""
        sizes, size = [], self.input_size
        for conv in self.convs:
            size = (size + 2 * conv.padding - conv.kernel_size) // conv.stride + 1
            if size < 1:
                raise ValueError(
                    f"{self.name}: input size {self.input_size} is too small for its convolutions"
                )
            sizes.append(size)
        return sizes

    def flat_features(self) -> int:
        return self.convs[-1].channels * self.conv_output_sizes()[-1] ** 2

    def layer_names(self) -> list[str]:
        return [f"conv{i + 1}" for i in range(len(self.convs))] + [
            f"fc{i + 1}" for i in range(len(self.hidden_units))
        ]

    def layer_units(self) -> dict[str, int]:
        """Units (channels of a conv layer, units of an fc layer) of every analysed layer."""
        counts = [conv.channels for conv in self.convs] + list(self.hidden_units)
        return dict(zip(self.layer_names(), counts))


# The paper's "7-layer CNN" (docs/method.md §1): six valid 3x3 convs and one hidden FC layer.
CNN7_SPEC = ConvNetSpec(
    name="cnn7",
    convs=(
        ConvLayerSpec(32, 1),
        ConvLayerSpec(32, 2),
        ConvLayerSpec(64, 1),
        ConvLayerSpec(64, 2),
        ConvLayerSpec(128, 1),
        ConvLayerSpec(128, 2),
    ),
    hidden_units=(512,),
)

# Morcos et al. (2018) 11-layer CNN for CIFAR-10. [D] "same" padding (the paper is silent);
# conv -> ReLU -> BN like cnn7 so that responses and ablation points mean the same thing.
CNN11_SPEC = ConvNetSpec(
    name="cnn11",
    convs=tuple(
        ConvLayerSpec(c, s, padding=1)
        for c, s in zip(
            (64, 64, 128, 128, 128, 256, 256, 256, 512, 512, 512),
            (1, 1, 2, 1, 1, 2, 1, 1, 2, 1, 1),
        )
    ),
    hidden_units=(256,),
)

CONV_NET_SPECS: dict[str, ConvNetSpec] = {spec.name: spec for spec in (CNN7_SPEC, CNN11_SPEC)}


@dataclass(frozen=True)
class ResNetSpec:
    """A CIFAR ResNet of He et al. (2016, section 4.2): a 3x3 stem, stages of basic blocks.

    Each stage has ``blocks_per_stage`` basic blocks (conv-BN-ReLU-conv-BN plus the shortcut,
    then ReLU); every stage after the first halves the map with stride 2 in its first block.
    The shortcut is the identity, zero-padded in channels and subsampled where the shape
    changes (the paper's option A, which has no parameters). Analysed layers ("units" =
    channels): the stem's output and every block's output after the addition and ReLU.
    """

    name: str
    stage_channels: tuple[int, ...] = (16, 32, 64)
    blocks_per_stage: int = 3
    input_size: int = 32
    input_channels: int = 3
    num_classes: int = 10

    def layer_names(self) -> list[str]:
        blocks = [
            f"block{stage + 1}_{block + 1}"
            for stage in range(len(self.stage_channels))
            for block in range(self.blocks_per_stage)
        ]
        return ["stem", *blocks]

    def layer_units(self) -> dict[str, int]:
        counts = [self.stage_channels[0]] + [
            channels for channels in self.stage_channels for _ in range(self.blocks_per_stage)
        ]
        return dict(zip(self.layer_names(), counts))

    def output_size(self) -> int:
        """Spatial size of the last stage's map (before global average pooling)."""
        size = self.input_size
        for _ in self.stage_channels[1:]:
            size = (size + 1) // 2
        return size


# ResNet-20 for CIFAR-10 (He et al. 2016: 6n + 2 layers with n = 3; about 0.27 M parameters).
RESNET20_SPEC = ResNetSpec(name="resnet20")
RESNET_SPECS: dict[str, ResNetSpec] = {RESNET20_SPEC.name: RESNET20_SPEC}


@dataclass(frozen=True)
class VGGNetSpec:
    """A small VGG-style network with BatchNorm (Simonyan & Zisserman 2015; Ioffe & Szegedy 2015).

    Blocks of 3x3 "same" convolutions (conv -> BN -> ReLU), each block ending in a 2x2
    max-pool, then fully connected layers (linear -> BN -> ReLU) and a linear classifier.
    Analysed layers: every conv (``conv{block}_{i}``), every pool (``pool{block}``) and every
    hidden fc layer (``fc{i}``), as for the paper's VGG16; "units" are channels (fc: units).
    """

    name: str
    block_channels: tuple[tuple[int, ...], ...] = ((32, 32), (64, 64), (128, 128))
    hidden_units: tuple[int, ...] = (256,)
    input_size: int = 32
    input_channels: int = 3
    num_classes: int = 10

    def layer_names(self) -> list[str]:
        names = []
        for block, convs in enumerate(self.block_channels, start=1):
            names += [f"conv{block}_{i}" for i in range(1, len(convs) + 1)] + [f"pool{block}"]
        return names + [f"fc{i}" for i in range(1, len(self.hidden_units) + 1)]

    def layer_units(self) -> dict[str, int]:
        counts = []
        for convs in self.block_channels:
            counts += [*convs, convs[-1]]
        return dict(zip(self.layer_names(), counts + list(self.hidden_units)))

    def output_size(self) -> int:
        """Spatial size after the last pool (each pool halves the map, rounding down)."""
        size = self.input_size
        for _ in self.block_channels:
            size //= 2
        if size < 1:
            raise ValueError(f"{self.name}: input size {self.input_size} is too small for its pools")
        return size

    def flat_features(self) -> int:
        return self.block_channels[-1][-1] * self.output_size() ** 2


# A compact VGG for CIFAR-10 [D]: three blocks of two convs (32, 64, 128 channels), fc 256;
# 8 weight layers, 814,826 parameters. It differs from cnn7 in kind (BN before ReLU, "same"
# padding, max-pooling instead of strides) while its cost per image stays near ResNet-20's.
VGG8BN_SPEC = VGGNetSpec(name="vgg8bn")
VGG_NET_SPECS: dict[str, VGGNetSpec] = {VGG8BN_SPEC.name: VGG8BN_SPEC}


@dataclass(frozen=True)
class LayerRoles:
    """Which analysed layers count as "lower" and "higher" for the claims and shift invariance.

    ``lower`` layers are ablated (C4, C5, and the invariance test) and their selectivity is
    related to generalization (C2, C3); ``higher`` layers are measured for shift invariance
    (C5) and, with the lower ones, tested for selective units (C1).
    """

    lower: tuple[str, ...]
    higher: tuple[str, ...]


# Defaults per architecture; config keys claims.lower_layers/higher_layers and
# causal.invariance.ablated_layers/measured_layers override them (see selectivity.config).
# cnn7 [A]: the paper's lower layers are conv1-conv2, its higher ones conv5-fc1.
# cnn11 [D]: the same proportions of depth (first 3 of 12 layers; last 4).
DEFAULT_LAYER_ROLES: dict[str, LayerRoles] = {
    "cnn7": LayerRoles(lower=("conv1", "conv2"), higher=("conv5", "conv6", "fc1")),
    "cnn11": LayerRoles(lower=("conv1", "conv2", "conv3"), higher=("conv9", "conv10", "conv11", "fc1")),
    # resnet20 [D]: of its 10 analysed layers the first 3 (stem and two blocks of the first,
    # 16-channel stage) and the last 3 (the 64-channel stage), as for cnn7.
    "resnet20": LayerRoles(
        lower=("stem", "block1_1", "block1_2"), higher=("block3_1", "block3_2", "block3_3")
    ),
    # vgg8bn [D]: the first block's convs (before any pooling, like cnn7's conv1-conv2) and the
    # last block's second conv, its pool and fc1 (like cnn7's conv5-fc1), of ten analysed layers.
    "vgg8bn": LayerRoles(lower=("conv1_1", "conv1_2"), higher=("conv3_2", "pool3", "fc1")),
}


# torchvision's VGG16 analysed as in the paper: every conv, every max-pool, fc1 and fc2.
VGG16_LAYERS: tuple[str, ...] = (
    "conv1_1", "conv1_2", "pool1",
    "conv2_1", "conv2_2", "pool2",
    "conv3_1", "conv3_2", "conv3_3", "pool3",
    "conv4_1", "conv4_2", "conv4_3", "pool4",
    "conv5_1", "conv5_2", "conv5_3", "pool5",
    "fc1", "fc2",
)  # fmt: skip
VGG16_LAYER_UNITS: dict[str, int] = dict(
    zip(
        VGG16_LAYERS,
        (64, 64, 64, 128, 128, 128, 256, 256, 256, 256, 512, 512, 512, 512, 512, 512, 512, 512, 4096, 4096),
    )
)
VGG16_INPUT_SIZE = 224


def trainable_layer_units(model: str) -> dict[str, int] | None:
    """Analysed layer -> units of a trainable model, shallow to deep (None if it is not one)."""
    for specs in (CONV_NET_SPECS, RESNET_SPECS, VGG_NET_SPECS):
        if model in specs:
            return specs[model].layer_units()
    return None
