"""K networks of one architecture stacked into one module, to train them in lockstep.

Every trainable architecture has its stacked form: the plain CNNs (:class:`GroupedConvNet`),
ResNet-20 (:class:`GroupedResNet`) and vgg8bn (:class:`GroupedVGGNet`). This hand-built
stacking was measured against ``torch.func`` (``stack_module_state`` + ``functional_call`` +
``vmap`` over the plain model) and kept as the one mechanism because it was the faster of the
two (benchmarks/grouped_mechanisms.py; docs/development.md "Performance").

A small CNN at batch 32 keeps a GPU mostly idle: each step is a few hundred tiny
kernel launches. Stacking K independent networks makes every launch do K networks'
work, so K networks train in about the time of one (docs/method.md §7).

Stacking is exact, not an approximation of K separate runs:

- convolutions use ``groups=K`` over the concatenated channels, so network k's
  output channels see only network k's input channels;
- BatchNorm over the K*C channels normalises every channel with its own statistics,
  which are exactly that network's statistics (running statistics included);
- the fully connected part uses per-network weight matrices (batched matmul), after
  flattening each network's maps in the plain model's (channel, row, column) order;
- the training loss is the SUM over networks of each network's mean cross-entropy,
  so every network gets exactly its own gradient, and Adam is elementwise, so one
  optimiser over the stacked parameters equals K optimisers.

The only differences to separate training are float rounding orders of the grouped
kernels. The module's parameter names equal the plain model's
(``stages.{i}.conv.weight`` ...), with the K copies concatenated (conv, BN) or
stacked along a new first axis (linear layers).

Input: ``(B, K*C, H, W)``, network k's own batch in channels ``k*C:(k+1)*C``.
Output: logits ``(B, K, classes)``.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from typing import Sequence

import torch
from torch import nn

from selectivity.networks.architectures import (
    CONV_NET_SPECS,
    RESNET_SPECS,
    VGG_NET_SPECS,
    ResNetSpec,
    VGGNetSpec,
)
from selectivity.networks.models import (
    KERAS_BN_EPSILON,
    KERAS_BN_MOMENTUM,
    AnalysableNetwork,
    ConvLayerSpec,
    ConvNetSpec,
    build_conv_net,
    build_resnet,
    build_vgg_net,
    keras_batch_norm,
)

logger = logging.getLogger(__name__)

#: What any stacked network is built from: the spec of one of the trainable architectures.
Spec = ConvNetSpec | ResNetSpec | VGGNetSpec


class GroupedLinear(nn.Module):
    """K independent linear layers: (K, B, in) -> (K, B, out), weight (K, out, in)."""

    def __init__(self, copies: int, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.copies = copies
        self.in_features = in_features
        self.out_features = out_features
        self.weight = nn.Parameter(torch.empty(copies, out_features, in_features))
        self.bias = nn.Parameter(torch.empty(copies, out_features)) if bias else None
        # Stacked networks take their weights from plain ones (stack_networks); this
        # initialisation only keeps a bare module usable (PyTorch's nn.Linear default).
        bound = 1.0 / math.sqrt(in_features)
        with torch.no_grad():
            self.weight.uniform_(-bound, bound)
            if self.bias is not None:
                self.bias.uniform_(-bound, bound)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias is None:
            return torch.bmm(x, self.weight.transpose(1, 2))
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


class GroupedConvReluBN(nn.Module):
    """K copies of conv -> ReLU -> BN, channel-concatenated."""

    def __init__(self, copies: int, in_channels: int, spec: ConvLayerSpec):
        super().__init__()
        self.conv = nn.Conv2d(
            copies * in_channels,
            copies * spec.channels,
            spec.kernel_size,
            stride=spec.stride,
            padding=spec.padding,
            groups=copies,
        )
        self.bn = keras_batch_norm(copies * spec.channels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.bn(torch.relu(self.conv(h)))


class GroupedLinearReluBN(nn.Module):
    """K copies of linear -> ReLU -> BN on (K, B, in) activations."""

    def __init__(self, copies: int, in_features: int, units: int):
        super().__init__()
        self.copies = copies
        self.linear = GroupedLinear(copies, in_features, units)
        self.bn = nn.BatchNorm1d(copies * units, eps=KERAS_BN_EPSILON, momentum=KERAS_BN_MOMENTUM)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        copies, batch, _ = h.shape
        response = torch.relu(self.linear(h))  # (K, B, units)
        normalised = self.bn(response.transpose(0, 1).reshape(batch, -1))  # BN over K*units channels
        return normalised.view(batch, copies, -1).transpose(0, 1)


def _grouped_conv(copies: int, in_channels: int, channels: int, stride: int = 1) -> nn.Conv2d:
    """K independent 3x3 "same" convolutions without bias (BN follows)."""
    return nn.Conv2d(
        copies * in_channels, copies * channels, 3, stride=stride, padding=1, bias=False, groups=copies
    )


def _per_network_features(h: torch.Tensor, copies: int) -> torch.Tensor:
    """(B, K*C, h, w) maps -> (K, B, C*h*w): each network's maps flattened in (c, h, w) order."""
    return h.reshape(h.shape[0], copies, -1).transpose(0, 1)


class StackedNetwork(nn.Module):
    """What every stacked network shares: its spec, K, the input check and per-network state dicts.

    Subclasses build ``stages`` and ``head`` with the plain model's attribute names, so that the
    state-dict keys are the plain model's, and implement ``_logits``.
    """

    def __init__(self, spec: Spec, copies: int):
        super().__init__()
        if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
            raise ValueError(f"copies must be a positive integer, got {copies!r}")
        self.spec = spec
        self.copies = copies

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        expected = self.copies * self.spec.input_channels
        if x.dim() != 4 or x.shape[1] != expected:
            raise ValueError(
                f"grouped input must be (B, {expected}, H, W) for {self.copies} networks, got {tuple(x.shape)}"
            )
        return self._logits(x)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def network_state_dict(self, index: int) -> dict[str, torch.Tensor]:
        """The plain model's state dict of network ``index`` (detached copies)."""
        if not 0 <= index < self.copies:
            raise IndexError(f"network index {index} is out of range for {self.copies} stacked networks")
        state = {}
        for key, grouped in self.state_dict().items():
            state[key] = _network_slice(grouped, self.copies, index).detach().clone()
        return state

    def load_network_state_dict(self, index: int, state: dict[str, torch.Tensor]) -> None:
        """Put a plain model's state dict into slot ``index``."""
        if not 0 <= index < self.copies:
            raise IndexError(f"network index {index} is out of range for {self.copies} stacked networks")
        own = self.state_dict()
        if set(state) != set(own):
            raise ValueError(
                f"state dict keys do not match {self.spec.name}: "
                f"missing {sorted(set(own) - set(state))}, unexpected {sorted(set(state) - set(own))}"
            )
        with torch.no_grad():
            for key, grouped in own.items():
                if grouped.dim() == 0:  # BN's num_batches_tracked: one counter for all copies
                    grouped.copy_(state[key])
                    continue
                target = _network_slice(grouped, self.copies, index)
                if target.shape != state[key].shape:
                    raise ValueError(
                        f"{key}: plain network tensor has shape {tuple(state[key].shape)}, "
                        f"expected {tuple(target.shape)}"
                    )
                target.copy_(state[key])


class GroupedConvNet(StackedNetwork):
    """``copies`` independent networks of one :class:`ConvNetSpec`, computed together."""

    def __init__(self, spec: ConvNetSpec, copies: int):
        super().__init__(spec, copies)
        stages: list[nn.Module] = []
        in_channels = spec.input_channels
        for conv in spec.convs:
            stages.append(GroupedConvReluBN(copies, in_channels, conv))
            in_channels = conv.channels
        self.num_conv_stages = len(spec.convs)
        in_features = spec.flat_features()
        for units in spec.hidden_units:
            stages.append(GroupedLinearReluBN(copies, in_features, units))
            in_features = units
        self.stages = nn.ModuleList(stages)
        self.head = GroupedLinear(copies, in_features, spec.num_classes)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for stage in self.stages[: self.num_conv_stages]:
            h = stage(h)
        h = _per_network_features(h, self.copies)  # (K, B, C*h*w)
        for stage in self.stages[self.num_conv_stages :]:
            h = stage(h)
        return self.head(h).transpose(0, 1)  # (B, K, classes)


class GroupedConvBNRelu(nn.Module):
    """K copies of conv -> BN -> ReLU (the ResNet stem, the VGG-BN convs)."""

    def __init__(self, copies: int, in_channels: int, channels: int):
        super().__init__()
        self.conv = _grouped_conv(copies, in_channels, channels)
        self.bn = keras_batch_norm(copies * channels)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.bn(self.conv(h)))


class GroupedBasicBlock(nn.Module):
    """K copies of the basic block; the option-A shortcut pads each network's own channels."""

    def __init__(self, copies: int, in_channels: int, channels: int, stride: int):
        super().__init__()
        self.copies, self.stride, self.extra_channels = copies, stride, channels - in_channels
        self.conv1 = _grouped_conv(copies, in_channels, channels, stride)
        self.bn1 = keras_batch_norm(copies * channels)
        self.conv2 = _grouped_conv(copies, channels, channels)
        self.bn2 = keras_batch_norm(copies * channels)

    def shortcut(self, h: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            h = h[:, :, :: self.stride, :: self.stride]
        if self.extra_channels:
            batch, _, height, width = h.shape
            per_network = h.reshape(batch, self.copies, -1, height, width)
            padded = nn.functional.pad(per_network, (0, 0, 0, 0, 0, self.extra_channels))
            h = padded.reshape(batch, -1, height, width)
        return h

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        residual = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(h)))))
        return torch.relu(residual + self.shortcut(h))


class GroupedResNet(StackedNetwork):
    """``copies`` independent CIFAR ResNets of one :class:`ResNetSpec`, computed together."""

    def __init__(self, spec: ResNetSpec, copies: int):
        super().__init__(spec, copies)
        stages: list[nn.Module] = [GroupedConvBNRelu(copies, spec.input_channels, spec.stage_channels[0])]
        in_channels = spec.stage_channels[0]
        for stage_number, channels in enumerate(spec.stage_channels):
            for block in range(spec.blocks_per_stage):
                stride = 2 if stage_number > 0 and block == 0 else 1
                stages.append(GroupedBasicBlock(copies, in_channels, channels, stride))
                in_channels = channels
        self.stages = nn.ModuleList(stages)
        # the plain head's layout (pool, flatten, linear) keeps the state-dict key head.2.*
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Identity(), GroupedLinear(copies, in_channels, spec.num_classes)
        )

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for stage in self.stages:
            h = stage(h)
        pooled = _per_network_features(self.head[0](h), self.copies)  # (K, B, C)
        return self.head[2](pooled).transpose(0, 1)


class GroupedMaxPool(nn.Module):
    """Max-pooling acts per channel, so K copies are one pool (kept as ``pool`` like the plain stage)."""

    def __init__(self):
        super().__init__()
        self.pool = nn.MaxPool2d(2)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return self.pool(h)


class GroupedLinearBNRelu(nn.Module):
    """K copies of linear (no bias) -> BN -> ReLU on (K, B, in) activations."""

    def __init__(self, copies: int, in_features: int, units: int):
        super().__init__()
        self.linear = GroupedLinear(copies, in_features, units, bias=False)
        self.bn = nn.BatchNorm1d(copies * units, eps=KERAS_BN_EPSILON, momentum=KERAS_BN_MOMENTUM)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        copies, batch, _ = h.shape
        normalised = self.bn(self.linear(h).transpose(0, 1).reshape(batch, -1))  # BN over K*units
        return torch.relu(normalised).view(batch, copies, -1).transpose(0, 1)


class GroupedVGGNet(StackedNetwork):
    """``copies`` independent compact VGGs of one :class:`VGGNetSpec`, computed together."""

    def __init__(self, spec: VGGNetSpec, copies: int):
        super().__init__(spec, copies)
        stages: list[nn.Module] = []
        in_channels = spec.input_channels
        for convs in spec.block_channels:
            for channels in convs:
                stages.append(GroupedConvBNRelu(copies, in_channels, channels))
                in_channels = channels
            stages.append(GroupedMaxPool())
        self.num_map_stages = len(stages)
        in_features = spec.flat_features()
        for units in spec.hidden_units:
            stages.append(GroupedLinearBNRelu(copies, in_features, units))
            in_features = units
        self.stages = nn.ModuleList(stages)
        self.head = GroupedLinear(copies, in_features, spec.num_classes)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        h = x
        for stage in self.stages[: self.num_map_stages]:
            h = stage(h)
        h = _per_network_features(h, self.copies)
        for stage in self.stages[self.num_map_stages :]:
            h = stage(h)
        return self.head(h).transpose(0, 1)


def _network_slice(grouped: torch.Tensor, copies: int, index: int) -> torch.Tensor:
    """View of network ``index`` in a stacked tensor.

    Grouped-linear tensors carry the copies on a new first axis; conv and BN tensors
    concatenate them along the first axis; scalars are shared.
    """
    if grouped.dim() == 0:
        return grouped
    if grouped.dim() in (2, 3):  # GroupedLinear weight (K, out, in) and bias (K, out)
        return grouped[index]
    size = grouped.shape[0] // copies  # conv weight/bias and BN tensors: K blocks
    return grouped[index * size : (index + 1) * size]


#: Per architecture family: its specs, its stacked form and its plain builder.
_FAMILIES = (
    (CONV_NET_SPECS, GroupedConvNet, build_conv_net),
    (RESNET_SPECS, GroupedResNet, build_resnet),
    (VGG_NET_SPECS, GroupedVGGNet, build_vgg_net),
)


def _family(name: str):
    for specs, grouped, build in _FAMILIES:
        if name in specs:
            return specs, grouped, build
    raise ValueError(f"{name!r} is not a trainable architecture; it cannot be stacked")


def _spec_of(model: AnalysableNetwork) -> Spec:
    specs, _, _ = _family(model.name)
    return dataclasses.replace(specs[model.name], input_size=model.input_size, num_classes=_classes(model))


def _classes(model: AnalysableNetwork) -> int:
    return next(m for m in reversed(list(model.head.modules())) if isinstance(m, nn.Linear)).out_features


def stack_networks(models: Sequence[AnalysableNetwork]) -> StackedNetwork:
    """One stacked network holding copies of ``models`` (same architecture), on their device.

    A user's own architecture (plain ``nn.Module``s, not a built-in model) is stacked with
    ``torch.func`` instead (:class:`selectivity.networks.user_models.FunctionalStack`), where the
    controller found that it can be (one network per job otherwise).
    """
    if not models:
        raise ValueError("stack_networks needs at least one network")
    if not isinstance(models[0], AnalysableNetwork):
        from selectivity.networks.user_models import FunctionalStack

        logger.info("stacking %d networks of a user architecture with torch.func (vmap)", len(models))
        return FunctionalStack(models)
    spec = _spec_of(models[0])
    for model in models[1:]:
        if _spec_of(model) != spec:
            raise ValueError(f"cannot stack different architectures: {spec.name} and {model.name}")
    counters = {
        key: value.item()
        for key, value in models[0].state_dict().items()
        if key.endswith("num_batches_tracked")
    }
    for model in models[1:]:
        for key, value in model.state_dict().items():
            if key in counters and value.item() != counters[key]:
                raise ValueError(f"cannot stack networks trained for different numbers of steps ({key})")
    reference = next(models[0].parameters())
    with torch.random.fork_rng(devices=[]):  # its own initialisation is overwritten below
        grouped = _family(spec.name)[1](spec, len(models))
    grouped.to(device=reference.device, dtype=reference.dtype)
    for index, model in enumerate(models):
        grouped.load_network_state_dict(index, model.state_dict())
    grouped.train(models[0].training)
    return grouped


def unstack_networks(grouped: StackedNetwork) -> list[AnalysableNetwork]:
    """Plain, independent copies of the stacked networks (loadable by ``load_checkpoint``)."""
    if not isinstance(grouped, StackedNetwork):  # a FunctionalStack of a user architecture
        return grouped.unstack()
    reference = next(grouped.parameters())
    networks = []
    for index in range(grouped.copies):
        # The plain constructor draws an initialisation that is overwritten at once:
        # fork the RNG so that unstacking leaves the global random state untouched.
        with torch.random.fork_rng(devices=[]):
            network = _family(grouped.spec.name)[2](grouped.spec)
        network.to(device=reference.device, dtype=reference.dtype)
        network.load_state_dict(grouped.network_state_dict(index))
        networks.append(network.train(grouped.training))
    return networks
