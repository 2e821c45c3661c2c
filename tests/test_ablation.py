"""Ablation mechanism and sweeps: exactness of masks, the upstream-once evaluation, rankings, tables."""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from selectivity.causal.ablation import (
    AblationSettings,
    cumulative_ablation,
    half_ablation,
    keep_mask,
    masked_copies,
    naive_per_image_losses,
    paired_comparison,
    per_image_losses,
    random_unit_orders,
    rank_units,
    unit_order,
    unit_scores_from_tables,
    units_to_ablate,
    layer_generator,
)
from selectivity.networks.loaded import LoadedNetwork
from selectivity.networks.models import apply_keep_mask, build_model

torch.set_num_threads(1)

IDENTIFIERS = {"model": "cnn7", "dataset": "synthetic", "label_corruption": 0.0, "seed": 3}
HALF_ABLATION_COLUMNS = [
    *IDENTIFIERS,
    "layer",
    "layer_index",
    "ranking",
    "condition",
    "draw",
    "n_units",
    "n_ablated",
    "intact_loss",
    "intact_accuracy",
    "loss_increase_mean",
    "loss_increase_sem",
    "accuracy",
    "accuracy_change",
    "n_images",
]
COMPARISON_COLUMNS = [
    *IDENTIFIERS,
    "layer",
    "layer_index",
    "ranking",
    "comparison",
    "mean_difference",
    "sem",
    "t_statistic",
    "t_p_value",
    "wilcoxon_p_value",
    "n_images",
]
CURVE_COLUMNS = [
    *IDENTIFIERS,
    "layer",
    "layer_index",
    "ordering",
    "draw",
    "fraction_ablated",
    "n_ablated",
    "test_loss",
    "test_accuracy",
]
AREA_COLUMNS = [*IDENTIFIERS, "layer", "layer_index", "ordering", "draw", "auc_accuracy", "auc_loss"]


def cnn7_with_random_batchnorm(seed: int = 0) -> LoadedNetwork:
    """cnn7 whose BN layers have non-trivial statistics and affine parameters, so zeroing the
    post-BN output differs from zeroing the pre-BN response (BN(0) != 0)."""
    torch.manual_seed(seed)
    model = build_model("cnn7")
    generator = torch.Generator().manual_seed(seed)
    for stage in model.stages:
        bn = stage.bn
        size = bn.num_features
        bn.running_mean.copy_(torch.rand(size, generator=generator) * 0.5)
        bn.running_var.copy_(0.5 + torch.rand(size, generator=generator))
        bn.weight.data.copy_(0.5 + torch.rand(size, generator=generator))
        bn.bias.data.copy_(torch.randn(size, generator=generator) * 0.5)
    model.eval()
    input_mean = torch.rand(3, 32, 32, generator=generator) * 0.2 + 0.4
    return LoadedNetwork(model, input_mean, epoch=0, info={})


@pytest.fixture(scope="module")
def network():
    return cnn7_with_random_batchnorm()


@pytest.fixture(scope="module")
def data():
    generator = torch.Generator().manual_seed(1)
    images = torch.rand(23, 3, 32, 32, generator=generator)
    labels = torch.randint(0, 10, (23,), generator=generator)
    return images, labels


def random_scores(network, layers, seed=0):
    rng = np.random.default_rng(seed)
    return {layer: rng.random(network.model.units(layer)) for layer in layers}


# ---- the mechanism -------------------------------------------------------------------


def test_keeping_every_unit_is_bit_identical_to_the_plain_forward(network, data):
    inputs = network.prepare_inputs(data[0])
    plain = network.model(inputs)
    for layer in network.model.layer_names:
        ones = torch.ones(network.model.units(layer))
        assert torch.equal(network.model.run(inputs, ablation={layer: ones}).logits, plain), layer
        upstream = network.model.run(inputs, record_outputs=[layer], stop_after=layer).outputs[layer]
        continued = network.model.forward_from(layer, upstream, ablation={layer: ones}).logits
        assert torch.equal(continued, plain), layer


def test_ablating_a_conv2_channel_zeroes_exactly_that_post_bn_channel(network, data):
    inputs = network.prepare_inputs(data[0])
    channel = 5
    record = dict(record_outputs=["conv1", "conv2"], record_responses=["conv2"])
    intact = network.model.run(inputs, **record)
    ablated = network.model.run(inputs, ablation={"conv2": keep_mask(32, [channel])}, **record)
    others = [c for c in range(32) if c != channel]
    assert (
        intact.outputs["conv2"][:, channel].abs().min() > 0
    )  # BN(relu) is not zero here, so the test can fail
    assert torch.equal(
        ablated.outputs["conv2"][:, channel], torch.zeros_like(ablated.outputs["conv2"][:, channel])
    )
    assert torch.equal(ablated.outputs["conv2"][:, others], intact.outputs["conv2"][:, others])
    assert torch.equal(ablated.outputs["conv1"], intact.outputs["conv1"])
    assert torch.equal(ablated.responses["conv2"], intact.responses["conv2"])  # ablation is after ReLU and BN
    assert not torch.allclose(ablated.logits, intact.logits)


def test_forward_from_an_upstream_computed_once_equals_the_full_forward(network, data):
    inputs = network.prepare_inputs(data[0])
    generator = torch.Generator().manual_seed(2)
    for layer in ("conv3", "fc1"):
        units = network.model.units(layer)
        upstream = network.model.run(inputs, record_outputs=[layer], stop_after=layer).outputs[layer]
        shared = (torch.rand(units, generator=generator) > 0.5).float()
        per_image = (torch.rand(len(inputs), units, generator=generator) > 0.5).float()
        for mask in (shared, per_image):
            full = network.model.run(inputs, ablation={layer: mask}).logits
            continued = network.model.forward_from(layer, upstream, ablation={layer: mask}).logits
            torch.testing.assert_close(continued, full, rtol=1e-5, atol=1e-5)


def test_masked_copies_equal_the_keep_mask_applied_to_each_copy():
    generator = torch.Generator().manual_seed(3)
    output = torch.randn(4, 6, 3, 3, generator=generator)
    masks = (torch.rand(5, 6, generator=generator) > 0.5).float()
    copies = masked_copies(output, masks)
    assert copies.shape == (5 * 4, 6, 3, 3)
    for condition, mask in enumerate(masks):
        assert torch.equal(copies[condition * 4 : (condition + 1) * 4], apply_keep_mask(output, mask))
    with pytest.raises(ValueError, match=r"\(conditions, 6\)"):
        masked_copies(output, masks[:, :5])


def plain_losses(network, images, labels, layer, masks):
    """Independent reference: one full forward of all images per mask."""
    with torch.no_grad():
        inputs = network.prepare_inputs(images)
        results = []
        for mask in masks:
            logits = network.model(inputs, ablation=None if layer is None else {layer: mask})
            results.append((F.cross_entropy(logits, labels, reduction="none"), logits.argmax(1) == labels))
    return torch.stack([r[0] for r in results]).double().numpy(), torch.stack([r[1] for r in results]).numpy()


@pytest.mark.parametrize("layer", ["conv1", "conv4", "fc1"])
def test_per_image_losses_equal_separate_full_passes(network, data, layer):
    images, labels = data
    units = network.model.units(layer)
    rng = np.random.default_rng(0)
    masks = [keep_mask(units, rng.choice(units, units // 2, replace=False)) for _ in range(4)]
    masks += [
        masks[1].clone(),
        torch.ones(units),
        torch.zeros(units),
    ]  # a duplicate, nothing, everything ablated
    expected_losses, expected_correct = plain_losses(network, images, labels, layer, masks)
    # batch 10 over 23 images leaves a partial batch; max_rows 25 forces two conditions per pass.
    losses, correct = per_image_losses(network, images, labels, layer, masks, batch_size=10, max_rows=25)
    assert losses.shape == correct.shape == (len(masks), len(images))
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(correct, expected_correct)
    naive_losses, naive_correct = naive_per_image_losses(network, images, labels, layer, masks, batch_size=10)
    np.testing.assert_allclose(naive_losses, expected_losses, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(naive_correct, expected_correct)


def test_per_image_losses_of_the_intact_network(network, data):
    images, labels = data
    losses, correct = per_image_losses(network, images, labels, None, [], batch_size=7)
    expected_losses, expected_correct = plain_losses(network, images, labels, None, [None])
    np.testing.assert_allclose(losses, expected_losses, rtol=1e-6)
    np.testing.assert_array_equal(correct, expected_correct)
    with pytest.raises(ValueError, match="without a layer"):
        per_image_losses(network, images, labels, None, [torch.ones(32)])


def test_per_image_losses_reject_bad_masks_and_training_mode(network, data):
    images, labels = data
    with pytest.raises(ValueError, match="must each have 32 entries"):
        per_image_losses(network, images, labels, "conv1", [torch.ones(31)])
    with pytest.raises(KeyError, match="no layer 'conv9'"):
        per_image_losses(network, images, labels, "conv9", [torch.ones(32)])
    training = cnn7_with_random_batchnorm()
    training.model.train()
    with pytest.raises(ValueError, match="training mode"):
        per_image_losses(training, images, labels, None, [])


# ---- which units ---------------------------------------------------------------------


def test_rank_units_takes_the_highest_and_lowest_scores():
    scores = np.array([0.3, 0.9, 0.1, 0.5, 0.7, 0.2])
    np.testing.assert_array_equal(rank_units(scores, 0.5, "top", None), [1, 4, 3])
    np.testing.assert_array_equal(rank_units(scores, 0.5, "bottom", None), [2, 5, 0])
    np.testing.assert_array_equal(rank_units(scores, 1 / 3, "top", None), [1, 4])


def test_rank_units_breaks_ties_by_unit_index_and_halves_never_overlap():
    scores = np.array([0.5, 0.5, 0.2, 0.5, 0.5, 0.2])
    top = rank_units(scores, 0.5, "top", None)
    bottom = rank_units(scores, 0.5, "bottom", None)
    np.testing.assert_array_equal(top, [4, 3, 1])  # among equal scores, top takes the higher index first
    np.testing.assert_array_equal(bottom, [2, 5, 0])  # and bottom the lower
    assert sorted(np.concatenate([top, bottom])) == list(range(6))
    np.testing.assert_array_equal(
        unit_order(scores, descending=True), unit_order(scores, descending=False)[::-1]
    )


def test_rank_units_random_is_a_seeded_subset_and_matches_the_random_orders():
    scores = np.zeros(40)
    first = rank_units(scores, 0.5, "random", layer_generator(7, 2))
    again = rank_units(scores, 0.5, "random", layer_generator(7, 2))
    other_layer = rank_units(scores, 0.5, "random", layer_generator(7, 3))
    np.testing.assert_array_equal(first, again)
    assert len(first) == len(set(first)) == 20 and 0 <= first.min() and first.max() < 40
    assert not np.array_equal(np.sort(first), np.sort(other_layer))
    generator = layer_generator(7, 2)
    draws = [rank_units(scores, 0.5, "random", generator) for _ in range(3)]
    for draw, order in zip(draws, random_unit_orders(40, 3, seed=7, layer_index=2)):
        np.testing.assert_array_equal(draw, order[:20])
    assert not np.array_equal(np.sort(draws[0]), np.sort(draws[1]))


def test_rank_units_rejects_bad_input():
    with pytest.raises(ValueError, match="Generator"):
        rank_units(np.zeros(4), 0.5, "random", None)
    with pytest.raises(ValueError, match="'middle'"):
        rank_units(np.zeros(4), 0.5, "middle", None)
    with pytest.raises(ValueError, match="NaN"):
        rank_units(np.array([0.1, np.nan]), 0.5, "top", None)
    with pytest.raises(ValueError, match="1.5"):
        rank_units(np.zeros(4), 1.5, "top", None)


def test_units_to_ablate_rounds_halves_up():
    assert units_to_ablate(0.5, 5) == 3
    assert units_to_ablate(0.1, 5) == 1
    assert units_to_ablate(0.3, 10) == 3
    assert units_to_ablate(0.35, 90) == 32  # 31.5, though 0.35 * 90 < 31.5 in floats
    assert units_to_ablate(0.0, 7) == 0
    assert units_to_ablate(1.0, 7) == 7


def test_unit_scores_from_tables_orders_units_and_ignores_the_shuffled_control():
    tuning = pd.DataFrame(
        {
            "layer": ["conv1"] * 6,
            "unit": [2, 0, 1, 0, 1, 2],
            "stimulus_set": ["gratings"] * 3 + ["shuffled"] * 3,
            "gosi": [0.2, 0.4, 0.6, 0.9, 0.9, 0.9],
        }
    )
    selectivity = pd.DataFrame(
        {"layer": ["conv1"] * 3, "unit": [1, 2, 0], "class_selectivity_index": [0.5, 0.1, 0.3]}
    )
    scores = unit_scores_from_tables(tuning, selectivity)
    np.testing.assert_array_equal(scores["gosi"]["conv1"], [0.4, 0.6, 0.2])
    np.testing.assert_array_equal(scores["class_selectivity"]["conv1"], [0.3, 0.5, 0.1])
    assert set(unit_scores_from_tables(tuning, None)) == {"gosi"}
    with pytest.raises(ValueError, match="exactly once"):
        unit_scores_from_tables(pd.concat([tuning, tuning]), None)


def test_settings_validate_and_accept_lists():
    settings = AblationSettings(layers=["conv1"], cumulative_fractions=[0, 0.5, 1])
    assert settings.layers == ("conv1",) and settings.cumulative_fractions == (0.0, 0.5, 1.0)
    with pytest.raises(ValueError, match="fraction"):
        AblationSettings(layers=("conv1",), fraction=0)
    with pytest.raises(ValueError, match="increasing"):
        AblationSettings(layers=("conv1",), cumulative_fractions=(0.5, 0.2))


# ---- the sweeps ----------------------------------------------------------------------


def network_using_only_some_fc1_units(used: int) -> LoadedNetwork:
    """cnn7 whose head reads only fc1 units 0..used-1: ablating any other fc1 unit cannot matter."""
    network = cnn7_with_random_batchnorm(seed=4)
    with torch.no_grad():
        network.model.head.weight[:, used:] = 0.0
        network.model.head.weight[:, :used] *= 20.0  # confident logits, so ablating them costs loss
    return network


def test_half_ablation_hits_the_units_that_matter():
    network = network_using_only_some_fc1_units(used=256)
    generator = torch.Generator().manual_seed(5)
    images = torch.rand(30, 3, 32, 32, generator=generator)
    with torch.no_grad():  # label each image by the network itself, so the intact loss is low
        labels = network.model(network.prepare_inputs(images)).argmax(1)
    relevance = np.r_[np.linspace(1.0, 0.6, 256), np.linspace(0.5, 0.0, 256)]  # used units score highest
    settings = AblationSettings(layers=("fc1",), random_draws=3, batch_size=16)
    table, comparisons = half_ablation(
        network, images, labels, {"gosi": {"fc1": relevance}}, settings, IDENTIFIERS
    )
    rows = table.set_index(["condition", "draw"])
    assert rows.loc[("bottom", 0), "loss_increase_mean"] == 0.0  # bottom = exactly the unused units
    assert rows.loc[("bottom", 0), "accuracy_change"] == 0.0
    assert rows.loc[("top", 0), "loss_increase_mean"] > 10 * rows.loc[("top", 0), "loss_increase_sem"]
    assert rows.loc[("top", 0), "accuracy_change"] < 0
    assert table["intact_accuracy"].eq(1.0).all()
    top_vs_bottom = comparisons.set_index("comparison").loc["top_vs_bottom"]
    assert top_vs_bottom["mean_difference"] == pytest.approx(rows.loc[("top", 0), "loss_increase_mean"])
    assert top_vs_bottom["t_p_value"] < 1e-3 and top_vs_bottom["wilcoxon_p_value"] < 1e-3


def test_half_ablation_table_structure_and_statistics(network, data):
    images, labels = data
    layers = ("conv2", "fc1")
    scores = {
        "gosi": random_scores(network, layers, 0),
        "class_selectivity": random_scores(network, layers, 1),
    }
    settings = AblationSettings(layers=layers, random_draws=2, batch_size=10)
    table, comparisons = half_ablation(network, images, labels, scores, settings, IDENTIFIERS)
    assert list(table.columns) == HALF_ABLATION_COLUMNS
    assert list(comparisons.columns) == COMPARISON_COLUMNS
    assert len(table) == 2 * 2 * (2 + 2) and len(comparisons) == 2 * 2 * 2
    assert table["n_ablated"].tolist() == [16] * 8 + [256] * 8
    # The random control is shared by both rankings.
    random_rows = table[table.condition == "random"].set_index(["layer", "draw", "ranking"])[
        "loss_increase_mean"
    ]
    assert random_rows.xs("gosi", level="ranking").equals(
        random_rows.xs("class_selectivity", level="ranking")
    )
    # Hand computation for conv2 / gosi / top from separate full passes.
    intact_losses, intact_correct = plain_losses(network, images, labels, None, [None])
    top_units = rank_units(scores["gosi"]["conv2"], 0.5, "top", None)
    top_losses, top_correct = plain_losses(network, images, labels, "conv2", [keep_mask(32, top_units)])
    increase = top_losses[0] - intact_losses[0]
    row = table.set_index(["layer", "ranking", "condition", "draw"]).loc[("conv2", "gosi", "top", 0)]
    assert row["loss_increase_mean"] == pytest.approx(increase.mean(), abs=1e-6)
    assert row["loss_increase_sem"] == pytest.approx(increase.std(ddof=1) / np.sqrt(len(images)), rel=1e-3)
    assert row["accuracy"] == pytest.approx(top_correct[0].mean())
    assert row["intact_loss"] == pytest.approx(intact_losses[0].mean(), abs=1e-6)
    assert row["intact_accuracy"] == pytest.approx(intact_correct[0].mean())
    comparison = comparisons.set_index(["layer", "ranking", "comparison"]).loc[
        ("conv2", "gosi", "top_vs_random")
    ]
    by_condition = table[(table.layer == "conv2") & (table.ranking == "gosi")].groupby("condition")[
        "loss_increase_mean"
    ]
    assert comparison["mean_difference"] == pytest.approx(
        by_condition.mean()["top"] - by_condition.mean()["random"]
    )
    assert comparison["t_statistic"] == pytest.approx(
        comparison["mean_difference"] / comparison["sem"], rel=1e-6
    )
    naive_table, naive_comparisons = half_ablation(
        network, images, labels, scores, settings, IDENTIFIERS, loss_evaluator=naive_per_image_losses
    )
    pd.testing.assert_frame_equal(table, naive_table, rtol=1e-4, atol=1e-6)
    pd.testing.assert_frame_equal(comparisons, naive_comparisons, rtol=1e-3, atol=1e-6)


def test_paired_comparison_of_identical_conditions():
    values = np.array([0.1, 0.4, 0.2])
    result = paired_comparison(values, values)
    assert (result["mean_difference"], result["t_statistic"], result["t_p_value"]) == (0.0, 0.0, 1.0)
    assert result["wilcoxon_p_value"] == 1.0


def test_cumulative_ablation_curves_and_areas(network, data):
    images, labels = data
    layers = ("conv1", "conv5")
    scores = {
        "gosi": random_scores(network, layers, 0),
        "class_selectivity": random_scores(network, layers, 1),
    }
    settings = AblationSettings(
        layers=layers, random_draws=2, cumulative_fractions=(0, 0.25, 0.5, 1), batch_size=10
    )
    curves, areas = cumulative_ablation(network, images, labels, scores, settings, IDENTIFIERS)
    assert list(curves.columns) == CURVE_COLUMNS and list(areas.columns) == AREA_COLUMNS
    orderings = [
        "gosi_descending",
        "gosi_ascending",
        "class_selectivity_descending",
        "class_selectivity_ascending",
    ]
    assert curves.ordering.unique().tolist() == orderings + ["random"]
    assert len(curves) == 2 * (4 + 2) * 4 and len(areas) == 2 * (4 + 2)
    intact_losses, _ = plain_losses(network, images, labels, None, [None])
    for (layer, fraction), points in curves.groupby(["layer", "fraction_ablated"]):
        if fraction == 0:  # nothing ablated: every ordering is the intact network
            np.testing.assert_allclose(points.test_loss, intact_losses.mean(), rtol=1e-6)
        if fraction == 1:  # everything ablated: every ordering gives the same network
            assert points.test_loss.nunique() == 1
    assert curves[curves.layer == "conv1"].n_ablated.unique().tolist() == [0, 8, 16, 32]
    # Half of the descending order is the half ablation's "top"; half of random draw d is its draw d.
    half, _ = half_ablation(
        network, images, labels, scores, AblationSettings(layers, random_draws=2), IDENTIFIERS
    )
    half = half.set_index(["layer", "ranking", "condition", "draw"]).sort_index()
    point = curves.set_index(["layer", "ordering", "draw", "fraction_ablated"]).sort_index()
    for layer in layers:
        for ordering, key in (("gosi_descending", ("gosi", "top", 0)), ("random", ("gosi", "random", 1))):
            draw = key[2]
            expected = half.loc[(layer, *key)]
            assert point.loc[(layer, ordering, draw, 0.5), "test_loss"] == pytest.approx(
                expected["intact_loss"] + expected["loss_increase_mean"], abs=1e-5
            )
    curve = point.loc[("conv5", "gosi_ascending", 0)]
    area = areas.set_index(["layer", "ordering", "draw"]).loc[("conv5", "gosi_ascending", 0)]
    widths = np.diff([0, 0.25, 0.5, 1])
    heights = (curve.test_accuracy.to_numpy()[1:] + curve.test_accuracy.to_numpy()[:-1]) / 2
    assert area["auc_accuracy"] == pytest.approx((widths * heights).sum())


def test_cumulative_ablation_of_unused_units_first_keeps_the_loss():
    network = network_using_only_some_fc1_units(used=256)
    generator = torch.Generator().manual_seed(6)
    images = torch.rand(12, 3, 32, 32, generator=generator)
    labels = torch.randint(0, 10, (12,), generator=generator)
    relevance = np.r_[np.ones(256), np.zeros(256)]
    settings = AblationSettings(layers=("fc1",), random_draws=1, cumulative_fractions=(0, 0.25, 0.5, 0.75, 1))
    curves, areas = cumulative_ablation(
        network, images, labels, {"gosi": {"fc1": relevance}}, settings, IDENTIFIERS
    )
    ascending = curves[curves.ordering == "gosi_ascending"].test_loss.to_numpy()
    descending = curves[curves.ordering == "gosi_descending"].test_loss.to_numpy()
    assert ascending[0] == ascending[1] == ascending[2]  # the unused half goes first: nothing changes
    assert descending[1] != descending[0]
    auc = areas.set_index("ordering").auc_loss
    assert auc["gosi_descending"] != auc["gosi_ascending"]
