import matplotlib.image
import numpy as np
import pandas as pd
import pytest

import selectivity.figures.plots as plots
from selectivity.figures.drawing import clean_label_corruption, draw_figure, model_layer_order
from selectivity.figures.plots import (
    ACCURACY_LABEL,
    CONDITION_COLOURS,
    LOSS_LABEL,
    corruption_palette,
    cumulative_ablation_figure,
    example_tuning_curves_figure,
    grid,
    half_ablation_figure,
    label_epoch_axis,
    new_figure,
    selectivity_by_depth_figure,
    selectivity_distributions_figure,
    selectivity_over_training_figure,
    shift_invariance_figure,
    stimulus_sample_figure,
    training_curves_figure,
)

FAST = dict(confidence=0.95)
IDS = dict(model="cnn7", dataset="cifar10")
ORIENTATIONS = np.arange(0.0, 180.0, 15.0)
GOSI = {"conv1": [0.9, 0.5, 0.1, 0.0], "fc1": [0.3, 0.6, 0.2, 0.4]}  # conv1 unit 3 is dead


def metrics_table():
    rows = []
    for corruption in (0.0, 0.5):
        for seed in (0, 1):
            for epoch in range(4):
                accuracy = 0.1 + (0.2 - 0.3 * corruption) * epoch + 0.01 * seed
                rows.append(
                    dict(
                        IDS,
                        label_corruption=corruption,
                        seed=seed,
                        epoch=epoch,
                        train_loss=2.0 - 0.3 * epoch,
                        train_accuracy=accuracy,
                        train_loss_true_labels=2.0,
                        train_accuracy_true_labels=accuracy,
                        validation_loss=2.1,
                        validation_accuracy=accuracy,
                        test_loss=2.2,
                        test_accuracy=accuracy,
                        epoch_seconds=1.0,
                    )
                )
    return pd.DataFrame(rows)


def tuning_and_curves():
    """A one-checkpoint tuning table and curves (units, 2 SFs, 12 orientations) whose peak is at SF 1."""
    rows, curves = [], {"orientations_deg": ORIENTATIONS}
    for layer_index, (layer, gosi_values) in enumerate(GOSI.items()):
        responses = np.zeros((len(gosi_values), 2, len(ORIENTATIONS)))
        for unit, gosi in enumerate(gosi_values):
            dead = layer == "conv1" and unit == 3
            if not dead:
                responses[unit, 1] = 1.0 + gosi * np.cos(np.deg2rad(2 * ORIENTATIONS))
                responses[unit, 0] = 0.5
            for stimulus_set, value in (("gratings", gosi), ("shuffled", gosi / 4)):
                rows.append(
                    dict(
                        IDS,
                        label_corruption=0.0,
                        seed=0,
                        checkpoint="best",
                        epoch=3,
                        layer=layer,
                        layer_index=layer_index,
                        unit=unit,
                        stimulus_set=stimulus_set,
                        osi=value,
                        gosi=value,
                        preferred_spatial_frequency=1,
                        dead=dead,
                        selective=value > 0.33,
                    )
                )
        curves[layer] = responses
    return pd.DataFrame(rows), curves


def summary_table():
    rows = []
    for corruption in (0.0, 0.5):
        for seed in (0, 1, 2):
            for checkpoint, epoch in (("epoch", 0), ("epoch", 1), ("epoch", 10), ("best", 1)):
                accuracy = 0.1 + 0.05 * epoch * (1 - corruption) + 0.01 * seed
                for layer_index, layer in enumerate(("conv1", "conv2", "fc1")):
                    for stimulus_set in ("gratings", "shuffled"):
                        gosi = (
                            0.2 + 0.02 * epoch * (1 - corruption) + 0.01 * seed
                            if stimulus_set == "gratings"
                            else 0.1
                        )
                        rows.append(
                            dict(
                                IDS,
                                label_corruption=corruption,
                                seed=seed,
                                checkpoint=checkpoint,
                                epoch=epoch,
                                layer=layer,
                                layer_index=layer_index,
                                stimulus_set=stimulus_set,
                                mean_gosi=gosi,
                                fraction_selective=gosi / 2,
                                test_accuracy=accuracy,
                            )
                        )
    return pd.DataFrame(rows)


def half_ablation_table():
    rows = []
    for seed in (0, 1, 2):
        for layer_index, layer in enumerate(("conv1", "conv2")):
            for ranking in ("gosi", "class_selectivity"):
                conditions = [
                    ("top", 0, 0.5 + 0.1 * seed),
                    ("bottom", 0, 0.1),
                    ("random", 0, 0.2),
                    ("random", 1, 0.4),
                ]
                for condition, draw, increase in conditions:
                    rows.append(
                        dict(
                            IDS,
                            label_corruption=0.0,
                            seed=seed,
                            epoch=3,
                            layer=layer,
                            layer_index=layer_index,
                            ranking=ranking,
                            condition=condition,
                            draw=draw,
                            loss_increase_mean=increase,
                            accuracy_change=-increase / 10,
                        )
                    )
    return pd.DataFrame(rows)


def cumulative_table():
    rows = []
    for seed in (0, 1):
        for layer_index, layer in enumerate(("conv1", "conv2", "fc1")):
            for ordering in ("gosi_descending", "gosi_ascending", "random"):
                for fraction in (0.0, 0.5, 1.0):
                    rows.append(
                        dict(
                            IDS,
                            label_corruption=0.0,
                            seed=seed,
                            layer=layer,
                            layer_index=layer_index,
                            ordering=ordering,
                            draw=0,
                            fraction_ablated=fraction,
                            test_accuracy=0.8 - 0.7 * fraction,
                            test_loss=1.0 + fraction,
                        )
                    )
    return pd.DataFrame(rows)


def invariance_table():
    rows = []
    for seed in (0, 1):
        for measured in ("conv5", "fc1"):
            for direction in ("horizontal", "vertical"):
                for shift in (1, 2, 3):
                    base = dict(
                        IDS,
                        label_corruption=0.0,
                        seed=seed,
                        measured_layer=measured,
                        direction=direction,
                        shift_px=shift,
                        draw=0,
                    )
                    rows.append(
                        dict(
                            base,
                            ablated_layer="none",
                            condition="intact",
                            normalised_invariance_mean=0.9 - 0.1 * shift,
                            shift_correlation_mean=0.95,
                        )
                    )
                    for ablated in ("conv1", "conv2"):
                        for condition, value in (("top", 0.5), ("bottom", 0.7), ("random", 0.6)):
                            rows.append(
                                dict(
                                    base,
                                    ablated_layer=ablated,
                                    condition=condition,
                                    normalised_invariance_mean=value - 0.1 * shift,
                                    shift_correlation_mean=value + 0.2,
                                )
                            )
    return pd.DataFrame(rows)


def data_lines(ax):
    """The plotted lines of an axes (seaborn also adds empty lines as legend handles)."""
    return [line for line in ax.get_lines() if len(line.get_xdata()) > 0]


def suptitle(figure):
    """The figure title as one line (titles are wrapped to the figure's width)."""
    return figure.get_suptitle().replace("\n", " ")


def check_written(pdf_path, png_path):
    assert pdf_path.read_bytes()[:4] == b"%PDF"
    image = matplotlib.image.imread(png_path)
    assert image.ndim == 3 and min(image.shape[:2]) > 100
    assert image.std() > 0  # not a blank canvas


# ---------------------------------------------------------------- every plot function writes both files
# (small tables: rendering dominates the run time)


def only(table, **where):
    for column, values in where.items():
        table = table[table[column].isin(values)]
    return table


CASES = {
    "stimulus_sample": lambda pdf, png: plots.plot_stimulus_sample(
        np.random.default_rng(0).random((5, 3, 8, 8)), [f"stimulus {i}" for i in range(5)], pdf, png
    ),
    "training_curves": lambda pdf, png: plots.plot_training_curves(metrics_table(), pdf, png, **FAST),
    "example_tuning_curves": lambda pdf, png: plots.plot_example_tuning_curves(
        tuning_and_curves()[1], tuning_and_curves()[0], ORIENTATIONS, pdf, png
    ),
    "selectivity_distributions": lambda pdf, png: plots.plot_selectivity_distributions(
        tuning_and_curves()[0], pdf, png, value="osi"
    ),
    "selectivity_by_depth": lambda pdf, png: plots.plot_selectivity_by_depth(
        summary_table(), pdf, png, **FAST
    ),
    "selectivity_over_training": lambda pdf, png: plots.plot_selectivity_over_training(
        only(summary_table(), layer=["conv1"]), pdf, png, **FAST
    ),
    "selectivity_vs_accuracy": lambda pdf, png: plots.plot_selectivity_vs_accuracy(
        only(summary_table(), layer=["conv1", "fc1"]), pdf, png
    ),
    "half_ablation": lambda pdf, png: plots.plot_half_ablation(
        half_ablation_table(), pdf, png, values=["loss_increase_mean"], **FAST
    ),
    "cumulative_ablation": lambda pdf, png: plots.plot_cumulative_ablation(
        only(cumulative_table(), layer=["conv2"]), pdf, png, **FAST
    ),
    "shift_invariance": lambda pdf, png: plots.plot_shift_invariance(
        only(invariance_table(), measured_layer=["fc1"], ablated_layer=["none", "conv1"]), pdf, png, **FAST
    ),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_plot_writes_pdf_and_png(name, tmp_path):
    pdf, png = tmp_path / "figures" / f"{name}.pdf", tmp_path / "figures" / f"{name}.png"
    CASES[name](pdf, png)
    check_written(pdf, png)
    assert sorted(path.name for path in pdf.parent.iterdir()) == [
        f"{name}.pdf",
        f"{name}.png",
    ]  # no temp files


# ---------------------------------------------------------------- figure contents


def test_training_curves_layout_and_one_line_per_corruption_level():
    figure = training_curves_figure(metrics_table(), **FAST)
    assert len(figure.axes) == 8
    assert [ax.get_title() for ax in figure.axes[:4]] == [
        "train (trained labels)",
        "train (true labels)",
        "validation",
        "test",
    ]
    assert figure.axes[0].get_ylabel() == LOSS_LABEL and figure.axes[4].get_ylabel() == ACCURACY_LABEL
    assert figure.axes[4].get_xlabel() == "epoch"
    test_accuracy = figure.axes[7]
    assert len(data_lines(test_accuracy)) == 2
    clean_line = data_lines(test_accuracy)[0]
    np.testing.assert_allclose(clean_line.get_ydata(), [0.105 + 0.2 * epoch for epoch in range(4)])
    assert clean_line.get_color() == pytest.approx(corruption_palette([0.0])[0.0])
    assert all(ax.get_legend() is None for ax in figure.axes)  # one legend for the whole figure
    assert [text.get_text() for text in figure.legends[0].get_texts()] == ["0.0", "0.5"]


def test_example_tuning_curves_pick_most_median_and_least_selective_units():
    tuning, curves = tuning_and_curves()
    figure = example_tuning_curves_figure(curves, tuning, ORIENTATIONS)
    assert len(figure.axes) == 2  # one panel per layer
    # conv1's responsive units have gOSI 0.9, 0.5, 0.1 (unit 3 is dead and never shown)
    assert figure.axes[0].get_title() == "conv1: units 0 / 1 / 2\ngOSI 0.90 / 0.50 / 0.10"
    assert figure.axes[1].get_title() == "fc1: units 1 / 3 / 2\ngOSI 0.60 / 0.40 / 0.20"
    most_selective, median, least_selective = figure.axes[0].get_lines()
    assert [line.get_label() for line in (most_selective, median, least_selective)] == [
        "most selective",
        "median",
        "least selective",
    ]
    x, y = most_selective.get_data()
    assert x[-1] == 180.0 and y[-1] == pytest.approx(y[0])  # closed at 180 deg
    assert y.max() == pytest.approx(1.0) and y[6] == pytest.approx(0.1 / 1.9)  # 90 deg: (1 - 0.9) / (1 + 0.9)
    assert "clean labels, seed 0, best-validation checkpoint (epoch 3)" in suptitle(figure)


def test_example_tuning_curves_show_a_unit_once_when_a_layer_has_few_responsive_units():
    tuning, curves = tuning_and_curves()
    tuning = tuning.copy()
    tuning.loc[(tuning["layer"] == "conv1") & (tuning["unit"] > 0), "dead"] = True
    figure = example_tuning_curves_figure(curves, tuning, ORIENTATIONS)
    assert len(figure.axes[0].get_lines()) == 1
    assert figure.axes[0].get_title().startswith("conv1: units 0\n")


def test_example_tuning_curves_reject_several_checkpoints():
    tuning, curves = tuning_and_curves()
    with pytest.raises(ValueError, match="one checkpoint"):
        example_tuning_curves_figure(curves, pd.concat([tuning, tuning.assign(epoch=4)]), ORIENTATIONS)


def test_selectivity_distributions_one_panel_per_layer_in_depth_order():
    tuning, _ = tuning_and_curves()
    shuffled_order = tuning.iloc[::-1]
    figure = selectivity_distributions_figure(shuffled_order)
    # conv1's dead unit is counted, not drawn
    assert [ax.get_title() for ax in figure.axes] == ["conv1: 3 units (+1 dead, not shown)", "fc1: 4 units"]
    assert figure.axes[0].get_xlabel() == "gOSI"
    assert [text.get_text() for text in figure.legends[0].get_texts()] == [
        "gratings",
        "shuffled control",
        "selectivity\nthreshold 0.33",
    ]
    with pytest.raises(ValueError, match="'peak'"):
        selectivity_distributions_figure(tuning, value="peak")


def test_half_ablation_bars_are_means_over_networks():
    figure = half_ablation_figure(half_ablation_table(), **FAST)
    assert len(figure.axes) == 4  # (loss, accuracy) x (gosi, class selectivity)
    assert figure.axes[0].get_title() == "ranked by gOSI"
    assert figure.axes[1].get_title() == "ranked by class selectivity"
    heights = [patch.get_height() for patch in figure.axes[0].patches if patch.get_width() > 0]
    # hue order top, bottom, random; x order conv1, conv2; random averaged over draws first
    assert heights[:6] == pytest.approx([0.6, 0.6, 0.1, 0.1, 0.3, 0.3])
    bar_colours = {tuple(np.round(patch.get_facecolor()[:3], 3)) for patch in figure.axes[0].patches[:2]}
    assert bar_colours == {tuple(np.round(CONDITION_COLOURS["top"], 3))}


def test_half_ablation_shows_the_matched_random_control_of_the_gosi_ranking():
    table = half_ablation_table()
    matched = table[(table.ranking == "gosi") & (table.condition == "random")].assign(
        condition="matched", loss_increase_mean=0.45
    )
    figure = half_ablation_figure(pd.concat([table, matched]), **FAST)
    heights = [patch.get_height() for patch in figure.axes[0].patches if patch.get_width() > 0]
    # hue order top, bottom, random, matched; matched averaged over its draws like random
    assert heights[6:8] == pytest.approx([0.45, 0.45])
    colours = {tuple(np.round(patch.get_facecolor()[:3], 3)) for patch in figure.axes[0].patches[6:8]}
    assert colours == {tuple(np.round(CONDITION_COLOURS["matched"], 3))}
    labels = [text.get_text() for text in figure.legends[0].get_texts()]
    assert labels[-1] == "matched random half"  # the table has no unit counts to give a percentage
    assert "matched random" in figure._suptitle.get_text()


def test_cumulative_ablation_one_line_per_ordering():
    figure = cumulative_ablation_figure(cumulative_table(), **FAST)
    assert [ax.get_title() for ax in figure.axes] == ["conv1", "conv2", "fc1"]
    assert len(data_lines(figure.axes[0])) == 3
    np.testing.assert_allclose(data_lines(figure.axes[0])[0].get_ydata(), [0.8, 0.45, 0.1])
    assert [text.get_text() for text in figure.legends[0].get_texts()] == [
        "highest gOSI first",
        "lowest gOSI first",
        "random order",
    ]


def test_cumulative_ablation_gives_each_ranking_its_own_block_with_the_random_reference():
    table = cumulative_table()
    class_rows = table[table["ordering"] != "random"].assign(
        ordering=lambda rows: rows["ordering"].str.replace("gosi", "class_selectivity"), test_accuracy=0.5
    )
    figure = cumulative_ablation_figure(pd.concat([table, class_rows]), **FAST)
    assert len(figure.axes) == 6  # (gOSI, class selectivity) x 3 layers
    assert [subfigure.get_suptitle() for subfigure in figure.subfigs] == [
        "ordered by gOSI",
        "ordered by class selectivity",
    ]
    class_block_lines = data_lines(figure.axes[3])
    assert len(class_block_lines) == 3
    np.testing.assert_allclose(
        class_block_lines[0].get_ydata(), [0.5, 0.5, 0.5]
    )  # highest class selectivity first
    np.testing.assert_allclose(class_block_lines[2].get_ydata(), [0.8, 0.45, 0.1])  # random, repeated
    assert len({ax.get_ylim() for ax in figure.axes}) == 1  # one y scale for both blocks


def test_shift_invariance_grid_repeats_the_intact_reference():
    figure = shift_invariance_figure(
        invariance_table(), layer_order_deep=["conv1", "conv2", "conv5", "fc1"], **FAST
    )
    assert len(figure.axes) == 2 * 2 * 2  # (normalised, raw) x measured x ablated
    normalised, raw = figure.axes[:4], figure.axes[4:]
    assert [ax.get_title() for ax in normalised] == [
        "conv5, conv1 ablated",
        "conv5, conv2 ablated",
        "fc1, conv1 ablated",
        "fc1, conv2 ablated",
    ]
    assert (
        normalised[0].get_ylabel() == "normalised invariance"
        and raw[0].get_ylabel() == "shift correlation (raw)"
    )
    lines = data_lines(normalised[2])
    assert len(lines) == 4  # intact, top, bottom, random
    np.testing.assert_allclose(lines[0].get_ydata(), [0.8, 0.7, 0.6])
    np.testing.assert_allclose(lines[1].get_ydata(), [0.4, 0.3, 0.2])  # top ablated
    np.testing.assert_allclose(data_lines(raw[2])[1].get_ydata(), [0.7, 0.7, 0.7])


def test_shift_invariance_orders_layers_shallow_to_deep_and_shows_image_sem_for_one_network():
    table = invariance_table()
    table = table[table["seed"] == 0].assign(normalised_invariance_sem=0.05, shift_correlation_sem=0.01)
    figure = shift_invariance_figure(table.iloc[::-1], layer_order_deep=model_layer_order("cnn7"), **FAST)
    assert figure.axes[0].get_title() == "conv5, conv1 ablated"
    bands = [collection for collection in figure.axes[0].collections if len(collection.get_paths())]
    assert len(bands) == 4  # mean +- SEM over images, one band per condition
    top_band = bands[1].get_paths()[0].vertices[:, 1]
    assert top_band.min() == pytest.approx(0.2 - 0.05) and top_band.max() == pytest.approx(0.4 + 0.05)
    assert "one network: bands ± SEM over test images" in suptitle(figure)


def test_multi_model_tables_are_refused_and_bad_images_named():
    metrics = pd.concat([metrics_table(), metrics_table().assign(model="cnn11")])
    with pytest.raises(ValueError, match="cnn11"):
        training_curves_figure(metrics)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stimulus_sample_figure(np.full((1, 3, 4, 4), 2.0), ["too bright"])
    with pytest.raises(ValueError, match="titles"):
        stimulus_sample_figure(np.zeros((2, 3, 4, 4)), ["one"])


# ---------------------------------------------------------------- fixed defects (one test each)


def test_half_ablation_shows_only_the_clean_networks_and_says_so():
    clean = half_ablation_table()
    corrupted = clean.assign(label_corruption=0.5, loss_increase_mean=9.0)
    figure = half_ablation_figure(pd.concat([clean, corrupted]), **FAST)
    heights = [patch.get_height() for patch in figure.axes[0].patches if patch.get_width() > 0]
    assert heights[:6] == pytest.approx(
        [0.6, 0.6, 0.1, 0.1, 0.3, 0.3]
    )  # the 0.5-corruption rows are left out
    assert "3 networks (seeds) with clean labels" in suptitle(figure)
    with pytest.raises(ValueError, match=r"label corruption 0.2.*\[0.0, 0.5\]"):
        half_ablation_figure(pd.concat([clean, corrupted]), label_corruption=0.2, **FAST)


def test_half_ablation_of_one_network_draws_the_image_sem():
    table = half_ablation_table()
    table = table[table["seed"] == 0].assign(loss_increase_sem=0.05)
    figure = half_ablation_figure(table, values=["loss_increase_mean"], **FAST)
    segments = [segment for collection in figure.axes[0].collections for segment in collection.get_segments()]
    # vertical segments at the bars' centres; top conv1: 0.5 +- 0.05
    spans = [tuple(np.round(segment[:, 1], 6)) for segment in segments if segment[0, 0] == segment[1, 0]]
    assert (0.45, 0.55) in spans
    assert len(spans) == 2 * 3  # layers x conditions


@pytest.mark.parametrize("n_layers, rotation", [(7, 45.0), (20, 90.0)])
def test_layer_names_are_rotated_so_that_they_never_overlap(n_layers, rotation):
    layers = [f"layer{i}_1" for i in range(n_layers)]
    summary = summary_table()
    summary = summary[summary["layer"] == "conv1"]
    summary = pd.concat([summary.assign(layer=name, layer_index=index) for index, name in enumerate(layers)])
    figure = selectivity_by_depth_figure(summary, **FAST)
    labels = figure.axes[0].get_xticklabels()
    assert [label.get_text() for label in labels] == layers
    assert {label.get_rotation() for label in labels} == {rotation}
    half = half_ablation_table()
    half = pd.concat(
        [
            half[half["layer"] == "conv1"].assign(layer=name, layer_index=index)
            for index, name in enumerate(layers)
        ]
    )
    bar_labels = half_ablation_figure(half, values=["loss_increase_mean"], **FAST).axes[0].get_xticklabels()
    assert {label.get_rotation() for label in bar_labels} == {rotation}


def test_epoch_axis_ticks_every_saved_epoch_and_labels_those_that_fit():
    figure, axes = new_figure(1, 2)
    paper_epochs = [0, 1, 2, 5, 10, 20, 50, 100, 150, 200]
    labelled = label_epoch_axis(axes[0, 0], paper_epochs, axis_width_inches=2.0)
    assert labelled == [
        0,
        1,
        2,
        5,
        10,
        50,
        200,
    ]  # round epochs first; 20, 100 and 150 would touch a neighbour
    assert list(axes[0, 0].xaxis.get_minor_locator().tick_values(0, 200)) == paper_epochs
    positions = axes[0, 0].xaxis.get_transform().transform(np.asarray(labelled, float))
    gaps_inches = np.diff(positions) / (positions[-1] - positions[0]) * 2.0
    assert gaps_inches.min() > 0.15  # wider than two digits at 8 pt: labels do not collide
    wide = label_epoch_axis(axes[0, 1], paper_epochs, axis_width_inches=6.0)
    assert wide == [epoch for epoch in paper_epochs if epoch != 150]  # 150 sits too close to 200 even here
    # the demo's few epochs are all labelled (the old axis labelled only 0 and 1)
    figure = selectivity_over_training_figure(summary_table(), **FAST)
    assert list(figure.axes[0].xaxis.get_major_locator().tick_values(0, 10)) == [0, 1, 10]
    assert "3 networks (seeds) with clean labels" in suptitle(figure)


def test_grid_fills_rows_evenly_and_keeps_x_labels_under_incomplete_rows():
    assert grid(7, 4) == (2, 4) and grid(5, 4) == (2, 3) and grid(20, 5) == (4, 5) and grid(1, 4) == (1, 1)
    with pytest.raises(ValueError, match="max_columns"):
        grid(3, 0)
    figure = selectivity_over_training_figure(summary_table(), **FAST)  # 3 layers: one row
    assert all(ax.get_xlabel() == "epoch" for ax in figure.axes if ax.get_title())
    tuning, curves = tuning_and_curves()
    tuning = pd.concat(
        [tuning]
        + [tuning[tuning["layer"] == "fc1"].assign(layer=f"fc{i}", layer_index=i) for i in range(2, 7)]
    )
    curves.update({f"fc{i}": curves["fc1"] for i in range(2, 7)})
    figure = example_tuning_curves_figure(curves, tuning, ORIENTATIONS, max_columns=4)  # 7 panels: 4 + 3
    bottom_of_column = [ax for ax in figure.axes if ax.get_xlabel()]
    assert [ax.get_title().split(":")[0] for ax in bottom_of_column] == ["fc3", "fc4", "fc5", "fc6"]
    assert all(label.get_visible() for label in bottom_of_column[0].get_xticklabels())


def test_draw_figure_shows_the_clean_networks_in_the_model_layer_order(tmp_path):
    table = only(invariance_table(), measured_layer=["fc1"], ablated_layer=["none", "conv1"])
    table = pd.concat([table, table.assign(label_corruption=0.4, normalised_invariance_mean=-5.0)])
    # the columns the figure does not draw, so that the file is a whole shift-invariance table
    table = table.assign(
        checkpoint="best",
        epoch=3,
        shift_correlation_sem=0.01,
        other_correlation_mean=0.1,
        normalised_invariance_sem=0.01,
        n_images=100,
    )
    path = tmp_path / "shift_invariance.csv"
    table.iloc[::-1].to_csv(path, index=False)
    assert clean_label_corruption(table) == 0.0
    assert model_layer_order("cnn7") == ["conv1", "conv2", "conv3", "conv4", "conv5", "conv6", "fc1"]
    assert model_layer_order("vgg16_imagenet")[:3] == ["conv1_1", "conv1_2", "pool1"]
    assert model_layer_order("unknown") is None
    pdf, png = tmp_path / "f.pdf", tmp_path / "f.png"
    draw_figure("shift_invariance", {"table": path}, "cnn7", {}, pdf, png)
    check_written(pdf, png)
    with pytest.raises(ValueError, match="unknown figure 'nope'"):
        draw_figure("nope", {}, "cnn7", {}, pdf, png)


def test_stimulus_panels_are_square_and_titled():
    figure = stimulus_sample_figure(
        np.random.default_rng(0).random((12, 3, 8, 8)),
        [f"s{i}" for i in range(12)],
        max_columns=4,
        title="Grating stimuli",
    )
    assert len(figure.axes) == 12 and figure.get_suptitle() == "Grating stimuli"
    width, height = figure.get_size_inches()
    assert width == pytest.approx(4 * 1.6) and height > 3 * 1.6


def test_network_band_is_the_tables_t_interval_and_needs_two_networks():
    from selectivity.statistics import mean_interval

    table = pd.DataFrame(
        {
            "model": "cnn7",
            "dataset": "cifar10",
            "label_corruption": 0.0,
            "seed": [0, 0, 1, 1, 2],
            "epoch": [0, 1, 0, 1, 0],
            "test_loss": [1.0, 2.0, 3.0, 4.0, 5.0],
        }
    )
    band = plots.mean_with_network_interval(table, "epoch", "test_loss")
    assert band["epoch"].tolist() == [0, 1] and band["n_networks"].tolist() == [3, 2]
    np.testing.assert_allclose(band["mean"], [3.0, 3.0])
    assert (band["low"][0], band["high"][0]) == pytest.approx(mean_interval([1.0, 3.0, 5.0])[1:])
    single = plots.mean_with_network_interval(table[table["seed"] == 0], "epoch", "test_loss")
    assert single["low"].isna().all() and single["mean"].tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="confidence"):
        plots.mean_with_network_interval(table, "epoch", "test_loss", confidence=1.5)
