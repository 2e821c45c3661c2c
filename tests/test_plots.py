import matplotlib.image
import numpy as np
import pandas as pd
import pytest

from selectivity import plots
from selectivity.plots import (
    CONDITION_COLOURS,
    corruption_palette,
    cumulative_ablation_figure,
    example_tuning_curves_figure,
    half_ablation_figure,
    selectivity_distributions_figure,
    shift_invariance_figure,
    stimulus_sample_figure,
    training_curves_figure,
)

FAST = dict(n_boot=50)
IDS = dict(model="cnn7", dataset="cifar10")
ORIENTATIONS = np.arange(0.0, 180.0, 15.0)
GOSI = {"conv1": [0.9, 0.5, 0.1, 0.0], "fc1": [0.3, 0.6, 0.2, 0.4]}  # conv1 unit 3 is dead


def metrics_table():
    rows = []
    for corruption in (0.0, 0.5):
        for seed in (0, 1):
            for epoch in range(4):
                accuracy = 0.1 + (0.2 - 0.3 * corruption) * epoch + 0.01 * seed
                rows.append(dict(IDS, label_corruption=corruption, seed=seed, epoch=epoch, train_loss=2.0 - 0.3 * epoch,
                                 train_accuracy=accuracy, train_loss_true_labels=2.0, train_accuracy_true_labels=accuracy,
                                 validation_loss=2.1, validation_accuracy=accuracy, test_loss=2.2,
                                 test_accuracy=accuracy, epoch_seconds=1.0))
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
                rows.append(dict(IDS, label_corruption=0.0, seed=0, checkpoint="best", epoch=3, layer=layer,
                                 layer_index=layer_index, unit=unit, stimulus_set=stimulus_set, osi=value, gosi=value,
                                 preferred_spatial_frequency=1, dead=dead, selective=value > 0.33))
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
                        gosi = 0.2 + 0.02 * epoch * (1 - corruption) + 0.01 * seed if stimulus_set == "gratings" else 0.1
                        rows.append(dict(IDS, label_corruption=corruption, seed=seed, checkpoint=checkpoint,
                                         epoch=epoch, layer=layer, layer_index=layer_index, stimulus_set=stimulus_set,
                                         mean_gosi=gosi, fraction_selective=gosi / 2, test_accuracy=accuracy))
    return pd.DataFrame(rows)


def half_ablation_table():
    rows = []
    for seed in (0, 1, 2):
        for layer_index, layer in enumerate(("conv1", "conv2")):
            for ranking in ("gosi", "class_selectivity"):
                conditions = [("top", 0, 0.5 + 0.1 * seed), ("bottom", 0, 0.1), ("random", 0, 0.2), ("random", 1, 0.4)]
                for condition, draw, increase in conditions:
                    rows.append(dict(IDS, label_corruption=0.0, seed=seed, epoch=3, layer=layer,
                                     layer_index=layer_index, ranking=ranking, condition=condition, draw=draw,
                                     loss_increase_mean=increase, accuracy_change=-increase / 10))
    return pd.DataFrame(rows)


def cumulative_table():
    rows = []
    for seed in (0, 1):
        for layer_index, layer in enumerate(("conv1", "conv2", "fc1")):
            for ordering in ("gosi_descending", "gosi_ascending", "random"):
                for fraction in (0.0, 0.5, 1.0):
                    rows.append(dict(IDS, label_corruption=0.0, seed=seed, layer=layer, layer_index=layer_index,
                                     ordering=ordering, draw=0, fraction_ablated=fraction,
                                     test_accuracy=0.8 - 0.7 * fraction, test_loss=1.0 + fraction))
    return pd.DataFrame(rows)


def invariance_table():
    rows = []
    for seed in (0, 1):
        for measured in ("conv5", "fc1"):
            for direction in ("horizontal", "vertical"):
                for shift in (1, 2, 3):
                    base = dict(IDS, label_corruption=0.0, seed=seed, measured_layer=measured, direction=direction,
                                shift_px=shift, draw=0)
                    rows.append(dict(base, ablated_layer="none", condition="intact",
                                     normalised_invariance_mean=0.9 - 0.1 * shift, shift_correlation_mean=0.95))
                    for ablated in ("conv1", "conv2"):
                        for condition, value in (("top", 0.5), ("bottom", 0.7), ("random", 0.6)):
                            rows.append(dict(base, ablated_layer=ablated, condition=condition,
                                             normalised_invariance_mean=value - 0.1 * shift,
                                             shift_correlation_mean=value + 0.2))
    return pd.DataFrame(rows)


def data_lines(ax):
    """The plotted lines of an axes (seaborn also adds empty lines as legend handles)."""
    return [line for line in ax.get_lines() if len(line.get_xdata()) > 0]


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
        np.random.default_rng(0).random((5, 3, 8, 8)), [f"stimulus {i}" for i in range(5)], pdf, png),
    "training_curves": lambda pdf, png: plots.plot_training_curves(metrics_table(), pdf, png, **FAST),
    "example_tuning_curves": lambda pdf, png: plots.plot_example_tuning_curves(
        tuning_and_curves()[1], tuning_and_curves()[0], ORIENTATIONS, pdf, png),
    "selectivity_distributions": lambda pdf, png: plots.plot_selectivity_distributions(
        tuning_and_curves()[0], pdf, png, value="osi"),
    "selectivity_by_depth": lambda pdf, png: plots.plot_selectivity_by_depth(summary_table(), pdf, png, **FAST),
    "selectivity_over_training": lambda pdf, png: plots.plot_selectivity_over_training(
        only(summary_table(), layer=["conv1"]), pdf, png, **FAST),
    "selectivity_vs_accuracy": lambda pdf, png: plots.plot_selectivity_vs_accuracy(
        only(summary_table(), layer=["conv1", "fc1"]), pdf, png),
    "half_ablation": lambda pdf, png: plots.plot_half_ablation(
        half_ablation_table(), pdf, png, values=["loss_increase_mean"], **FAST),
    "cumulative_ablation": lambda pdf, png: plots.plot_cumulative_ablation(
        only(cumulative_table(), layer=["conv2"]), pdf, png, **FAST),
    "shift_invariance": lambda pdf, png: plots.plot_shift_invariance(
        only(invariance_table(), measured_layer=["fc1"], ablated_layer=["none", "conv1"]), pdf, png, **FAST),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_plot_writes_pdf_and_png(name, tmp_path):
    pdf, png = tmp_path / "figures" / f"{name}.pdf", tmp_path / "figures" / f"{name}.png"
    CASES[name](pdf, png)
    check_written(pdf, png)
    assert sorted(path.name for path in pdf.parent.iterdir()) == [f"{name}.pdf", f"{name}.png"]  # no temp files


# ---------------------------------------------------------------- figure contents


def test_training_curves_layout_and_one_line_per_corruption_level():
    figure = training_curves_figure(metrics_table(), **FAST)
    assert len(figure.axes) == 8
    assert [ax.get_title() for ax in figure.axes[:4]] == ["train (trained labels)", "train (true labels)",
                                                           "validation", "test"]
    assert figure.axes[0].get_ylabel() == "cross-entropy loss" and figure.axes[4].get_ylabel() == "accuracy"
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
    assert len(figure.axes) == 6  # 2 layers x 3 examples
    titles = [ax.get_title() for ax in figure.axes]
    # conv1's responsive units have gOSI 0.9, 0.5, 0.1 (unit 3 is dead and never shown)
    assert titles[:3] == ["conv1 unit 0 (most selective): gOSI 0.90", "conv1 unit 1 (median): gOSI 0.50",
                          "conv1 unit 2 (least selective): gOSI 0.10"]
    assert titles[3].startswith("fc1 unit 1 (most selective)")
    x, y = figure.axes[0].get_lines()[0].get_data()
    assert x[-1] == 180.0 and y[-1] == pytest.approx(y[0])  # closed at 180 deg
    assert y.max() == pytest.approx(1.0) and y[6] == pytest.approx(0.1 / 1.9)  # 90 deg: (1 - 0.9) / (1 + 0.9)


def test_example_tuning_curves_reject_several_checkpoints():
    tuning, curves = tuning_and_curves()
    with pytest.raises(ValueError, match="one checkpoint"):
        example_tuning_curves_figure(curves, pd.concat([tuning, tuning.assign(epoch=4)]), ORIENTATIONS)


def test_selectivity_distributions_one_panel_per_layer_in_depth_order():
    tuning, _ = tuning_and_curves()
    shuffled_order = tuning.iloc[::-1]
    figure = selectivity_distributions_figure(shuffled_order)
    assert [ax.get_title() for ax in figure.axes] == ["conv1", "fc1"]
    assert figure.axes[0].get_xlabel() == "gOSI"
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


def test_cumulative_ablation_one_line_per_ordering():
    figure = cumulative_ablation_figure(cumulative_table(), **FAST)
    assert [ax.get_title() for ax in figure.axes] == ["conv1", "conv2", "fc1"]
    assert len(data_lines(figure.axes[0])) == 3
    np.testing.assert_allclose(data_lines(figure.axes[0])[0].get_ydata(), [0.8, 0.45, 0.1])


def test_shift_invariance_grid_repeats_the_intact_reference():
    figure = shift_invariance_figure(invariance_table(), layer_order_deep=["conv1", "conv2", "conv5", "fc1"], **FAST)
    assert len(figure.axes) == 2 * 2 * 2  # measured x ablated x (normalised, raw)
    assert figure.axes[0].get_title() == "conv5, conv1 ablated"
    assert figure.axes[0].get_ylabel() == "normalised invariance"
    assert figure.axes[1].get_ylabel() == "shift correlation (raw)"
    assert len(data_lines(figure.axes[2])) == 4  # intact, top, bottom, random
    np.testing.assert_allclose(data_lines(figure.axes[2])[0].get_ydata(), [0.8, 0.7, 0.6])


def test_multi_model_tables_are_refused_and_bad_images_named():
    metrics = pd.concat([metrics_table(), metrics_table().assign(model="cnn11")])
    with pytest.raises(ValueError, match="cnn11"):
        training_curves_figure(metrics)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        stimulus_sample_figure(np.full((1, 3, 4, 4), 2.0), ["too bright"])
    with pytest.raises(ValueError, match="titles"):
        stimulus_sample_figure(np.zeros((2, 3, 4, 4)), ["one"])
