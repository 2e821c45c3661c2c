import logging

import numpy as np
import pandas as pd
import pytest

from selectivity.statistics import fisher_interval, mean_interval, median_interval
from selectivity.tuning.summaries import (
    correlations_across_epochs,
    correlations_across_networks,
    layer_average,
    select_checkpoint,
    selectivity_summary,
    summarise_across_seeds,
)

NETWORK = dict(model="cnn7", dataset="cifar10", label_corruption=0.0)
# gOSI of the 4 units of each layer; conv1 unit 3 is dead.
GOSI = {"conv1": [0.9, 0.5, 0.2, 0.0], "fc1": [0.1, 0.4, 0.3, 0.2]}
OSI = {"conv1": [1.0, 0.6, 0.3, 0.0], "fc1": [0.2, 0.2, 0.2, 0.2]}


def tuning_table(seeds=(0, 1), epochs=(0, 1, 2), best_epoch=1) -> pd.DataFrame:
    """Per-unit rows; the gratings gOSI grow by 0.01 per epoch, the shuffled set is a tenth of it."""
    rows = []
    checkpoints = [("epoch", epoch) for epoch in epochs] + [("best", best_epoch)]
    for seed in seeds:
        for checkpoint, epoch in checkpoints:
            for layer_index, layer in enumerate(GOSI):
                for unit, (gosi, osi) in enumerate(zip(GOSI[layer], OSI[layer])):
                    for stimulus_set, scale in (("gratings", 1.0), ("shuffled", 0.1)):
                        dead = layer == "conv1" and unit == 3
                        value = 0.0 if dead else scale * (gosi + 0.01 * epoch)
                        rows.append(
                            dict(
                                NETWORK,
                                seed=seed,
                                checkpoint=checkpoint,
                                epoch=epoch,
                                layer=layer,
                                layer_index=layer_index,
                                unit=unit,
                                stimulus_set=stimulus_set,
                                osi=0.0 if dead else scale * osi,
                                gosi=value,
                                peak_response=0.0 if dead else 2.0 + unit,
                                dead=dead,
                            )
                        )
    return pd.DataFrame(rows)


def metrics_table(seeds=(0, 1), epochs=(0, 1, 2)) -> pd.DataFrame:
    rows = []
    for seed in seeds:
        for epoch in epochs:
            accuracy = 0.1 + 0.2 * epoch + 0.01 * seed
            rows.append(
                dict(
                    NETWORK,
                    seed=seed,
                    epoch=epoch,
                    train_loss=1.0,
                    train_accuracy=accuracy,
                    train_loss_true_labels=1.0,
                    train_accuracy_true_labels=accuracy,
                    validation_loss=2.0 - epoch,
                    validation_accuracy=accuracy,
                    test_loss=2.5 - epoch,
                    test_accuracy=accuracy,
                    epoch_seconds=1.0,
                )
            )
    return pd.DataFrame(rows)


def row(summary, **where):
    selected = summary
    for column, value in where.items():
        selected = selected[selected[column] == value]
    assert len(selected) == 1, where
    return selected.iloc[0]


def test_selectivity_summary_counts_and_averages():
    summary = selectivity_summary(tuning_table(), metrics_table())
    assert len(summary) == 2 * 4 * 2 * 2  # seeds x checkpoints x layers x stimulus sets
    conv1 = row(summary, seed=0, checkpoint="epoch", epoch=2, layer="conv1", stimulus_set="gratings")
    assert conv1["n_units"] == 4
    assert conv1["mean_gosi"] == pytest.approx((0.92 + 0.52 + 0.22 + 0.0) / 4)  # dead unit counts as 0
    assert conv1["median_gosi"] == pytest.approx((0.52 + 0.22) / 2)
    assert conv1["mean_osi"] == pytest.approx((1.0 + 0.6 + 0.3) / 4)
    assert conv1["fraction_selective"] == pytest.approx(0.5)  # 0.92 and 0.52 exceed 0.33
    assert conv1["fraction_dead"] == pytest.approx(0.25) and conv1["n_dead"] == 1
    assert conv1["mean_gosi_responsive"] == pytest.approx((0.92 + 0.52 + 0.22) / 3)  # dead unit left out
    assert conv1["mean_peak_response"] == pytest.approx((2.0 + 3.0 + 4.0 + 0.0) / 4)
    assert conv1["test_accuracy"] == pytest.approx(0.5)
    assert conv1["test_loss"] == pytest.approx(0.5)
    shuffled = row(summary, seed=0, checkpoint="epoch", epoch=2, layer="conv1", stimulus_set="shuffled")
    assert shuffled["fraction_selective"] == 0.0
    fc1 = row(summary, seed=1, checkpoint="epoch", epoch=0, layer="fc1", stimulus_set="gratings")
    assert fc1["fraction_selective"] == pytest.approx(0.25) and fc1["fraction_dead"] == 0.0


def test_selectivity_summary_best_checkpoint_gets_its_real_epochs_metrics():
    summary = selectivity_summary(tuning_table(), metrics_table())
    best = row(summary, seed=1, checkpoint="best", layer="fc1", stimulus_set="gratings")
    assert best["epoch"] == 1
    assert best["validation_loss"] == pytest.approx(1.0)
    assert best["test_accuracy"] == pytest.approx(0.31)


def test_selectivity_summary_threshold_is_applied_and_recorded():
    summary = selectivity_summary(tuning_table(), metrics_table(), selectivity_threshold=0.6)
    conv1 = row(summary, seed=0, checkpoint="epoch", epoch=0, layer="conv1", stimulus_set="gratings")
    assert conv1["fraction_selective"] == pytest.approx(0.25)
    assert (summary["selectivity_threshold"] == 0.6).all()


def test_selectivity_summary_reads_dead_flags_written_as_text():
    tuning = tuning_table()
    tuning["dead"] = tuning["dead"].map({True: "True", False: "False"})
    summary = selectivity_summary(tuning, metrics_table())
    assert row(summary, seed=0, checkpoint="epoch", epoch=0, layer="conv1", stimulus_set="gratings")[
        "fraction_dead"
    ] == pytest.approx(0.25)
    tuning["dead"] = "maybe"
    with pytest.raises(ValueError, match="maybe"):
        selectivity_summary(tuning, metrics_table())


def test_selectivity_summary_rejects_bad_input():
    with pytest.raises(ValueError, match="gosi"):
        selectivity_summary(tuning_table().drop(columns="gosi"), metrics_table())
    tuning = tuning_table()
    with pytest.raises(ValueError, match="more than one row"):
        selectivity_summary(pd.concat([tuning, tuning.iloc[:1]]), metrics_table())
    metrics = metrics_table()
    with pytest.raises(ValueError, match="more than one row"):
        selectivity_summary(tuning, pd.concat([metrics, metrics.iloc[:1]]))


def test_selectivity_summary_leaves_accuracy_empty_without_metrics(caplog):
    with caplog.at_level(logging.WARNING):
        summary = selectivity_summary(tuning_table(), metrics_table(epochs=(0, 1)))
    assert summary.loc[summary["epoch"] == 2, "test_accuracy"].isna().all()
    assert summary.loc[summary["epoch"] == 1, "test_accuracy"].notna().all()
    assert "no metrics row" in caplog.text


def summary_rows(networks, layers=("conv1", "conv2")) -> pd.DataFrame:
    """A summary table from (label_corruption, seed, epoch, checkpoint, mean_gosi, accuracy) tuples."""
    rows = []
    for label_corruption, seed, epoch, checkpoint, gosi, accuracy in networks:
        for layer_index, layer in enumerate(layers):
            for stimulus_set in ("gratings", "shuffled"):
                value = gosi + 0.1 * layer_index if stimulus_set == "gratings" else 0.05
                rows.append(
                    dict(
                        model="cnn7",
                        dataset="cifar10",
                        label_corruption=label_corruption,
                        seed=seed,
                        checkpoint=checkpoint,
                        epoch=epoch,
                        layer=layer,
                        layer_index=layer_index,
                        stimulus_set=stimulus_set,
                        mean_gosi=value,
                        fraction_selective=value,
                        selectivity_threshold=0.33,
                        test_accuracy=accuracy,
                    )
                )
    return pd.DataFrame(rows)


def test_correlations_across_epochs_known_signs_and_epoch_choice():
    summary = summary_rows(
        [(0.0, 0, e, "epoch", 0.1 * e, 0.1 + 0.2 * e) for e in range(4)]  # rises with accuracy
        + [(0.0, 1, e, "epoch", 0.5 - 0.1 * e, 0.1 + 0.2 * e) for e in range(4)]  # falls
        + [(0.0, 1, 2, "best", 10.0, 0.0)]  # best checkpoint: must not enter
    )
    table = correlations_across_epochs(summary)
    assert list(table.columns) == [
        "model",
        "dataset",
        "label_corruption",
        "seed",
        "layer",
        "layer_index",
        "measure",
        "method",
        "correlation",
        "n_epochs",
    ]
    assert table.loc[table["seed"] == 0, "correlation"].tolist() == pytest.approx([1.0, 1.0])
    assert table.loc[table["seed"] == 1, "correlation"].tolist() == pytest.approx([-1.0, -1.0])
    assert (table["n_epochs"] == 4).all()
    without_init = correlations_across_epochs(summary, include_initialisation=False)
    assert (without_init["n_epochs"] == 3).all()


def test_correlations_across_epochs_undefined_when_selectivity_never_changes():
    summary = summary_rows([(0.0, 0, e, "epoch", 0.3, 0.1 * e) for e in range(4)])
    assert correlations_across_epochs(summary)["correlation"].isna().all()


def test_summarise_across_seeds_median_and_its_interval():
    per_network = pd.DataFrame(
        dict(
            model="cnn7",
            dataset="cifar10",
            label_corruption=0.0,
            layer="conv1",
            layer_index=0,
            measure="mean_gosi",
            method="spearman",
            seed=[0, 1, 2, 3],
            correlation=[0.2, 0.6, 0.9, np.nan],
        )
    )
    table = summarise_across_seeds(per_network)
    assert len(table) == 1
    result = table.iloc[0]
    assert result["estimate"] == pytest.approx(0.6)
    assert (result["ci_low"], result["ci_high"]) == pytest.approx(median_interval([0.2, 0.6, 0.9])[1:3])
    assert result["n_networks"] == 3 and result["n_undefined"] == 1
    assert result["measure"] == "mean_gosi" and result["average"] == "median"
    plain = summarise_across_seeds(per_network, average="mean").iloc[0]
    assert (plain["estimate"], plain["ci_low"], plain["ci_high"]) == pytest.approx(
        mean_interval([0.2, 0.6, 0.9])
    )


def test_summarise_across_seeds_refuses_mixed_carried_columns():
    per_network = pd.DataFrame(
        dict(
            model="cnn7",
            dataset="cifar10",
            label_corruption=0.0,
            layer="conv1",
            layer_index=0,
            measure=["mean_gosi", "mean_osi"],
            seed=[0, 1],
            correlation=[0.1, 0.2],
        )
    )
    with pytest.raises(ValueError, match="measure"):
        summarise_across_seeds(per_network)
    with pytest.raises(ValueError, match="fisher"):
        summarise_across_seeds(per_network, average="fisher")


def test_select_checkpoint_final_is_each_networks_last_saved_epoch():
    summary = summary_rows(
        [
            (0.0, 0, 0, "epoch", 0.1, 0.1),
            (0.0, 0, 5, "epoch", 0.2, 0.2),
            (0.0, 0, 3, "best", 0.3, 0.3),
            (0.2, 0, 0, "epoch", 0.1, 0.1),
            (0.2, 0, 4, "epoch", 0.2, 0.2),
        ]
    )
    final = select_checkpoint(summary, "final")
    assert sorted(final[["label_corruption", "epoch"]].drop_duplicates().itertuples(index=False)) == [
        (0.0, 5),
        (0.2, 4),
    ]
    assert set(select_checkpoint(summary, "best")["epoch"]) == {3}
    with pytest.raises(ValueError, match="last"):
        select_checkpoint(summary, "last")


def test_correlations_across_networks_uses_final_epochs():
    networks = []
    for index, corruption in enumerate([0.0, 0.2, 0.4, 0.6, 0.8]):
        # Final accuracy falls with corruption, gOSI too; epoch 0 is inversely related (must be ignored).
        networks += [
            (corruption, 0, 0, "epoch", 0.1 * index, 0.1),
            (corruption, 0, 10, "epoch", 0.5 - 0.1 * index, 0.9 - 0.15 * index),
        ]
    table = correlations_across_networks(summary_rows(networks))
    assert len(table) == 2  # conv1, conv2
    assert table["correlation"].tolist() == pytest.approx([1.0, 1.0])
    assert table["ci_low"].tolist() == pytest.approx([fisher_interval(1.0, 5)[0]] * 2)
    assert (table["n_networks"] == 5).all() and (table["n_label_corruption_levels"] == 5).all()
    assert (table["n_seeds"] == 1).all() and (table["checkpoint"] == "final").all()


def test_layer_average_requires_every_layer():
    summary = summary_rows([(0.0, 0, 1, "epoch", 0.2, 0.5), (0.0, 1, 1, "epoch", 0.4, 0.6)])
    summary = summary[~((summary["seed"] == 1) & (summary["layer"] == "conv2"))]
    averaged = layer_average(summary, ["conv1", "conv2"])
    assert averaged["seed"].tolist() == [0]
    assert averaged["mean_gosi"].iloc[0] == pytest.approx(0.25)  # (0.2 + 0.3) / 2
    assert averaged["test_accuracy"].iloc[0] == pytest.approx(0.5)


def test_causal_summary_averages_draws_within_networks_before_resampling():
    from selectivity.causal.summaries import summarise_causal_table

    rows = []
    for seed, top in enumerate([0.5, 0.7, 0.9]):
        base = dict(
            model="cnn7",
            dataset="d",
            label_corruption=0.0,
            seed=seed,
            layer="conv1",
            layer_index=0,
            ranking="gosi",
            accuracy_change=-0.1,
        )
        rows.append(dict(base, condition="top", draw=0, loss_increase_mean=top))
        # two random draws per network: 0.1 and 0.3 -> network mean 0.2 for every seed
        rows += [
            dict(base, condition="random", draw=d, loss_increase_mean=v) for d, v in enumerate([0.1, 0.3])
        ]
    summary = summarise_causal_table(pd.DataFrame(rows), "half_ablation")
    loss = summary[summary.value == "loss_increase_mean"].set_index("condition")
    assert loss.loc["top", "estimate"] == pytest.approx(0.7)
    assert loss.loc["random", "estimate"] == pytest.approx(0.2)
    assert loss.loc["random", "ci_low"] == pytest.approx(0.2) and loss.loc[
        "random", "ci_high"
    ] == pytest.approx(0.2)
    assert (loss["n_networks"] == 3).all()
    assert (loss.loc["top", "ci_low"], loss.loc["top", "ci_high"]) == pytest.approx(
        mean_interval([0.5, 0.7, 0.9])[1:]
    )
    with pytest.raises(ValueError, match="kind must be one of"):
        summarise_causal_table(pd.DataFrame(rows), "cumulative")
