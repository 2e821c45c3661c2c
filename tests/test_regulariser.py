"""The selectivity regulariser (docs/method.md §2.10): its differentiable indices are the tuning
analysis's indices, its gradient moves them the promised way, its grating pass leaves BatchNorm and
the optimiser alone, stacked networks get exactly their own term, every trainable architecture
takes it, and on a tiny synthetic run the ordinary tuning analysis sees the regularised layers'
selectivity move with the coefficient beyond the shuffled control."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch

from selectivity.networks.checkpoints import (
    CheckpointError,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from selectivity.networks.grouped import stack_networks
from selectivity.networks.loaded import LoadedNetwork
from selectivity.networks.models import TRAINABLE_MODELS
from selectivity.regularisation import RegularisationSettings
from selectivity.training import (
    LockstepTrainer,
    NetworkSpec,
    TrainingSettings,
    draw_epoch_plan,
    initial_network,
    stream_generator,
)
from selectivity.training.regulariser import SelectivityRegulariser
from selectivity.tuning import differentiable
from selectivity.tuning.analysis import (
    TuningSettings,
    analyse_tuning,
    global_orientation_selectivity_index,
    preferred_spatial_frequency_curves,
)
from selectivity.tuning.features import (
    colour_response_maxima,
    colour_selectivity_index,
    phase_modulation_index,
    preferred_grating,
    spatial_frequency_curves,
    spatial_frequency_selectivity_index,
)

FEATURES = ("orientation", "spatial_frequency", "phase", "colour")
ORIENTATIONS = np.arange(12) * 15.0
PHASES = np.arange(4) * 90.0


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def synthetic_responses(units=40, shape=(9, 12, 4), seed=0) -> np.ndarray:
    """Sparse non-negative responses with a dead unit, a unit with ties and a one-stimulus unit."""
    rng = np.random.default_rng(seed)
    responses = np.maximum(rng.normal(size=(units, *shape)), 0) ** 2
    responses[0] = 0.0  # dead
    responses[1] = 1.0  # every entry tied
    responses[2] = 0.0
    responses[(2,) + tuple(n // 2 for n in shape)] = 2.0  # one stimulus only
    return responses


# ------------------------------------------------------------- the indices themselves


def test_differentiable_indices_equal_the_tuning_analysis_on_the_same_responses():
    responses = synthetic_responses()
    centre = synthetic_responses(seed=1)
    colour = synthetic_responses(shape=(3, 4, 6, 4), seed=2)
    torch_responses = torch.as_tensor(responses)
    phase_max = responses.max(axis=-1)
    _, curves = preferred_spatial_frequency_curves(phase_max)
    np.testing.assert_allclose(
        differentiable.global_orientation_selectivity(torch_responses, ORIENTATIONS).numpy(),
        global_orientation_selectivity_index(curves, ORIENTATIONS),
        rtol=0,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        differentiable.spatial_frequency_selectivity(torch_responses).numpy(),
        spatial_frequency_selectivity_index(spatial_frequency_curves(phase_max)),
        rtol=0,
        atol=1e-12,
    )
    sf, orientation = preferred_grating(phase_max)
    expected_phase = phase_modulation_index(centre[np.arange(len(centre)), sf, orientation], PHASES)
    np.testing.assert_allclose(
        differentiable.phase_modulation(torch_responses, torch.as_tensor(centre), PHASES).numpy(),
        expected_phase,
        rtol=0,
        atol=1e-12,
    )
    np.testing.assert_allclose(
        differentiable.colour_selectivity(torch.as_tensor(colour)).numpy(),
        colour_selectivity_index(colour_response_maxima(colour)),
        rtol=0,
        atol=1e-12,
    )
    # the conventions of the analysis: a dead unit has gOSI and SF selectivity 0, and no F1/F0
    assert differentiable.global_orientation_selectivity(torch_responses, ORIENTATIONS)[0] == 0
    assert np.isnan(expected_phase[0])


def _index(feature: str, responses: torch.Tensor) -> torch.Tensor:
    """A layer's mean index as the regulariser takes it (the colour set has its own axes)."""
    if feature == "orientation":
        return differentiable.global_orientation_selectivity(responses, ORIENTATIONS).mean()
    if feature == "spatial_frequency":
        return differentiable.spatial_frequency_selectivity(responses).mean()
    if feature == "phase":
        return differentiable.mean_defined(differentiable.phase_modulation(responses, responses, PHASES))
    return differentiable.mean_defined(differentiable.colour_selectivity(responses))


@pytest.mark.parametrize("feature", FEATURES)
@pytest.mark.parametrize("coefficient", [-1.0, 1.0])
def test_a_gradient_step_on_the_term_moves_the_index_the_promised_way(feature, coefficient):
    """Negative coefficients raise the index, positive ones lower it; dead units give no NaN."""
    shape = (3, 4, 6, 4) if feature == "colour" else (9, 12, 4)
    responses = torch.tensor(synthetic_responses(shape=shape, seed=3), requires_grad=True)
    before = _index(feature, responses)
    (coefficient * before).backward()
    assert torch.isfinite(responses.grad).all()
    with torch.no_grad():
        after = _index(feature, torch.relu(responses - 1e-3 * responses.grad))
    assert (after - before.detach()) * -coefficient > 0, (feature, float(before), float(after))


# ------------------------------------------------------------- the grating pass in networks


def settings_for(
    feature="orientation", layers=("conv1", "conv2"), every_steps=1, **grid
) -> RegularisationSettings:
    return RegularisationSettings(feature, tuple(layers), every_steps, **grid)


# A grating grid of 16 images instead of the tuning analysis's 432, for tests of how the term reaches
# each network (what the grid holds does not change that), which otherwise take seconds per step.
SMALL_GRID = {"orientations": 4, "phases": 2, "spatial_frequencies": 2}


@pytest.mark.parametrize("feature", FEATURES)
def test_the_regularised_index_of_a_network_is_its_tuning_tables_mean_index(feature):
    """The regulariser and the ordinary tuning analysis (§3) measure the same number."""
    network = initial_network("cnn7", 0)
    input_mean = torch.rand(3, 32, 32, generator=torch.Generator().manual_seed(0)) * 0.2 + 0.4
    regulariser = SelectivityRegulariser(settings_for(feature), [1.0], input_mean, "cpu")
    with torch.no_grad():
        index = float(regulariser.network_indices(network)[0])
    loaded = LoadedNetwork(copy.deepcopy(network).eval(), input_mean, 0, {})
    table = analyse_tuning(
        loaded,
        TuningSettings(features=("orientation", feature) if feature != "orientation" else ("orientation",)),
        {},
    ).table
    column = {
        "orientation": "gosi",
        "spatial_frequency": "spatial_frequency_selectivity",
        "phase": "phase_modulation",
        "colour": "colour_selectivity",
    }[feature]
    gratings = table[(table["stimulus_set"] == "gratings") & table["layer"].isin(["conv1", "conv2"])]
    expected = gratings.groupby("layer")[column].mean().mean()  # NaN (undefined) units left out
    assert index == pytest.approx(expected, rel=1e-6, abs=1e-9)


def test_the_grating_pass_leaves_batchnorm_statistics_and_the_training_mode_alone():
    network = initial_network("cnn7", 1).train()
    buffers = {name: value.clone() for name, value in network.named_buffers()}
    regulariser = SelectivityRegulariser(
        settings_for(layers=("conv1", "conv3")), [-1.0], torch.zeros(3, 32, 32), "cpu"
    )
    regulariser.penalty(network).backward()
    assert network.training
    for name, value in network.named_buffers():
        assert torch.equal(value, buffers[name]), name
    stacked = stack_networks([initial_network("cnn7", seed) for seed in (0, 1)]).train()
    stacked_buffers = {name: value.clone() for name, value in stacked.named_buffers()}
    SelectivityRegulariser(settings_for(), [1.0, -1.0], torch.zeros(3, 32, 32), "cpu").penalty(
        stacked
    ).backward()
    for name, value in stacked.named_buffers():
        assert torch.equal(value, stacked_buffers[name]), name


def toy_training(copies: int, dtype=torch.float32):
    images = torch.randn(24, 3, 32, 32, dtype=dtype, generator=torch.Generator().manual_seed(3))
    labels = torch.as_tensor(np.stack([(np.arange(24) + k) % 10 for k in range(copies)]))
    return images, labels


def plan_of(seeds, settings):
    return draw_epoch_plan(
        [stream_generator(s, "shuffling") for s in seeds],
        [stream_generator(s, "augmentation") for s in seeds],
        24,
        settings,
        (32, 32),
    )


def test_a_zero_coefficient_trains_exactly_the_network_trained_without_the_regulariser():
    """The gratings touch nothing but the term: weights, BN statistics and Adam state bit for bit equal."""
    settings = TrainingSettings(epochs=1, batch_size=8)
    images, labels = toy_training(1)
    plain = LockstepTrainer([initial_network("cnn7", 0)], images, labels, settings, torch.device("cpu"))
    regulariser = SelectivityRegulariser(settings_for(), [0.0], torch.zeros(3, 32, 32), "cpu")
    zero = LockstepTrainer(
        [initial_network("cnn7", 0)], images, labels, settings, torch.device("cpu"), regulariser=regulariser
    )
    for trainer in (plain, zero):
        trainer.set_plan(plan_of([0], settings))
        trainer.train_steps(0, trainer.steps_per_epoch)
    assert regulariser.last_indices is not None  # the term was computed
    for name, tensor in zero.network_state_dict(0).items():
        assert torch.equal(tensor, plain.network_state_dict(0)[name]), name
    for mine, theirs in zip(zero.optimizer.state.values(), plain.optimizer.state.values()):
        for key in mine:
            assert torch.equal(mine[key], theirs[key]), key


def test_every_k_steps_means_steps_0_k_2k_over_the_whole_run():
    settings = TrainingSettings(epochs=2, batch_size=8)
    images, labels = toy_training(1)
    regulariser = SelectivityRegulariser(settings_for(every_steps=2), [1.0], torch.zeros(3, 32, 32), "cpu")
    calls = []
    penalty = regulariser.penalty
    regulariser.penalty = lambda model: calls.append(trainer.completed_steps) or penalty(model)
    trainer = LockstepTrainer(
        [initial_network("cnn7", 0)], images, labels, settings, torch.device("cpu"), regulariser=regulariser
    )
    for _ in range(2):  # 3 steps per epoch
        trainer.set_plan(plan_of([0], settings))
        trainer.train_steps(0, trainer.steps_per_epoch)
    assert calls == [0, 2, 4] and trainer.training_state()["completed_steps"] == 6


@pytest.mark.parametrize("model", TRAINABLE_MODELS)
def test_stacked_regularised_training_in_double_precision_equals_separate_training(model):
    """Each network of a stack gets exactly its own term (its own coefficient), as if trained alone
    (on a small grating grid: the grid does not change how the term reaches each network)."""
    settings = TrainingSettings(epochs=1, batch_size=4)
    seeds, coefficients = [0, 1], [3.0, -3.0]
    layers = {
        "cnn7": ("conv1", "conv2"),
        "cnn11": ("conv1",),
        "resnet20": ("stem", "block1_1"),
        "vgg8bn": ("conv1_1", "pool1"),
    }[model]
    images, labels = toy_training(2, torch.float64)

    def trainer(members, coefficient_list):
        networks = [initial_network(model, s).double() for s in members]
        regulariser = SelectivityRegulariser(
            settings_for(layers=layers, **SMALL_GRID), coefficient_list, torch.zeros(3, 32, 32), "cpu"
        )
        return LockstepTrainer(
            networks, images, labels[members], settings, torch.device("cpu"), regulariser=regulariser
        )

    together = trainer(seeds, coefficients)
    together.set_plan(plan_of(seeds, settings))
    together.train_steps(0, 2)
    for k, seed in enumerate(seeds):
        alone = trainer([seed], [coefficients[k]])
        alone.set_plan(plan_of([seed], settings))
        alone.train_steps(0, 2)
        expected = alone.network_state_dict(0)
        for name, tensor in together.network_state_dict(k).items():
            torch.testing.assert_close(tensor, expected[name], atol=1e-10, rtol=0, msg=name)


USER_RECORD = {
    "constructor": "own_models:small_cnn",
    "arguments": {"width": 4},
    "class_argument": "num_classes",
    "layers": ["features.2", "features.6", "classifier.3"],
    "source_digest": "sha256:test",
}


def test_a_user_architecture_takes_the_regulariser_alone_and_stacked_with_torch_func():
    """Alone: responses read by forward hooks (rectified); stacked: functional_call of each network's slice."""
    settings = TrainingSettings(epochs=1, batch_size=8)
    images, labels = toy_training(2, torch.float64)
    regularisation = settings_for(layers=("features.2", "features.6"))

    def trainer(members, coefficient_list):
        networks = [initial_network("mine", s, 10, 32, USER_RECORD).double() for s in members]
        regulariser = SelectivityRegulariser(regularisation, coefficient_list, torch.zeros(3, 32, 32), "cpu")
        return LockstepTrainer(
            networks, images, labels[members], settings, torch.device("cpu"), regulariser=regulariser
        )

    together = trainer([0, 1], [2.0, -2.0])
    assert type(together.model).__name__ == "FunctionalStack"
    together.set_plan(plan_of([0, 1], settings))
    together.train_steps(0, 2)
    for k, (seed, coefficient) in enumerate(((0, 2.0), (1, -2.0))):
        alone = trainer([seed], [coefficient])
        alone.set_plan(plan_of([seed], settings))
        alone.train_steps(0, 2)
        expected = alone.network_state_dict(0)
        for name, tensor in together.network_state_dict(k).items():
            torch.testing.assert_close(tensor, expected[name], atol=1e-10, rtol=0, msg=name)
    # the regulariser moved the weights: they differ from a run without it
    plain = LockstepTrainer(
        [initial_network("mine", 0, 10, 32, USER_RECORD).double()],
        images,
        labels[[0]],
        settings,
        torch.device("cpu"),
    )
    plain.set_plan(plan_of([0], settings))
    plain.train_steps(0, 2)
    weight = "features.0.weight"
    assert not torch.allclose(plain.network_state_dict(0)[weight], together.network_state_dict(0)[weight])


# ------------------------------------------------------------- specs, settings and checkpoints


def test_a_regularised_variant_is_named_by_its_model_and_plain_settings_keep_their_record():
    spec = NetworkSpec("cnn7+orientation-0.5", "synthetic", 0.0, 3)
    assert spec.architecture_model == "cnn7" and spec.regularisation.coefficient == -0.5
    assert spec.path_fragment() == "cnn7+orientation-0.5/synthetic/corruption0.00/seed3"
    assert NetworkSpec("cnn7", "synthetic", 0.0, 3).regularisation is None
    with pytest.raises(ValueError, match="neither an architecture nor a regularised variant"):
        NetworkSpec("cnn7+orientation", "synthetic", 0.0, 3)
    plain = TrainingSettings(epochs=2)
    assert "selectivity_regularisation" not in plain.as_dict()
    regularised = TrainingSettings(epochs=2, selectivity_regularisation=settings_for().record())
    assert regularised.as_dict()["selectivity_regularisation"]["layers"] == ["conv1", "conv2"]
    assert regularised.selectivity_regularisation == settings_for()


def test_a_checkpoint_must_record_the_regulariser_its_model_name_says(tmp_path):
    network = initial_network("cnn7", 0)
    record = {**settings_for().record(), "coefficient": -0.5}
    common = dict(
        input_mean=torch.zeros(3, 32, 32),
        epoch=0,
        network={"model": "cnn7+orientation-0.5", "dataset": "synthetic", "label_corruption": 0.0, "seed": 0},
    )
    path = tmp_path / "epoch0.pt"
    save_checkpoint(
        path, network, model_name="cnn7+orientation-0.5", selectivity_regularisation=record, **common
    )
    loaded = load_checkpoint(path, expected={"model": "cnn7+orientation-0.5", "seed": 0})
    assert loaded.model.name == "cnn7" and loaded.info["selectivity_regularisation"]["coefficient"] == -0.5
    save_checkpoint(path, network, model_name="cnn7+orientation-0.5", **common)
    with pytest.raises(CheckpointError, match="disagree"):
        read_checkpoint(path)
    save_checkpoint(
        path,
        network,
        model_name="cnn7+orientation-0.5",
        selectivity_regularisation={**record, "coefficient": 0.5},
        **common,
    )
    with pytest.raises(CheckpointError, match="coefficient -0.5"):
        read_checkpoint(path)


# ------------------------------------------------------------- what it does to a network


def synthetic_training_images(count: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    from selectivity.data.synthetic import make_synthetic_dataset

    dataset = make_synthetic_dataset(train_size=count, test_size=10, seed=seed, progress=False)
    images = torch.as_tensor(dataset.x_train).permute(0, 3, 1, 2).float() / 255
    return images, torch.as_tensor(dataset.y_train)


@pytest.mark.slow
def test_the_tuning_analysis_sees_the_regularised_layers_move_with_the_coefficient(capsys):
    """Item 2 of issue 28 on a tiny synthetic run: strong coefficients -3, 0, +3 (three stacked cnn7s of
    one seed, one epoch of 640 images, the term at every step); the ordinary tuning analysis of the
    trained networks (§3) finds mean gOSI of conv1-conv2 ordered by the coefficient and beyond the
    shuffled control; the other layers' means are printed (reported, not asserted)."""
    images, labels = synthetic_training_images(640)
    input_mean = images.mean(0)
    settings = TrainingSettings(epochs=1, batch_size=32, augmentation=False)
    coefficients = [-3.0, 0.0, 3.0]
    regulariser = SelectivityRegulariser(settings_for(), coefficients, input_mean, "cpu")
    trainer = LockstepTrainer(
        [initial_network("cnn7", 0) for _ in coefficients],
        images - input_mean,
        labels.repeat(3, 1),
        settings,
        torch.device("cpu"),
        regulariser=regulariser,
    )
    trainer.set_plan(plan_of_size([0, 0, 0], settings, 640))
    trainer.train_steps(0, trainer.steps_per_epoch)
    rows = []
    for coefficient, network in zip(coefficients, trainer.plain_networks()):
        loaded = LoadedNetwork(network.eval(), input_mean, 1, {})
        table = analyse_tuning(
            loaded, TuningSettings(features=("orientation",)), {"coefficient": coefficient}
        ).table
        rows.append(table.groupby(["coefficient", "layer", "stimulus_set"], sort=False)["gosi"].mean())
    means = pd.concat(rows).unstack("stimulus_set")
    means["beyond_shuffled"] = means["gratings"] - means["shuffled"]
    regularised = means.xs("conv1", level="layer").add(means.xs("conv2", level="layer")) / 2
    print("mean gOSI per coefficient and layer (gratings, shuffled, difference):")
    print(means.round(3).to_string())
    assert regularised["gratings"].is_monotonic_decreasing and regularised["gratings"].is_unique
    assert regularised["beyond_shuffled"].is_monotonic_decreasing and regularised["beyond_shuffled"].is_unique
    assert regularised.loc[-3.0, "beyond_shuffled"] > 0.05


def plan_of_size(seeds, settings, count):
    return draw_epoch_plan(
        [stream_generator(s, "shuffling") for s in seeds],
        [stream_generator(s, "augmentation") for s in seeds],
        count,
        settings,
        (32, 32),
    )
