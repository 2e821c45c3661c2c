"""Random shifts and horizontal flips as batched tensor ops (docs/method.md §2).

The author trained with Keras 2.0.8's ``ImageDataGenerator(width_shift_range=0.1,
height_shift_range=0.1, horizontal_flip=True)`` [A]: for each image it draws a real
shift uniformly from ``[-0.1 H, 0.1 H]`` rows and ``[-0.1 W, 0.1 W]`` columns
(+-3.2 px at 32 px) and resamples with nearest-neighbour interpolation (``order=0``)
and edge-replicated fill (``fill_mode="nearest"``), so the image moves by the shift
rounded to whole pixels: 0 px with probability 1/6.4, +-1 and +-2 px with 1/6.4 each,
+-3 px with 0.7/6.4 each. The same here, then the flip (p = 0.5), as in Keras.

Augmentation is split into *drawing* the random parameters (from an explicit
generator) and *applying* given parameters, so that training can draw a whole
epoch's parameters at once from each network's own generator and then apply them
on the device without host synchronisation (and inside a CUDA graph).
"""

from __future__ import annotations

import torch


def _check_shift_range(shift_range: float) -> None:
    if isinstance(shift_range, bool) or not isinstance(shift_range, (int, float)) or not 0 <= shift_range < 1:
        raise ValueError(f"shift_range must be a fraction of the image size in [0, 1), got {shift_range!r}")


def draw_shifts_and_flips(
    count: int, image_size: tuple[int, int], shift_range: float, flip: bool, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random augmentation parameters for ``count`` images of ``image_size`` = (H, W).

    Returns ``shifts`` int64 ``(count, 2)``, the (row, column) shift of each image: a
    uniform real number in ``[-shift_range * H, shift_range * H]`` (rows; W for columns)
    rounded to the nearest pixel, as Keras' nearest-neighbour resampling does; and
    ``flips`` bool ``(count,)``, True with probability 0.5 when ``flip`` (all False
    otherwise, drawing nothing). Everything is drawn on ``generator``'s device.
    """
    _check_shift_range(shift_range)
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    device = generator.device
    extent = torch.tensor([float(image_size[0]), float(image_size[1])], device=device) * shift_range
    uniform = torch.rand((count, 2), generator=generator, device=device, dtype=torch.float64)
    shifts = torch.round((2 * uniform - 1) * extent).to(torch.long)
    if flip:
        flips = torch.randint(0, 2, (count,), generator=generator, device=device) == 1
    else:
        flips = torch.zeros(count, dtype=torch.bool, device=device)
    return shifts, flips


def shift_and_flip(images: torch.Tensor, shifts: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Shift every image by its own whole-pixel amount (edge-replicated fill), then flip it.

    ``images`` (B, C, H, W); ``shifts`` (B, 2) integer (row, column) shifts, positive
    moving the content down/right; ``flips`` (B,) bool, True mirrors left-right.
    Output pixel (i, j) of image b is input pixel ``(clamp(i - dy), clamp(j' - dx))``
    with ``j' = W - 1 - j`` for flipped images: one gather, no per-image Python.
    """
    if images.dim() != 4:
        raise ValueError(f"images must be (B, C, H, W), got shape {tuple(images.shape)}")
    batch, channels, height, width = images.shape
    if shifts.shape != (batch, 2) or flips.shape != (batch,):
        raise ValueError(
            f"expected shifts ({batch}, 2) and flips ({batch},) for {batch} images, "
            f"got {tuple(shifts.shape)} and {tuple(flips.shape)}"
        )
    device = images.device
    shifts = shifts.to(device=device, dtype=torch.long)
    flips = flips.to(device=device, dtype=torch.bool)
    row_positions = torch.arange(height, device=device)
    column_positions = torch.arange(width, device=device)
    rows = (row_positions.unsqueeze(0) - shifts[:, 0:1]).clamp_(0, height - 1)
    columns = torch.where(flips.unsqueeze(1), width - 1 - column_positions, column_positions)
    columns = (columns - shifts[:, 1:2]).clamp_(0, width - 1)
    pixel_index = (rows.unsqueeze(2) * width + columns.unsqueeze(1)).view(batch, 1, height * width)
    flat = images.reshape(batch, channels, height * width)
    return flat.gather(2, pixel_index.expand(batch, channels, height * width)).view(
        batch, channels, height, width
    )
