"""Precision (fp32 | bf16) and memory format: what stays fp32, what channels-last may change,
that bf16 networks can be analysed, and that fp32 networks keep their params.

docs/method.md §2 and §7; selectivity.numerics.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from conftest import REPO, TINY_CONFIG, load_benchmark, merged_config, planned, run_snakemake, write_config
from selectivity import numerics
from selectivity.causal.ablation import AblationSettings, half_ablation
from selectivity.networks.checkpoints import load_checkpoint, read_checkpoint, save_checkpoint
from selectivity.causal.class_selectivity import class_selectivity_table
from selectivity.config import ConfigError, training_settings, validate_config
from selectivity.data.dataset import Dataset, Split, images_to_tensor
from selectivity.networks.grouped import stack_networks
from selectivity.causal.invariance import InvarianceSettings, shift_invariance
from selectivity.io import load_torch, save_torch
from selectivity.networks.models import TRAINABLE_MODELS
from selectivity.training import (
    LockstepTrainer,
    NetworkOutputs,
    NetworkSpec,
    TrainingSettings,
    device_numerics,
    draw_epoch_plan,
    initial_network,
    stream_generator,
    train_networks,
)
from selectivity.tuning.analysis import TuningSettings, analyse_tuning
from selectivity.claims.verdicts import VerdictRule

ARCHITECTURES = ("cnn7", "resnet20", "vgg8bn")


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def trainer_for(
    model: str, precision: str, copies: int = 1, channels_last: bool | None = None, count: int = 64
):
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(count, 3, 32, 32, generator=generator)
    labels = torch.randint(0, 10, (copies, count), generator=generator)
    settings = TrainingSettings(epochs=1, batch_size=16, precision=precision)
    networks = [initial_network(model, seed) for seed in range(copies)]
    trainer = LockstepTrainer(networks, images, labels, settings, "cpu", channels_last=channels_last)
    seeds = range(copies)
    trainer.set_plan(
        draw_epoch_plan(
            [stream_generator(s, "shuffling") for s in seeds],
            [stream_generator(s, "augmentation") for s in seeds],
            count,
            settings,
            (32, 32),
        )
    )
    return trainer


# ------------------------------------------------------------------ what stays fp32


@pytest.mark.parametrize("model, copies", [("cnn7", 1), ("resnet20", 1), ("vgg8bn", 2)])
def test_a_bf16_step_keeps_weights_gradients_adam_state_and_batchnorm_statistics_in_fp32(model, copies):
    trainer = trainer_for(model, "bf16", copies)
    batch_norms = [m for m in trainer.model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    first_bn = batch_norms[0]
    seen = {}
    first_bn.register_forward_pre_hook(lambda module, inputs: seen.update(input=inputs[0].detach()))
    convolution_inputs = []
    conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))
    conv.register_forward_hook(lambda module, inputs, output: convolution_inputs.append(output.dtype))

    loss = trainer._batch_loss(torch.arange(16))
    assert loss.dtype == torch.float32  # the loss is computed from fp32 logits
    assert convolution_inputs == [torch.bfloat16]  # ... and the convolutions did run in bf16
    # BatchNorm's batch statistics: accumulated in fp32 from the bf16 activations it received
    assert seen["input"].dtype == torch.bfloat16
    batch_mean = seen["input"].float().mean(dim=(0, 2, 3))
    assert first_bn.running_mean.dtype == torch.float32
    torch.testing.assert_close(first_bn.running_mean, first_bn.momentum * batch_mean, rtol=1e-5, atol=1e-7)
    rounded = first_bn.momentum * batch_mean.bfloat16().float()
    assert not torch.allclose(first_bn.running_mean, rounded, rtol=1e-5, atol=1e-7)  # not a bf16 mean

    trainer.train_steps(1, 2)
    for name, parameter in trainer.model.named_parameters():
        assert parameter.dtype == torch.float32, name
        assert parameter.grad is not None and parameter.grad.dtype == torch.float32, name
        state = trainer.optimizer.state[parameter]
        assert state["exp_avg"].dtype == torch.float32 and state["exp_avg_sq"].dtype == torch.float32, name
    for name, buffer in trainer.model.named_buffers():
        if buffer.is_floating_point():
            assert buffer.dtype == torch.float32, name
    for index in range(copies):
        assert all(
            v.dtype in (torch.float32, torch.int64) for v in trainer.network_state_dict(index).values()
        )


def test_bf16_steps_differ_from_fp32_steps_by_rounding_only():
    """Same start, same batches: after a few steps bf16 weights are near, not equal to, fp32 ones."""
    fp32, bf16 = trainer_for("cnn7", "fp32"), trainer_for("cnn7", "bf16")
    fp32.train_steps(0, 4)
    bf16.train_steps(0, 4)
    start = initial_network("cnn7", 0).state_dict()
    moved = differences = 0.0
    for (name, a), b in zip(fp32.model.state_dict().items(), bf16.model.state_dict().values()):
        if a.is_floating_point() and "running" not in name:
            moved += float((a - start[name]).norm() ** 2)
            differences += float((a - b).norm() ** 2)
    assert 0 < differences**0.5 < 0.5 * moved**0.5


# ------------------------------------------------------------------ channels-last


@pytest.mark.parametrize("model", ARCHITECTURES)
def test_channels_last_gives_the_same_logits_within_rounding(model):
    """Within fp32 rounding of the exact (float64) logits.

    In evaluation mode (the analyses) as close as the default layout. In training mode the CPU's
    channels-last BatchNorm normalises with a fused scale and shift, which rounds worse where a
    channel's mean is large against its spread (measured: cnn7's logits 7e-5 of their scale off,
    the default layout 2e-6; resnet20 and vgg8bn within 5x of the default) but still far inside
    what bf16 changes (2**-8)."""
    images = torch.randn(8, 3, 32, 32, generator=torch.Generator().manual_seed(1))
    network = initial_network(model, 3)
    for mode in ("train", "eval"):
        exact = copy.deepcopy(network).double().train(mode == "train")
        default = copy.deepcopy(network).train(mode == "train").set_numerics("fp32", False)
        nhwc = copy.deepcopy(network).train(mode == "train").set_numerics("fp32", True)
        with torch.no_grad():
            reference = exact(images.double())
            default_error = (default(images).double() - reference).abs().max().item()
            nhwc_error = (nhwc(images).double() - reference).abs().max().item()
        scale = reference.abs().max().item()
        assert default_error < 1e-5 * scale, (mode, default_error, scale)
        if mode == "eval":
            assert nhwc_error <= 3 * default_error + 1e-7, (mode, nhwc_error, default_error)
        else:
            assert nhwc_error < 5e-4 * scale, (mode, nhwc_error, scale)
    stacked = stack_networks([initial_network(model, seed) for seed in (0, 1)]).eval()
    stacked_nhwc = copy.deepcopy(stacked).to(memory_format=torch.channels_last)
    pair = images.repeat(1, 2, 1, 1)
    with torch.no_grad():
        torch.testing.assert_close(
            stacked_nhwc(pair.contiguous(memory_format=torch.channels_last)),
            stacked(pair),
            rtol=1e-4,
            atol=1e-4,
        )


def gradient_errors(model: str) -> dict[tuple[str, bool], float]:
    """Relative error (norm over all parameters) of one step's gradient against float64, per
    (precision, channels-last), at initialisation."""
    generator = torch.Generator().manual_seed(0)
    images, labels = torch.randn(16, 3, 32, 32, generator=generator), torch.randint(
        0, 10, (16,), generator=generator
    )
    network = initial_network(model, 0).train()

    def gradient(precision: str | None, channels_last: bool) -> torch.Tensor:
        copy_ = copy.deepcopy(network)
        inputs = images
        if precision is None:
            copy_, inputs = copy_.double(), images.double()
        elif channels_last:
            copy_ = copy_.to(memory_format=torch.channels_last)
            inputs = images.contiguous(memory_format=torch.channels_last)
        with numerics.autocast(precision or "fp32", "cpu"):
            logits = copy_(inputs)
        F.cross_entropy(logits.double(), labels).backward()
        return torch.cat([p.grad.double().flatten() for p in copy_.parameters()])

    exact = gradient(None, False)
    return {
        (precision, flag): ((gradient(precision, flag) - exact).norm() / exact.norm()).item()
        for precision in numerics.PRECISIONS
        for flag in (False, True)
    }


@pytest.mark.parametrize("model", ARCHITECTURES)
def test_training_runs_channels_last_only_where_its_gradients_stay_within_the_precisions_rounding(model):
    errors = gradient_errors(model)
    # fp32: channels-last only where its gradient is as close to exact as the default layout's
    as_close = errors[("fp32", True)] < 2 * errors[("fp32", False)]
    assert numerics.prefers_channels_last(model, "cpu", "fp32", training=True) == as_close, errors
    # bf16: the layout changes nothing that bf16 itself does not change far more
    assert errors[("bf16", True)] < 1.2 * errors[("bf16", False)] and errors[("bf16", False)] > 0.05, errors
    assert numerics.prefers_channels_last(model, "cpu", "bf16", training=True)


def test_a_channels_last_trainer_saves_its_networks_in_the_default_layout():
    trainer = trainer_for("cnn7", "bf16", channels_last=True)
    trainer.train_steps(0, 1)
    assert trainer.model.stages[0].conv.weight.is_contiguous(memory_format=torch.channels_last)
    assert all(t.is_contiguous() for t in trainer.network_state_dict(0).values())


# Architectures whose fp32 CPU training keeps the default layout while their analysis passes run
# channels-last: the ones whose evaluation layout this changes (resnet20 trains channels-last).
EVALUATED_IN_ANOTHER_LAYOUT = [
    model
    for model in ARCHITECTURES
    if not numerics.prefers_channels_last(model, "cpu", "fp32", training=True)
    and numerics.prefers_channels_last(model, "cpu", "fp32", training=False)
]


def test_a_channels_last_trainer_evaluates_channels_last():
    assert EVALUATED_IN_ANOTHER_LAYOUT  # else the test below compares nothing
    trainer = trainer_for("cnn7", "fp32", channels_last=True)
    assert trainer.evaluation_channels_last


@pytest.mark.parametrize("model", EVALUATED_IN_ANOTHER_LAYOUT)
def test_evaluation_passes_take_the_analysis_layout_and_change_results_by_rounding_only(model):
    trainer = trainer_for(model, "fp32", count=96)
    assert not trainer.channels_last and trainer.evaluation_channels_last
    laid_out = []
    conv = next(m for m in trainer.model.modules() if isinstance(m, torch.nn.Conv2d))
    hook = conv.register_forward_pre_hook(
        lambda module, inputs: laid_out.append(inputs[0].is_contiguous(memory_format=torch.channels_last))
    )
    weights = {name: t.clone() for name, t in trainer.model.state_dict().items()}
    labels = trainer.train_labels[0]
    (evaluated,) = trainer.evaluate(trainer.train_images, [labels])
    assert laid_out and all(flag == trainer.evaluation_channels_last for flag in laid_out)
    trainer.evaluation_channels_last = False  # input in the default layout, as before the change
    (in_default_layout,) = trainer.evaluate(trainer.train_images, [labels])
    hook.remove()
    assert laid_out[-1] is False
    np.testing.assert_allclose(evaluated[0], in_default_layout[0], rtol=1e-5)  # losses
    np.testing.assert_array_equal(evaluated[1], in_default_layout[1])  # accuracies
    for name, tensor in trainer.model.state_dict().items():  # the weights keep their values and layout
        assert torch.equal(tensor, weights[name]) and tensor.stride() == weights[name].stride(), name


def test_stacked_networks_evaluate_in_their_training_layout():
    trainer = trainer_for("cnn7", "fp32", copies=2)
    assert not trainer.channels_last and not trainer.evaluation_channels_last


def test_the_measured_memory_format_table_names_trainable_models_only():
    for (device_type, precision, kind), models in numerics.CHANNELS_LAST.items():
        assert device_type in ("cpu", "cuda") and precision in numerics.PRECISIONS and kind in numerics.PASSES
        assert set(models) <= set(TRAINABLE_MODELS)
    assert not numerics.prefers_channels_last("vgg16_imagenet", "cpu", "fp32", training=False)
    with pytest.raises(ValueError, match="precision must be one of .*'fp16'"):
        numerics.prefers_channels_last("cnn7", "cpu", "fp16", training=True)


# ------------------------------------------------------------------ bf16 checkpoints


def random_dataset(train: int = 48, test: int = 40) -> tuple[Dataset, Split]:
    rng = np.random.default_rng(0)
    labels = np.arange(train + 16) % 10
    dataset = Dataset(
        rng.integers(0, 256, (train + 16, 32, 32, 3), dtype=np.uint8),
        labels,
        rng.integers(0, 256, (test, 32, 32, 3), dtype=np.uint8),
        np.arange(test) % 10,
        [f"class{i}" for i in range(10)],
        "random images",
    )
    return dataset, Split(np.arange(train), np.arange(train, train + 16), split_seed=0)


@pytest.fixture(scope="module")
def bf16_checkpoint(tmp_path_factory):
    torch.set_num_threads(1)
    root = tmp_path_factory.mktemp("bf16")
    dataset, split = random_dataset()
    settings = TrainingSettings(epochs=1, batch_size=16, checkpoint_epochs=(0,), precision="bf16")
    spec = NetworkSpec("cnn7", "random", 0.0, 0)
    outputs = NetworkOutputs(
        {0: root / "epoch0.pt", 1: root / "epoch1.pt"}, root / "best.pt", root / "metrics.csv"
    )
    train_networks([spec], dataset, split, settings, [outputs], root / "state", "cpu", progress=False)
    return root / "best.pt", dataset


def test_a_bf16_checkpoint_records_its_precision_and_is_analysed_in_it(bf16_checkpoint):
    path, _ = bf16_checkpoint
    blob = read_checkpoint(path)
    assert blob["precision"] == "bf16" and blob["provenance"]["settings"]["precision"] == "bf16"
    assert blob["provenance"]["memory_format"] in ("channels_last", "contiguous")
    assert all(t.dtype in (torch.float32, torch.int64) for t in blob["state_dict"].values())
    network = load_checkpoint(path)
    assert network.model.precision == "bf16"
    assert network.model.channels_last == numerics.prefers_channels_last(
        "cnn7", "cpu", "bf16", training=False
    )
    with torch.no_grad():
        run = network.model.run(torch.randn(4, 3, 32, 32), record_responses=["conv1"])
    assert run.logits.dtype == torch.bfloat16 and run.responses["conv1"].dtype == torch.bfloat16


def test_an_fp32_checkpoint_and_one_written_before_the_key_existed_load_as_fp32(bf16_checkpoint, tmp_path):
    """Checkpoints of the first format (before digests and before precision) hold fp32 networks;
    a checkpoint's precision is part of its digested content and is checked when it is read."""
    from selectivity.networks.checkpoints import content_digest

    path, _ = bf16_checkpoint
    blob = load_torch(path, "checkpoint")
    old = {
        key: value
        for key, value in blob.items()
        if key not in ("precision", "checkpoint", "content_digest", "record_digest")
    }
    old["format"] = "selectivity-checkpoint/1"
    save_torch(old, tmp_path / "old.pt")
    assert load_checkpoint(tmp_path / "old.pt").model.precision == "fp32"
    network = load_checkpoint(path)
    save_checkpoint(
        tmp_path / "fp32.pt",
        network.model,
        model_name="cnn7",
        input_mean=network.input_mean,
        epoch=1,
        network=blob["network"],
    )
    assert read_checkpoint(tmp_path / "fp32.pt")["precision"] == "fp32"
    assert load_checkpoint(tmp_path / "fp32.pt").model.precision == "fp32"
    blob["precision"] = "fp16"
    save_torch(blob, tmp_path / "damaged.pt")
    with pytest.raises(ValueError, match="damaged.pt is damaged: its content digest"):
        load_checkpoint(tmp_path / "damaged.pt")
    blob["content_digest"] = content_digest(blob)
    save_torch(blob, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match="bad.pt: precision 'fp16'"):
        load_checkpoint(tmp_path / "bad.pt")


def test_every_analysis_of_a_bf16_checkpoint_runs(bf16_checkpoint):
    path, dataset = bf16_checkpoint
    network = load_checkpoint(path)
    ids = {
        "model": "cnn7",
        "dataset": "random",
        "label_corruption": 0.0,
        "seed": 0,
        "checkpoint": "best",
        "epoch": 1,
    }
    tuning = analyse_tuning(network, TuningSettings(), ids).table
    assert np.isfinite(tuning["gosi"]).all() and len(tuning) == 2 * sum(
        network.model.units(layer) for layer in network.model.layer_names
    )
    images, labels = images_to_tensor(dataset.x_test), torch.as_tensor(dataset.y_test)
    layers = network.model.layer_names
    classes = class_selectivity_table(network, images, labels, layers, ids, num_classes=10)
    assert np.isfinite(classes["class_selectivity_index"]).all()
    gratings = tuning[tuning["stimulus_set"] == "gratings"]
    scores = {
        "gosi": {
            layer: rows.sort_values("unit")["gosi"].to_numpy() for layer, rows in gratings.groupby("layer")
        }
    }
    settings = AblationSettings(layers=("conv1", "conv2"), random_draws=2, batch_size=16)
    table, comparisons = half_ablation(network, images, labels, scores, settings, ids)
    assert np.isfinite(table["loss_increase_mean"]).all() and len(comparisons)
    invariance = shift_invariance(
        network,
        images[:12],
        scores["gosi"],
        InvarianceSettings(("conv6",), ("conv2",), shifts=(1,), random_draws=1, batch_size=6),
        ids,
    )
    assert np.isfinite(invariance["normalised_invariance_mean"]).all()

    # the analyses did run in bf16: the same weights in fp32 give close, not equal, responses
    fp32 = load_checkpoint(path)
    fp32.model.set_numerics("fp32", False)
    fp32_tuning = analyse_tuning(fp32, TuningSettings(), ids).table
    difference = (tuning["gosi"] - fp32_tuning["gosi"]).abs()
    assert 0 < difference.max() and difference.mean() < 0.05


# ------------------------------------------------------------------ config and params


#: The training params every fp32 network had before precision was configurable.
FP32_PARAMS = {
    "epochs": 200,
    "batch_size": 32,
    "learning_rate": 0.001,
    "adam_betas": [0.9, 0.999],
    "adam_epsilon": 1e-08,
    "checkpoint_epochs": [0, 1, 2, 5, 10, 20, 50, 100, 150, 200],
    "augmentation": True,
    "shift_range": 0.1,
    "horizontal_flip": True,
}


def schema_defaults(change: dict | None = None) -> dict:
    config = merged_config({}, change or {})
    validate_config(config, REPO / "workflow/schemas/config.schema.yaml")
    return config


def test_the_default_precision_leaves_the_training_params_as_they_were():
    assert schema_defaults()["training"]["precision"] == "fp32"
    assert training_settings(schema_defaults()["training"]) == FP32_PARAMS
    assert training_settings(schema_defaults({"training": {"precision": "fp32"}})["training"]) == FP32_PARAMS
    bf16 = training_settings(schema_defaults({"training": {"precision": "bf16"}})["training"])
    assert bf16 == {**FP32_PARAMS, "precision": "bf16"}
    assert (
        TrainingSettings(**bf16).precision == "bf16" and TrainingSettings(**FP32_PARAMS).precision == "fp32"
    )


def test_an_unknown_precision_is_refused_before_any_job():
    with pytest.raises(ConfigError, match="training.precision: 'fp16' is not allowed"):
        schema_defaults({"training": {"precision": "fp16"}})


@pytest.mark.slow
def test_a_finished_fp32_network_is_not_retrained_when_the_precision_is_stated_but_is_for_bf16(tmp_path):
    """A dry run after a finished training job: precision fp32 written out plans nothing, bf16 retrains."""
    config = merged_config(
        TINY_CONFIG, {"networks": {"seeds": [0]}, "training": {"epochs": 1, "checkpoint_epochs": [0, 1]}}
    )
    target = "results/networks/cnn7/synthetic/corruption0.00/seed0/metrics.csv"
    run_snakemake(tmp_path, write_config(tmp_path, config), target, "--cores", "2", "--resources", "gpu=0")
    stated = write_config(tmp_path, merged_config(config, {"training": {"precision": "fp32"}}), "fp32.yaml")
    assert planned(tmp_path, stated, targets=[target]).pending == {}
    bf16 = write_config(tmp_path, merged_config(config, {"training": {"precision": "bf16"}}), "bf16.yaml")
    plan = planned(tmp_path, bf16, targets=[target])
    assert plan.statuses("train_cnn7_synthetic_c0p00_s0") == {"params changed"}


# ------------------------------------------------------------------ CUDA (skipped without a GPU)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("model", ARCHITECTURES)
def test_bf16_cuda_graph_steps_equal_eager_bf16_steps_and_keep_fp32_state(model):
    """bf16 autocast inside a captured CUDA graph (weight cache off) computes what eager bf16 does."""
    device = torch.device("cuda")
    generator = torch.Generator().manual_seed(0)
    images = torch.randn(40, 3, 32, 32, generator=generator).to(device)
    labels = torch.randint(0, 10, (2, 40), generator=generator).to(device)
    states = {}
    for graphs in (False, True):
        settings = TrainingSettings(epochs=2, batch_size=16, cuda_graphs=graphs, precision="bf16")
        seeds = [0, 1]
        shuffles = [stream_generator(s, "shuffling") for s in seeds]
        augmentations = [stream_generator(s, "augmentation") for s in seeds]
        with device_numerics(device, settings):
            trainer = LockstepTrainer(
                [initial_network(model, s) for s in seeds], images, labels, settings, device
            )
            for _ in range(2):
                trainer.set_plan(draw_epoch_plan(shuffles, augmentations, 40, settings, (32, 32)))
                trainer.train_steps(0, trainer.steps_per_epoch)
            assert (trainer._graph is not None) == graphs
            assert all(p.dtype == torch.float32 for p in trainer.model.parameters())
            states[graphs] = [trainer.network_state_dict(k) for k in range(2)]
    for eager, graphed in zip(states[False], states[True]):
        for name in eager:
            torch.testing.assert_close(graphed[name], eager[name], atol=1e-5, rtol=1e-4, msg=name)


# ------------------------------------------------------------------ the equivalence test of two runs


def test_the_equivalence_verdicts_follow_the_margin_and_the_evidence():
    script = load_benchmark("precision_equivalence")
    rule = VerdictRule()
    seeds = pd.Index(range(5))
    fp32 = pd.Series([0.60, 0.61, 0.62, 0.63, 0.64], index=seeds)
    # bf16 within a few thousandths of fp32 on every seed: equivalent within 0.02
    close = script.compare("x", "accuracy", fp32, fp32 + [0.003, -0.002, 0.001, -0.004, 0.002], rule)
    assert close["verdict"] == "equivalent" and close["networks_to_decide"] == "-"
    # five points lower on every seed: a difference beyond the margin is shown
    lower = script.compare("x", "accuracy", fp32, fp32 - 0.05 + [0.003, -0.002, 0.001, -0.004, 0.002], rule)
    assert lower["verdict"] == "different" and lower["nonzero"]
    # centred but noisy: inconclusive, and more networks would decide
    noisy = script.compare("x", "accuracy", fp32, fp32 + [0.03, -0.03, 0.02, -0.02, 0.0], rule)
    assert noisy["verdict"] == "inconclusive" and int(noisy["networks_to_decide"]) > 5
    # fewer than 5 networks can never reach the level
    few = script.compare("x", "accuracy", fp32[:4], fp32[:4], rule)
    assert few["verdict"] == "too few networks"
    # only seeds present in both runs are paired
    assert script.compare("x", "accuracy", fp32, fp32.drop(4), rule)["networks"] == 4
