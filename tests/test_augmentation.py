"""Batched shift-and-flip augmentation against hand-computed and reference answers."""

import pytest
import torch
import torch.nn.functional as F

from selectivity.data.augmentation import draw_shifts_and_flips, shift_and_flip


def random_shift_and_flip(images: torch.Tensor, shift_range: float, flip: bool, generator: torch.Generator):
    """Draw the augmentation of each image from ``generator`` and apply it (as training does per epoch)."""
    shifts, flips = draw_shifts_and_flips(
        images.shape[0], tuple(images.shape[-2:]), shift_range, flip, generator
    )
    return shift_and_flip(images, shifts, flips)


def reference_shift(image: torch.Tensor, dy: int, dx: int, max_shift: int = 3) -> torch.Tensor:
    """Shift one (C, H, W) image by padding with replicated edges and cropping."""
    height, width = image.shape[-2:]
    padded = F.pad(image.unsqueeze(0), (max_shift,) * 4, mode="replicate")[0]
    top, left = max_shift - dy, max_shift - dx
    return padded[:, top : top + height, left : left + width]


@pytest.fixture
def images():
    return torch.randn(6, 3, 8, 9, generator=torch.Generator().manual_seed(0))


def test_hand_computed_shift_right_and_down_replicates_the_edge():
    image = torch.arange(12.0).view(1, 1, 3, 4)
    shifted = shift_and_flip(image, torch.tensor([[1, 2]]), torch.tensor([False]))
    expected = torch.tensor([[0.0, 0, 0, 1], [0, 0, 0, 1], [4, 4, 4, 5]])
    assert torch.equal(shifted[0, 0], expected)


def test_hand_computed_flip_after_shift():
    image = torch.arange(4.0).view(1, 1, 1, 4)  # [0, 1, 2, 3]
    out = shift_and_flip(image, torch.tensor([[0, 1]]), torch.tensor([True]))
    # shift right by one -> [0, 0, 1, 2]; then mirror -> [2, 1, 0, 0]
    assert torch.equal(out[0, 0, 0], torch.tensor([2.0, 1, 0, 0]))


def test_zero_shift_without_flip_is_identity(images):
    out = shift_and_flip(images, torch.zeros(6, 2, dtype=torch.long), torch.zeros(6, dtype=torch.bool))
    assert torch.equal(out, images)


def test_flip_only_mirrors_columns(images):
    out = shift_and_flip(images, torch.zeros(6, 2, dtype=torch.long), torch.ones(6, dtype=torch.bool))
    assert torch.equal(out, torch.flip(images, dims=[-1]))


@pytest.mark.parametrize("dy,dx", [(-3, -3), (-3, 2), (0, 3), (1, -1), (3, 3), (2, 0)])
def test_every_shift_matches_replicate_padding_reference(images, dy, dx):
    shifts = torch.tensor([[dy, dx]] * len(images))
    out = shift_and_flip(images, shifts, torch.zeros(len(images), dtype=torch.bool))
    for image, shifted in zip(images, out):
        assert torch.equal(shifted, reference_shift(image, dy, dx))


def test_each_image_gets_its_own_shift_and_flip(images):
    generator = torch.Generator().manual_seed(1)
    shifts, flips = draw_shifts_and_flips(len(images), (32, 32), 0.1, True, generator)
    out = shift_and_flip(images, shifts, flips)
    for image, shifted, (dy, dx), flip in zip(images, out, shifts.tolist(), flips.tolist()):
        expected = reference_shift(image, dy, dx)
        if flip:
            expected = torch.flip(expected, dims=[-1])
        assert torch.equal(shifted, expected)


def test_shift_distribution_is_keras_nearest_neighbour_rounding_of_a_uniform_shift():
    """Keras 2.0.8 at 32 px with range 0.1: U(-3.2, 3.2) px rounded to whole pixels."""
    count = 64_000
    shifts, flips = draw_shifts_and_flips(count, (32, 32), 0.1, True, torch.Generator().manual_seed(2))
    assert shifts.min() == -3 and shifts.max() == 3
    # P(0) = P(+-1) = P(+-2) = 1/6.4 each; P(+-3) = 0.7/6.4 each (the interval [2.5, 3.2))
    expected = torch.tensor([0.7, 1, 1, 1, 1, 1, 0.7], dtype=torch.float64) / 6.4 * count
    for axis in range(2):
        counts = torch.bincount(shifts[:, axis] + 3, minlength=7).double()
        assert len(counts) == 7
        # at most 10,000 expected per value; 5 standard deviations is at most ~460
        assert (counts - expected).abs().max() < 500
    # rows and columns are drawn independently: their correlation is ~0 (sd ~0.004)
    correlation = torch.corrcoef(shifts.T.double())[0, 1]
    assert abs(correlation) < 0.02
    assert abs(flips.double().mean() - 0.5) < 0.01


def test_shift_range_scales_with_each_image_axis():
    shifts, _ = draw_shifts_and_flips(20_000, (10, 40), 0.1, False, torch.Generator().manual_seed(6))
    assert shifts[:, 0].abs().max() == 1 and shifts[:, 1].abs().max() == 4  # 1.0 and 4.0 px


def test_no_flip_and_zero_shift_range_draw_identity_parameters():
    shifts, flips = draw_shifts_and_flips(100, (32, 32), 0.0, False, torch.Generator().manual_seed(3))
    assert not shifts.any() and not flips.any()


def test_same_generator_state_gives_same_augmentation(images):
    a = random_shift_and_flip(images, 0.3, True, torch.Generator().manual_seed(4))
    b = random_shift_and_flip(images, 0.3, True, torch.Generator().manual_seed(4))
    c = random_shift_and_flip(images, 0.3, True, torch.Generator().manual_seed(5))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_bad_arguments_are_named(images):
    with pytest.raises(ValueError, match="shift_range"):
        draw_shifts_and_flips(3, (8, 8), -0.1, True, torch.Generator())
    with pytest.raises(ValueError, match="shifts"):
        shift_and_flip(images, torch.zeros(2, 2, dtype=torch.long), torch.zeros(6, dtype=torch.bool))
    with pytest.raises(ValueError, match="B, C, H, W"):
        shift_and_flip(images[0], torch.zeros(3, 2, dtype=torch.long), torch.zeros(3, dtype=torch.bool))
