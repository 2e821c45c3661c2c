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

The colour set (:func:`colour_grating_stimuli`, docs/method.md §3.7) takes the same spatial
profiles on a sub-grid of spatial frequencies and orientations and modulates them along three
orthonormal RGB directions at one common amplitude around mid-grey [D].
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


#: The colour set's RGB directions (docs/method.md §3.7), orthonormal: the achromatic axis and
#: the two axes orthogonal to it, red-green (R - G) and blue-yellow ((R + G)/2 - B, + = yellow).
COLOUR_DIRECTIONS: dict[str, np.ndarray] = {
    "achromatic": np.array([1.0, 1.0, 1.0]) / np.sqrt(3),
    "red_green": np.array([1.0, -1.0, 0.0]) / np.sqrt(2),
    "blue_yellow": np.array([1.0, 1.0, -2.0]) / np.sqrt(6),
}
#: Length of every colour grating's RGB modulation vector: the largest that keeps all three
#: directions inside [0, 1] around mid-grey (blue-yellow's B channel reaches 0 and 1).
COLOUR_MODULATION = 0.5 / max(np.abs(direction).max() for direction in COLOUR_DIRECTIONS.values())


def colour_spatial_frequency_indices(spatial_frequencies: int) -> np.ndarray:
    """SF indices of the colour set: the octave-spaced ones, s + 1 = 1, 2, 4, 8, ... [D]."""
    if spatial_frequencies < 1:
        raise ValueError(f"spatial_frequencies must be at least 1, got {spatial_frequencies}")
    return 2 ** np.arange(int(np.log2(spatial_frequencies)) + 1) - 1


def colour_orientation_indices(orientations: int) -> np.ndarray:
    """Orientation indices of the colour set: every second orientation (0, 30, ... deg of 12) [D]."""
    if orientations < 1:
        raise ValueError(f"orientations must be at least 1, got {orientations}")
    return np.arange(0, orientations, 2)


@dataclass
class ColourGratingStimuli:
    """The colour set indexed by (colour direction, spatial frequency, orientation, phase).

    ``images`` is float32 (n_colour, n_sf, n_ori, n_phase, 3, H, W) in [0, 1];
    ``spatial_frequency_indices`` and ``orientation_indices`` say which SFs and orientations
    of the achromatic set (:class:`GratingStimuli`) the sub-grid holds; every phase is kept.
    """

    images: torch.Tensor
    colours: tuple[str, ...]
    directions: np.ndarray
    spatial_frequency_indices: np.ndarray
    orientation_indices: np.ndarray
    orientations_deg: np.ndarray
    phases_deg: np.ndarray
    periods_px: np.ndarray

    @property
    def grid_shape(self) -> tuple[int, int, int, int]:
        """(n_colour, n_sf, n_ori, n_phase): the stimulus axes, in the order of :meth:`flat_images`."""
        return tuple(self.images.shape[:4])

    def flat_images(self) -> torch.Tensor:
        """All colour gratings as (N, 3, H, W): phase fastest, then orientation, SF, colour."""
        return self.images.reshape(-1, *self.images.shape[4:])


def colour_grating_stimuli(gratings: GratingStimuli, channels: int = 3) -> ColourGratingStimuli:
    """The colour set of docs/method.md §3.7, built from the achromatic set's own profiles.

    Each achromatic grating x in [0, 1] of the sub-grid becomes ``u = 2x - 1`` in [-1, 1] and,
    for each direction d of :data:`COLOUR_DIRECTIONS`, the RGB image
    ``0.5 + COLOUR_MODULATION * d * u``: the same spatial pattern, the same modulation length
    in RGB space for every direction. Only RGB inputs have colour: ``channels`` must be 3.
    """
    import torch

    if channels != 3:
        raise ValueError(f"colour gratings need RGB inputs (3 channels), got {channels} channel(s)")
    n_sf, n_ori, _ = gratings.grid_shape
    sf_indices = colour_spatial_frequency_indices(n_sf)
    orientation_indices = colour_orientation_indices(n_ori)
    grey = gratings.images[sf_indices][:, orientation_indices][:, :, :, 0]  # (sf, ori, phase, H, W)
    profile = 2 * grey - 1
    directions = np.stack(list(COLOUR_DIRECTIONS.values()))
    modulation = torch.from_numpy(COLOUR_MODULATION * directions).float()  # (colour, channel)
    images = 0.5 + modulation[:, None, None, None, :, None, None] * profile[None, :, :, :, None]
    return ColourGratingStimuli(
        images=images.clamp_(0, 1),  # the clamp only removes rounding beyond the gamut
        colours=tuple(COLOUR_DIRECTIONS),
        directions=directions,
        spatial_frequency_indices=sf_indices,
        orientation_indices=orientation_indices,
        orientations_deg=gratings.orientations_deg[orientation_indices],
        phases_deg=gratings.phases_deg,
        periods_px=gratings.periods_px[sf_indices],
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
