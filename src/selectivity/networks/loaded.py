"""The one object every analysis receives: a network ready for analysis.

Whatever its origin (a checkpoint this workflow trained, the published VGG16, a user's
module with a weights file), a network reaches the tuning and causal stages as a
:class:`LoadedNetwork`: its :class:`~selectivity.networks.models.AnalysableNetwork` in
evaluation mode and the one function that turns images into its inputs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from selectivity.networks.models import AnalysableNetwork


@dataclass
class LoadedNetwork:
    """A network ready for analysis: the model (eval mode) and how to feed it images.

    ``prepare_inputs`` maps float images in [0, 1] (N, 3, H, W) on the model's device to
    network inputs: minus the training mean image for the CIFAR networks, ImageNet
    normalisation for VGG16. Stimuli and test images go through the same function.
    """

    model: AnalysableNetwork
    input_mean: torch.Tensor | None
    epoch: int | None
    info: dict[str, Any]
    input_std: torch.Tensor | None = None

    def prepare_inputs(self, images: torch.Tensor) -> torch.Tensor:
        prepared = images if self.input_mean is None else images - self.input_mean
        return prepared if self.input_std is None else prepared / self.input_std

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device
