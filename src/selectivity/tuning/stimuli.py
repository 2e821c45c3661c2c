"""Full-field sinusoidal gratings for orientation tuning (docs/method.md §3).

Every grating is achromatic (the same image in R, G and B) and full contrast (min-max
scaled to [0, 1]). Spatial frequency ``s`` has the angular wavenumber

    k_s = (s + 1) * pi / (H / 2 + 4),   s = 0 .. n - 1            [A]

and the pixel at (row, col) is ``cos(k * (-sin(theta) * row + cos(theta) * col) + phase)``.
Coordinates are centred as in the author's code: ``row = row_index - H // 2`` and
``col = col_index - W // 2`` [A], so for a 32-px image the origin is pixel (16, 16) and a
phase-0 grating has a crest through it at every orientation. ``theta`` is the direction of
the wave vector in (col, -row) coordinates, i.e. counter-clockwise from the image's
x axis with rows growing downwards: at 0 deg the grating varies along columns only
(vertical stripes), at 90 deg along rows only (horizontal stripes).

The training mean image is subtracted later, by ``LoadedNetwork.prepare_inputs``, exactly
as for every other input.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:  # torch is imported where gratings are built: the config checks use this module
    import torch


def spatial_frequency_count(image_size: int) -> int:
    """Number of spatial frequencies for a square image: 9 for 32 px, 57 for 224 px [A].

    ``(H/2 + 4) // 2 - 1`` reproduces both of the author's values and keeps every
    wavenumber below pi/2 rad/px, i.e. every period above 4 px.
    """
    _check_image_size(image_size)
    return int((image_size / 2 + 4) // 2) - 1


def grating_wavenumbers(image_size: int, spatial_frequencies: int) -> np.ndarray:
    """Angular wavenumbers k_s = (s + 1) * pi / (H/2 + 4) in rad/px, s = 0 .. n-1 [A]."""
    _check_image_size(image_size)
    if spatial_frequencies < 1:
        raise ValueError(f"spatial_frequencies must be at least 1, got {spatial_frequencies}")
    wavenumbers = np.arange(1, spatial_frequencies + 1) * np.pi / (image_size / 2 + 4)
    if spatial_frequencies > max_spatial_frequencies(image_size):
        raise ValueError(
            f"{spatial_frequencies} spatial frequencies for {image_size} px reach a period of "
            f"{2 * np.pi / wavenumbers[-1]:.2f} px, at or below the 2-px Nyquist limit; use at most "
            f"{max_spatial_frequencies(image_size)}"
        )
    return wavenumbers


def max_spatial_frequencies(image_size: int) -> int:
    """The most spatial frequencies whose highest wavenumber stays below pi (periods above 2 px)."""
    _check_image_size(image_size)
    return int(np.ceil(image_size / 2 + 4)) - 1


@dataclass
class GratingStimuli:
    """A grating set indexed by (spatial frequency, orientation, phase).

    ``images`` is float32 (n_sf, n_ori, n_phase, 3, H, W) in [0, 1]. Its three colour
    channels are one stored grey image expanded without copying (a stride-0 view), which
    keeps the 224-px VGG set (2736 images) at about 0.5 GB; treat it as read-only.
    """

    images: torch.Tensor
    orientations_deg: np.ndarray
    phases_deg: np.ndarray
    wavenumbers: np.ndarray
    periods_px: np.ndarray

    def __post_init__(self):
        expected = (len(self.wavenumbers), len(self.orientations_deg), len(self.phases_deg), 3)
        if tuple(self.images.shape[:4]) != expected or self.images.dim() != 6:
            raise ValueError(
                f"grating images must be (n_sf, n_ori, n_phase, 3, H, W) = {expected + ('H', 'W')}, "
                f"got {tuple(self.images.shape)}"
            )

    @property
    def grid_shape(self) -> tuple[int, int, int]:
        """(n_sf, n_ori, n_phase): the stimulus axes, in the order of :meth:`flat_images`."""
        return tuple(self.images.shape[:3])

    @property
    def image_size(self) -> int:
        return int(self.images.shape[-1])

    def flat_images(self) -> torch.Tensor:
        """All gratings as (n_sf * n_ori * n_phase, 3, H, W), phase varying fastest [A]."""
        return self.images.reshape(-1, *self.images.shape[3:])


def grating_stimuli(
    image_size: int,
    orientations: int = 12,
    phases: int = 4,
    spatial_frequencies: int | None = None,
) -> GratingStimuli:
    """The grating set of docs/method.md §3 (module docstring): orientations 0..180 deg and
    phases 0..360 deg in equal steps, ``spatial_frequency_count(image_size)`` SFs by default."""
    import torch

    if orientations < 1 or phases < 1:
        raise ValueError(f"need at least one orientation and one phase, got {orientations} and {phases}")
    if spatial_frequencies is None:
        spatial_frequencies = spatial_frequency_count(image_size)
    wavenumbers = grating_wavenumbers(image_size, spatial_frequencies)
    orientations_deg = np.arange(orientations) * 180.0 / orientations
    phases_deg = np.arange(phases) * 360.0 / phases

    theta = np.deg2rad(orientations_deg)[:, None, None, None]
    phase = np.deg2rad(phases_deg)[None, :, None, None]
    row = (np.arange(image_size) - image_size // 2)[None, None, :, None]
    col = (np.arange(image_size) - image_size // 2)[None, None, None, :]
    position_along_wave = -np.sin(theta) * row + np.cos(theta) * col  # (n_ori, 1, H, W)

    grey = torch.empty(spatial_frequencies, orientations, phases, 1, image_size, image_size)
    for s, k in enumerate(wavenumbers):  # one SF at a time keeps the float64 temporaries small
        grey[s, :, :, 0] = torch.from_numpy(_full_contrast(np.cos(k * position_along_wave + phase)))
    return GratingStimuli(
        images=grey.expand(-1, -1, -1, 3, -1, -1),
        orientations_deg=orientations_deg,
        phases_deg=phases_deg,
        wavenumbers=wavenumbers,
        periods_px=2 * np.pi / wavenumbers,
    )


def _full_contrast(images: np.ndarray) -> np.ndarray:
    """Min-max scale every image (last two axes) to [0, 1], as float32."""
    low = images.min(axis=(-2, -1), keepdims=True)
    high = images.max(axis=(-2, -1), keepdims=True)
    return ((images - low) / (high - low)).astype(np.float32)


def _check_image_size(image_size: int) -> None:
    # Below 4 px a grating of the lowest SF can be constant, which has no contrast to scale.
    if not isinstance(image_size, (int, np.integer)) or image_size < 4:
        raise ValueError(f"image_size must be an integer of at least 4 px, got {image_size!r}")
