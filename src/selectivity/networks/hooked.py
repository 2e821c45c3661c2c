"""A user's own network, analysed without training (docs/method.md §1.7).

Any ``torch.nn.Module`` becomes an :class:`~selectivity.networks.models.AnalysableNetwork` without
per-model code: the configured layers are found by module name (``model.get_submodule``) and
read and ablated through forward hooks. A layer's tensor is put in one *unit layout*:

- (batch, channels, H, W) maps (convolutions, pools): a unit is a channel ("conv");
- (batch, features) vectors (linear layers): a unit is a feature ("fc");
- (batch, tokens, channels) token sequences (transformer blocks): a unit is a channel of the
  token embedding; it is read as a (batch, channels, tokens, 1) map, so the analyses average it
  over tokens as they average a conv map over space, and ablation zeroes the channel in every
  token.

A hooked layer's *output* is the module's tensor: ablation multiplies it by the keep mask before
the rest of the network sees it. Its *response* (what tuning and class selectivity read) is that
tensor rectified, max(0, x): the orientation indices need non-negative rates, and a user may name
a layer that can be negative (a convolution before its BN and ReLU, a transformer's residual
stream). On a layer after a ReLU, the response is the output itself.

Continuing a pass from a layer's output (``forward_from``, which the ablation sweeps use)
replaces that layer's output while the network runs on a blank input. That is exact only if
every path from the input to the logits passes through the layer; :func:`check_layers_are_cuts`
verifies it for every analysed layer when the network is loaded, and refuses a layer that a
residual shortcut or a parallel branch bypasses.
"""

from __future__ import annotations

import importlib
import logging
import os
import sys
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch
from torch import nn

from selectivity.networks.loaded import LoadedNetwork
from selectivity.io import load_torch
from selectivity.networks.models import AnalysableNetwork, NetworkRun, Stage, apply_keep_mask

logger = logging.getLogger(__name__)

#: How far logits continued from a layer may differ from the full pass (float32 rounding).
CUT_TOLERANCE = 1e-4


class ExternalNetworkError(ValueError):
    """A user network that cannot be built or analysed; the message names the config key to fix."""


@dataclass(frozen=True)
class ExternalNetworkSpec:
    """One entry of the config's ``external_networks`` (see the schema for each key)."""

    name: str
    constructor: str
    weights: str
    layers: tuple[str, ...]
    input_size: int
    mean: tuple[float, ...] = (0.0, 0.0, 0.0)
    std: tuple[float, ...] = (1.0, 1.0, 1.0)
    arguments: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def from_config(cls, name: str, entry: Mapping[str, Any]) -> "ExternalNetworkSpec":
        normalisation = entry.get("normalisation", {})
        return cls(
            name=name,
            constructor=entry["constructor"],
            weights=str(entry["weights"]),
            layers=tuple(entry["layers"]),
            input_size=int(entry["input_size"]),
            mean=tuple(normalisation.get("mean", (0.0, 0.0, 0.0))),
            std=tuple(normalisation.get("std", (1.0, 1.0, 1.0))),
            arguments=dict(entry.get("arguments", {})),
        )

    @property
    def key(self) -> str:
        return f"external_networks.{self.name}"


def import_constructor_module(module_name: str):
    """Import ``module_name`` from the installed packages or, failing that, the working directory.

    The working directory (where the workflow runs) is searched last, so a user's module beside
    the config works in the controller and in every job without installing it.
    """
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        working_directory = os.getcwd()
        top_level = module_name.split(".")[0]
        if error.name != top_level or working_directory in sys.path:
            raise
        sys.path.append(working_directory)
        return importlib.import_module(module_name)


def resolve_constructor(constructor: str) -> Callable[..., nn.Module]:
    """``package.module:function`` (any importable callable, from the installed packages or the
    working directory), or a torchvision model name."""
    if ":" in constructor:
        module_name, _, attribute = constructor.partition(":")
        try:
            target: Any = import_constructor_module(module_name)
            for part in attribute.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as error:
            raise ExternalNetworkError(f"constructor {constructor!r} cannot be imported: {error}") from None
        if not callable(target):
            raise ExternalNetworkError(f"constructor {constructor!r} is not callable")
        return target
    import torchvision

    try:
        return torchvision.models.get_model_builder(constructor)
    except ValueError:
        raise ExternalNetworkError(
            f"constructor {constructor!r} is not a torchvision model name (torchvision.models.list_models()) "
            "nor of the form 'package.module:function'"
        ) from None


class _Layout:
    """How one hooked tensor maps to the unit layout and back (module docstring)."""

    def __init__(self, layer: str, example: Any):
        if not torch.is_tensor(example):
            raise ExternalNetworkError(
                f"layer {layer!r} returns a {type(example).__name__}, not one tensor; choose a module that does"
            )
        if example.dim() not in (2, 3, 4):
            raise ExternalNetworkError(
                f"layer {layer!r} gives a tensor of shape {tuple(example.shape)}; analysable layers give "
                "(batch, channels, H, W), (batch, features) or (batch, tokens, channels)"
            )
        self.tokens = example.dim() == 3
        self.kind = "fc" if example.dim() == 2 else "conv"
        self.units = int(example.shape[-1] if self.tokens else example.shape[1])

    def to_units(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.transpose(1, 2).unsqueeze(-1) if self.tokens else tensor

    def to_native(self, tensor: torch.Tensor) -> torch.Tensor:
        return tensor.squeeze(-1).transpose(1, 2) if self.tokens else tensor


class HookedLayer(Stage):
    """A placeholder stage: the layer's name, kind and unit count; the work is the wrapped network's."""

    def forward(self, h):  # pragma: no cover - never called: HookedNetwork runs the wrapped module
        raise RuntimeError("a hooked layer is run by its network, not on its own")


class _StopForward(Exception):
    """Raised by a hook to end a pass after the deepest layer that was asked for."""


class HookedNetwork(AnalysableNetwork):
    """Any classifier, with named layers read and ablated by forward hooks (module docstring).

    ``head`` is the wrapped network (so ``parameters()``, ``eval()`` and ``to()`` reach it);
    ``stages`` are :class:`HookedLayer` placeholders in execution order.
    """

    def __init__(self, name: str, network: nn.Module, layers: Sequence[str], input_size: int):
        modules = dict(network.named_modules())
        unknown = [layer for layer in layers if layer not in modules or layer == ""]
        if unknown:
            examples = [n for n in modules if n][:12]
            raise ExternalNetworkError(
                f"{name}: layers {unknown} are not modules of the network; module names look like {examples}"
            )
        order, layouts = self._probe(name, network, modules, layers, input_size)
        stages = [HookedLayer(layer, layouts[layer].kind, layouts[layer].units) for layer in order]
        super().__init__(name, stages, network, input_size)
        self._modules_by_layer = {layer: modules[layer] for layer in order}
        self._layouts = layouts

    @staticmethod
    def _probe(name, network, modules, layers, input_size) -> tuple[list[str], dict[str, _Layout]]:
        """Run one blank image through the network: each layer's firing order, count and layout."""
        fired: list[str] = []
        examples: dict[str, Any] = {}

        def recorder(layer: str):
            def record(module, inputs, output) -> None:
                fired.append(layer)
                examples.setdefault(layer, output)

            return record

        handles = [modules[layer].register_forward_hook(recorder(layer)) for layer in layers]
        was_training = network.training
        network.eval()
        try:
            with torch.no_grad():
                parameter = next(network.parameters(), None)
                dtype = parameter.dtype if parameter is not None else torch.float32  # float64 in tests
                network(torch.zeros(1, 3, input_size, input_size, device=_device_of(network), dtype=dtype))
        finally:
            network.train(was_training)
            for handle in handles:
                handle.remove()
        for layer in layers:
            if fired.count(layer) != 1:
                raise ExternalNetworkError(
                    f"{name}: layer {layer!r} runs {fired.count(layer)} times per forward pass; choose a module "
                    "that runs exactly once (a module used twice, such as a shared ReLU, cannot be told apart)"
                )
        order = sorted(layers, key=fired.index)
        if list(order) != list(layers):
            logger.info("%s: layers in execution order: %s", name, order)
        return order, {layer: _Layout(layer, examples[layer]) for layer in layers}

    def run(
        self,
        x: torch.Tensor,
        ablation: Mapping[str, torch.Tensor] | None = None,
        record_responses: Iterable[str] = (),
        record_outputs: Iterable[str] = (),
        stop_after: str | None = None,
    ) -> NetworkRun:
        return self._hooked_pass(x, ablation, record_responses, record_outputs, stop_after)

    def forward_from(
        self,
        layer: str,
        output: torch.Tensor,
        ablation: Mapping[str, torch.Tensor] | None = None,
        record_responses: Iterable[str] = (),
        record_outputs: Iterable[str] = (),
        stop_after: str | None = None,
    ) -> NetworkRun:
        """Continue from ``layer``'s output: the network runs on a blank input, ``layer`` gives ``output``."""
        start = self.layer_index(layer)
        for name in set(record_responses) | set(record_outputs) | set(ablation or {}):
            if self.layer_index(name) < start:
                raise ValueError(f"{name} lies before {layer}; a pass continued from {layer} cannot read it")
        if ablation and layer in ablation:
            output = apply_keep_mask(output, ablation[layer])
        blank = torch.zeros(output.shape[0], 3, self.input_size, self.input_size, device=output.device)
        ablation = {name: keep for name, keep in (ablation or {}).items() if name != layer}
        return self._hooked_pass(
            blank, ablation, record_responses, record_outputs, stop_after, {layer: output}
        )

    def _hooked_pass(
        self, x, ablation, record_responses, record_outputs, stop_after, replace=None
    ) -> NetworkRun:
        ablation, replace = ablation or {}, replace or {}
        record_responses, record_outputs = set(record_responses), set(record_outputs)
        for name in set(ablation) | record_responses | record_outputs | ({stop_after} - {None}):
            self.layer_index(name)  # KeyError naming the layers
        run = NetworkRun(logits=torch.empty(0))

        def hook(layer: str):
            layout = self._layouts[layer]

            def on_output(module, inputs, native):
                units = replace[layer] if layer in replace else layout.to_units(native)
                if layer in record_responses:  # rectified: tuning and class selectivity need rates >= 0
                    run.responses[layer] = torch.relu(units)
                if layer in ablation:
                    units = apply_keep_mask(units, ablation[layer])
                if layer in record_outputs:
                    run.outputs[layer] = units
                if layer == stop_after:
                    raise _StopForward
                if layer in ablation or layer in replace:
                    return layout.to_native(units).contiguous()
                return None

            return on_output

        active = set(ablation) | record_responses | record_outputs | set(replace) | ({stop_after} - {None})
        handles = [self._modules_by_layer[layer].register_forward_hook(hook(layer)) for layer in active]
        try:
            run.logits = self.head(x)
        except _StopForward:
            pass
        finally:
            for handle in handles:
                handle.remove()
        return run


def _device_of(module: nn.Module) -> torch.device:
    parameter = next(module.parameters(), None)
    return parameter.device if parameter is not None else torch.device("cpu")


def check_layers_are_cuts(model: HookedNetwork, images: torch.Tensor) -> None:
    """Refuse a layer that some path from the input to the logits bypasses (module docstring).

    For each layer, the logits continued from its recorded output must equal the full pass.
    """
    with torch.no_grad():
        full = model(images)
        recorded = model.run(images, record_outputs=model.layer_names).outputs
        for layer in model.layer_names:
            continued = model.forward_from(layer, recorded[layer]).logits
            scale = float(full.abs().max()) or 1.0
            error = float((continued - full).abs().max()) / scale
            if error > CUT_TOLERANCE:
                raise ExternalNetworkError(
                    f"{model.name}: layer {layer!r} is not on every path from the input to the output (the "
                    f"logits continued from it differ by {error:.2g} of their scale), e.g. a residual shortcut "
                    "passes it, so ablating it would not silence its units for the rest of the network; "
                    "analyse the output of the enclosing block instead"
                )


def load_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """A weights file: a state dict, or a dict holding one under ``state_dict`` (loaded safely)."""
    blob = load_torch(path, "network weights")
    if isinstance(blob, Mapping) and "state_dict" in blob and isinstance(blob["state_dict"], Mapping):
        blob = blob["state_dict"]
    if not isinstance(blob, Mapping) or not all(torch.is_tensor(value) for value in blob.values()):
        raise ExternalNetworkError(f"{path} is not a state dict (a mapping of parameter names to tensors)")
    return dict(blob)


def build_external_network(
    spec: ExternalNetworkSpec, device: torch.device | str = "cpu", untrained_seed: int | None = None
) -> HookedNetwork:
    """The user's module, its weights loaded (all keys must match), wrapped for analysis in eval mode.

    With ``untrained_seed`` no weights are loaded: the module keeps the constructor's own random
    initialisation, drawn with the global RNG seeded by ``untrained_seed`` (and restored after).
    """
    try:
        with torch.random.fork_rng(devices=[]):
            if untrained_seed is not None:
                torch.manual_seed(untrained_seed)
            network = resolve_constructor(spec.constructor)(**spec.arguments)
    except ExternalNetworkError as error:
        raise ExternalNetworkError(f"{spec.key}.constructor: {error}") from None
    except TypeError as error:
        raise ExternalNetworkError(
            f"{spec.key}.arguments: {spec.constructor} refused them: {error}"
        ) from None
    if not isinstance(network, nn.Module):
        raise ExternalNetworkError(
            f"{spec.key}.constructor: {spec.constructor} returned a {type(network).__name__}"
        )
    result = None
    if untrained_seed is None:
        state = load_state_dict(spec.weights)
        try:
            result = network.load_state_dict(state, strict=False)
        except RuntimeError as error:  # a parameter of the wrong shape
            detail = str(error).strip().splitlines()
            raise ExternalNetworkError(
                f"{spec.key}.weights: {spec.weights} does not fit {spec.constructor}: {detail[-1].strip()}"
            ) from None
    if result is not None and (result.missing_keys or result.unexpected_keys):
        raise ExternalNetworkError(
            f"{spec.key}.weights: {spec.weights} does not fit {spec.constructor}: missing keys "
            f"{result.missing_keys[:5]}, unexpected keys {result.unexpected_keys[:5]}"
        )
    network = network.to(device).eval()
    try:
        model = HookedNetwork(spec.name, network, spec.layers, spec.input_size)
    except ExternalNetworkError as error:
        raise ExternalNetworkError(f"{spec.key}.layers: {error}") from None
    return model.eval()


def load_external_network(
    spec: ExternalNetworkSpec, device: torch.device | str = "cpu", untrained_seed: int | None = None
) -> LoadedNetwork:
    """The network ready for the analyses: hooked model, its normalisation, layers checked as cuts
    (``untrained_seed``: the constructor's random initialisation instead of the weights)."""
    model = build_external_network(spec, device, untrained_seed)
    generator = torch.Generator().manual_seed(0)
    probe = torch.rand(4, 3, spec.input_size, spec.input_size, generator=generator).to(device)
    mean = torch.tensor(spec.mean, dtype=torch.float32, device=device).view(3, 1, 1)
    std = torch.tensor(spec.std, dtype=torch.float32, device=device).view(3, 1, 1)
    network = LoadedNetwork(
        model=model,
        input_mean=mean,
        epoch=None,
        info={
            "model": spec.name,
            "constructor": spec.constructor,
            "weights": spec.weights if untrained_seed is None else f"untrained (seed {untrained_seed})",
        },
        input_std=std,
    )
    try:
        check_layers_are_cuts(model, network.prepare_inputs(probe))
    except ExternalNetworkError as error:
        raise ExternalNetworkError(f"{spec.key}.layers: {error}") from None
    return network
