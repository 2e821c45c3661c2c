import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from selectivity.claims import (
    CLAIM_COLUMNS,
    CLAIM_IDS,
    VERDICT_RULES,
    ClaimSettings,
    claims_html,
    evaluate_claims,
)
from selectivity.statistics import bootstrap_confidence_interval, bootstrap_correlation_ci, fisher_mean

LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "fc1")
LOWER, HIGHER = ("conv1", "conv2"), ("conv5", "conv6", "fc1")
SETTINGS = ClaimSettings(n_resamples=2000, seed=1, tuning_checkpoint="final")
EMPTY = pd.DataFrame()


def network(label_corruption, seed, model="cnn7"):
    return dict(model=model, dataset="cifar10", label_corruption=label_corruption, seed=seed)


# ---------------------------------------------------------------- synthetic summary tables


def summary_table(checkpoints, model="cnn7") -> pd.DataFrame:
    """Summary rows from dicts with label_corruption, seed, checkpoint, epoch, test_accuracy and, per
    layer group, gOSI and fraction selective for gratings (shuffled: fraction_selective_shuffled)."""
    rows = []
    for point in checkpoints:
        for layer_index, layer in enumerate(LAYERS):
            group = "lower" if layer in LOWER else "higher" if layer in HIGHER else "middle"
            for stimulus_set in ("gratings", "shuffled"):
                gratings = stimulus_set == "gratings"
                rows.append(
                    dict(
                        network(point["label_corruption"], point["seed"], model),
                        checkpoint=point["checkpoint"],
                        epoch=point["epoch"],
                        layer=layer,
                        layer_index=layer_index,
                        stimulus_set=stimulus_set,
                        n_units=32,
                        # lower layers differ by a constant so their average is the conv1 value + 0.05
                        mean_gosi=(point["gosi"] + 0.1 * (layer == "conv2")) if gratings else 0.1,
                        fraction_selective=(
                            point[f"selective_{group}"] if gratings else point["selective_shuffled"]
                        ),
                        selectivity_threshold=0.33,
                        test_accuracy=point["test_accuracy"],
                    )
                )
    return pd.DataFrame(rows)


def checkpoint(
    label_corruption, seed, epoch, gosi, test_accuracy, kind="epoch", lower=0.6, higher=0.3, shuffled=0.05
):
    return dict(
        label_corruption=label_corruption,
        seed=seed,
        checkpoint=kind,
        epoch=epoch,
        gosi=gosi,
        test_accuracy=test_accuracy,
        selective_lower=lower,
        selective_middle=0.2,
        selective_higher=higher,
        selective_shuffled=shuffled,
    )


def claim_row(table, claim, model="cnn7"):
    rows = table[(table["claim"] == claim) & (table["model"] == model)]
    assert len(rows) == 1
    return rows.iloc[0]


# ---------------------------------------------------------------- C1


def test_c1_supported_with_hand_computed_effect():
    higher = [0.3 + 0.02 * seed for seed in range(5)]
    points = [
        checkpoint(0.0, seed, 10, 0.5, 0.8, lower=0.6 + 0.02 * seed, higher=higher[seed]) for seed in range(5)
    ]
    points += [checkpoint(0.0, seed, 0, 0.5, 0.1, lower=0.0, higher=0.0) for seed in range(5)]  # not final
    points += [checkpoint(0.8, 0, 10, 0.1, 0.2, lower=0.0, higher=0.0)]  # corrupted: not used
    result = claim_row(evaluate_claims(summary_table(points), EMPTY, EMPTY, SETTINGS), "C1")
    excess_higher = np.array(higher) - 0.05  # smaller than the lower layers' excess for every network
    assert result["effect_size"] == pytest.approx(excess_higher.mean())
    assert (result["ci_low"], result["ci_high"]) == pytest.approx(
        bootstrap_confidence_interval(excess_higher, n_resamples=2000, seed=1)
    )
    assert result["n_networks"] == 5 and result["n_seeds"] == 5
    assert result["verdict"] == "supported"
    assert "conv1" in result["statistic"] and "fc1" in result["statistic"]


def test_c1_not_supported_when_gratings_match_the_shuffled_control():
    points = [checkpoint(0.0, seed, 10, 0.5, 0.8, lower=0.6, higher=0.05) for seed in range(4)]
    result = claim_row(evaluate_claims(summary_table(points), EMPTY, EMPTY, SETTINGS), "C1")
    assert result["effect_size"] == pytest.approx(0.0)
    assert result["verdict"] == "not supported"


def test_c1_reads_the_configured_checkpoint():
    points = [checkpoint(0.0, seed, 10, 0.5, 0.8, higher=0.05) for seed in range(4)]
    points += [checkpoint(0.0, seed, 4, 0.5, 0.8, kind="best", higher=0.45) for seed in range(4)]
    settings = ClaimSettings(n_resamples=500, tuning_checkpoint="best")
    result = claim_row(evaluate_claims(summary_table(points), EMPTY, EMPTY, settings), "C1")
    assert result["effect_size"] == pytest.approx(0.4) and result["verdict"] == "supported"


def test_c1_inconclusive_with_too_few_networks_but_still_measured():
    points = [checkpoint(0.0, seed, 10, 0.5, 0.8) for seed in range(2)]
    result = claim_row(evaluate_claims(summary_table(points), EMPTY, EMPTY, SETTINGS), "C1")
    assert result["effect_size"] == pytest.approx(0.25)
    assert result["n_networks"] == 2 and result["verdict"] == "inconclusive"
    assert "at least 3" in result["statistic"]


def test_c1_refuses_a_summary_made_with_another_threshold():
    summary = summary_table([checkpoint(0.0, seed, 10, 0.5, 0.8) for seed in range(3)])
    summary["selectivity_threshold"] = 0.5
    with pytest.raises(ValueError, match="0.5"):
        evaluate_claims(summary, EMPTY, EMPTY, SETTINGS)


# ---------------------------------------------------------------- C2

ACCURACY = [0.1, 0.3, 0.5, 0.6, 0.7]
# Orderings of five epochs' lower-layer gOSI with known Spearman correlations to ACCURACY.
RISING = {1.0: [1, 2, 3, 4, 5], 0.9: [2, 1, 3, 4, 5], 0.8: [2, 1, 4, 3, 5]}


def epoch_points(label_corruption, seed, ranks, sign=1.0):
    return [
        checkpoint(label_corruption, seed, epoch, 0.1 * sign * rank, ACCURACY[epoch])
        for epoch, rank in enumerate(ranks)
    ]


def test_c2_supported_with_fisher_mean_of_known_correlations():
    expected = [1.0, 0.9, 0.9, 0.8, 1.0]
    points = []
    for seed, r in enumerate(expected):
        points += epoch_points(0.0, seed, RISING[r])
    points += epoch_points(0.6, 0, RISING[1.0], sign=-1)  # corrupted: not used
    points += [checkpoint(0.0, 0, 2, -5.0, 0.5, kind="best")]  # best checkpoint: not used
    result = claim_row(evaluate_claims(summary_table(points), EMPTY, EMPTY, SETTINGS), "C2")
    clipped = np.clip(expected, -0.999999, 0.999999)
    assert result["effect_size"] == pytest.approx(np.tanh(np.arctanh(clipped).mean()))
    assert (result["ci_low"], result["ci_high"]) == pytest.approx(
        bootstrap_confidence_interval(expected, statistic=fisher_mean, n_resamples=2000, seed=1)
    )
    assert result["n_networks"] == 5 and result["verdict"] == "supported"


def test_c2_not_supported_when_selectivity_falls_as_accuracy_rises():
    points = []
    for seed, r in enumerate([1.0, 0.9, 0.8, 1.0]):
        points += epoch_points(0.0, seed, RISING[r], sign=-1)
    result = claim_row(evaluate_claims(summary_table(points), EMPTY, EMPTY, SETTINGS), "C2")
    assert result["effect_size"] < -0.8 and result["verdict"] == "not supported"


def test_c2_inconclusive_when_correlations_disagree_or_are_undefined():
    points = []
    for seed, sign in enumerate([1, -1, 1, -1]):
        points += epoch_points(0.0, seed, RISING[0.9], sign=sign)
    points += [checkpoint(0.0, 9, epoch, 0.3, ACCURACY[epoch]) for epoch in range(5)]  # constant: undefined
    result = claim_row(evaluate_claims(summary_table(points), EMPTY, EMPTY, SETTINGS), "C2")
    assert result["effect_size"] == pytest.approx(0.0, abs=1e-9)
    assert result["n_networks"] == 4 and result["verdict"] == "inconclusive"
    assert "1 networks with an undefined correlation" in result["statistic"]


# ---------------------------------------------------------------- C3


def across_network_points(gosi_by_corruption, accuracy_by_corruption, seeds=(0, 1)):
    points = []
    for seed in seeds:
        for corruption, gosi in gosi_by_corruption.items():
            accuracy = accuracy_by_corruption[corruption] + 0.01 * seed
            points.append(checkpoint(corruption, seed, 0, 0.0, 0.1))  # initialisation: not final
            points.append(checkpoint(corruption, seed, 20, gosi + 0.02 * seed, accuracy))
    return points


def test_c3_supported_with_the_hand_computed_correlation():
    gosi = {0.0: 0.50, 0.2: 0.42, 0.4: 0.45, 0.6: 0.30, 0.8: 0.28, 1.0: 0.20}
    accuracy = {0.0: 0.80, 0.2: 0.70, 0.4: 0.62, 0.6: 0.50, 0.8: 0.35, 1.0: 0.10}
    result = claim_row(
        evaluate_claims(summary_table(across_network_points(gosi, accuracy)), EMPTY, EMPTY, SETTINGS), "C3"
    )
    # networks in sorted (label_corruption, seed) order, as the bootstrap draws them
    x = [gosi[c] + 0.05 + 0.02 * s for c in gosi for s in (0, 1)]  # lower-layer average adds 0.05
    y = [accuracy[c] + 0.01 * s for c in accuracy for s in (0, 1)]
    assert result["effect_size"] == pytest.approx(scipy_stats.spearmanr(x, y).statistic)
    assert (result["ci_low"], result["ci_high"]) == pytest.approx(
        bootstrap_correlation_ci(x, y, n_resamples=2000, seed=1)
    )
    assert result["n_networks"] == 12 and result["n_seeds"] == 2
    assert result["verdict"] == "supported"


def test_c3_not_supported_when_selectivity_rises_with_corruption():
    gosi = {0.0: 0.1, 0.2: 0.2, 0.4: 0.3, 0.6: 0.4, 0.8: 0.5, 1.0: 0.6}
    accuracy = {0.0: 0.8, 0.2: 0.7, 0.4: 0.6, 0.6: 0.5, 0.8: 0.4, 1.0: 0.1}
    result = claim_row(
        evaluate_claims(summary_table(across_network_points(gosi, accuracy)), EMPTY, EMPTY, SETTINGS), "C3"
    )
    assert result["effect_size"] < -0.8 and result["verdict"] == "not supported"


def test_c3_inconclusive_with_a_single_corruption_level():
    points = [checkpoint(0.0, seed, 20, 0.1 * seed, 0.5 + 0.05 * seed) for seed in range(6)]
    result = claim_row(evaluate_claims(summary_table(points), EMPTY, EMPTY, SETTINGS), "C3")
    assert result["effect_size"] == pytest.approx(1.0)
    assert result["verdict"] == "inconclusive" and "label-corruption levels [0.0]" in result["statistic"]


# ---------------------------------------------------------------- half ablation (C4, C6)


def half_ablation_table(networks, layers=LAYERS) -> pd.DataFrame:
    """Rows from (label_corruption, seed, {ranking: (top, bottom, [random draws])}) per layer."""
    rows = []
    for label_corruption, seed, by_ranking in networks:
        for layer_index, layer in enumerate(layers):
            for ranking, (top, bottom, random_draws) in by_ranking.items():
                conditions = [("top", 0, top), ("bottom", 0, bottom)]
                conditions += [("random", draw, value) for draw, value in enumerate(random_draws)]
                for condition, draw, increase in conditions:
                    rows.append(
                        dict(
                            network(label_corruption, seed),
                            epoch=30,
                            checkpoint="best",
                            layer=layer,
                            layer_index=layer_index,
                            ranking=ranking,
                            condition=condition,
                            draw=draw,
                            n_units=32,
                            n_ablated=16,
                            intact_loss=1.0,
                            intact_accuracy=0.7,
                            loss_increase_mean=increase,
                            loss_increase_sem=0.01,
                            accuracy=0.6,
                            accuracy_change=-0.1,
                            n_images=100,
                        )
                    )
    return pd.DataFrame(rows)


def test_c4_supported_with_hand_computed_effect_and_corrupted_networks_ignored():
    networks = [(0.0, seed, {"gosi": (0.5 + 0.1 * seed, 0.1, [0.2, 0.3, 0.4])}) for seed in range(4)]
    networks += [(1.0, 0, {"gosi": (0.0, 2.0, [2.0])})]  # corrupted, opposite effect: not used
    result = claim_row(evaluate_claims(EMPTY, half_ablation_table(networks), EMPTY, SETTINGS), "C4")
    top_minus_random = np.array(
        [0.2 + 0.1 * seed for seed in range(4)]
    )  # random mean 0.3; smaller than vs bottom
    assert result["effect_size"] == pytest.approx(top_minus_random.mean())
    assert (result["ci_low"], result["ci_high"]) == pytest.approx(
        bootstrap_confidence_interval(top_minus_random, n_resamples=2000, seed=1)
    )
    assert result["n_networks"] == 4 and result["verdict"] == "supported"


def test_c4_not_supported_when_top_ablation_is_least_harmful():
    networks = [(0.0, seed, {"gosi": (0.05, 0.3 + 0.01 * seed, [0.2, 0.3])}) for seed in range(4)]
    result = claim_row(evaluate_claims(EMPTY, half_ablation_table(networks), EMPTY, SETTINGS), "C4")
    assert result["effect_size"] == pytest.approx(0.05 - (0.3 + 0.015))
    assert result["verdict"] == "not supported"


def test_c4_inconclusive_when_one_control_goes_the_other_way():
    # top beats bottom clearly, but random ablation hurts as much as top on average
    networks = [(0.0, seed, {"gosi": (0.5, 0.1, [0.5 + (-0.1) ** seed])}) for seed in range(6)]
    result = claim_row(evaluate_claims(EMPTY, half_ablation_table(networks), EMPTY, SETTINGS), "C4")
    assert result["ci_low"] < 0 < result["ci_high"] and result["verdict"] == "inconclusive"


def test_c6_supported_when_class_selective_ablation_is_no_worse_than_random():
    networks = [
        (
            0.0,
            seed,
            {"class_selectivity": (0.3 - 0.02 * seed, 0.1, [0.3, 0.32]), "gosi": (0.6, 0.1, [0.3, 0.32])},
        )
        for seed in range(5)
    ]
    result = claim_row(evaluate_claims(EMPTY, half_ablation_table(networks), EMPTY, SETTINGS), "C6")
    differences = np.array([-0.01 - 0.02 * seed for seed in range(5)])
    assert result["effect_size"] == pytest.approx(differences.mean())
    assert (result["ci_low"], result["ci_high"]) == pytest.approx(
        bootstrap_confidence_interval(differences, n_resamples=2000, seed=1)
    )
    assert result["verdict"] == "supported"
    assert "ranked by gOSI: mean 0.290" in result["statistic"]  # 0.6 - 0.31, the gOSI counterpart


def test_c6_not_supported_when_class_selective_ablation_is_worse():
    networks = [(0.0, seed, {"class_selectivity": (0.6 + 0.01 * seed, 0.1, [0.3])}) for seed in range(4)]
    result = claim_row(evaluate_claims(EMPTY, half_ablation_table(networks), EMPTY, SETTINGS), "C6")
    assert result["effect_size"] == pytest.approx(0.315) and result["verdict"] == "not supported"


def test_causal_tables_must_hold_one_checkpoint_per_network():
    networks = [(0.0, seed, {"gosi": (0.5, 0.1, [0.2])}) for seed in range(3)]
    table = half_ablation_table(networks)
    other_epoch = table.assign(epoch=40)
    with pytest.raises(ValueError, match="several checkpoints"):
        evaluate_claims(EMPTY, pd.concat([table, other_epoch]), EMPTY, SETTINGS)


# ---------------------------------------------------------------- C5


def invariance_table(seeds, top, bottom, random_draws) -> pd.DataFrame:
    """Normalised invariance per condition; each value may depend on the seed (callables)."""
    rows = []
    for seed in seeds:
        for measured in ("conv4",) + HIGHER:
            base = dict(network(0.0, seed), epoch=30, checkpoint="best", measured_layer=measured)
            for direction in ("horizontal", "vertical"):
                for shift in (1, 2, 3, 4):
                    cell = dict(
                        base,
                        direction=direction,
                        shift_px=shift,
                        shift_correlation_mean=0.9,
                        shift_correlation_sem=0.01,
                        other_correlation_mean=0.2,
                        normalised_invariance_sem=0.01,
                        n_images=50,
                    )
                    rows.append(
                        dict(
                            cell,
                            ablated_layer="none",
                            condition="intact",
                            draw=0,
                            normalised_invariance_mean=0.95,
                        )
                    )
                    for ablated in LOWER:
                        conditions = [("top", 0, top(seed)), ("bottom", 0, bottom(seed))]
                        conditions += [
                            ("random", draw, value(seed)) for draw, value in enumerate(random_draws)
                        ]
                        for condition, draw, value in conditions:
                            rows.append(
                                dict(
                                    cell,
                                    ablated_layer=ablated,
                                    condition=condition,
                                    draw=draw,
                                    normalised_invariance_mean=value,
                                )
                            )
    return pd.DataFrame(rows)


def test_c5_supported_with_hand_computed_effect():
    table = invariance_table(
        range(5),
        top=lambda s: 0.4,
        bottom=lambda s: 0.7 + 0.01 * s,
        random_draws=[lambda s: 0.55 + 0.02 * s, lambda s: 0.65 + 0.02 * s],
    )
    result = claim_row(evaluate_claims(EMPTY, EMPTY, table, SETTINGS), "C5")
    random_minus_top = np.array(
        [0.2 + 0.02 * s for s in range(5)]
    )  # smaller than bottom - top = 0.3 + 0.01 s
    assert result["effect_size"] == pytest.approx(random_minus_top.mean())
    assert (result["ci_low"], result["ci_high"]) == pytest.approx(
        bootstrap_confidence_interval(random_minus_top, n_resamples=2000, seed=1)
    )
    assert result["n_networks"] == 5 and result["verdict"] == "supported"
    assert "conv4" not in result["statistic"]  # only the configured higher layers are measured


def test_c5_not_supported_when_top_ablation_keeps_invariance_highest():
    table = invariance_table(
        range(4), top=lambda s: 0.8, bottom=lambda s: 0.5 + 0.01 * s, random_draws=[lambda s: 0.6]
    )
    result = claim_row(evaluate_claims(EMPTY, EMPTY, table, SETTINGS), "C5")
    assert result["effect_size"] == pytest.approx(0.5 + 0.015 - 0.8) and result["verdict"] == "not supported"


def test_c5_inconclusive_with_too_few_networks():
    table = invariance_table(range(2), top=lambda s: 0.4, bottom=lambda s: 0.7, random_draws=[lambda s: 0.6])
    result = claim_row(evaluate_claims(EMPTY, EMPTY, table, SETTINGS), "C5")
    assert result["effect_size"] == pytest.approx(0.2)
    assert result["n_networks"] == 2 and result["verdict"] == "inconclusive"


# ---------------------------------------------------------------- the table as a whole


def test_missing_tables_make_every_claim_inconclusive():
    table = evaluate_claims(EMPTY, EMPTY, EMPTY, SETTINGS)
    assert list(table.columns) == list(CLAIM_COLUMNS)
    assert table["claim"].tolist() == list(CLAIM_IDS)
    assert (table["verdict"] == "inconclusive").all()
    assert (table["n_networks"] == 0).all()
    assert table["rule"].tolist() == [VERDICT_RULES[claim] for claim in CLAIM_IDS]


def test_one_block_of_claims_per_model():
    points = [checkpoint(0.0, seed, 10, 0.5, 0.8) for seed in range(3)]
    summary = pd.concat([summary_table(points), summary_table(points, model="cnn11")])
    table = evaluate_claims(summary, EMPTY, EMPTY, SETTINGS)
    assert len(table) == 12
    assert claim_row(table, "C1", model="cnn11")["n_networks"] == 3


def test_each_model_uses_its_own_lower_and_higher_layers():
    points = [checkpoint(0.0, seed, 10, 0.5, 0.8) for seed in range(3)]
    summary = pd.concat([summary_table(points), summary_table(points, model="cnn11")])
    layers = {"cnn11": {"lower_layers": ["block1"], "higher_layers": ["block9"]}}
    table = evaluate_claims(summary, EMPTY, EMPTY, SETTINGS, layers)
    cnn11 = claim_row(table, "C1", model="cnn11")
    assert cnn11["verdict"] == "inconclusive" and "block1" in cnn11["statistic"]
    assert claim_row(table, "C1", model="cnn7")["n_networks"] == 3  # cnn7 keeps SETTINGS' layers
    assert "cnn11: lower layers block1, higher layers block9" in claims_html(table, SETTINGS, layers)


def test_settings_validation_names_the_bad_value():
    with pytest.raises(ValueError, match="1.5"):
        ClaimSettings(confidence=1.5)
    with pytest.raises(ValueError, match="latest"):
        ClaimSettings(tuning_checkpoint="latest")
    assert ClaimSettings(lower_layers=["conv1"]).lower_layers == ("conv1",)
