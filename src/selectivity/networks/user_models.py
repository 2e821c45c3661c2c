"""Users' own architectures as modules: built, checked before any job, stacked for grouped training.

* :func:`build_user_module` calls the constructor of an architecture record
  (:func:`selectivity.networks.user_architectures.architecture_record`) with its arguments and the
  dataset's number of classes. Its initialisation is the constructor's own (PyTorch's module
  defaults unless the constructor sets its own), drawn from the global RNG, which the trainer seeds
  from the network's ``initialisation`` stream (:func:`selectivity.training.randomness.initial_network`).
* :func:`probe_architecture` is the controller's check of an architecture, run once before any job
  on a few blank and random images on the CPU: the module builds, gives one logit per class of the
  dataset, its ``layers`` exist, run once per forward pass, run in the order listed and lie on every
  path from the input to the output (:func:`selectivity.networks.hooked.check_layers_are_cuts`);
  it also finds whether K networks of the architecture can be trained as one stacked network and
  records each layer's units. A failure raises an :class:`ExternalNetworkError` naming the config key.
* :class:`FunctionalStack` trains K networks of a user architecture in lockstep:
  ``torch.func.stack_module_state`` stacks their parameters and buffers along a new first axis and
  ``vmap`` runs ``functional_call`` of the plain module over them. BatchNorm's running statistics
  are stacked buffers updated in place per network, so the stack is exact: it computes what K
  separate modules would, up to float rounding (checked by the probe for each architecture).
  Architectures whose training-mode forward pass draws random numbers (dropout) are not stacked:
  under ``vmap`` their draws would depend on the group, so each such network trains in a job of
  its own, with the global RNG seeded from its own seed.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
import json
import logging
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import torch
from torch import nn
from torch.func import functional_call, stack_module_state, vmap

from selectivity.networks.hooked import (
    ExternalNetworkError,
    HookedNetwork,
    check_layers_are_cuts,
    resolve_constructor,
)
from selectivity.networks.user_architectures import UserArchitecture

logger = logging.getLogger(__name__)

#: Images per network in the probe's checks (small: the controller runs them before any job).
PROBE_IMAGES = 2


def build_user_module(record: Mapping[str, Any], num_classes: int, key: str = "architecture") -> nn.Module:
    """The constructor's module for ``num_classes`` classes, with the constructor's own initialisation.

    ``record``: ``constructor``, ``arguments``, ``class_argument`` (the keyword that receives the
    number of classes; None: not passed). ``key`` names the config entry in messages.
    """
    try:
        constructor = resolve_constructor(record["constructor"])
    except ExternalNetworkError as error:
        raise ExternalNetworkError(f"{key}.constructor: {error}") from None
    arguments = dict(record.get("arguments") or {})
    class_argument = record.get("class_argument")
    if class_argument:
        if class_argument in arguments:
            raise ExternalNetworkError(
                f"{key}.arguments: {class_argument!r} is set, but the workflow passes the dataset's number of "
                f"classes as {class_argument!r} (class_argument); remove it from arguments"
            )
        arguments[class_argument] = int(num_classes)
    try:
        module = constructor(**arguments)
    except TypeError as error:
        raise ExternalNetworkError(
            f"{key}.arguments: {record['constructor']} refused the arguments {sorted(arguments)}: {error}"
            + (f" (class_argument {class_argument!r} passes the number of classes)" if class_argument else "")
        ) from None
    if not isinstance(module, nn.Module):
        raise ExternalNetworkError(
            f"{key}.constructor: {record['constructor']} returned a {type(module).__name__}, not a torch.nn.Module"
        )
    return module


def hooked_user_network(
    name: str, module: nn.Module, layers: Sequence[str], input_size: int, key: str = "architecture"
) -> HookedNetwork:
    """The module wrapped for the analyses: ``layers`` read and ablated by forward hooks."""
    try:
        return HookedNetwork(name, module, list(layers), input_size)
    except ExternalNetworkError as error:
        raise ExternalNetworkError(f"{key}.layers: {error}") from None


def source_digest(constructor: str) -> str:
    """``sha256:<16 hex>`` of the source file that defines the constructor ("unknown" without one)."""
    target = inspect.unwrap(resolve_constructor(constructor))
    try:
        path = inspect.getsourcefile(target) or inspect.getfile(target)
        with open(path, "rb") as handle:
            return "sha256:" + hashlib.sha256(handle.read()).hexdigest()[:16]
    except (TypeError, OSError):
        return "unknown"


# ------------------------------------------------------------------------- grouped training


class FunctionalStack(nn.Module):
    """K networks of one user architecture computed as one (module docstring).

    Input ``(B, K*C, H, W)`` (network k's batch in channels ``k*C:(k+1)*C``), output logits
    ``(B, K, classes)``: the layout of :mod:`selectivity.networks.grouped`'s stacked networks,
    so the trainer treats both alike.
    """

    def __init__(self, modules: Sequence[nn.Module]):
        super().__init__()
        if not modules:
            raise ValueError("FunctionalStack needs at least one network")
        self.copies = len(modules)
        # The plain module the stacked tensors are swapped into; kept out of the registered
        # submodules so that its own parameters are neither trained nor saved.
        self.__dict__["_base"] = copy.deepcopy(modules[0])
        parameters, buffers = stack_module_state(list(modules))
        self._parameter_names = list(parameters)
        self._buffer_names = list(buffers)
        self.stacked_parameters = nn.ParameterList(
            [nn.Parameter(tensor.detach().clone()) for tensor in parameters.values()]
        )
        for index, tensor in enumerate(buffers.values()):
            self.register_buffer(f"stacked_buffer_{index}", tensor.detach().clone())
        self.train(modules[0].training)

    def train(self, mode: bool = True) -> "FunctionalStack":
        super().train(mode)
        self._base.train(mode)
        return self

    def _apply(self, fn, recurse=True):
        self._base._apply(fn, recurse)  # tensors of the module that are neither parameters nor buffers
        return super()._apply(fn, recurse)

    def _tensors(self) -> tuple[dict[str, torch.Tensor], dict[str, torch.Tensor]]:
        parameters = dict(zip(self._parameter_names, self.stacked_parameters))
        buffers = {name: getattr(self, f"stacked_buffer_{i}") for i, name in enumerate(self._buffer_names)}
        return parameters, buffers

    def _network_logits(self, parameters, buffers, images):
        return functional_call(self._base, (parameters, buffers), (images,))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] % self.copies:
            raise ValueError(
                f"stacked input must be (B, K*C, H, W) for {self.copies} networks, got {tuple(x.shape)}"
            )
        batch = x.shape[0]
        per_network = x.view(batch, self.copies, -1, *x.shape[2:]).transpose(0, 1)  # (K, B, C, H, W)
        parameters, buffers = self._tensors()
        logits = vmap(self._network_logits, randomness="error")(parameters, buffers, per_network)
        return logits.transpose(0, 1)

    def network_module(self, index: int) -> nn.Module:
        """A plain copy of network ``index`` (its parameters and buffers)."""
        if not 0 <= index < self.copies:
            raise IndexError(f"network index {index} is out of range for {self.copies} stacked networks")
        module = copy.deepcopy(self._base)
        parameters, buffers = self._tensors()
        with torch.no_grad():
            for name, tensor in parameters.items():
                module.get_parameter(name).copy_(tensor[index])
            for name, tensor in buffers.items():
                module.get_buffer(name).copy_(tensor[index])
        return module.train(self.training)

    def network_state_dict(self, index: int) -> dict[str, torch.Tensor]:
        """The plain module's state dict of network ``index`` (detached copies)."""
        return {key: value.detach().clone() for key, value in self.network_module(index).state_dict().items()}

    def unstack(self) -> list[nn.Module]:
        return [self.network_module(index) for index in range(self.copies)]


# ------------------------------------------------------------------------------ the probe


@dataclass(frozen=True)
class ArchitectureProbe:
    """What the controller learnt about an architecture on the dataset's images (module docstring)."""

    layer_units: dict[str, int]
    layer_kinds: dict[str, str]
    groupable: bool
    grouping: str  # how its networks train together, or why they do not
    random_forward: bool
    source_digest: str


_PROBES: dict[str, ArchitectureProbe] = {}


def probe_architecture(
    architecture: UserArchitecture, num_classes: int, image_size: int
) -> ArchitectureProbe:
    """Check an architecture on ``image_size``-px RGB images of ``num_classes`` classes (module docstring).

    Runs on the CPU with the global RNG forked (it leaves no trace); cached per architecture
    and dataset shape, so a controller probes each architecture once.
    """
    cache_key = json.dumps(
        [architecture.name, architecture.constructor, architecture.arguments, architecture.class_argument,
         architecture.layers, num_classes, image_size],
        sort_keys=True, default=str,
    )  # fmt: skip
    if cache_key not in _PROBES:
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(0)
            _PROBES[cache_key] = _probe(architecture, num_classes, image_size)
    return _PROBES[cache_key]


def _probe(architecture: UserArchitecture, num_classes: int, image_size: int) -> ArchitectureProbe:
    key = architecture.key
    record = {
        "constructor": architecture.constructor,
        "arguments": architecture.arguments,
        "class_argument": architecture.class_argument,
    }
    module = build_user_module(record, num_classes, key).eval()
    images = torch.rand(PROBE_IMAGES, 3, image_size, image_size)
    _check_logits(architecture, module, images, num_classes, image_size)
    hooked = hooked_user_network(architecture.name, module, architecture.layers, image_size, key)
    if hooked.layer_names != list(architecture.layers):
        raise ExternalNetworkError(
            f"{key}.layers: {list(architecture.layers)} are not in the order they run; list them as "
            f"{hooked.layer_names} (shallow to deep: lower and higher layers and figures follow this order)"
        )
    try:
        check_layers_are_cuts(hooked, images - 0.5)
    except ExternalNetworkError as error:
        raise ExternalNetworkError(f"{key}.layers: {error}") from None
    units = {stage.name: stage.units for stage in hooked.stages}
    kinds = {stage.name: stage.kind for stage in hooked.stages}
    random_forward = _forward_is_random(module, images)
    if random_forward:
        groupable, grouping = False, (
            "its training-mode forward pass draws random numbers (dropout?), which stacked networks would "
            "share; each network trains in a job of its own"
        )
    else:
        groupable, grouping = _check_stacking(record, num_classes, images)
    return ArchitectureProbe(
        units, kinds, groupable, grouping, random_forward, source_digest(architecture.constructor)
    )


def _check_logits(architecture, module, images, num_classes: int, image_size: int) -> None:
    key = architecture.key
    try:
        logits = module(images)
    except Exception as error:  # any failure of the user's forward pass
        raise ExternalNetworkError(
            f"{key}: the network fails on a batch of {len(images)} RGB {image_size}x{image_size} images, the "
            f"dataset's ({type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''})"
        ) from None
    if not torch.is_tensor(logits) or tuple(logits.shape) != (len(images), num_classes):
        shape = tuple(logits.shape) if torch.is_tensor(logits) else type(logits).__name__
        hint = (
            f"the dataset's number of classes is passed as {architecture.class_argument!r} (class_argument)"
            if architecture.class_argument
            else "class_argument is null, so the constructor must build the head itself"
        )
        raise ExternalNetworkError(
            f"{key}: the network gives {shape} for {len(images)} images; it must give one logit per class of "
            f"the dataset, ({len(images)}, {num_classes}) ({hint})"
        )


def _forward_is_random(module: nn.Module, images: torch.Tensor) -> bool:
    """Whether two training-mode passes over the same images differ (dropout and the like)."""
    probe = copy.deepcopy(module).train()
    return not torch.equal(probe(images), probe(images))


def _close(
    actual: torch.Tensor, expected: torch.Tensor, tolerance: float, scale: float | None = None
) -> bool:
    """Equal within ``tolerance`` of ``scale`` (default: the expected tensor's largest magnitude)."""
    actual, expected = actual.detach(), expected.detach()
    if actual.shape != expected.shape:
        return False
    if not expected.numel():
        return True
    scale = max(float(expected.abs().max()) if scale is None else scale, 1e-30)
    return float((actual - expected).abs().max()) <= tolerance * scale


def _training_step(networks, batches) -> torch.Tensor:
    """Logits (K, B, classes) of separate networks in training mode, gradients of a sum of squares."""
    with torch.enable_grad():
        logits = torch.stack([network(batch) for network, batch in zip(networks, batches)])
        logits.square().sum().backward()
    return logits


def _check_stacking(record, num_classes: int, images: torch.Tensor) -> tuple[bool, str]:
    """Whether a FunctionalStack of two networks computes what the two networks do (logits,
    gradients, BatchNorm statistics after one training-mode pass), and a sentence saying so or why not.

    Compared in float64, where the stack must agree to rounding (1e-8 of each tensor's scale); a
    module that does not run in float64 is compared in float32 (to 1e-3 of each tensor's scale).
    """
    networks = [build_user_module(record, num_classes).train() for _ in range(2)]
    batches = torch.stack([images, images.flip(0)])  # (K, B, C, H, W): each network its own batch
    dtype, tolerance = torch.float64, 1e-8
    try:
        separate = [copy.deepcopy(network).to(dtype) for network in networks]
        expected = _training_step(separate, batches.to(dtype))
    except Exception:  # an operation without a float64 kernel
        dtype, tolerance = torch.float32, 1e-3
        separate = [copy.deepcopy(network) for network in networks]
        expected = _training_step(separate, batches)
    try:
        stack = FunctionalStack([network.to(dtype) for network in networks]).train()
        with torch.enable_grad():
            stacked = stack(batches.to(dtype).transpose(0, 1).flatten(1, 2)).transpose(
                0, 1
            )  # (K, B, classes)
            stacked.square().sum().backward()
    except Exception as error:  # vmap has no batching rule for an operation, data-dependent control flow, ...
        message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return (
            False,
            f"torch.func cannot stack it ({type(error).__name__}: {message[:200]}); one network per job",
        )
    if not _close(stacked, expected, tolerance):
        return False, "stacked logits differ from separate networks'; one network per job"
    gradients = dict(zip(stack._parameter_names, (p.grad for p in stack.stacked_parameters)))
    # one scale for every gradient: some are zero but for rounding (a bias before BatchNorm)
    gradient_scale = max(
        (
            float(p.grad.abs().max())
            for network in separate
            for p in network.parameters()
            if p.grad is not None
        ),
        default=0.0,
    )
    for index, network in enumerate(separate):
        plain = stack.network_module(index)
        for (name, mine), theirs in zip(plain.named_buffers(), network.buffers()):
            if mine.is_floating_point() and not _close(mine, theirs, tolerance):
                return False, f"stacked buffer {name} differs from a separate network's; one network per job"
        for name, parameter in network.named_parameters():
            if parameter.grad is None or gradients.get(name) is None:
                continue
            if not _close(gradients[name][index], parameter.grad, tolerance, gradient_scale):
                return (
                    False,
                    f"stacked gradient of {name} differs from a separate network's; one network per job",
                )
    return True, "stacked with torch.func (functional_call + vmap over stacked parameters)"
