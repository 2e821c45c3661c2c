"""Training with a selectivity regulariser: which features it can push, how it is set, what it records.

docs/method.md §2.10. ``training.selectivity_regularisation`` adds ``coefficient x mean index`` of
one low-level feature (§3), measured on a fixed grating set in chosen layers, to the training
loss of extra networks: one *regularised variant* of every trained model per non-zero
coefficient, named by :func:`selectivity.identity.regularised_model_name` (``cnn7+orientation-0.5``).
Coefficient 0 is the model itself, trained exactly as without the regulariser.

This module is torch-free (the Snakemake controller, the claims and the figures read it):

- :data:`REGULARISABLE_FEATURES`: the features whose index is differentiable almost everywhere in
  the responses (and so can be a loss term), with the stimulus set each needs;
  :func:`check_regularisable` refuses any other feature up front, naming the config key;
- :class:`RegularisationSettings`: how the regularised networks of one model are trained (feature,
  layers, schedule, grating set): a training param of their jobs, stored in their checkpoints;
- :class:`RegularisationStudy`: what the claim C7 and the regularisation figures need to know
  (feature, coefficients, each model's regularised layers).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

#: The config section (under ``training``).
SECTION = "selectivity_regularisation"
KEY = f"training.{SECTION}"

#: Feature -> (the index the term averages, the stimuli it needs). Every index of docs/method.md
#: §3 is differentiable almost everywhere in the responses: maxima, the argmax choices of the
#: preferred grating (piecewise constant; the gradient flows through the selected entries) and
#: ratios whose denominators are guarded where they vanish (§2.10).
REGULARISABLE_FEATURES: dict[str, tuple[str, str]] = {
    "orientation": ("gOSI (§3.2)", "gratings"),
    "spatial_frequency": ("spatial-frequency selectivity (§3.6)", "gratings"),
    "phase": ("F1/F0 at the map centre (§3.8)", "gratings"),
    "colour": ("colour selectivity (§3.7)", "colour set"),
}
#: Features whose index is not differentiable (none of today's; a new feature whose index is, e.g.,
#: a count or a rank belongs here), with the reason the config check gives.
NOT_DIFFERENTIABLE: dict[str, str] = {}


def check_regularisable(feature: str, measured: Sequence[str]) -> None:
    """ValueError naming ``training.selectivity_regularisation.feature`` unless ``feature`` can be
    regularised and is among the measured features (``tuning.features``, where the tuning
    analysis measures what the regulariser did)."""
    key = f"{KEY}.feature"
    if feature in NOT_DIFFERENTIABLE:
        raise ValueError(f"{key}: {feature!r} cannot be regularised: {NOT_DIFFERENTIABLE[feature]}")
    if feature not in REGULARISABLE_FEATURES:
        raise ValueError(
            f"{key}: {feature!r} has no differentiable index; regularisable features are "
            f"{list(REGULARISABLE_FEATURES)}"
        )
    if feature not in measured:
        raise ValueError(
            f"{key}: {feature!r} is not in tuning.features {list(measured)}; the tuning analysis must measure "
            "the regularised feature (add it to tuning.features)"
        )


@dataclass(frozen=True)
class RegularisationSettings:
    """How the regularised networks of one model are trained (docs/method.md §2.10).

    ``layers``: the model's layers whose mean index the term averages; ``every_steps``: the term
    is added at optimiser steps 0, k, 2k, ... (counted over the whole run); ``orientations``,
    ``phases``, ``spatial_frequencies``: the grating set, the tuning analysis's own (§3.1), so that
    the regularised index is the index the tuning analysis measures.
    """

    feature: str
    layers: tuple[str, ...]
    every_steps: int = 1
    orientations: int = 12
    phases: int = 4
    spatial_frequencies: int = 9

    def __post_init__(self):
        object.__setattr__(self, "layers", tuple(str(layer) for layer in self.layers))
        if self.feature not in REGULARISABLE_FEATURES:
            raise ValueError(
                f"{KEY}.feature: {self.feature!r} cannot be regularised; choose one of {list(REGULARISABLE_FEATURES)}"
            )
        if not self.layers or len(set(self.layers)) != len(self.layers):
            raise ValueError(f"{KEY}.layers: {list(self.layers)} must name at least one layer, each once")
        for name in ("every_steps", "orientations", "phases", "spatial_frequencies"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{KEY}.{name}: {value!r} must be a positive integer")
        if self.orientations % 2:
            raise ValueError(f"{KEY}: {self.orientations} orientations; gOSI's grid needs an even number")

    @property
    def stimuli(self) -> str:
        """ "gratings" (§3.1) or "colour set" (§3.7, built on the same grid)."""
        return REGULARISABLE_FEATURES[self.feature][1]

    def record(self) -> dict[str, Any]:
        """Plain values: the training param and the checkpoint entry (with the coefficient)."""
        return {
            "feature": self.feature,
            "layers": list(self.layers),
            "every_steps": self.every_steps,
            "orientations": self.orientations,
            "phases": self.phases,
            "spatial_frequencies": self.spatial_frequencies,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> "RegularisationSettings":
        known = {"feature", "layers", "every_steps", "orientations", "phases", "spatial_frequencies"}
        unknown = sorted(set(record) - known)
        if unknown:
            raise ValueError(f"{KEY}: unknown settings {unknown}; known are {sorted(known)}")
        return cls(**{key: (tuple(value) if key == "layers" else value) for key, value in record.items()})


@dataclass(frozen=True)
class RegularisationStudy:
    """What claim C7 and the regularisation figures need (the claims' and figures' params).

    ``coefficients``: the non-zero coefficients trained (0 is each model itself); ``layers``: each
    model -> its regularised layers; ``models``: each model -> its regularised variants' names.
    """

    feature: str
    coefficients: tuple[float, ...]
    layers: tuple[tuple[str, tuple[str, ...]], ...] = ()
    models: tuple[tuple[str, tuple[str, ...]], ...] = field(default=())

    def __post_init__(self):
        object.__setattr__(self, "coefficients", tuple(sorted(float(c) for c in self.coefficients)))
        layers = dict(self.layers) if not isinstance(self.layers, Mapping) else self.layers
        models = dict(self.models) if not isinstance(self.models, Mapping) else self.models
        object.__setattr__(
            self, "layers", tuple(sorted((str(m), tuple(map(str, ls))) for m, ls in layers.items()))
        )
        object.__setattr__(
            self, "models", tuple(sorted((str(m), tuple(map(str, vs))) for m, vs in models.items()))
        )
        if self.feature not in REGULARISABLE_FEATURES:
            raise ValueError(
                f"regularisation feature {self.feature!r} is not one of {list(REGULARISABLE_FEATURES)}"
            )
        if 0.0 in self.coefficients or len(set(self.coefficients)) != len(self.coefficients):
            raise ValueError(f"coefficients {list(self.coefficients)} must be distinct and not 0")

    def layers_of(self, model: str) -> tuple[str, ...]:
        return dict(self.layers)[model]

    def variants_of(self, model: str) -> tuple[str, ...]:
        return dict(self.models).get(model, ())

    @property
    def architectures(self) -> list[str]:
        return [model for model, _ in self.models]

    def record(self) -> dict[str, Any]:
        return {
            "feature": self.feature,
            "coefficients": list(self.coefficients),
            "layers": {model: list(layers) for model, layers in self.layers},
            "models": {model: list(variants) for model, variants in self.models},
        }
