"""Stacked (grouped) networks must equal the same networks run and trained one by one,
for every trainable architecture (the plain CNNs, ResNet-20, vgg8bn)."""

import copy

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F

from selectivity.networks.checkpoints import load_checkpoint
from selectivity.data.dataset import Dataset, Split
from selectivity.networks.grouped import GroupedConvNet, stack_networks, unstack_networks
from selectivity.networks.models import TRAINABLE_MODELS, build_model, conv_net_spec
from selectivity.training import (
    LockstepTrainer,
    NetworkOutputs,
    NetworkSpec,
    TrainingSettings,
    corrupt_labels,
    draw_epoch_plan,
    initial_network,
    stream_generator,
    train_networks,
)


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def networks(count, model="cnn7"):
    return [initial_network(model, seed) for seed in range(count)]


def stacked_input(per_network):
    """(K, B, C, H, W) -> the grouped layout (B, K*C, H, W)."""
    copies, batch, channels, height, width = per_network.shape
    return per_network.transpose(0, 1).reshape(batch, copies * channels, height, width)


@pytest.mark.parametrize("model", TRAINABLE_MODELS)
def test_grouped_forward_equals_each_network_in_train_and_eval_mode(model):
    # float64: the grouped kernels differ from the plain ones only by rounding
    plain = [network.double() for network in networks(3, model)]
    grouped = stack_networks(plain)
    x = torch.randn(3, 4, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    for mode in ("train", "eval"):
        for m in plain + [grouped]:
            m.train(mode == "train")
        with torch.no_grad():
            logits = grouped(stacked_input(x))
            for k, network in enumerate(plain):
                torch.testing.assert_close(logits[:, k], network(x[k]), atol=1e-10, rtol=1e-10)
    # the train-mode pass updated every network's running statistics exactly as alone
    for k, network in enumerate(unstack_networks(grouped)):
        for (name, a), b in zip(network.named_buffers(), plain[k].buffers()):
            torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-12, msg=name)


def test_grouped_forward_in_float32_agrees_within_float_rounding():
    plain = networks(2)
    grouped = stack_networks(plain).eval()
    x = torch.randn(2, 4, 3, 32, 32, generator=torch.Generator().manual_seed(6))
    with torch.no_grad():
        logits = grouped(stacked_input(x))
        for k in range(2):
            torch.testing.assert_close(logits[:, k], plain[k].eval()(x[k]), atol=1e-4, rtol=1e-4)


def test_stack_then_unstack_returns_identical_networks_and_leaves_global_rng_alone():
    plain = networks(3)
    for network in plain:  # give BN statistics non-default values
        network.train()(torch.randn(5, 3, 32, 32))
    before = torch.random.get_rng_state()
    restored = unstack_networks(stack_networks(plain))
    assert torch.equal(torch.random.get_rng_state(), before)
    for a, b in zip(plain, restored):
        for (name, x), y in zip(a.state_dict().items(), b.state_dict().values()):
            assert torch.equal(x, y), name


def test_flatten_order_is_the_plain_models_channel_row_column_order():
    """cnn11 keeps 512 x 4 x 4 maps at its last conv: a wrong flatten order would mix them."""
    plain = [network.double() for network in networks(2, "cnn11")]
    grouped = stack_networks(plain).eval()
    x = torch.randn(2, 2, 3, 32, 32, dtype=torch.float64)
    with torch.no_grad():
        logits = grouped(stacked_input(x))
        for k in range(2):
            torch.testing.assert_close(logits[:, k], plain[k].eval()(x[k]), atol=1e-10, rtol=1e-10)


@pytest.mark.parametrize("model", ["cnn7", "resnet20", "vgg8bn"])
def test_summed_loss_gives_every_network_exactly_its_own_gradient(model):
    plain = [network.double() for network in networks(3, model)]
    grouped = stack_networks(plain)
    x = torch.randn(3, 8, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 10, (3, 8), generator=torch.Generator().manual_seed(2))
    logits = grouped(stacked_input(x))
    F.cross_entropy(logits.reshape(-1, 10), y.t().reshape(-1), reduction="sum").div(8).backward()
    gradients = {name: p.grad for name, p in grouped.named_parameters()}
    gradient_holder = copy.deepcopy(grouped)
    for name, p in gradient_holder.named_parameters():
        p.data.copy_(gradients[name])
    for k, network in enumerate(plain):
        network.zero_grad()
        F.cross_entropy(network(x[k]), y[k]).backward()
        own = gradient_holder.network_state_dict(k)
        for name, p in network.named_parameters():
            torch.testing.assert_close(own[name], p.grad, atol=1e-12, rtol=1e-10, msg=name)


def test_stacking_rejects_mixed_architectures_and_bad_slots():
    with pytest.raises(ValueError, match="different architectures"):
        stack_networks([build_model("cnn7"), build_model("cnn11")])
    with pytest.raises(ValueError, match="different architectures"):
        stack_networks([build_model("resnet20"), build_model("vgg8bn")])
    grouped = GroupedConvNet(conv_net_spec("cnn7"), 2)
    with pytest.raises(IndexError, match="out of range"):
        grouped.network_state_dict(2)
    with pytest.raises(ValueError, match="B, 6, H, W"):
        grouped(torch.randn(1, 3, 32, 32))


@pytest.mark.parametrize("model", ["cnn7", "resnet20", "vgg8bn"])
def test_lockstep_training_in_double_precision_equals_separate_training(model):
    """Exact arithmetic apart from rounding: in float64 the two runs agree to ~1e-12."""
    settings = TrainingSettings(epochs=1, batch_size=8)
    seeds, corruption = [0, 1, 2], [0.0, 0.5, 1.0]
    images = torch.randn(20, 3, 32, 32, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    true_labels = np.random.default_rng(4).integers(0, 10, 20)
    labels = torch.as_tensor(
        np.stack([corrupt_labels(true_labels, p, 10, s) for p, s in zip(corruption, seeds)])
    )

    def plan(members):
        return draw_epoch_plan(
            [stream_generator(s, "shuffling") for s in members],
            [stream_generator(s, "augmentation") for s in members],
            20,
            settings,
            (32, 32),
        )

    together = LockstepTrainer(
        [initial_network(model, s).double() for s in seeds], images, labels, settings, torch.device("cpu")
    )
    together.set_plan(plan(seeds))
    together.train_steps(0, together.steps_per_epoch)  # 3 steps, the last one partial
    for k, seed in enumerate(seeds):
        alone = LockstepTrainer(
            [initial_network(model, seed).double()], images, labels[k : k + 1], settings, torch.device("cpu")
        )
        alone.set_plan(plan([seed]))
        alone.train_steps(0, alone.steps_per_epoch)
        expected = alone.network_state_dict(0)
        for name, tensor in together.network_state_dict(k).items():
            torch.testing.assert_close(tensor, expected[name], atol=1e-10, rtol=0, msg=name)
        evaluated_together = together.evaluate(images, [labels])[0]
        evaluated_alone = alone.evaluate(images, [labels[k : k + 1]])[0]
        np.testing.assert_allclose(evaluated_together[0][k], evaluated_alone[0][0], atol=1e-10)
        assert evaluated_together[1][k] == evaluated_alone[1][0]


def tiny_dataset():
    rng = np.random.default_rng(5)
    dataset = Dataset(
        rng.integers(0, 256, (60, 32, 32, 3), dtype=np.uint8),
        rng.integers(0, 10, 60),
        rng.integers(0, 256, (16, 32, 32, 3), dtype=np.uint8),
        rng.integers(0, 10, 16),
        [f"class{i}" for i in range(10)],
    )
    return dataset, Split(np.arange(44), np.arange(44, 60), split_seed=0)


def outputs_for(root, specs, settings):
    return [
        NetworkOutputs(
            {e: root / s.path_fragment() / f"epoch{e}.pt" for e in settings.saved_epochs()},
            root / s.path_fragment() / "best.pt",
            root / s.path_fragment() / "metrics.csv",
        )
        for s in specs
    ]


@pytest.mark.parametrize("model", ["cnn7", "resnet20"])
def test_train_networks_grouped_writes_what_separate_runs_write(tmp_path, model):
    dataset, split = tiny_dataset()
    settings = TrainingSettings(epochs=2, batch_size=16, checkpoint_epochs=(0, 1))
    specs = [NetworkSpec(model, "toy", p, s) for p, s in [(0.0, 10), (0.4, 11), (1.0, 12)]]
    grouped_out = outputs_for(tmp_path / "grouped", specs, settings)
    separate_out = outputs_for(tmp_path / "separate", specs, settings)
    train_networks(
        specs, dataset, split, settings, grouped_out, tmp_path / "state", "cpu", grouped=True, progress=False
    )
    train_networks(
        specs,
        dataset,
        split,
        settings,
        separate_out,
        tmp_path / "state",
        "cpu",
        grouped=False,
        progress=False,
    )

    for spec, a, b in zip(specs, grouped_out, separate_out):
        metrics_a, metrics_b = pd.read_csv(a.metrics), pd.read_csv(b.metrics)
        assert list(metrics_a.epoch) == [0, 1, 2]
        losses = [c for c in metrics_a.columns if "loss" in c]
        # float32 rounding of the grouped kernels, amplified over 6 steps (deeper in ResNet-20)
        np.testing.assert_allclose(metrics_a[losses], metrics_b[losses], atol=1e-3, rtol=2e-3)
        # a prediction sitting on a decision boundary may flip: at most one image per split
        accuracies = [c for c in metrics_a.columns if "accuracy" in c]
        assert (metrics_a[accuracies] - metrics_b[accuracies]).abs().max().max() <= 1 / 16 + 1e-9
        initial = load_checkpoint(b.checkpoints[0]).model.state_dict()
        for epoch in settings.saved_epochs():
            grouped_ckpt, separate_ckpt = load_checkpoint(a.checkpoints[epoch]), load_checkpoint(
                b.checkpoints[epoch]
            )
            assert grouped_ckpt.epoch == separate_ckpt.epoch == epoch
            assert grouped_ckpt.info["network"] == separate_ckpt.info["network"] == spec.identifiers()
            assert torch.equal(grouped_ckpt.input_mean, separate_ckpt.input_mean)
            grouped_state, separate_state = grouped_ckpt.model.state_dict(), separate_ckpt.model.state_dict()
            if epoch == 0:  # same initialisation, bit for bit
                assert all(torch.equal(grouped_state[k], separate_state[k]) for k in separate_state)
                continue
            # float32 rounding differs between grouped and plain kernels, and a few
            # training steps amplify it (Adam normalises small gradients); the float64
            # test above shows the arithmetic itself is the same. Measured against how far
            # training moved the weights, the runs agree to about 1-2% (cnn7) and 6-7% (the
            # deeper ResNet-20); a network that got another network's data, labels,
            # augmentation or files would differ by ~100%.
            keys = [k for k in separate_state if separate_state[k].is_floating_point()]
            difference = torch.cat([(grouped_state[k] - separate_state[k]).flatten() for k in keys])
            movement = torch.cat([(separate_state[k] - initial[k]).flatten() for k in keys])
            assert difference.norm() / movement.norm() < 0.1
        assert load_checkpoint(a.best_checkpoint).epoch == load_checkpoint(b.best_checkpoint).epoch


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_grouped_training_on_cuda_with_graphs_matches_separate_training(tmp_path):
    dataset, split = tiny_dataset()
    settings = TrainingSettings(epochs=2, batch_size=16, checkpoint_epochs=(0,), cuda_graphs=True)
    specs = [NetworkSpec("cnn7", "toy", p, s) for p, s in [(0.0, 10), (0.4, 11), (1.0, 12)]]
    grouped_out = outputs_for(tmp_path / "grouped", specs, settings)
    separate_out = outputs_for(tmp_path / "separate", specs, settings)
    train_networks(
        specs, dataset, split, settings, grouped_out, tmp_path / "state", "cuda", grouped=True, progress=False
    )
    train_networks(
        specs,
        dataset,
        split,
        settings,
        separate_out,
        tmp_path / "state",
        "cuda",
        grouped=False,
        progress=False,
    )
    for a, b in zip(grouped_out, separate_out):
        initial = load_checkpoint(b.checkpoints[0]).model.state_dict()
        grouped_state = load_checkpoint(a.checkpoints[2]).model.state_dict()
        separate_state = load_checkpoint(b.checkpoints[2]).model.state_dict()
        keys = [k for k in separate_state if separate_state[k].is_floating_point()]
        difference = torch.cat([(grouped_state[k] - separate_state[k]).flatten() for k in keys])
        movement = torch.cat([(separate_state[k] - initial[k]).flatten() for k in keys])
        assert difference.norm() / movement.norm() < 0.05
