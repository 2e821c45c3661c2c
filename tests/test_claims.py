import numpy as np
import pandas as pd
import pytest
from scipy import stats as scipy_stats

from selectivity.claims.table import CLAIM_COLUMNS, CLAIM_IDS, VERDICT_RULES, ClaimSettings
from selectivity.claims.evaluation import evaluate_claims, headline_claims
from selectivity.claims.report import claims_html
from selectivity.claims.wording import verdict_rules
from selectivity.claims.power import sign_test_detectable_shift
from selectivity.statistics import fisher_interval, mean_interval, median_confidence_bounds

LAYERS = ("conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "fc1")
LOWER, HIGHER = ("conv1", "conv2"), ("conv5", "conv6", "fc1")
SETTINGS = ClaimSettings(n_permutations=999, seed=1, tuning_checkpoint="final")
EMPTY = pd.DataFrame()
TOO_FEW = "inconclusive (too few networks)"


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
                # lower layers differ by a constant so their average is the conv1 value + 0.05
                gosi = (point["gosi"] + 0.1 * (layer == "conv2")) if gratings else point["shuffled_gosi"]
                rows.append(
                    dict(
                        network(point["label_corruption"], point["seed"], model),
                        checkpoint=point["checkpoint"],
                        epoch=point["epoch"],
                        layer=layer,
                        layer_index=layer_index,
                        stimulus_set=stimulus_set,
                        n_units=32,
                        mean_gosi=gosi * 0.9,  # the author's mean, dead units as 0: not what the claims use
                        mean_gosi_responsive=gosi,
                        mean_peak_response=point["response"],
                        n_dead=point["dead"],
                        fraction_selective=(
                            point[f"selective_{group}"] if gratings else point["selective_shuffled"]
                        ),
                        selectivity_threshold=0.33,
                        test_accuracy=point["test_accuracy"],
                    )
                )
    return pd.DataFrame(rows)


def checkpoint(
    label_corruption,
    seed,
    epoch,
    gosi,
    test_accuracy,
    kind="epoch",
    lower=0.6,
    higher=0.3,
    shuffled=0.05,
    shuffled_gosi=0.1,
    response=1.0,
    dead=0,
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
        shuffled_gosi=shuffled_gosi,
        response=response,
        dead=dead,
    )


def claim_row(table, claim, model="cnn7"):
    """The headline row of a claim: the one whose verdict is the claim's."""
    rows = headline_claims(table)
    rows = rows[(rows["claim"] == claim) & (rows["model"] == model)]
    assert len(rows) == 1
    return rows.iloc[0]


def test_row(table, claim, test, layer, model="cnn7"):
    rows = table[
        (table["claim"] == claim)
        & (table["test"] == test)
        & (table["layer"] == layer)
        & (table["model"] == model)
    ]
    assert len(rows) == 1, rows
    return rows.iloc[0]


test_row.__test__ = False  # a helper, not a test


def assert_interval(row, expected):
    assert (row["ci_low"], row["ci_high"]) == pytest.approx(expected)


# ---------------------------------------------------------------- C1


def trained_and_untrained(
    seeds=range(5), lower=lambda s: 0.6 + 0.02 * s, higher=lambda s: 0.3 + 0.02 * s, untrained=0.1
):
    points = [checkpoint(0.0, s, 10, 0.5, 0.8, lower=lower(s), higher=higher(s)) for s in seeds]
    points += [checkpoint(0.0, s, 0, 0.2, 0.1, lower=untrained, higher=untrained) for s in seeds]
    return points


def test_c1_supported_with_hand_computed_tests_and_corrupted_networks_ignored():
    points = trained_and_untrained()
    points += [checkpoint(0.8, 0, 10, 0.1, 0.2, lower=0.0, higher=0.0)]  # corrupted: not used
    table = evaluate_claims(summary_table(points), EMPTY, EMPTY, SETTINGS)
    higher = np.array([0.3 + 0.02 * s for s in range(5)])
    excess = test_row(table, "C1", "gratings_minus_shuffled", "higher")
    assert excess["effect_size"] == pytest.approx(np.median(higher - 0.05))
    assert_interval(excess, (0.25, 0.33))  # 5 networks: the one-sided 95% bounds are min and max
    assert excess["ci_coverage"] == pytest.approx(1 - 2 / 32)
    assert excess["p_value"] == pytest.approx(1 / 32)  # every network positive: the exact sign-test minimum
    # the mean and its t interval are described beside the median, not used to decide
    assert excess["mean"] == pytest.approx((higher - 0.05).mean())
    assert (excess["mean_ci_low"], excess["mean_ci_high"]) == pytest.approx(mean_interval(higher - 0.05)[1:])
    beyond_untrained = test_row(table, "C1", "trained_minus_untrained", "lower")
    assert beyond_untrained["effect_size"] == pytest.approx(np.mean([0.5 + 0.02 * s for s in range(5)]))
    result = claim_row(table, "C1")
    assert result["test"] == "claim" and result["verdict"] == "supported"
    assert result["n_networks"] == 5 and result["n_seeds"] == 5
    assert result["effect_size"] == pytest.approx(np.median(higher - 0.1))  # the weakest test
    assert "conv1" in excess["statistic"] or "conv5" in excess["statistic"]


def test_c1_not_supported_when_trained_networks_are_no_more_selective_than_untrained():
    # well above the shuffled control, but an untrained network is already as selective: fails C1
    points = trained_and_untrained(higher=lambda s: 0.3, untrained=0.35)
    table = evaluate_claims(summary_table(points), EMPTY, EMPTY, SETTINGS)
    assert test_row(table, "C1", "gratings_minus_shuffled", "higher")["verdict"] == "supported"
    assert test_row(table, "C1", "trained_minus_untrained", "higher")["verdict"] == "not supported"
    assert claim_row(table, "C1")["verdict"] == "not supported"


def test_c1_inconclusive_without_epoch_0_and_says_how_to_fix_it():
    points = [checkpoint(0.0, s, 10, 0.5, 0.8, lower=0.6 + 0.01 * s) for s in range(5)]
    table = evaluate_claims(summary_table(points), EMPTY, EMPTY, SETTINGS)
    missing = test_row(table, "C1", "trained_minus_untrained", "lower")
    assert missing["verdict"] == "inconclusive" and "checkpoint_epochs" in missing["statistic"]
    assert claim_row(table, "C1")["verdict"] == "inconclusive"


def test_c1_too_few_networks_is_its_own_verdict_but_still_measured():
    points = trained_and_untrained(seeds=range(4))
    table = evaluate_claims(summary_table(points), EMPTY, EMPTY, SETTINGS)
    excess = test_row(table, "C1", "gratings_minus_shuffled", "lower")
    assert excess["n_networks"] == 4 and np.isfinite(excess["effect_size"])
    assert excess["verdict"] == TOO_FEW and "at least 5" in excess["statistic"]
    assert claim_row(table, "C1")["verdict"] == TOO_FEW


def test_c1_refuses_a_summary_made_with_another_threshold():
    summary = summary_table(trained_and_untrained())
    summary["selectivity_threshold"] = 0.5
    with pytest.raises(ValueError, match="0.5"):
        evaluate_claims(summary, EMPTY, EMPTY, SETTINGS)


# ---------------------------------------------------------------- C2

ACCURACY = {1: 0.1, 2: 0.3, 3: 0.5, 4: 0.6, 5: 0.7}
# Orderings of five epochs' lower-layer gOSI with known Spearman correlations to ACCURACY.
RISING = {1.0: [1, 2, 3, 4, 5], 0.9: [2, 1, 3, 4, 5], 0.8: [2, 1, 4, 3, 5]}


def epoch_points(label_corruption, seed, ranks, sign=1.0, response=None):
    points = [checkpoint(label_corruption, seed, 0, 5.0, 0.1)]  # epoch 0: not counted by C2
    for epoch, rank in zip(ACCURACY, ranks):
        extra = {} if response is None else {"response": response[epoch - 1]}
        points.append(checkpoint(label_corruption, seed, epoch, 0.1 * sign * rank, ACCURACY[epoch], **extra))
    return points


def test_c2_median_of_per_network_correlations_after_epoch_0():
    expected = [1.0, 0.9, 0.9, 0.8, 1.0]
    points = []
    for seed, r in enumerate(expected):
        points += epoch_points(0.0, seed, RISING[r])
    points += epoch_points(0.6, 0, RISING[1.0], sign=-1)  # corrupted: not used
    points += [checkpoint(0.0, 0, 2, -5.0, 0.5, kind="best")]  # best checkpoint: not used
    table = evaluate_claims(summary_table(points), EMPTY, EMPTY, SETTINGS)
    result = test_row(table, "C2", "gosi_vs_accuracy", "lower")
    assert result["effect_size"] == pytest.approx(0.9)  # a median: no Fisher-z artefact from r = 1
    assert_interval(result, median_confidence_bounds(expected)[1:3])
    assert result["p_value"] == pytest.approx(1 / 32)  # sign test, all five positive
    assert result["n_networks"] == 5 and result["verdict"] == "supported"
    # every network has the same number of saved epochs: said once ("its 3-3 saved epochs" was a slip)
    assert "across its 5 saved epochs after epoch 0" in result["statistic"]
    claim = claim_row(table, "C2")
    assert claim["test"] == "claim" and claim["verdict"] == "supported"  # no control rises with accuracy
    assert claim[["effect_size", "ci_low", "ci_high", "p_value"]].tolist() == pytest.approx(
        result[["effect_size", "ci_low", "ci_high", "p_value"]].tolist()
    )


def test_c2_reports_the_controls_beside_it():
    points = []
    for seed in range(5):
        points += epoch_points(0.0, seed, RISING[1.0], response=[5, 4, 3, 2, 1])
    table = evaluate_claims(summary_table(points), EMPTY, EMPTY, SETTINGS)
    response = test_row(table, "C2", "mean_response_vs_accuracy", "lower")
    assert response["effect_size"] == pytest.approx(-1.0) and not response["headline"]
    shuffled = test_row(table, "C2", "shuffled_gosi_vs_accuracy", "lower")
    assert shuffled["n_networks"] == 0  # constant shuffled gOSI: undefined correlations, left out
    assert "mean_response_vs_accuracy median -1" in claim_row(table, "C2")["statistic"]


def test_c2_not_supported_when_selectivity_falls_as_accuracy_rises():
    points = []
    for seed, r in enumerate([1.0, 0.9, 0.8, 1.0, 0.9]):
        points += epoch_points(0.0, seed, RISING[r], sign=-1)
    result = claim_row(evaluate_claims(summary_table(points), EMPTY, EMPTY, SETTINGS), "C2")
    assert result["effect_size"] == pytest.approx(-0.9) and result["verdict"] == "not supported"


def test_c2_inconclusive_when_correlations_disagree_or_are_undefined():
    points = []
    for seed, sign in enumerate([1, -1, 1, -1, 1, -1]):
        points += epoch_points(0.0, seed, RISING[0.9], sign=sign)
    points += [checkpoint(0.0, 9, epoch, 0.3, ACCURACY[epoch]) for epoch in ACCURACY]  # constant: undefined
    table = evaluate_claims(summary_table(points), EMPTY, EMPTY, SETTINGS)
    result = test_row(table, "C2", "gosi_vs_accuracy", "lower")
    assert result["effect_size"] == pytest.approx(0.0, abs=1e-9)
    assert result["n_networks"] == 6 and result["verdict"] == "inconclusive"
    assert "1 networks with an undefined correlation" in result["statistic"]
    assert claim_row(table, "C2")["verdict"] == "inconclusive"


# ---------------------------------------------------------------- C3


def across_network_points(gosi_by_corruption, accuracy_by_corruption, seeds=range(5), within=0.02):
    points = []
    for seed in seeds:
        for corruption, gosi in gosi_by_corruption.items():
            accuracy = accuracy_by_corruption[corruption] + 0.01 * seed
            points.append(checkpoint(corruption, seed, 0, 0.0, 0.1))  # initialisation: not final
            points.append(checkpoint(corruption, seed, 20, gosi + within * seed, accuracy, dead=1))
    return points


GOSI = {0.0: 0.50, 0.5: 0.40, 1.0: 0.20}
ACCURACY_BY_LEVEL = {0.0: 0.80, 0.5: 0.60, 1.0: 0.10}


def test_c3_across_and_within_levels_with_the_hand_computed_correlation():
    table = evaluate_claims(
        summary_table(across_network_points(GOSI, ACCURACY_BY_LEVEL)), EMPTY, EMPTY, SETTINGS
    )
    # networks in sorted (label_corruption, seed) order
    x = [GOSI[c] + 0.05 + 0.02 * s for c in GOSI for s in range(5)]  # lower-layer average adds 0.05
    y = [ACCURACY_BY_LEVEL[c] + 0.01 * s for c in GOSI for s in range(5)]
    across = test_row(table, "C3", "across_levels", "lower")
    r = scipy_stats.spearmanr(x, y).statistic
    assert across["effect_size"] == pytest.approx(r)
    assert_interval(across, fisher_interval(r, 15))
    assert across["n_networks"] == 15 and across["n_seeds"] == 5 and across["verdict"] == "supported"
    within = test_row(table, "C3", "within_levels", "lower")
    assert within["effect_size"] == pytest.approx(1.0)  # seeds rank the same within every level
    result = claim_row(table, "C3")
    assert result["verdict"] == "supported"
    assert "Dead units excluded from the mean gOSI: 30 of 960" in result["statistic"]


def test_c3_inconclusive_when_only_the_corruption_level_links_the_two():
    # across levels a perfect link; within levels, selectivity falls as accuracy rises
    points = across_network_points(GOSI, ACCURACY_BY_LEVEL, within=-0.002)
    table = evaluate_claims(summary_table(points), EMPTY, EMPTY, SETTINGS)
    assert test_row(table, "C3", "across_levels", "lower")["verdict"] == "supported"
    assert test_row(table, "C3", "within_levels", "lower")["verdict"] == "not supported"
    assert claim_row(table, "C3")["verdict"] == "not supported"


def test_c3_not_supported_when_selectivity_rises_with_corruption():
    gosi = {0.0: 0.1, 0.5: 0.3, 1.0: 0.6}
    table = evaluate_claims(
        summary_table(across_network_points(gosi, ACCURACY_BY_LEVEL, within=-0.02)), EMPTY, EMPTY, SETTINGS
    )
    result = claim_row(table, "C3")
    assert test_row(table, "C3", "across_levels", "lower")["effect_size"] < -0.8
    assert result["verdict"] == "not supported"


def test_c3_across_levels_inconclusive_with_a_single_corruption_level():
    points = [checkpoint(0.0, seed, 20, 0.1 * seed, 0.5 + 0.05 * seed) for seed in range(6)]
    table = evaluate_claims(summary_table(points), EMPTY, EMPTY, SETTINGS)
    across = test_row(table, "C3", "across_levels", "lower")
    assert across["verdict"] == "inconclusive" and "label-corruption levels [0.0]" in across["statistic"]
    assert claim_row(table, "C3")["verdict"] == "inconclusive"


# ---------------------------------------------------------------- half ablation (C4, C6)


def half_ablation_table(networks, layers=LAYERS) -> pd.DataFrame:
    """Rows from (label_corruption, seed, {ranking: (top, bottom, [random draws], [matched draws])}) per
    layer; a value may be a dict layer -> value."""
    rows = []
    for label_corruption, seed, by_ranking in networks:
        for layer_index, layer in enumerate(layers):
            for ranking, values in by_ranking.items():
                top, bottom, random_draws, *matched = values
                conditions = [("top", 0, top), ("bottom", 0, bottom)]
                conditions += [("random", draw, value) for draw, value in enumerate(random_draws)]
                conditions += [
                    ("matched", draw, value) for draw, value in enumerate(matched[0] if matched else [])
                ]
                for condition, draw, increase in conditions:
                    increase = increase[layer] if isinstance(increase, dict) else increase
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


def test_c4_tests_every_control_per_layer_and_pooled():
    networks = [(0.0, s, {"gosi": (0.5 + 0.1 * s, 0.1, [0.2, 0.3, 0.4], [0.35, 0.45])}) for s in range(5)]
    networks += [(1.0, 0, {"gosi": (0.0, 2.0, [2.0], [2.0])})]  # corrupted, opposite effect: not used
    table = evaluate_claims(EMPTY, half_ablation_table(networks), EMPTY, SETTINGS)
    top_minus_matched = np.array([0.1 + 0.1 * s for s in range(5)])  # matched mean 0.4
    for layer in ("pooled", "conv1", "conv2"):
        row = test_row(table, "C4", "top_minus_matched", layer)
        assert row["effect_size"] == pytest.approx(np.median(top_minus_matched))
        assert_interval(row, (0.1, 0.5))
        assert test_row(table, "C4", "claim", layer)["verdict"] == "supported"
    result = claim_row(table, "C4")
    assert result["layer"] == "pooled" and result["verdict"] == "supported" and result["n_networks"] == 5
    assert result["effect_size"] == pytest.approx(np.median(top_minus_matched))  # the weakest control


def test_c4_per_layer_verdicts_when_layers_disagree():
    conv2_wins = {layer: 1.0 for layer in LAYERS} | {"conv1": 0.2}
    networks = [
        (0.0, s, {"gosi": (conv2_wins, 0.5 + 0.01 * s, [0.5 + 0.01 * s], [0.5 + 0.01 * s])}) for s in range(5)
    ]
    table = evaluate_claims(EMPTY, half_ablation_table(networks), EMPTY, SETTINGS)
    assert test_row(table, "C4", "claim", "conv2")["verdict"] == "supported"
    conv1 = test_row(table, "C4", "claim", "conv1")
    assert conv1["verdict"] == "not supported"
    # the row shows the part that decides it, a "not supported" one, with its p of the other direction
    assert conv1["effect_size"] < 0 and conv1["p_value"] == pytest.approx(1 / 32)
    assert claim_row(table, "C4")["verdict"] == "supported"  # pooled: (1.0 + 0.2) / 2 > 0.5


def test_c4_not_specific_when_matched_units_hurt_as_much():
    # top beats bottom and random clearly, but random units matched on frequency and output hurt as much
    networks = [(0.0, s, {"gosi": (0.5, 0.1, [0.2], [0.5 + (-0.1) ** s])}) for s in range(6)]
    table = evaluate_claims(EMPTY, half_ablation_table(networks), EMPTY, SETTINGS)
    assert test_row(table, "C4", "top_minus_random", "pooled")["verdict"] == "supported"
    matched = test_row(table, "C4", "top_minus_matched", "pooled")
    assert matched["ci_low"] < 0 < matched["ci_high"] and matched["verdict"] == "inconclusive"
    assert claim_row(table, "C4")["verdict"] == "inconclusive"


def test_c4_without_a_matched_condition_cannot_be_supported():
    networks = [(0.0, s, {"gosi": (0.5 + 0.1 * s, 0.1, [0.2, 0.3])}) for s in range(5)]
    table = evaluate_claims(EMPTY, half_ablation_table(networks), EMPTY, SETTINGS)
    assert test_row(table, "C4", "top_minus_random", "pooled")["verdict"] == "supported"
    assert "no matched condition" in test_row(table, "C4", "top_minus_matched", "pooled")["statistic"]
    # the effect is there, but its specificity test is missing: undecided, per layer and pooled
    for layer in ("pooled", "conv1", "conv2"):
        claim = test_row(table, "C4", "claim", layer)
        assert claim["verdict"] == "inconclusive" and "no matched condition" in claim["statistic"]


def test_c6_supported_only_when_shown_within_the_margin():
    networks = [
        (0.0, s, {"class_selectivity": (0.3 - 0.02 * s, 0.1, [0.3, 0.32]), "gosi": (0.6, 0.1, [0.3, 0.32])})
        for s in range(5)
    ]
    table = evaluate_claims(EMPTY, half_ablation_table(networks), EMPTY, SETTINGS)
    result = claim_row(table, "C6")
    differences = np.array([-0.01 - 0.02 * s for s in range(5)])
    assert result["effect_size"] == pytest.approx(np.median(differences))
    assert_interval(result, (differences.min(), differences.max()))
    assert result["ci_high"] < SETTINGS.equivalence_margin and result["verdict"] == "supported"
    assert result["p_value"] == pytest.approx(1 / 32)  # every network below the margin: sign-test minimum
    assert test_row(table, "C6", "gosi_top_minus_random", "all")["effect_size"] == pytest.approx(0.29)


def test_c6_absence_of_evidence_is_inconclusive():
    # no difference on average but too noisy to show that it is below the margin
    networks = [(0.0, s, {"class_selectivity": (0.3 + 0.4 * (-1) ** s, 0.1, [0.3])}) for s in range(6)]
    result = claim_row(evaluate_claims(EMPTY, half_ablation_table(networks), EMPTY, SETTINGS), "C6")
    assert result["ci_low"] < 0 < SETTINGS.equivalence_margin < result["ci_high"]
    assert result["verdict"] == "inconclusive"


def test_c6_not_supported_when_class_selective_ablation_is_worse_by_more_than_the_margin():
    networks = [(0.0, s, {"class_selectivity": (0.6 + 0.01 * s, 0.1, [0.3])}) for s in range(5)]
    result = claim_row(evaluate_claims(EMPTY, half_ablation_table(networks), EMPTY, SETTINGS), "C6")
    assert result["effect_size"] == pytest.approx(0.32) and result["verdict"] == "not supported"


def test_causal_tables_must_hold_one_checkpoint_per_network():
    networks = [(0.0, seed, {"gosi": (0.5, 0.1, [0.2])}) for seed in range(3)]
    table = half_ablation_table(networks)
    other_epoch = table.assign(epoch=40)
    with pytest.raises(ValueError, match="several checkpoints"):
        evaluate_claims(EMPTY, pd.concat([table, other_epoch]), EMPTY, SETTINGS)


# ---------------------------------------------------------------- C5


def invariance_table(seeds, top, bottom, random_draws, matched_draws=()) -> pd.DataFrame:
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
                        conditions += [("random", d, value(seed)) for d, value in enumerate(random_draws)]
                        conditions += [("matched", d, value(seed)) for d, value in enumerate(matched_draws)]
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
        matched_draws=[lambda s: 0.6 + 0.03 * s],
    )
    claims = evaluate_claims(EMPTY, EMPTY, table, SETTINGS)
    random_minus_top = np.array([0.2 + 0.02 * s for s in range(5)])
    row = test_row(claims, "C5", "random_minus_top", "conv1")
    assert row["effect_size"] == pytest.approx(np.median(random_minus_top))
    assert_interval(row, (random_minus_top.min(), random_minus_top.max()))
    result = claim_row(claims, "C5")
    assert result["n_networks"] == 5 and result["verdict"] == "supported"
    assert "conv4" not in row["statistic"]  # only the configured higher layers are measured


def test_c5_not_supported_when_top_ablation_keeps_invariance_highest():
    table = invariance_table(
        range(5),
        top=lambda s: 0.8,
        bottom=lambda s: 0.5 + 0.01 * s,
        random_draws=[lambda s: 0.6],
        matched_draws=[lambda s: 0.6],
    )
    result = claim_row(evaluate_claims(EMPTY, EMPTY, table, SETTINGS), "C5")
    assert result["verdict"] == "not supported"


def test_c5_too_few_networks():
    table = invariance_table(
        range(2),
        top=lambda s: 0.4,
        bottom=lambda s: 0.7,
        random_draws=[lambda s: 0.6],
        matched_draws=[lambda s: 0.6],
    )
    result = claim_row(evaluate_claims(EMPTY, EMPTY, table, SETTINGS), "C5")
    assert result["effect_size"] == pytest.approx(0.2)
    assert result["n_networks"] == 2 and result["verdict"] == TOO_FEW


# ---------------------------------------------------------------- the table as a whole


def test_missing_tables_make_every_claim_inconclusive():
    table = evaluate_claims(EMPTY, EMPTY, EMPTY, SETTINGS)
    assert list(table.columns) == list(CLAIM_COLUMNS)
    headlines = headline_claims(table)
    assert headlines["claim"].tolist() == list(CLAIM_IDS)
    assert (headlines["verdict"] == "inconclusive").all()
    assert (headlines["n_networks"] == 0).all()
    rules = verdict_rules(SETTINGS)  # the run's own settings in words
    assert headlines["rule"].tolist() == [rules[claim] for claim in CLAIM_IDS]
    assert VERDICT_RULES["C1"] != rules["C1"]  # the defaults' text names the best-validation checkpoint


def test_one_block_of_claims_per_model():
    summary = summary_table(trained_and_untrained())
    summary = pd.concat([summary, summary.assign(model="cnn11")])
    table = evaluate_claims(summary, EMPTY, EMPTY, SETTINGS)
    assert len(headline_claims(table)) == 12
    assert claim_row(table, "C1", model="cnn11")["n_networks"] == 5


def test_each_model_uses_its_own_lower_and_higher_layers():
    summary = summary_table(trained_and_untrained())
    summary = pd.concat([summary, summary.assign(model="cnn11")])
    layers = {"cnn11": {"lower_layers": ["block1"], "higher_layers": ["block9"]}}
    table = evaluate_claims(summary, EMPTY, EMPTY, SETTINGS, layers)
    cnn11 = claim_row(table, "C1", model="cnn11")
    assert cnn11["verdict"] == "inconclusive" and "block1" in cnn11["statistic"]
    assert claim_row(table, "C1", model="cnn7")["n_networks"] == 5  # cnn7 keeps SETTINGS' layers
    assert "cnn11: lower layers block1, higher layers block9" in claims_html(table, SETTINGS, layers)


def test_settings_validation_names_the_bad_value():
    with pytest.raises(ValueError, match="1.5"):
        ClaimSettings(confidence=1.5)
    with pytest.raises(ValueError, match="latest"):
        ClaimSettings(tuning_checkpoint="latest")
    with pytest.raises(ValueError, match="-0.1"):
        ClaimSettings(equivalence_margin=-0.1)
    assert ClaimSettings(lower_layers=["conv1"]).lower_layers == ("conv1",)
    assert ClaimSettings(confidence=0.95).minimum_networks == 5


def test_claims_figure_draws_every_test_with_its_interval_in_its_verdicts_colour():
    from selectivity.claims.report import VERDICT_COLOURS, claims_figure

    networks = [(0.0, s, {"gosi": (0.5 + 0.1 * s, 0.1, [0.2, 0.3], [0.35, 0.45])}) for s in range(5)]
    table = evaluate_claims(EMPTY, half_ablation_table(networks), EMPTY, SETTINGS)
    figure = claims_figure(table, model="cnn7")
    assert len(figure.axes) == len(CLAIM_IDS)  # one panel per claim
    c4 = figure.axes[CLAIM_IDS.index("C4")]
    labels = [label.get_text() for label in c4.get_yticklabels()]
    c4_rows = table[table["claim"] == "C4"]
    assert labels == [f"{r.test} [{r.layer}]" for r in c4_rows.itertuples()]
    intervals = [
        line for line in c4.get_lines() if len(line.get_xdata()) == 2 and line.get_linestyle() == "-"
    ]
    drawn = sorted(tuple(np.round(line.get_xdata(), 9)) for line in intervals)
    assert drawn == sorted(tuple(np.round((r.ci_low, r.ci_high), 9)) for r in c4_rows.itertuples())
    assert {line.get_color() for line in intervals} == {VERDICT_COLOURS["supported"]}
    assert c4.get_title(loc="left").startswith("C4") and c4.get_title(loc="left").endswith(": supported")


def test_a_single_network_gives_too_few_for_every_claim_and_no_error():
    """One network (e.g. a first try of a new architecture): every test is measured, none decided."""
    summary = summary_table(trained_and_untrained(seeds=[0]))
    half = half_ablation_table(
        [(0.0, 0, {"gosi": (0.5, 0.1, [0.2]), "class_selectivity": (0.3, 0.1, [0.2])})]
    )
    invariance = invariance_table([0], top=lambda s: 0.4, bottom=lambda s: 0.7, random_draws=[lambda s: 0.6])
    table = evaluate_claims(summary, half, invariance, SETTINGS)
    headlines = table[table["headline"].astype(bool)]
    assert list(headlines["claim"]) == list(CLAIM_IDS)
    assert set(headlines["verdict"]) <= {TOO_FEW, "inconclusive"}
    assert (headlines["n_networks"] <= 1).all()


# ---------------------------------------------------------------- how far from a decision (power)


def test_each_row_says_what_it_could_detect_and_how_many_networks_its_effect_needs():
    networks = [(0.0, s, {"gosi": (0.5 + 0.1 * s, 0.1, [0.2, 0.3, 0.4], [0.35, 0.45])}) for s in range(5)]
    table = evaluate_claims(EMPTY, half_ablation_table(networks), EMPTY, SETTINGS)
    row = test_row(table, "C4", "top_minus_matched", "pooled")
    values = np.array([0.1 + 0.1 * s for s in range(5)])
    sd = values.std(ddof=1)
    # 5 networks: the sign test rejects only with all 5 on the claimed side, so 80% power needs
    # P(value > 0) = 0.8 ** (1 / 5) under the normal model with the run's SD (the detectable effect's)
    assert row["detectable_effect"] == pytest.approx(sd * scipy_stats.norm.ppf(0.8 ** (1 / 5)))
    assert row["detectable_effect"] == pytest.approx(sign_test_detectable_shift(5, 0.05) * sd)
    # all 5 networks above 0: each lies there with probability (5 + 1/2) / (5 + 1) by the add-one-half
    # rule; the fewest networks from which the sign test's power stays >= 0.8 at that probability
    p = 5.5 / 6
    powers = {}
    for n in range(1, 60):
        critical = min(c for c in range(n + 2) if c > n or scipy_stats.binom.sf(c - 1, n, 0.5) <= 0.05)
        powers[n] = scipy_stats.binom.sf(critical - 1, n, p)
    expected = 1 + max(n for n, power in powers.items() if power < 0.8)
    assert row["networks_needed"] == expected and row["n_levels"] == 1 and row["power_note"] == ""
    assert "detectable at 80% power" in row["statistic"]
    # the claim needs all three controls: the most networks any of them needs
    claim = test_row(table, "C4", "claim", "pooled")
    parts = table[(table.claim == "C4") & (table.layer == "pooled") & (table.test != "claim")]
    assert claim["networks_needed"] == parts["networks_needed"].max()


def test_a_row_whose_effect_points_against_the_claim_counts_networks_to_show_that():
    points = trained_and_untrained(higher=lambda s: 0.3 - 0.01 * s, untrained=0.35)
    table = evaluate_claims(summary_table(points), EMPTY, EMPTY, SETTINGS)
    against = test_row(table, "C1", "trained_minus_untrained", "higher")
    assert against["effect_size"] < 0 and np.isfinite(against["networks_needed"])
    assert "points against the claim" in against["power_note"]
    assert against["detectable_effect"] > 0  # what the claim's own direction would need
    claim = claim_row(table, "C1")
    assert claim["verdict"] == "not supported" and claim["networks_needed"] == against["networks_needed"]


def test_too_few_networks_detect_nothing_and_say_why():
    points = trained_and_untrained(seeds=range(4))
    table = evaluate_claims(summary_table(points), EMPTY, EMPTY, SETTINGS)
    row = test_row(table, "C1", "gratings_minus_shuffled", "lower")
    assert np.isnan(row["detectable_effect"]) and "cannot reach level 0.05" in row["power_note"]
    assert row["networks_needed"] >= 5


def test_c6_is_about_most_networks_and_the_mean_is_shown_beside_it():
    # four networks unaffected (below the margin), one hurt a lot: most networks are not harmed more
    # than by a random half, though the mean is far above the margin
    harm = [-0.05, -0.04, -0.06, -0.03, 3.0]
    networks = [(0.0, s, {"class_selectivity": (0.3 + harm[s], 0.1, [0.3])}) for s in range(5)]
    result = claim_row(evaluate_claims(EMPTY, half_ablation_table(networks), EMPTY, SETTINGS), "C6")
    assert result["verdict"] == "inconclusive"  # 4 of 5 below the margin: p = 6/32, not enough
    assert result["effect_size"] == pytest.approx(-0.04) and result["mean"] == pytest.approx(np.mean(harm))
    assert result["p_value"] == pytest.approx(6 / 32)
    harm = [-0.05, -0.04, -0.06, -0.03, -0.02, 3.0, -0.01, -0.07]  # 7 of 8 below: p = 9/256
    networks = [(0.0, s, {"class_selectivity": (0.3 + harm[s], 0.1, [0.3])}) for s in range(8)]
    result = claim_row(evaluate_claims(EMPTY, half_ablation_table(networks), EMPTY, SETTINGS), "C6")
    assert result["verdict"] == "supported" and result["p_value"] == pytest.approx(9 / 256)
    assert result["mean"] > SETTINGS.equivalence_margin and result["ci_high"] < SETTINGS.equivalence_margin
    assert result["ci_high"] == pytest.approx(-0.01)  # 8 networks: the one-sided bounds are x(2) and x(7)
    assert result["ci_coverage"] == pytest.approx(1 - 2 * 9 / 256)


def test_c3_rows_count_levels_and_networks_needed_from_the_fisher_model():
    from selectivity.claims.power import correlation_networks_needed

    table = evaluate_claims(
        summary_table(across_network_points(GOSI, ACCURACY_BY_LEVEL)), EMPTY, EMPTY, SETTINGS
    )
    across = test_row(table, "C3", "across_levels", "lower")
    assert across["n_levels"] == 3
    assert across["networks_needed"] == max(
        5, correlation_networks_needed(across["effect_size"], 0.95, "spearman")
    )
    assert 0 < across["detectable_effect"] < 1


def test_networks_needed_table_per_level(tmp_path):
    from selectivity.claims.power import format_networks_needed, main, networks_needed_table

    points = trained_and_untrained() + across_network_points(GOSI, ACCURACY_BY_LEVEL, seeds=range(5, 10))
    table = evaluate_claims(summary_table(points), EMPTY, EMPTY, SETTINGS)
    needed = networks_needed_table(table)
    assert list(needed["claim"]) == list(CLAIM_IDS)
    c3 = needed[needed["claim"] == "C3"].iloc[0]
    assert c3["networks_needed_per_level"] == np.ceil(c3["networks_needed"] / c3["n_levels"])
    text = format_networks_needed(needed)
    assert len(text.splitlines()) == 1 + len(CLAIM_IDS) and "needed/level" in text
    with pytest.raises(ValueError, match="rerun evaluate_claims"):
        networks_needed_table(table.drop(columns=["networks_needed"]))
    path = tmp_path / "claims.csv"
    table.to_csv(path, index=False)
    main([str(path)])  # the command of docs/results.md "How many networks would decide"


def test_claims_figure_marks_each_rows_detectable_effect_and_networks_needed(tmp_path):
    from selectivity.claims.report import DETECTABLE_COLOUR, claims_figure, plot_claims

    networks = [(0.0, s, {"gosi": (0.5 + 0.1 * s, 0.1, [0.2, 0.3], [0.35, 0.45])}) for s in range(5)]
    table = evaluate_claims(EMPTY, half_ablation_table(networks), EMPTY, SETTINGS)
    figure = claims_figure(table, model="cnn7")
    c4 = figure.axes[CLAIM_IDS.index("C4")]
    c4_rows = table[table["claim"] == "C4"]
    ticks = [line for line in c4.get_lines() if line.get_marker() == "|"]
    assert {line.get_color() for line in ticks} == {DETECTABLE_COLOUR}
    assert sorted(line.get_xdata()[0] for line in ticks) == pytest.approx(
        sorted(c4_rows["detectable_effect"])
    )
    texts = [text.get_text() for text in c4.texts]  # per row: networks, then the verdict in words
    assert texts[0::2] == [f"{r.n_networks} \u2192 {r.networks_needed:g}" for r in c4_rows.itertuples()]
    assert texts[1::2] == list(c4_rows["verdict"])
    plot_claims(table, tmp_path / "claims.pdf", tmp_path / "claims.png", model="cnn7")
    html = claims_html(table, SETTINGS)
    assert "networks needed" in html and "detectable at 80% power" in html


# ---------------------------------------------------------------- claims that read right (issue 31)


def test_the_specificity_rule_of_each_kind_of_control():
    from selectivity.claims.verdicts import with_specificity

    s, ns, inc, few = "supported", "not supported", "inconclusive", TOO_FEW
    # C2: controls that test other quantities change only a supported verdict
    assert with_specificity(s, [inc, ns], s, required=False) == s
    assert with_specificity(s, [inc, s], s, required=False) == "supported, not specific"
    assert with_specificity(inc, [s, s], s, required=False) == inc
    assert with_specificity(ns, [s], s, required=False) == ns
    # C4, C5: the matched test is part of the claim and decides its specificity
    assert with_specificity(s, [s], ns, required=True) == s
    assert with_specificity(s, [ns], ns, required=True) == "supported, not specific"
    assert with_specificity(s, [inc], ns, required=True) == inc
    assert with_specificity(s, [few], ns, required=True) == few
    assert with_specificity(s, [], ns, required=True) == inc  # no matched condition in the table
    assert with_specificity(inc, [ns], ns, required=True) == ns  # shown to do less than matched
    assert with_specificity(inc, [s], ns, required=True) == inc


def test_c2_is_supported_not_specific_when_a_control_rises_with_accuracy_too():
    points = []
    for seed in range(5):
        points += epoch_points(0.0, seed, RISING[1.0], response=[1, 2, 3, 4, 5])  # response rises too
    table = evaluate_claims(summary_table(points), EMPTY, EMPTY, SETTINGS)
    assert test_row(table, "C2", "gosi_vs_accuracy", "lower")["verdict"] == "supported"
    response = test_row(table, "C2", "mean_response_vs_accuracy", "lower")
    assert response["verdict"] == "supported" and response["control"] == "specificity"
    assert test_row(table, "C2", "shuffled_gosi_vs_accuracy", "lower")["control"] == "specificity"
    claim = claim_row(table, "C2")
    assert claim["test"] == "claim" and claim["verdict"] == "supported, not specific"
    assert (
        claim["reading"].startswith("Supported, not specific") and "mean grating response" in claim["reading"]
    )
    assert "Specificity controls: shuffled_gosi_vs_accuracy [lower]" in claim["statistic"]
    assert "So C2, if supported, is not specific" in response["reading"]
    # the claim row shows its own test's effect and interval, which lie on the claimed side
    assert claim["ci_low"] > 0 and claim["effect_size"] == pytest.approx(1.0)


def test_c2_counts_each_networks_saved_epochs_without_a_slip():
    points = epoch_points(0.0, 0, RISING[1.0])
    for seed in range(1, 5):  # the other networks saved only epochs 1-3
        points += [point for point in epoch_points(0.0, seed, RISING[1.0]) if point["epoch"] <= 3]
    statistic = test_row(
        evaluate_claims(summary_table(points), EMPTY, EMPTY, SETTINGS), "C2", "gosi_vs_accuracy", "lower"
    )["statistic"]
    assert "across its 3 to 5 saved epochs after epoch 0" in statistic and "3-5" not in statistic


def test_c4_is_supported_not_specific_when_matched_units_do_more():
    # top beats bottom and random in every network, but the matched random half hurts more
    networks = [(0.0, s, {"gosi": (0.5, 0.1, [0.2], [0.6 + 0.01 * s])}) for s in range(5)]
    table = evaluate_claims(EMPTY, half_ablation_table(networks), EMPTY, SETTINGS)
    for layer in ("pooled", "conv1", "conv2"):
        matched = test_row(table, "C4", "top_minus_matched", layer)
        assert matched["verdict"] == "not supported" and matched["control"] == "none"
        assert matched["reading"].startswith("Specificity test of C4. Not supported")
        claim = test_row(table, "C4", "claim", layer)
        assert claim["verdict"] == "supported, not specific"
        # it shows the effect that is supported (the weakest of bottom and random), not the matched one
        assert claim["effect_size"] == pytest.approx(0.3) and claim["ci_low"] > 0
        assert "Specificity test: top_minus_matched" in claim["statistic"]
    assert claim_row(table, "C4")["verdict"] == "supported, not specific"


def test_c5_specific_when_top_ablation_beats_the_matched_half_too():
    table = invariance_table(
        range(5),
        top=lambda s: 0.4,
        bottom=lambda s: 0.7 + 0.01 * s,
        random_draws=[lambda s: 0.6],
        matched_draws=[lambda s: 0.55 + 0.01 * s],
    )
    claim = claim_row(evaluate_claims(EMPTY, EMPTY, table, SETTINGS), "C5")
    assert claim["verdict"] == "supported" and "specific to orientation selectivity" in claim["reading"]


def full_table():
    """A claims table with every claim decided, from constructed per-network tables."""
    points = trained_and_untrained()
    for seed in range(5):
        points += epoch_points(0.0, seed, RISING[0.9], response=[1, 2, 3, 4, 5])[1:]
    points += across_network_points(GOSI, ACCURACY_BY_LEVEL, seeds=range(5, 10))
    half = half_ablation_table(
        [
            (
                0.0,
                s,
                {
                    "gosi": (0.5 + 0.01 * s, 0.1, [0.2], [0.6 + 0.01 * s]),
                    "class_selectivity": (0.3 - 0.02 * s, 0.1, [0.3, 0.32]),
                },
            )
            for s in range(5)
        ]
    )
    invariance = invariance_table(
        range(5),
        top=lambda s: 0.4,
        bottom=lambda s: 0.7 + 0.01 * s,
        random_draws=[lambda s: 0.45 + 0.01 * (-1) ** s],
        matched_draws=[lambda s: 0.6],
    )
    return evaluate_claims(summary_table(points), half, invariance, SETTINGS)


def test_every_rows_interval_agrees_with_its_verdict_or_the_row_says_why():
    from selectivity.claims.wording import verdict_agrees_with_interval

    table = full_table()
    assert list(table.columns) == list(CLAIM_COLUMNS)
    for row in table.itertuples():
        agrees = verdict_agrees_with_interval(row)
        if row.claim != "C3" and row.test != "claim" and row.verdict != TOO_FEW:
            assert agrees, row  # the sign-test bounds invert the test the verdict uses
        assert agrees or "Why the interval" in row.reading, row
    # the sign test's bounds: supported exactly when the lower bound is above the null value
    rows = table[(table.claim != "C3") & table.ci_low.notna()]
    above = np.where(
        rows.claimed_side == "above", rows.ci_low > rows.null_value, rows.ci_high < rows.null_value
    )
    assert list(above) == list(rows.verdict.str.startswith("supported"))


def test_rows_whose_interval_and_verdict_cannot_agree_say_why():
    from types import SimpleNamespace

    from selectivity.claims.wording import row_reading, verdict_agrees_with_interval

    base = dict(
        model="cnn7", claim="C3", test="across_levels", layer="lower", control="none", null_value=0.0,
        claimed_side="above", effect_size=0.6, n_networks=15, networks_needed=20.0, ci_coverage=0.95,
    )  # fmt: skip
    # the Fisher interval lies above 0 but the permutation test misses the level: two tests
    c3 = SimpleNamespace(**base, ci_low=0.02, ci_high=0.85, p_value=0.07, verdict="inconclusive")
    assert not verdict_agrees_with_interval(c3)
    assert "two different tests" in row_reading(c3, SETTINGS) and "p = 0.07" in row_reading(c3, SETTINGS)
    # four networks, all above 0: the range lies above 0, but no test reaches its level
    few = SimpleNamespace(
        **dict(base, claim="C4", test="top_minus_random", layer="pooled", n_networks=4, ci_coverage=0.875),
        ci_low=0.1, ci_high=0.4, p_value=1 / 16, verdict=TOO_FEW,
    )  # fmt: skip
    reading = row_reading(few, SETTINGS)
    assert reading.startswith("Too few networks") and "probability 0.875 only" in reading
    # agreeing rows say nothing of the kind
    agreeing = SimpleNamespace(**base, ci_low=0.2, ci_high=0.85, p_value=0.01, verdict="supported")
    assert "Why" not in row_reading(agreeing, SETTINGS)


def test_c6_rows_say_in_words_what_each_means():
    table = full_table()
    margin = SETTINGS.equivalence_margin
    class_row = test_row(table, "C6", "class_top_minus_random", "all")
    gosi_row = test_row(table, "C6", "gosi_top_minus_random", "all")
    assert class_row["verdict"] == gosi_row["verdict"] == "supported"  # the two greens of the issue
    assert class_row["control"] == "none" and gosi_row["control"] == "comparison"
    assert class_row["null_value"] == margin and class_row["claimed_side"] == "below"
    assert gosi_row["null_value"] == 0 and gosi_row["claimed_side"] == "above"
    assert "not more harmful" in class_row["reading"] and f"margin of {margin:g} nats" in class_row["reading"]
    assert gosi_row["reading"].startswith("For comparison (decides no verdict)")
    assert "orientation-selective 50% raises test loss more than a random 50%" in gosi_row["reading"]


def test_controls_are_drawn_as_controls_never_in_a_verdict_colour(tmp_path):
    from matplotlib.colors import to_hex

    from selectivity.claims.report import CONTROL_COLOUR, VERDICT_COLOURS, claims_figure

    table = full_table()
    figure = claims_figure(table, model="cnn7")
    assert CONTROL_COLOUR not in VERDICT_COLOURS.values()
    for ax, claim in zip(figure.axes, CLAIM_IDS):
        rows = table[table["claim"] == claim].reset_index(drop=True)
        positions = np.arange(len(rows))[::-1]
        markers = [line for line in ax.get_lines() if line.get_marker() in ("o", "D", "s")]
        for row, position in zip(rows.itertuples(), positions):
            drawn = [line for line in markers if line.get_ydata()[0] == position]
            if pd.isna(row.effect_size):
                continue
            (marker,) = drawn
            if row.control != "none":
                assert marker.get_marker() == "s" and to_hex(marker.get_color()) == CONTROL_COLOUR.lower()
                assert marker.get_fillstyle() == "none"  # hollow
            else:
                assert to_hex(marker.get_color()) == VERDICT_COLOURS[row.verdict].lower()
        texts = [text.get_text() for text in ax.texts]
        for row in rows.itertuples():
            if row.control == "specificity":
                assert f"control: {row.verdict}" in texts
            if row.control == "comparison":
                assert f"comparison: {row.verdict}" in texts
    html = claims_html(table, SETTINGS)
    assert "specificity control: supported" in html and "comparison: supported" in html
    control_rows = [line for line in html.split("<tr ") if "specificity control: " in line and "<td>" in line]
    assert control_rows and all("#f5e6ef" in line for line in control_rows)
    assert "supported, not specific" in html


def test_every_axis_of_the_claims_figure_has_a_unit_and_c6_its_margin():
    from selectivity.claims.report import claims_figure

    table = full_table()
    figure = claims_figure(table, model="cnn7")
    labels = {claim: ax.get_xlabel() for ax, claim in zip(figure.axes, CLAIM_IDS)}
    assert "(fraction of units with gOSI > 0.33)" in labels["C1"]
    assert labels["C4"].endswith("(nats per image)") and labels["C6"].endswith("(nats per image)")
    assert (
        "(Spearman correlation (no unit))" in labels["C3"]
        and "(normalised invariance (no unit))" in labels["C5"]
    )
    c6 = figure.axes[CLAIM_IDS.index("C6")]
    dashed = [
        line for line in c6.get_lines() if line.get_linestyle() == "--" and len(set(line.get_xdata())) == 1
    ]
    assert [line.get_xdata()[0] for line in dashed] == [SETTINGS.equivalence_margin]
    assert any("margin 0.1" in text.get_text() for text in c6.texts)
    assert "supported (claim: below margin)" in [text.get_text() for text in c6.texts]


def test_statements_and_rules_are_made_from_the_settings():
    from selectivity.claims.wording import claim_statements, verdict_rules

    settings = ClaimSettings(
        selectivity_threshold=0.4, ablation_fraction=0.25, equivalence_margin=0.2, tuning_checkpoint="best",
        confidence=0.9,
    )  # fmt: skip
    statements, rules = claim_statements(settings), verdict_rules(settings)
    text = " ".join([*statements.values(), *rules.values()])
    assert "50%" not in text and "0.33" not in text and "configured" not in text
    assert "top 25%" in statements["C4"] and "gOSI > 0.4" in statements["C1"]
    assert "margin of 0.2 nats per image" in statements["C6"]
    assert "best-validation checkpoint" in statements["C1"]
    assert "last saved epoch" in statements["C3"] and "last saved epoch" in rules["C3"]  # C3's own checkpoint
    assert "level 0.1" in rules["C1"] and "90%" in rules["C3"]
    assert "supported, not specific" in statements["C2"] and "matched" in statements["C4"]
    # the table carries the run's words
    networks = [(0.0, s, {"gosi": (0.5, 0.1, [0.2], [0.3])}) for s in range(5)]
    table = evaluate_claims(EMPTY, half_ablation_table(networks), EMPTY, settings)
    assert (table.loc[table.claim == "C4", "statement"] == statements["C4"]).all()
    assert "top 25% by gOSI" in test_row(table, "C4", "top_minus_random", "pooled")["reading"]
    with pytest.raises(ValueError, match="ablation_fraction.*1.5"):
        ClaimSettings(ablation_fraction=1.5)
