"""The tuning indices of docs/method.md §3 as differentiable torch functions (for the regulariser, §2.10).

Each function computes, per unit, exactly the index of :mod:`selectivity.tuning.analysis` and
:mod:`selectivity.tuning.features` from the same responses (tests/test_regulariser.py compares them),
so that a loss term on it pushes the quantity the tuning analysis measures:

- :func:`global_orientation_selectivity`: gOSI of the curve at the preferred spatial frequency (§3.2);
- :func:`spatial_frequency_selectivity`: the sparseness of the SF curve at the preferred orientation (§3.6);
- :func:`phase_modulation`: F1/F0 of the centre responses at the preferred grating (§3.8);
- :func:`colour_selectivity`: the best isoluminant direction against the achromatic one (§3.7).

The choices of the preferred grating (argmax over SFs, orientations) are piecewise constant in the
responses: they are made without gradient (ties to the first index, as ``numpy.argmax``), and the
gradient flows through the entries they select; maxima pass it to their maximal entries (shared
evenly on ties). Where an index's denominator vanishes (a dead unit's curve; F0 = 0; a unit silent
on the colour set) the value is the analysis's convention (0, or NaN for undefined) and the gradient
is 0, never NaN: the denominators are replaced by 1 before dividing and the result masked.

Responses are (units, n_sf, n_ori, n_phase) grating responses (the spatial mean of §1.4, or the
centre readout for F1/F0), or (units, n_colour, n_sf, n_ori, n_phase) for the colour set; the
indices are computed in the responses' dtype (the regulariser uses float64).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from selectivity.tuning.features import COLOURS


def _safe_ratio(numerator: torch.Tensor, denominator: torch.Tensor, defined: torch.Tensor) -> torch.Tensor:
    """numerator / denominator where ``defined``; elsewhere 0 with a zero (finite) gradient."""
    safe = torch.where(defined, denominator, torch.ones_like(denominator))
    return torch.where(defined, numerator / safe, torch.zeros_like(numerator))


def _norm(real: torch.Tensor, imaginary: torch.Tensor) -> torch.Tensor:
    """|real + i imaginary| with a zero gradient at 0 (where sqrt's would be infinite)."""
    squared = real.square() + imaginary.square()
    positive = squared > 0
    return torch.where(
        positive, torch.sqrt(torch.where(positive, squared, torch.ones_like(squared))), squared
    )


def preferred_grating(phase_max: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(s*, o*) per unit of R[units, sf, ori]: the first maximum in (SF, orientation) order (no gradient).

    The same choice as :func:`selectivity.tuning.features.preferred_grating` and §3.2's
    ``s* = argmax_s max_o R`` (the first maximum of the flattened grid is at the lowest SF, then the
    smallest orientation).
    """
    with torch.no_grad():
        flat = phase_max.reshape(phase_max.shape[0], -1).argmax(dim=1)
        n_ori = phase_max.shape[2]
        return flat // n_ori, flat % n_ori


def global_orientation_selectivity(
    responses: torch.Tensor, orientations_deg: Sequence[float]
) -> torch.Tensor:
    """gOSI per unit (§3.2): |sum_o T[o] exp(2i theta_o)| / sum_o T[o] of T = R[s*, :], capped at 1;
    0 for a dead unit. ``responses`` (units, n_sf, n_ori, n_phase), non-negative."""
    phase_max = responses.amax(dim=-1)  # R[units, sf, ori]
    with torch.no_grad():
        preferred_sf = phase_max.amax(dim=-1).argmax(dim=-1)  # first maximum: the lowest SF
    index = preferred_sf.view(-1, 1, 1).expand(-1, 1, phase_max.shape[2])
    curves = phase_max.gather(1, index)[:, 0, :]  # T[units, ori]
    angles = 2 * torch.deg2rad(torch.as_tensor(orientations_deg, dtype=curves.dtype, device=curves.device))
    resultant = _norm(curves @ torch.cos(angles), curves @ torch.sin(angles))
    total = curves.sum(dim=-1)
    return torch.clamp(_safe_ratio(resultant, total, total > 0), max=1.0)


def spatial_frequency_selectivity(responses: torch.Tensor) -> torch.Tensor:
    """SF selectivity per unit (§3.6): (1 - (sum F)^2 / (N sum F^2)) / (1 - 1/N) of the SF curve
    F = R[:, o*] at the preferred orientation; 0 for a dead unit (NaN with a single SF)."""
    phase_max = responses.amax(dim=-1)
    units, n_sf, n_ori = phase_max.shape
    if n_sf < 2:
        return torch.full((units,), float("nan"), dtype=phase_max.dtype, device=phase_max.device)
    _, preferred_orientation = preferred_grating(phase_max)
    curves = phase_max.gather(2, preferred_orientation.view(-1, 1, 1).expand(-1, n_sf, 1))[:, :, 0]
    total, energy = curves.sum(dim=-1), curves.square().sum(dim=-1)
    defined = energy > 0
    ratio = torch.where(defined, _safe_ratio(total.square(), n_sf * energy, defined), torch.ones_like(total))
    return torch.clamp((1 - ratio) / (1 - 1 / n_sf), 0.0, 1.0)


def phase_modulation(
    responses: torch.Tensor, centre_responses: torch.Tensor, phases_deg: Sequence[float]
) -> torch.Tensor:
    """F1/F0 per unit (§3.8) of the centre responses at the preferred grating (s*, o*) of the spatial-mean
    ``responses``: F0 = mean_p a_p, F1 = 2 |mean_p a_p exp(-i phi_p)|, capped at 2; NaN where F0 = 0."""
    phase_max = responses.amax(dim=-1)
    preferred_sf, preferred_orientation = preferred_grating(phase_max)
    units = torch.arange(responses.shape[0], device=responses.device)
    at_preferred = centre_responses[units, preferred_sf, preferred_orientation]  # (units, n_phase)
    n = at_preferred.shape[-1]
    phases = torch.deg2rad(torch.as_tensor(phases_deg, dtype=at_preferred.dtype, device=at_preferred.device))
    f0 = at_preferred.mean(dim=-1)
    f1 = 2 * _norm(at_preferred @ torch.cos(phases), -(at_preferred @ torch.sin(phases))) / n
    defined = f0 > 0
    ratio = torch.clamp(_safe_ratio(f1, f0, defined), max=2.0)
    return torch.where(defined, ratio, torch.full_like(ratio, float("nan")))


def colour_selectivity(colour_responses: torch.Tensor, colours: Sequence[str] = COLOURS) -> torch.Tensor:
    """Colour selectivity per unit (§3.7): (R_C - R_A) / (R_C + R_A), R_d the largest response to
    direction d's gratings and R_C the larger chromatic one; NaN for a unit silent on the colour set.
    ``colour_responses`` (units, n_colour, n_sf, n_ori, n_phase) in the order of ``colours``."""
    colours = list(colours)
    maxima = colour_responses.reshape(*colour_responses.shape[:2], -1).amax(dim=-1)  # (units, colour)
    achromatic = maxima[:, colours.index("achromatic")]
    chromatic = torch.maximum(maxima[:, colours.index("red_green")], maxima[:, colours.index("blue_yellow")])
    total = achromatic + chromatic
    defined = total > 0
    index = _safe_ratio(chromatic - achromatic, total, defined)
    return torch.where(defined, index, torch.full_like(index, float("nan")))


def mean_defined(values: torch.Tensor) -> torch.Tensor:
    """The mean of the non-NaN values (a layer's mean index over units with a defined index, §6.4);
    NaN if none is defined. The gradient flows to the defined values only."""
    defined = ~torch.isnan(values)
    count = defined.sum()
    if int(count) == 0:
        return torch.full((), math.nan, dtype=values.dtype, device=values.device)
    return torch.where(defined, values, torch.zeros_like(values)).sum() / count
