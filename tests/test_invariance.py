"""Shift invariance: shifts, correlations, the normalised measure and the sweep over conditions."""

import numpy as np
import pytest
import torch

from selectivity.causal.ablation import keep_mask, layer_generator, rank_units
from selectivity.networks.loaded import LoadedNetwork
from selectivity.causal.invariance import (
    InvarianceSettings,
    normalised_invariance,
    other_image_partners,
    pearson_rows,
    representation,
    shift_images,
    shift_invariance,
)
from selectivity.networks.models import build_model

torch.set_num_threads(1)

IDENTIFIERS = {"model": "cnn7", "dataset": "synthetic", "label_corruption": 0.0, "seed": 1}
COLUMNS = [
    *IDENTIFIERS,
    "measured_layer",
    "ablated_layer",
    "condition",
    "draw",
    "direction",
    "shift_px",
    "shift_correlation_mean",
    "shift_correlation_sem",
    "other_correlation_mean",
    "normalised_invariance_mean",
    "normalised_invariance_sem",
    "n_images",
]


@pytest.mark.parametrize("shift", [0, 1, 3, -2])
def test_shift_images_equals_edge_padding_and_slicing(shift):
    images = torch.rand(2, 3, 6, 7, generator=torch.Generator().manual_seed(0))
    array = images.numpy()
    if shift >= 0:  # content moves right/down: pad the left/top edge, keep the first W (H) pixels
        horizontal = np.pad(array, ((0, 0), (0, 0), (0, 0), (shift, 0)), mode="edge")[..., :7]
        vertical = np.pad(array, ((0, 0), (0, 0), (shift, 0), (0, 0)), mode="edge")[:, :, :6]
    else:  # content moves left/up
        horizontal = np.pad(array, ((0, 0), (0, 0), (0, 0), (0, -shift)), mode="edge")[..., -shift:]
        vertical = np.pad(array, ((0, 0), (0, 0), (0, -shift), (0, 0)), mode="edge")[:, :, -shift:]
    np.testing.assert_array_equal(shift_images(images, shift, "horizontal").numpy(), horizontal)
    np.testing.assert_array_equal(shift_images(images, shift, "vertical").numpy(), vertical)


def test_shift_images_moves_a_dot_and_rejects_bad_arguments():
    image = torch.zeros(1, 1, 5, 5)
    image[0, 0, 2, 1] = 1.0
    assert shift_images(image, 2, "horizontal")[0, 0, 2, 3] == 1.0
    assert shift_images(image, 2, "vertical")[0, 0, 4, 1] == 1.0
    with pytest.raises(ValueError, match="diagonal"):
        shift_images(image, 1, "diagonal")
    with pytest.raises(ValueError, match="5-px"):
        shift_images(image, 5, "vertical")


def test_pearson_rows_matches_numpy_and_gives_constant_rows_zero():
    generator = torch.Generator().manual_seed(0)
    a, b = torch.rand(6, 50, generator=generator), torch.rand(6, 50, generator=generator)
    b[1] = 2 * a[1] + 3  # perfectly correlated
    b[2] = -a[2]  # perfectly anti-correlated
    a[3] = 0.0  # a dead (all-zero) representation
    b[4] = 0.1  # a constant whose float mean is not exactly 0.1
    expected = [np.corrcoef(a[i].numpy(), b[i].numpy())[0, 1] for i in (0, 5)]
    r = pearson_rows(a, b).numpy()
    np.testing.assert_allclose(r[[0, 5]], expected, rtol=1e-6)
    np.testing.assert_allclose(r[[1, 2, 3, 4]], [1.0, -1.0, 0.0, 0.0], atol=1e-12)
    with pytest.raises(ValueError, match="one shape"):
        pearson_rows(a, b[:, :3])


def test_normalised_invariance_formula():
    np.testing.assert_allclose(normalised_invariance(np.array([1.0, 0.4, 0.7]), 0.4), [1.0, 0.0, 0.5])
    assert np.isnan(normalised_invariance(np.array([0.9]), 1.0)).all()
    with pytest.raises(ValueError, match="1.5"):
        normalised_invariance(np.array([0.5]), 1.5)


def test_a_shared_component_raises_raw_correlation_but_not_normalised_invariance():
    """An 'ablation' that adds one large vector to every representation makes all of them alike:
    the raw shift correlation rises towards 1, yet relative to unrelated images nothing changed."""
    generator = torch.Generator().manual_seed(0)
    images, dimensions, rho = 300, 2000, 0.6
    representations = torch.randn(images, dimensions, generator=generator)
    shifted = rho * representations + (1 - rho**2) ** 0.5 * torch.randn(
        images, dimensions, generator=generator
    )
    partners = torch.from_numpy(other_image_partners(images, seed=0))
    shared = 1.5 * torch.randn(dimensions, generator=generator)

    def measure(offset):
        r_shift = pearson_rows(representations + offset, shifted + offset).numpy()
        r_other = pearson_rows(representations + offset, representations[partners] + offset).numpy().mean()
        return r_shift.mean(), normalised_invariance(r_shift, r_other).mean()

    raw_intact, normalised_intact = measure(torch.zeros(dimensions))
    raw_ablated, normalised_ablated = measure(shared)
    assert raw_intact == pytest.approx(rho, abs=0.02)
    assert raw_ablated > raw_intact + 0.25
    assert normalised_intact == pytest.approx(rho, abs=0.02)
    assert normalised_ablated == pytest.approx(normalised_intact, abs=0.02)


def test_other_image_partners_is_a_seeded_derangement():
    partners = other_image_partners(50, seed=3)
    assert sorted(partners) == list(range(50))
    assert (partners != np.arange(50)).all()
    np.testing.assert_array_equal(partners, other_image_partners(50, seed=3))
    assert not np.array_equal(partners, other_image_partners(50, seed=4))
    np.testing.assert_array_equal(other_image_partners(2, seed=0), [1, 0])


# ---- the sweep -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def network():
    torch.manual_seed(0)
    model = build_model("cnn7")
    generator = torch.Generator().manual_seed(0)
    for stage in model.stages:  # non-trivial BN so the post-BN ablation point matters
        stage.bn.running_var.copy_(0.5 + torch.rand(stage.units, generator=generator))
        stage.bn.bias.data.copy_(0.3 * torch.randn(stage.units, generator=generator))
    return LoadedNetwork(model.eval(), torch.full((3, 32, 32), 0.45), epoch=0, info={})


@pytest.fixture(scope="module")
def smooth_images():
    """Smooth random images (upsampled 8x8 noise): shifts change them little, as in photographs."""
    coarse = torch.rand(9, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    return torch.nn.functional.interpolate(coarse, size=32, mode="bilinear", align_corners=False)


def gosi_scores(network):
    rng = np.random.default_rng(0)
    return {layer: rng.random(network.model.units(layer)) for layer in network.model.layer_names}


def test_shift_invariance_table(network, smooth_images):
    settings = InvarianceSettings(
        measured_layers=["fc1", "conv5"],
        ablated_layers=["conv1", "conv5"],
        shifts=[0, 2],
        directions=["horizontal", "vertical"],
        random_draws=2,
        batch_size=4,
    )
    table = shift_invariance(network, smooth_images, gosi_scores(network), settings, IDENTIFIERS)
    assert list(table.columns) == COLUMNS
    conditions = table.groupby("measured_layer")[["ablated_layer", "condition", "draw"]].apply(
        lambda rows: sorted(set(map(tuple, rows.to_numpy())))
    )
    conv1 = [("conv1", "bottom", 0), ("conv1", "random", 0), ("conv1", "random", 1), ("conv1", "top", 0)]
    assert conditions["conv5"] == [*conv1, ("none", "intact", 0)]  # conv5 is not above itself
    assert conditions["fc1"] == [
        *conv1,
        *[(c[0].replace("conv1", "conv5"), *c[1:]) for c in conv1],
        ("none", "intact", 0),
    ]
    assert len(table) == (5 + 9) * 2 * 2 and table.n_images.eq(9).all()
    unshifted = table[table.shift_px == 0]
    np.testing.assert_allclose(unshifted.shift_correlation_mean, 1.0, atol=1e-12)
    np.testing.assert_allclose(unshifted.normalised_invariance_mean, 1.0, atol=1e-12)
    np.testing.assert_allclose(unshifted.shift_correlation_sem, 0.0, atol=1e-12)
    shifted = table[table.shift_px == 2]
    assert (shifted.shift_correlation_mean < 1).all()
    assert (shifted.shift_correlation_mean > shifted.other_correlation_mean).all()
    # r_other is one number per condition and measured layer.
    condition_columns = ["measured_layer", "ablated_layer", "condition", "draw"]
    assert table.groupby(condition_columns).other_correlation_mean.nunique().eq(1).all()


def test_shift_invariance_equals_a_direct_computation(network, smooth_images):
    """The upstream-once, batched-conditions sweep against one plain pass per condition."""
    scores = gosi_scores(network)
    settings = InvarianceSettings(
        measured_layers=("conv6",),
        ablated_layers=("conv2",),
        shifts=(3,),
        directions=("vertical",),
        random_draws=2,
        seed=5,
        batch_size=4,
    )
    table = shift_invariance(network, smooth_images, scores, settings, IDENTIFIERS).set_index(
        ["condition", "draw"]
    )
    generator = layer_generator(5, network.model.layer_index("conv2"))
    random_draws = [rank_units(scores["conv2"], 0.5, "random", generator) for _ in range(2)]
    ablated = {("top", 0): rank_units(scores["conv2"], 0.5, "top", None), ("random", 1): random_draws[1]}
    partners = other_image_partners(len(smooth_images), seed=5)
    moved = shift_images(smooth_images, 3, "vertical")
    for key, units in [(("intact", 0), None), *ablated.items()]:
        ablation = None if units is None else {"conv2": keep_mask(32, units)}
        original = representation(network, smooth_images, "conv6", ablation)
        r_shift = pearson_rows(original, representation(network, moved, "conv6", ablation)).numpy()
        r_other = pearson_rows(original, original[partners]).numpy().mean()
        row = table.loc[key]
        assert row.shift_correlation_mean == pytest.approx(r_shift.mean(), abs=1e-6)
        assert row.other_correlation_mean == pytest.approx(r_other, abs=1e-6)
        assert row.normalised_invariance_mean == pytest.approx(
            normalised_invariance(r_shift, r_other).mean(), abs=1e-5
        )
    assert table.loc[("top", 0)].shift_correlation_mean != table.loc[("intact", 0)].shift_correlation_mean


def test_shift_invariance_does_not_depend_on_the_batch_size(network, smooth_images):
    scores = gosi_scores(network)
    base = dict(measured_layers=("conv4", "fc1"), ablated_layers=("conv1",), shifts=(1,), random_draws=1)
    whole = shift_invariance(
        network, smooth_images, scores, InvarianceSettings(**base, batch_size=9), IDENTIFIERS
    )
    pieces = shift_invariance(
        network, smooth_images, scores, InvarianceSettings(**base, batch_size=2), IDENTIFIERS
    )
    numbers = [c for c in COLUMNS if c.endswith(("_mean", "_sem"))]
    np.testing.assert_allclose(whole[numbers].to_numpy(), pieces[numbers].to_numpy(), rtol=1e-5, atol=1e-6)


def test_shift_invariance_rejects_bad_settings(network, smooth_images):
    with pytest.raises(ValueError, match="directions"):
        InvarianceSettings(measured_layers=("fc1",), ablated_layers=("conv1",), directions=("diagonal",))
    settings = InvarianceSettings(measured_layers=("fc1",), ablated_layers=("conv1",))
    with pytest.raises(KeyError, match="no gOSI scores for ablated layer 'conv1'"):
        shift_invariance(network, smooth_images, {"conv2": np.zeros(32)}, settings, IDENTIFIERS)
    with pytest.raises(ValueError, match="has 32 units"):
        shift_invariance(network, smooth_images, {"conv1": np.zeros(31)}, settings, IDENTIFIERS)
