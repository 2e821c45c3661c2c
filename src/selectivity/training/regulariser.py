"""The selectivity regulariser of a training run (docs/method.md §2.10).

Every ``every_steps``-th optimiser step, each network of the run is shown the tuning gratings (or,
for colour, the colour set) and its loss gets ``coefficient x`` the mean index of one low-level
feature over the chosen layers, computed from its rectified responses exactly as the tuning
analysis computes it (:mod:`selectivity.tuning.differentiable`). The grating pass:

- runs in **evaluation mode**, as the tuning analysis does: BatchNorm uses (and never updates) its
  running statistics, dropout is off and draws no random numbers. So the gratings change the
  networks only through the term's gradient: the optimiser sees one gradient per step as always,
  and a coefficient of 0 trains bit for bit the network trained without the regulariser
  (tests/test_regulariser.py);
- stops after the deepest regularised layer;
- runs each network of a stacked group through its own parameters (slices of the stacked tensors,
  so the gradient reaches the stack), with the plain model's code: a built-in model's
  :meth:`~selectivity.networks.models.AnalysableNetwork.run`, a user architecture's forward hooks
  (:class:`~selectivity.networks.hooked.HookedNetwork`, responses rectified). Each network's term
  has its own coefficient, and the summed loss gives every network exactly its own gradient, as
  for the cross-entropy (docs/method.md §7.3);
- runs in the training precision (bf16 autocast for bf16), with the indices computed in float64.
"""

from __future__ import annotations

import copy
import logging
import math
from typing import Sequence

import numpy as np
import torch
from torch import nn
from torch.func import functional_call

from selectivity import numerics
from selectivity.networks.grouped import StackedNetwork, _family, _network_slice
from selectivity.networks.hooked import HookedNetwork
from selectivity.networks.models import AnalysableNetwork
from selectivity.regularisation import RegularisationSettings
from selectivity.tuning.differentiable import (
    colour_selectivity,
    global_orientation_selectivity,
    mean_defined,
    phase_modulation,
    spatial_frequency_selectivity,
)
from selectivity.tuning.stimuli import colour_grating_stimuli, grating_stimuli

log = logging.getLogger(__name__)


class _GratingPass(nn.Module):
    """A network's responses in ``layers`` (a tuple, in that order), the pass stopped after the deepest."""

    def __init__(self, network: AnalysableNetwork, layers: Sequence[str]):
        super().__init__()
        self.network = network
        self.layers = tuple(layers)
        self.deepest = max(self.layers, key=network.layer_index)  # KeyError naming unknown layers
        self.kinds = {layer: network.stage(layer).kind for layer in self.layers}

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        run = self.network.run(x, record_responses=self.layers, stop_after=self.deepest)
        return tuple(run.responses[layer] for layer in self.layers)


class SelectivityRegulariser:
    """``coefficient_k x`` the mean index of network k (module docstring), for K >= 1 networks.

    ``settings``: feature, layers, schedule and grating set; ``coefficients``: one per network, in
    the order of the trainer's networks; ``input_mean``: the training mean image (3, H, W), which
    every input, gratings included, has subtracted (docs/method.md §2.2).
    """

    def __init__(
        self,
        settings: RegularisationSettings,
        coefficients: Sequence[float],
        input_mean: torch.Tensor,
        device: torch.device | str,
        precision: str = numerics.DEFAULT_PRECISION,
    ):
        self.settings = settings
        self.coefficients = [float(c) for c in coefficients]
        if not self.coefficients or not all(math.isfinite(c) for c in self.coefficients):
            raise ValueError(
                f"coefficients must be finite numbers, one per network, got {list(coefficients)}"
            )
        self.device = torch.device(device)
        self.precision = numerics.check_precision(precision)
        size = int(input_mean.shape[-1])
        gratings = grating_stimuli(size, settings.orientations, settings.phases, settings.spatial_frequencies)
        self.orientations_deg = gratings.orientations_deg
        self.phases_deg = gratings.phases_deg
        if settings.feature == "colour":
            stimuli = colour_grating_stimuli(gratings)
            self.colours = stimuli.colours
        else:
            stimuli = gratings
        self.grid_shape = tuple(stimuli.grid_shape)
        images = stimuli.flat_images().float() - input_mean.detach().float().cpu()
        self.images = images.to(self.device)
        self.readouts = ("mean", "centre") if settings.feature == "phase" else ("mean",)
        self._passes: dict[int, tuple] = {}
        #: the last indices computed, one per network (for the log)
        self.last_indices: np.ndarray | None = None

    @property
    def copies(self) -> int:
        return len(self.coefficients)

    def due(self, step: int) -> bool:
        """Whether optimiser step ``step`` (counted from 0 over the whole run) gets the term."""
        return step % self.settings.every_steps == 0

    def penalty(self, model: nn.Module) -> torch.Tensor:
        """Sum over networks of coefficient x mean index (a scalar with gradient, float32)."""
        indices = self.network_indices(model)
        coefficients = torch.as_tensor(self.coefficients, dtype=indices.dtype, device=indices.device)
        defined = ~torch.isnan(indices)
        if not bool(defined.all()):
            log.warning(
                "the regularised %s index is undefined for network(s) %s (no unit with a defined index in %s): "
                "no term for them at this step",
                self.settings.feature,
                np.flatnonzero(~defined.cpu().numpy()).tolist(),
                list(self.settings.layers),
            )
        terms = torch.where(defined, coefficients * torch.where(defined, indices, 0.0), 0.0)
        return terms.sum().float()

    def network_indices(self, model: nn.Module) -> torch.Tensor:
        """(K,) float64: each network's mean index over the regularised layers, with gradient."""
        responses = self.responses(model)
        indices = torch.stack([self._network_index(per_network) for per_network in responses])
        self.last_indices = indices.detach().cpu().numpy()
        return indices

    # -- responses

    def responses(self, model: nn.Module) -> list[dict[str, dict[str, torch.Tensor]]]:
        """Per network: readout ("mean", "centre") -> layer -> (units, *grid) float64, with gradient."""
        runner, kinds = self._pass_of(model)
        images = self.images.to(next(model.parameters()).dtype)
        result = []
        with numerics.autocast(self.precision, self.device):
            for maps in runner(images):
                result.append(
                    {
                        readout: {
                            layer: self._unit_layout(_readout(response, kinds[layer], readout))
                            for layer, response in zip(self.settings.layers, maps)
                        }
                        for readout in self.readouts
                    }
                )
        if len(result) != self.copies:
            raise ValueError(
                f"the model holds {len(result)} network(s), but {self.copies} coefficients were given"
            )
        return result

    def _unit_layout(self, flat: torch.Tensor) -> torch.Tensor:
        """(N stimuli, units) in flat stimulus order -> (units, *grid) (phase fastest, as the tuning's)."""
        return flat.transpose(0, 1).reshape(flat.shape[1], *self.grid_shape)

    def _pass_of(self, model: nn.Module):
        """How to run the gratings through ``model``'s networks: a function images -> per-network
        response tuples, and each layer's kind. Built once per model."""
        key = id(model)
        if key not in self._passes:
            self._passes[key] = (model, *self._make_pass(model))
        return self._passes[key][1:]

    def _make_pass(self, model: nn.Module):
        layers = self.settings.layers
        if isinstance(model, StackedNetwork):
            with torch.random.fork_rng(devices=[]):  # the template's own initialisation is never used
                template = _family(model.spec.name)[2](model.spec)
            grating_pass = _GratingPass(template, layers).to(next(model.parameters()).device).eval()

            def run_stacked(images):
                tensors = dict(model.named_parameters()) | dict(model.named_buffers())
                return [
                    functional_call(
                        grating_pass,
                        {
                            f"network.{name}": _network_slice(tensor, model.copies, k)
                            for name, tensor in tensors.items()
                        },
                        (images,),
                    )
                    for k in range(model.copies)
                ]

            return run_stacked, grating_pass.kinds
        if hasattr(model, "stacked_parameters"):  # a user architecture's FunctionalStack
            template = HookedNetwork(
                "regularised", copy.deepcopy(model._base), layers, int(self.images.shape[-1])
            )
            grating_pass = _GratingPass(template, layers).eval()

            def run_functional(images):
                parameters, buffers = model._tensors()
                tensors = parameters | buffers
                return [
                    functional_call(
                        grating_pass,
                        {f"network.head.{name}": tensor[k] for name, tensor in tensors.items()},
                        (images,),
                    )
                    for k in range(model.copies)
                ]

            return run_functional, grating_pass.kinds
        network = model
        if not isinstance(model, AnalysableNetwork):  # a user architecture trained alone: read by hooks
            network = HookedNetwork("regularised", model, layers, int(self.images.shape[-1]))
        grating_pass = _GratingPass(network, layers)

        def run_plain(images):
            was_training = model.training
            model.eval()
            try:
                return [grating_pass(images)]
            finally:
                model.train(was_training)

        return run_plain, grating_pass.kinds

    # -- indices

    def _network_index(self, responses: dict[str, dict[str, torch.Tensor]]) -> torch.Tensor:
        """The mean over regularised layers of each layer's mean index (docs/method.md §2.10)."""
        per_layer = []
        for layer in self.settings.layers:
            mean = responses["mean"][layer]
            feature = self.settings.feature
            if feature == "orientation":
                per_layer.append(global_orientation_selectivity(mean, self.orientations_deg).mean())
            elif feature == "spatial_frequency":
                per_layer.append(spatial_frequency_selectivity(mean).mean())
            elif feature == "phase":
                per_layer.append(
                    mean_defined(phase_modulation(mean, responses["centre"][layer], self.phases_deg))
                )
            else:
                per_layer.append(mean_defined(colour_selectivity(mean, self.colours)))
        return mean_defined(torch.stack(per_layer))


def _readout(response: torch.Tensor, kind: str, readout: str) -> torch.Tensor:
    """(N, units) float64: the spatial mean of a conv/pool map (§1.4) or its centre value (§3.8); an
    fc layer's values. A map that is not square has no centre: NaN without gradient."""
    if kind == "fc":
        return response.flatten(1).to(torch.float64)
    if response.dim() != 4:
        raise ValueError(
            f"a {kind} layer should give (batch, channels, H, W) maps, got {tuple(response.shape)}"
        )
    if readout == "mean":  # in fp32 (of a bf16 map too) as the tuning analysis averages it; float64 stays
        return (
            response.to(torch.promote_types(response.dtype, torch.float32)).mean(dim=(2, 3)).to(torch.float64)
        )
    height, width = response.shape[-2:]
    if height != width:
        return torch.full(response.shape[:2], float("nan"), dtype=torch.float64, device=response.device)
    return response[:, :, height // 2, width // 2].to(torch.float64)
