"""Grating stimuli: the set of docs/method.md §3, checked against the formula's known properties."""

import numpy as np
import pytest
import torch

from selectivity.tuning.stimuli import (
    COLOUR_DIRECTIONS,
    COLOUR_MODULATION,
    colour_grating_stimuli,
    colour_orientation_indices,
    colour_spatial_frequency_indices,
    grating_stimuli,
    grating_wavenumbers,
    spatial_frequency_count,
)


@pytest.fixture(scope="module")
def gratings32():
    return grating_stimuli(32)


def test_spatial_frequency_count_reproduces_the_authors_values():
    assert spatial_frequency_count(32) == 9
    assert spatial_frequency_count(224) == 57


@pytest.mark.parametrize("bad_size", [0, 3, 32.0, "32"])
def test_bad_image_size_is_rejected(bad_size):
    with pytest.raises(ValueError, match="image_size"):
        spatial_frequency_count(bad_size)


def test_32px_set_has_the_specified_axes(gratings32):
    assert gratings32.images.shape == (9, 12, 4, 3, 32, 32)
    assert gratings32.images.dtype == torch.float32
    assert gratings32.grid_shape == (9, 12, 4)
    assert gratings32.flat_images().shape == (432, 3, 32, 32)
    np.testing.assert_allclose(gratings32.orientations_deg, np.arange(0, 180, 15))
    np.testing.assert_allclose(gratings32.phases_deg, [0, 90, 180, 270])
    np.testing.assert_allclose(gratings32.wavenumbers, (np.arange(9) + 1) * np.pi / 20)
    np.testing.assert_allclose(gratings32.periods_px, 40 / (np.arange(9) + 1))


def test_flat_images_put_phase_fastest_then_orientation_then_sf(gratings32):
    flat = gratings32.flat_images()
    for s, o, p in [(0, 0, 1), (2, 5, 3), (8, 11, 0)]:
        assert torch.equal(flat[(s * 12 + o) * 4 + p], gratings32.images[s, o, p])


def test_every_image_is_achromatic_full_contrast(gratings32):
    images = gratings32.images
    assert torch.equal(images[:, :, :, 0], images[:, :, :, 1])
    assert torch.equal(images[:, :, :, 0], images[:, :, :, 2])
    flat = images[:, :, :, 0].reshape(-1, 32 * 32)
    assert torch.all(flat.min(dim=1).values == 0)
    assert torch.all(flat.max(dim=1).values == 1)


def test_phase_0_has_a_crest_and_phase_180_a_trough_at_the_centre_pixel(gratings32):
    centre = gratings32.images[..., 0, 16, 16]  # row = col = index - H // 2 = 0 there
    assert torch.all(centre[:, :, 0] == 1)
    assert torch.all(centre[:, :, 2] == 0)


def test_orientation_0_varies_along_columns_only_and_90_along_rows_only(gratings32):
    vertical_stripes = gratings32.images[:, 0, :, 0]  # (sf, phase, H, W)
    horizontal_stripes = gratings32.images[:, 6, :, 0]
    # cos(90 deg) is 6e-17 in floating point, hence a tolerance instead of equality
    torch.testing.assert_close(vertical_stripes, vertical_stripes[..., :1, :].expand_as(vertical_stripes))
    torch.testing.assert_close(
        horizontal_stripes, horizontal_stripes[..., :, :1].expand_as(horizontal_stripes)
    )
    assert vertical_stripes.std(dim=-1).min() > 0.1
    assert horizontal_stripes.std(dim=-2).min() > 0.1


def test_oblique_orientations_follow_the_wave_vector_convention(gratings32):
    # 45 deg: phase depends on col - row, so crests run along the main diagonal;
    # 135 deg: on col + row, so they run along the anti-diagonal.
    at_45 = gratings32.images[:, 3, :, 0]
    at_135 = gratings32.images[:, 9, :, 0]
    torch.testing.assert_close(at_45[..., 1:, 1:], at_45[..., :-1, :-1])
    torch.testing.assert_close(at_135[..., 1:, :-1], at_135[..., :-1, 1:])
    assert (at_45[..., 1:, :-1] - at_45[..., :-1, 1:]).abs().max() > 0.5


@pytest.mark.parametrize("sf_index, period", [(1, 20), (3, 10), (4, 8), (7, 5)])
def test_period_of_each_sf_is_two_pi_over_k(gratings32, sf_index, period):
    assert gratings32.periods_px[sf_index] == pytest.approx(period)
    row = gratings32.images[sf_index, 0, 0, 0, 0]  # orientation 0, phase 0: cos(k * (col - 16))
    torch.testing.assert_close(row[period:], row[:-period])
    crests = torch.nonzero(row > 1 - 1e-6).flatten().tolist()
    assert crests == [col for col in range(32) if (col - 16) % period == 0]
    if period % 2 == 0:  # half a period away the value is mirrored about the mean
        torch.testing.assert_close(row[period // 2 :], 1 - row[: -period // 2])


def test_pixel_values_match_the_formula_at_arbitrary_points(gratings32):
    k = np.pi / 20 * 3  # s = 2
    theta, phase = np.deg2rad(30), np.deg2rad(90)
    rows, cols = np.meshgrid(np.arange(32) - 16, np.arange(32) - 16, indexing="ij")
    raw = np.cos(k * (-np.sin(theta) * rows + np.cos(theta) * cols) + phase)
    expected = (raw - raw.min()) / (raw.max() - raw.min())
    np.testing.assert_allclose(gratings32.images[2, 2, 1, 1].numpy(), expected, atol=1e-6)


def test_224px_set_has_57_spatial_frequencies_above_4px():
    stimuli = grating_stimuli(224, orientations=2, phases=1)  # all SFs, few images to stay small
    assert stimuli.images.shape == (57, 2, 1, 3, 224, 224)
    assert stimuli.periods_px[0] == pytest.approx(232)
    assert stimuli.periods_px[-1] == pytest.approx(2 * 116 / 57)
    assert stimuli.periods_px.min() > 4


def test_frequencies_beyond_nyquist_are_rejected():
    assert grating_wavenumbers(32, 19)[-1] < np.pi
    with pytest.raises(ValueError, match="Nyquist"):
        grating_wavenumbers(32, 20)


def test_empty_axes_are_rejected():
    with pytest.raises(ValueError, match="orientation"):
        grating_stimuli(32, orientations=0)
    with pytest.raises(ValueError, match="spatial_frequencies"):
        grating_stimuli(32, spatial_frequencies=0)


# --- the colour set (docs/method.md §3.7) ---------------------------------------------------------


@pytest.fixture(scope="module")
def colour32(gratings32):
    return colour_grating_stimuli(gratings32)


def test_colour_directions_are_orthonormal_with_one_achromatic_axis():
    directions = np.stack(list(COLOUR_DIRECTIONS.values()))
    np.testing.assert_allclose(directions @ directions.T, np.eye(3), atol=1e-15)
    np.testing.assert_allclose(COLOUR_DIRECTIONS["achromatic"], np.full(3, 1 / np.sqrt(3)))
    # the chromatic axes sum to zero over R, G, B: no drive to a unit that weighs the channels equally
    assert COLOUR_DIRECTIONS["red_green"].sum() == pytest.approx(0, abs=1e-15)
    assert COLOUR_DIRECTIONS["blue_yellow"].sum() == pytest.approx(0, abs=1e-15)
    assert COLOUR_MODULATION == pytest.approx(np.sqrt(6) / 4)  # blue-yellow's B swing reaches +-0.5


def test_colour_subgrid_is_octave_sfs_and_every_second_orientation():
    np.testing.assert_array_equal(colour_spatial_frequency_indices(9), [0, 1, 3, 7])
    np.testing.assert_array_equal(colour_spatial_frequency_indices(57), [0, 1, 3, 7, 15, 31])
    np.testing.assert_array_equal(colour_spatial_frequency_indices(8), [0, 1, 3, 7])
    np.testing.assert_array_equal(colour_spatial_frequency_indices(1), [0])
    np.testing.assert_array_equal(colour_orientation_indices(12), [0, 2, 4, 6, 8, 10])
    np.testing.assert_array_equal(colour_orientation_indices(4), [0, 2])


def test_32px_colour_set_has_the_specified_axes(colour32, gratings32):
    assert colour32.images.shape == (3, 4, 6, 4, 3, 32, 32)
    assert colour32.images.dtype == torch.float32
    assert colour32.grid_shape == (3, 4, 6, 4)
    assert colour32.flat_images().shape == (288, 3, 32, 32)
    assert colour32.colours == ("achromatic", "red_green", "blue_yellow")
    np.testing.assert_allclose(colour32.orientations_deg, np.arange(0, 180, 30))
    np.testing.assert_allclose(colour32.periods_px, 40 / np.array([1, 2, 4, 8]))
    np.testing.assert_allclose(colour32.phases_deg, gratings32.phases_deg)
    flat = colour32.flat_images()
    for c, s, o, p in [(0, 0, 0, 1), (1, 2, 5, 3), (2, 3, 1, 0)]:  # phase fastest, then ori, SF, colour
        assert torch.equal(flat[((c * 4 + s) * 6 + o) * 4 + p], colour32.images[c, s, o, p])


def test_colour_gratings_modulate_the_achromatic_profile_along_each_direction(colour32, gratings32):
    for c, direction in enumerate(COLOUR_DIRECTIONS.values()):
        for s, sf in enumerate([0, 1, 3, 7]):
            for o, orientation in enumerate([0, 2, 4, 6, 8, 10]):
                profile = (
                    2 * gratings32.images[sf, orientation, :, 0].double() - 1
                )  # (phase, H, W), in [-1, 1]
                expected = (
                    0.5
                    + COLOUR_MODULATION * torch.from_numpy(direction)[None, :, None, None] * profile[:, None]
                )
                torch.testing.assert_close(colour32.images[c, s, o].double(), expected, atol=1e-6, rtol=0)
    images = colour32.images
    assert images.min() >= 0 and images.max() <= 1
    assert images[2, ..., 2, :, :].min() == pytest.approx(0, abs=1e-6)  # blue-yellow's B uses the gamut
    assert images[2, ..., 2, :, :].max() == pytest.approx(1, abs=1e-6)


def test_chromatic_gratings_keep_the_channel_mean_and_all_have_one_modulation_length(colour32):
    images = colour32.images.double()
    channel_mean = images.mean(dim=4)  # (colour, sf, ori, phase, H, W)
    torch.testing.assert_close(channel_mean[1:], torch.full_like(channel_mean[1:], 0.5), atol=1e-6, rtol=0)
    # at a crest of the phase-0 grating (the centre pixel) every direction is COLOUR_MODULATION from grey
    lengths = (images[:, :, :, 0, :, 16, 16] - 0.5).norm(dim=-1)
    torch.testing.assert_close(lengths, torch.full_like(lengths, COLOUR_MODULATION), atol=1e-6, rtol=0)
    achromatic = images[0]
    assert torch.equal(achromatic[..., 0, :, :], achromatic[..., 1, :, :])


def test_224px_colour_set_and_non_rgb_inputs():
    gratings = grating_stimuli(224, orientations=2, phases=1)
    colour = colour_grating_stimuli(gratings)
    assert colour.grid_shape == (3, 6, 1, 1)
    with pytest.raises(ValueError, match="RGB inputs .3 channels., got 1 channel"):
        colour_grating_stimuli(gratings, channels=1)
