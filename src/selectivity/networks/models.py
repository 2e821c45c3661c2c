"""Networks whose hidden layers can be read out and ablated by name.

Every model here is an :class:`AnalysableNetwork`: a sequence of *stages*, one per
analysed layer, followed by a *head* that maps the last stage's output to logits.
A stage maps its input to two tensors:

``response``
    what the tuning and class-selectivity analyses read: the layer's activation
    after ReLU and before BatchNorm (docs/method.md §3);
``output``
    what the next stage receives and where ablation happens: the output of the
    BatchNorm that follows the layer (docs/method.md §4). For layers without BN
    (VGG16) and for ResNet blocks (the output after the residual addition and ReLU,
    docs/method.md §1.5) the output is the response itself.

Ablation is a multiplicative *keep mask* over the channel (conv) or unit (fc)
dimension applied to a stage's output, so no checkpoint is ever edited.

Every pass runs in the network's precision and memory format
(:meth:`AnalysableNetwork.set_numerics`, :mod:`selectivity.numerics`): fp32 in the default
layout unless the checkpoint says the network was trained in bf16.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Iterable, Mapping, Sequence

import torch
from torch import nn

from selectivity import numerics
from selectivity.networks.architectures import (
    CONV_NET_SPECS,
    RESNET_SPECS,
    VGG_NET_SPECS,
    ConvLayerSpec,
    ConvNetSpec,
    ResNetSpec,
    VGGNetSpec,
)

# Keras BatchNormalization defaults, which the author's code used (docs/method.md §1):
# moving average momentum 0.99 (PyTorch counts the other way round) and epsilon 1e-3.
KERAS_BN_MOMENTUM = 0.01
KERAS_BN_EPSILON = 1e-3


@dataclass
class NetworkRun:
    """What one forward pass recorded."""

    logits: torch.Tensor
    responses: dict[str, torch.Tensor] = field(default_factory=dict)
    outputs: dict[str, torch.Tensor] = field(default_factory=dict)


class Stage(nn.Module):
    """One analysed layer. Subclasses implement :meth:`forward` -> (response, output)."""

    def __init__(self, name: str, kind: str, units: int):
        super().__init__()
        if kind not in ("conv", "pool", "fc"):
            raise ValueError(f"stage kind must be conv, pool or fc, not {kind!r}")
        self.name = name
        self.kind = kind
        self.units = units

    def forward(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:  # pragma: no cover
        raise NotImplementedError


class ConvReluBN(Stage):
    """conv -> ReLU (response) -> BatchNorm (output), as in the author's Keras model."""

    def __init__(self, name: str, in_channels: int, spec: ConvLayerSpec):
        super().__init__(name, "conv", spec.channels)
        self.conv = nn.Conv2d(
            in_channels, spec.channels, spec.kernel_size, stride=spec.stride, padding=spec.padding
        )
        self.bn = nn.BatchNorm2d(spec.channels, eps=KERAS_BN_EPSILON, momentum=KERAS_BN_MOMENTUM)

    def forward(self, h):
        response = torch.relu(self.conv(h))
        return response, self.bn(response)


class LinearReluBN(Stage):
    """(flatten) -> linear -> ReLU (response) -> BatchNorm (output)."""

    def __init__(self, name: str, in_features: int, units: int):
        super().__init__(name, "fc", units)
        self.linear = nn.Linear(in_features, units)
        self.bn = nn.BatchNorm1d(units, eps=KERAS_BN_EPSILON, momentum=KERAS_BN_MOMENTUM)

    def forward(self, h):
        response = torch.relu(self.linear(torch.flatten(h, 1)))
        return response, self.bn(response)


def keras_batch_norm(channels: int) -> nn.BatchNorm2d:
    """BatchNorm2d with the Keras settings of the author's models."""
    return nn.BatchNorm2d(channels, eps=KERAS_BN_EPSILON, momentum=KERAS_BN_MOMENTUM)


class BasicBlock(Stage):
    """He et al.'s basic block: conv-BN-ReLU-conv-BN, plus the shortcut, then ReLU.

    The shortcut is the identity (option A): where the block halves the map and widens it,
    the input is subsampled by 2 and zero-padded with the new channels. Response and output
    are the same tensor, the block's output after the addition and ReLU (docs/method.md §1.5).
    """

    def __init__(self, name: str, in_channels: int, channels: int, stride: int):
        super().__init__(name, "conv", channels)
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = keras_batch_norm(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, padding=1, bias=False)
        self.bn2 = keras_batch_norm(channels)
        self.stride, self.extra_channels = stride, channels - in_channels

    def shortcut(self, h: torch.Tensor) -> torch.Tensor:
        if self.stride > 1:
            h = h[:, :, :: self.stride, :: self.stride]
        if self.extra_channels:
            h = nn.functional.pad(h, (0, 0, 0, 0, 0, self.extra_channels))
        return h

    def forward(self, h):
        residual = self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(h)))))
        output = torch.relu(residual + self.shortcut(h))
        return output, output


class ConvBNRelu(Stage):
    """3x3 "same" conv -> BN -> ReLU (the ResNet stem, the VGG-BN convs); the post-ReLU map is
    response and output, and what the next stage gets."""

    def __init__(self, name: str, in_channels: int, channels: int):
        super().__init__(name, "conv", channels)
        self.conv = nn.Conv2d(in_channels, channels, 3, padding=1, bias=False)
        self.bn = keras_batch_norm(channels)

    def forward(self, h):
        output = torch.relu(self.bn(self.conv(h)))
        return output, output


class MaxPoolStage(Stage):
    """Max-pooling; the pooled map is both response and output."""

    def __init__(self, name: str, pool: nn.MaxPool2d, channels: int):
        super().__init__(name, "pool", channels)
        self.pool = pool

    def forward(self, h):
        pooled = self.pool(h)
        return pooled, pooled


class LinearBNRelu(Stage):
    """(flatten) -> linear -> BN -> ReLU; the post-ReLU vector is response and output."""

    def __init__(self, name: str, in_features: int, units: int):
        super().__init__(name, "fc", units)
        self.linear = nn.Linear(in_features, units, bias=False)
        self.bn = nn.BatchNorm1d(units, eps=KERAS_BN_EPSILON, momentum=KERAS_BN_MOMENTUM)

    def forward(self, h):
        output = torch.relu(self.bn(self.linear(torch.flatten(h, 1))))
        return output, output


def apply_keep_mask(output: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    """Zero ablated channels/units of a stage output.

    ``keep`` holds 1 for kept and 0 for ablated units, shaped ``(units,)`` (one
    condition for the whole batch) or ``(batch, units)`` (a condition per sample,
    which lets many ablation conditions share one batched pass).
    """
    units = output.shape[1]
    if keep.shape[-1] != units:
        raise ValueError(f"keep mask has {keep.shape[-1]} units, the layer has {units}")
    if keep.dim() == 1:
        keep = keep.unsqueeze(0)
    elif keep.dim() != 2 or keep.shape[0] != output.shape[0]:
        raise ValueError(
            f"keep mask must be (units,) or (batch, units); got {tuple(keep.shape)} for batch {output.shape[0]}"
        )
    keep = keep.to(dtype=output.dtype, device=output.device)
    return output * keep.view(*keep.shape, *([1] * (output.dim() - 2)))


class AnalysableNetwork(nn.Module):
    """A classifier made of named stages plus a head (see the module docstring)."""

    def __init__(self, name: str, stages: Sequence[Stage], head: nn.Module, input_size: int):
        super().__init__()
        self.name = name
        self.stages = nn.ModuleList(stages)
        self.head = head
        self.input_size = input_size
        names = [s.name for s in self.stages]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate layer names in {name}: {names}")
        self.precision = numerics.DEFAULT_PRECISION
        self.channels_last = False

    def set_numerics(self, precision: str, channels_last: bool) -> "AnalysableNetwork":
        """Run every later pass in ``precision`` (autocast for bf16) and memory format; returns self.

        Training sets its own numerics around the step (:mod:`selectivity.training.trainer`);
        this is for the analyses of a trained network (:func:`selectivity.networks.checkpoints.load_checkpoint`).
        """
        self.precision = numerics.check_precision(precision)
        self.channels_last = bool(channels_last)
        return self.to(memory_format=torch.channels_last if channels_last else torch.contiguous_format)

    @property
    def layer_names(self) -> list[str]:
        return [s.name for s in self.stages]

    def layer_index(self, layer: str) -> int:
        try:
            return self.layer_names.index(layer)
        except ValueError:
            raise KeyError(f"{self.name} has no layer {layer!r}; its layers are {self.layer_names}") from None

    def stage(self, layer: str) -> Stage:
        return self.stages[self.layer_index(layer)]

    def units(self, layer: str) -> int:
        return self.stage(layer).units

    def forward(self, x: torch.Tensor, ablation: Mapping[str, torch.Tensor] | None = None) -> torch.Tensor:
        return self.run(x, ablation=ablation).logits

    def run(
        self,
        x: torch.Tensor,
        ablation: Mapping[str, torch.Tensor] | None = None,
        record_responses: Iterable[str] = (),
        record_outputs: Iterable[str] = (),
        stop_after: str | None = None,
    ) -> NetworkRun:
        """Forward pass from the image, optionally ablating and recording layers.

        ``ablation`` maps layer names to keep masks (see :func:`apply_keep_mask`).
        ``record_outputs`` records the (ablated, if ablated) stage outputs.
        ``stop_after`` ends the pass after that layer (logits are then empty),
        which saves the work of the deeper layers when only responses are needed.
        """
        return self._run_stages(x, 0, ablation, record_responses, record_outputs, stop_after)

    def forward_from(
        self,
        layer: str,
        output: torch.Tensor,
        ablation: Mapping[str, torch.Tensor] | None = None,
        record_responses: Iterable[str] = (),
        record_outputs: Iterable[str] = (),
        stop_after: str | None = None,
    ) -> NetworkRun:
        """Continue a forward pass from ``output``, the stage output of ``layer``.

        Ablating ``layer`` changes nothing upstream of it, so ablation sweeps compute
        the upstream outputs once and call this for every condition; masks for
        ``layer`` itself in ``ablation`` are applied to ``output`` first.
        """
        if ablation and layer in ablation:
            output = apply_keep_mask(output, ablation[layer])
        return self._run_stages(
            output, self.layer_index(layer) + 1, ablation, record_responses, record_outputs, stop_after
        )

    def _run_stages(self, h, start, ablation, record_responses, record_outputs, stop_after) -> NetworkRun:
        ablation = ablation or {}
        record_responses, record_outputs = set(record_responses), set(record_outputs)
        for unknown in (set(ablation) | record_responses | record_outputs) - set(self.layer_names):
            raise KeyError(f"{self.name} has no layer {unknown!r}; its layers are {self.layer_names}")
        run = NetworkRun(logits=torch.empty(0))
        h = numerics.in_memory_format(h, self.channels_last)
        with numerics.autocast(self.precision, h.device):
            for stage in self.stages[start:]:
                response, h = stage(h)
                if stage.name in ablation:
                    h = apply_keep_mask(h, ablation[stage.name])
                if stage.name in record_responses:
                    run.responses[stage.name] = response
                if stage.name in record_outputs:
                    run.outputs[stage.name] = h
                if stage.name == stop_after:
                    return run
            run.logits = self.head(h)
        return run


def glorot_uniform_init(module: nn.Module) -> None:
    """Keras defaults: Glorot-uniform weights and zero biases for conv and dense layers."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)


def build_conv_net(spec: ConvNetSpec) -> AnalysableNetwork:
    """The plain (single) network of a :class:`ConvNetSpec`, Keras-initialised."""
    stages: list[Stage] = []
    in_channels = spec.input_channels
    for name, conv in zip(spec.layer_names(), spec.convs):
        stages.append(ConvReluBN(name, in_channels, conv))
        in_channels = conv.channels
    in_features = spec.flat_features()
    for name, units in zip(spec.layer_names()[len(spec.convs) :], spec.hidden_units):
        stages.append(LinearReluBN(name, in_features, units))
        in_features = units
    network = AnalysableNetwork(spec.name, stages, nn.Linear(in_features, spec.num_classes), spec.input_size)
    glorot_uniform_init(network)
    return network


def build_resnet(spec: ResNetSpec) -> AnalysableNetwork:
    """The CIFAR ResNet of a :class:`ResNetSpec`, Keras-initialised like the plain CNNs [D]."""
    names = spec.layer_names()
    stages: list[Stage] = [ConvBNRelu(names[0], spec.input_channels, spec.stage_channels[0])]
    in_channels = spec.stage_channels[0]
    block_names = iter(names[1:])
    for stage_number, channels in enumerate(spec.stage_channels):
        for block in range(spec.blocks_per_stage):
            stride = 2 if stage_number > 0 and block == 0 else 1
            stages.append(BasicBlock(next(block_names), in_channels, channels, stride))
            in_channels = channels
    head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(in_channels, spec.num_classes))
    network = AnalysableNetwork(spec.name, stages, head, spec.input_size)
    glorot_uniform_init(network)
    return network


def build_vgg_net(spec: VGGNetSpec) -> AnalysableNetwork:
    """The VGG-style network of a :class:`VGGNetSpec`, Keras-initialised like the plain CNNs [D]."""
    names = iter(spec.layer_names())
    stages: list[Stage] = []
    in_channels = spec.input_channels
    for convs in spec.block_channels:
        for channels in convs:
            stages.append(ConvBNRelu(next(names), in_channels, channels))
            in_channels = channels
        stages.append(MaxPoolStage(next(names), nn.MaxPool2d(2), in_channels))
    in_features = spec.flat_features()
    for units in spec.hidden_units:
        stages.append(LinearBNRelu(next(names), in_features, units))
        in_features = units
    network = AnalysableNetwork(spec.name, stages, nn.Linear(in_features, spec.num_classes), spec.input_size)
    glorot_uniform_init(network)
    return network


TRAINABLE_MODELS = tuple(CONV_NET_SPECS) + tuple(RESNET_SPECS) + tuple(VGG_NET_SPECS)


def build_model(name: str, num_classes: int = 10, input_size: int = 32) -> AnalysableNetwork:
    """Build a trainable model by its config name (``cnn7``, ``cnn11``, ``resnet20`` or ``vgg8bn``)."""
    shape = {"input_size": input_size, "num_classes": num_classes}
    if name in CONV_NET_SPECS:
        return build_conv_net(dataclasses.replace(CONV_NET_SPECS[name], **shape))
    if name in RESNET_SPECS:
        return build_resnet(dataclasses.replace(RESNET_SPECS[name], **shape))
    if name in VGG_NET_SPECS:
        return build_vgg_net(dataclasses.replace(VGG_NET_SPECS[name], **shape))
    raise ValueError(f"unknown model {name!r}; available: {', '.join(TRAINABLE_MODELS)}")


def conv_net_spec(name: str, num_classes: int = 10, input_size: int = 32) -> ConvNetSpec:
    """The :class:`ConvNetSpec` of a trainable model name (for grouped training)."""
    if name not in CONV_NET_SPECS:
        raise ValueError(f"unknown trainable model {name!r}; available: {', '.join(TRAINABLE_MODELS)}")
    return dataclasses.replace(CONV_NET_SPECS[name], input_size=input_size, num_classes=num_classes)
