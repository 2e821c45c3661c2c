"""Random shifts and horizontal flips as batched tensor ops (spec section 2).

The author trained with Keras' ``ImageDataGenerator(width_shift_range=0.1,
height_shift_range=0.1, horizontal_flip=True)`` whose fill mode is ``nearest``
(edge replication). Here a shift is a whole number of pixels drawn uniformly from
``[-max_shift, +max_shift]``, independently for rows and columns; Keras draws a real
number in ``[-3.2, 3.2]`` px and interpolates linearly (our [D] choice: integer shifts,
no interpolation blur). As in Keras the shift is applied first, then the flip.

Augmentation is split into *drawing* the random parameters (from an explicit
generator) and *applying* given parameters, so that training can draw a whole
epoch's parameters at once from each network's own generator and then apply them
on the device without host synchronisation (and inside a CUDA graph).
"""

from __future__ import annotations

import torch


def _check_max_shift(max_shift: int) -> None:
    if isinstance(max_shift, bool) or not isinstance(max_shift, int) or max_shift < 0:
        raise ValueError(f"max_shift must be a non-negative whole number of pixels, got {max_shift!r}")


def draw_shifts_and_flips(
    count: int, max_shift: int, flip: bool, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random augmentation parameters for ``count`` images, on ``generator``'s device.

    Returns ``shifts`` int64 ``(count, 2)``, the (row, column) shift of each image,
    uniform on ``-max_shift..max_shift``, and ``flips`` bool ``(count,)``, True with
    probability 0.5 when ``flip`` (all False otherwise, drawing nothing).
    """
    _check_max_shift(max_shift)
    if count < 0:
        raise ValueError(f"count must be >= 0, got {count}")
    device = generator.device
    shifts = torch.randint(-max_shift, max_shift + 1, (count, 2), generator=generator, device=device)
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


def random_shift_and_flip(
    images: torch.Tensor, max_shift: int, flip: bool, generator: torch.Generator
) -> torch.Tensor:
    """Shift (edge-replicated) and maybe flip each image by parameters drawn from ``generator``.

    The parameters are drawn on the generator's device, so the same generator state
    gives the same augmentation whichever device holds the images.
    """
    shifts, flips = draw_shifts_and_flips(images.shape[0], max_shift, flip, generator)
    return shift_and_flip(images, shifts, flips)
