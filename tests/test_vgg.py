"""VGG16 as an analysable network, its weights files and ImageNet-folder images.

Everything here runs on the CPU with RANDOM weights (no download): the tests check that the
analysable network is exactly torchvision's VGG16, not what the ImageNet weights compute.
Forward passes use small inputs (VGG16's adaptive average pool accepts 32 px) except one
224 px pass with a single image.
"""

from __future__ import annotations

import hashlib
import logging
import urllib.error

import numpy as np
import pytest
import torch
import torchvision
from PIL import Image
from torchvision.models import VGG16_Weights

from selectivity.networks.published import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    VGG16_LAYERS,
    VGG16WeightsError,
    analysable_vgg16,
    build_vgg16,
    load_vgg16,
)
from selectivity.data.image_folders import imagenet_eval_transform, load_imagefolder_images

CONV_CHANNELS = {
    "conv1_1": 64, "conv1_2": 64, "conv2_1": 128, "conv2_2": 128,
    "conv3_1": 256, "conv3_2": 256, "conv3_3": 256,
    "conv4_1": 512, "conv4_2": 512, "conv4_3": 512,
    "conv5_1": 512, "conv5_2": 512, "conv5_3": 512,
}  # fmt: skip


@pytest.fixture(scope="module")
def random_torchvision_vgg16():
    """torchvision's own VGG16, randomly initialised after torch.manual_seed(0), in eval mode."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return torchvision.models.vgg16(weights=None).eval()


@pytest.fixture(scope="module")
def random_network(random_torchvision_vgg16):
    """The analysable wrapper around (sharing the weights of) the random torchvision VGG16."""
    return analysable_vgg16(random_torchvision_vgg16).eval()


def small_images(batch: int, size: int = 32, seed: int = 1) -> torch.Tensor:
    return torch.randn(batch, 3, size, size, generator=torch.Generator().manual_seed(seed))


def test_vgg16_has_20_analysed_layers_in_order_random_weights(random_network):
    assert len(VGG16_LAYERS) == 20
    assert random_network.layer_names == list(VGG16_LAYERS)
    kinds = [random_network.stage(name).kind for name in VGG16_LAYERS]
    assert kinds.count("conv") == 13 and kinds.count("pool") == 5 and kinds.count("fc") == 2
    assert [n for n in VGG16_LAYERS if n.startswith("pool")] == [f"pool{b}" for b in range(1, 6)]
    # each pool closes its block: pool{b} follows the last conv{b}_*
    for b in range(1, 6):
        last_conv = max(i for i, n in enumerate(VGG16_LAYERS) if n.startswith(f"conv{b}_"))
        assert VGG16_LAYERS[last_conv + 1] == f"pool{b}"
    for name, channels in CONV_CHANNELS.items():
        assert random_network.units(name) == channels
    assert random_network.units("pool5") == 512
    assert random_network.units("fc1") == random_network.units("fc2") == 4096
    assert random_network.head.out_features == 1000


def test_logits_equal_torchvision_vgg16_exactly_random_weights(random_network, random_torchvision_vgg16):
    for size in (32, 64):  # pool5 is 1x1 and 2x2; the adaptive 7x7 average pool handles both
        x = small_images(2, size)
        with torch.no_grad():
            expected = random_torchvision_vgg16(x)
            run = random_network.run(x)
        assert run.logits.shape == (2, 1000)
        assert torch.equal(run.logits, expected)


def test_build_model_name_gives_the_same_network_as_torchvision_random_weights(random_torchvision_vgg16):
    network = build_vgg16("random", seed=0)
    assert network.name == "vgg16_imagenet" and network.input_size == 224
    for name, value in analysable_vgg16(random_torchvision_vgg16).state_dict().items():
        assert torch.equal(network.state_dict()[name], value), name


def test_response_shapes_at_224_px_and_response_is_output_in_eval_mode_random_weights(random_network):
    x = small_images(1, 224)
    with torch.no_grad():
        run = random_network.run(x, record_responses=VGG16_LAYERS, record_outputs=VGG16_LAYERS)
    spatial = 224
    for name in VGG16_LAYERS:
        response = run.responses[name]
        if name.startswith("conv"):
            assert response.shape == (1, CONV_CHANNELS[name], spatial, spatial), name
        elif name.startswith("pool"):
            spatial //= 2
            assert response.shape == (1, random_network.units(name), spatial, spatial), name
        else:
            assert response.shape == (1, 4096), name
        assert torch.equal(run.outputs[name], response), name
    assert run.responses["conv1_1"].shape == (1, 64, 224, 224)
    assert run.responses["pool5"].shape == (1, 512, 7, 7)
    assert all((run.responses[n] >= 0).all() for n in VGG16_LAYERS)  # post-ReLU (and max-pools of it)
    assert run.logits.shape == (1, 1000)


def test_fc_dropout_acts_only_in_training_mode_like_torchvision_random_weights(random_network):
    x = small_images(2)
    random_network.train()
    try:
        with torch.no_grad(), torch.random.fork_rng(devices=[]):
            torch.manual_seed(3)
            run = random_network.run(x, record_responses=["fc1"], record_outputs=["fc1"])
    finally:
        random_network.eval()
    response, output = run.responses["fc1"], run.outputs["fc1"]
    active = response > 0
    dropped = active & (output == 0)
    kept = active & (output != 0)
    assert dropped.any() and kept.any()
    torch.testing.assert_close(output[kept], 2 * response[kept])  # inverted dropout with p = 0.5


def test_ablating_a_conv_output_changes_logits_and_ablating_nothing_does_not_random_weights(random_network):
    x = small_images(2)
    with torch.no_grad():
        intact = random_network.run(x, record_outputs=["conv2_1"])
        all_kept = random_network(x, ablation={"conv2_1": torch.ones(128)})
        keep = torch.ones(128)
        keep[::2] = 0
        ablated = random_network.run(x, ablation={"conv2_1": keep}, record_outputs=["conv2_1"])
        resumed = random_network.forward_from(
            "conv2_1", intact.outputs["conv2_1"], ablation={"conv2_1": keep}
        )
    assert torch.equal(random_network(x), intact.logits)
    assert torch.equal(all_kept, intact.logits)
    assert not torch.allclose(ablated.logits, intact.logits)
    assert (ablated.outputs["conv2_1"][:, ::2] == 0).all()
    assert torch.equal(ablated.outputs["conv2_1"][:, 1::2], intact.outputs["conv2_1"][:, 1::2])
    assert torch.equal(resumed.logits, ablated.logits)


def test_local_weights_files_round_trip_random_weights(random_torchvision_vgg16, tmp_path):
    x = small_images(2)
    with torch.no_grad():
        expected = random_torchvision_vgg16(x)

    torchvision_file = tmp_path / "vgg16-random.pth"
    torch.save(random_torchvision_vgg16.state_dict(), torchvision_file)
    loaded = load_vgg16(str(torchvision_file))
    assert not loaded.model.training
    with torch.no_grad():
        assert torch.equal(loaded.model(x), expected)
    assert loaded.epoch is None
    assert loaded.info["model"] == "vgg16_imagenet"
    assert loaded.info["weights"] == str(torchvision_file)
    assert loaded.info["network"]["model"] == "vgg16_imagenet"
    assert loaded.info["weights_sha256"] == hashlib.sha256(torchvision_file.read_bytes()).hexdigest()
    assert loaded.info["weights_are_published_file"] is False
    assert loaded.input_mean.shape == loaded.input_std.shape == (3, 1, 1)
    images = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    normalised = torchvision.transforms.functional.normalize(images, IMAGENET_MEAN, IMAGENET_STD)
    torch.testing.assert_close(loaded.prepare_inputs(images), normalised)
    del loaded
    torchvision_file.unlink()

    # this network's own keys inside a checkpoint dict, written from nn.DataParallel ("module." prefix)
    wrapped = analysable_vgg16(random_torchvision_vgg16)
    checkpoint_file = tmp_path / "checkpoint.pt"
    state = {f"module.{k}": v for k, v in wrapped.state_dict().items()}
    torch.save({"epoch": 90, "state_dict": state}, checkpoint_file)
    network = build_vgg16(checkpoint_file).eval()
    with torch.no_grad():
        assert torch.equal(network(x), expected)


def test_imagenet_normalisation_constants_are_torchvisions():
    transform = VGG16_Weights.IMAGENET1K_V1.transforms()
    assert tuple(transform.mean) == IMAGENET_MEAN and tuple(transform.std) == IMAGENET_STD
    assert transform.crop_size == [224] and transform.resize_size == [256]


def test_missing_or_unusable_weights_files_are_clear_errors(tmp_path):
    missing = tmp_path / "no-such-vgg16.pth"
    with pytest.raises(ValueError, match=r"vgg16\.weights.*no-such-vgg16\.pth"):
        build_vgg16(str(missing))

    wrong_keys = tmp_path / "resnet.pth"
    torch.save({"conv1.weight": torch.zeros(64, 3, 7, 7)}, wrong_keys)
    with pytest.raises(
        VGG16WeightsError,
        match=r"(?s)vgg16\.weights.*resnet\.pth.*32 missing keys.*1 unexpected keys \(conv1\.weight\)",
    ):
        build_vgg16(wrong_keys)

    wrong_shapes = tmp_path / "vgg16-10-classes.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 5, 5)}, wrong_shapes)
    with pytest.raises(VGG16WeightsError, match=r"vgg16-10-classes\.pth"):
        build_vgg16(wrong_shapes)

    not_torch = tmp_path / "notes.txt"
    not_torch.write_text("not weights")
    with pytest.raises(VGG16WeightsError, match=r"notes\.txt.*cannot be read"):
        build_vgg16(not_torch)


def test_offline_imagenet_download_failure_says_to_set_a_local_file(monkeypatch, tmp_path):
    def no_network(url, *args, **kwargs):
        raise urllib.error.URLError("no route to host")

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setattr(torchvision.models._api, "load_state_dict_from_url", no_network)
    with pytest.raises(VGG16WeightsError) as error:
        build_vgg16("imagenet")
    message = str(error.value)
    assert "vgg16.weights" in message and VGG16_Weights.IMAGENET1K_V1.url in message
    assert "no route to host" in message


# --- ImageNet-folder images ---------------------------------------------------------------

CLASS_FOLDERS = ("n01440764", "n01443537", "n01484850")
IMAGES_PER_CLASS = (2, 3, 1)


def image_colour(label: int, number: int) -> tuple[int, int, int]:
    """A flat colour that encodes an image's class and number, so labels can be checked from pixels."""
    return (40 + 60 * label, 20 + 50 * number, 200)


@pytest.fixture
def tiny_imagefolder(tmp_path):
    """Three WordNet-id class folders with 2, 3 and 1 flat-coloured PNGs of assorted sizes."""
    root = tmp_path / "val"
    for label, (wnid, count) in enumerate(zip(CLASS_FOLDERS, IMAGES_PER_CLASS)):
        (root / wnid).mkdir(parents=True)
        for number in range(count):
            size = (300 + 20 * number, 260 - 10 * label)
            Image.new("RGB", size, image_colour(label, number)).save(root / wnid / f"img{number}.png")
    return root


def test_imagefolder_images_all_images_shapes_and_labels(tiny_imagefolder, caplog):
    with caplog.at_level(logging.WARNING, logger="selectivity.data.image_folders"):
        images, labels = load_imagefolder_images(tiny_imagefolder, n_images=100, seed=0, progress=False)
    assert "3 class folders, not 1000" in caplog.text
    assert images.shape == (6, 3, 224, 224) and images.dtype == torch.float32
    assert labels.dtype == torch.int64 and labels.tolist() == [0, 0, 1, 1, 1, 2]
    numbers = [0, 1, 0, 1, 2, 0]
    for image, label, number in zip(images, labels.tolist(), numbers):
        colour = torch.tensor(image_colour(label, number), dtype=torch.float32).view(3, 1, 1) / 255
        torch.testing.assert_close(image, colour.expand(3, 224, 224), atol=1.5 / 255, rtol=0)


def test_imagefolder_seeded_subsets(tiny_imagefolder):
    all_images, all_labels = load_imagefolder_images(
        tiny_imagefolder, 6, seed=0, image_size=32, progress=False
    )
    assert all_images.shape == (6, 3, 32, 32)
    subsets = set()
    for seed in range(8):
        images, labels = load_imagefolder_images(
            tiny_imagefolder, 3, seed=seed, image_size=32, progress=False
        )
        assert images.shape == (3, 3, 32, 32) and labels.shape == (3,)
        rows = [next(i for i in range(6) if torch.equal(all_images[i], image)) for image in images]
        assert rows == sorted(set(rows))  # distinct images, in folder order
        assert labels.tolist() == all_labels[rows].tolist()
        again_images, again_labels = load_imagefolder_images(
            tiny_imagefolder, 3, seed=seed, image_size=32, progress=False
        )
        assert torch.equal(again_images, images) and torch.equal(again_labels, labels)
        subsets.add(tuple(rows))
    assert len(subsets) > 1


def test_imagefolder_transform_is_torchvisions_eval_transform_without_normalisation():
    pixels = np.random.default_rng(0).integers(0, 256, size=(300, 411, 3), dtype=np.uint8)
    picture = Image.fromarray(pixels)
    ours = imagenet_eval_transform()(picture)
    assert ours.shape == (3, 224, 224) and 0 <= ours.min() and ours.max() <= 1
    normalised = torchvision.transforms.functional.normalize(ours, IMAGENET_MEAN, IMAGENET_STD)
    torch.testing.assert_close(normalised, VGG16_Weights.IMAGENET1K_V1.transforms()(picture))


def test_imagefolder_grayscale_images_become_rgb(tmp_path):
    (tmp_path / "n01440764").mkdir()
    Image.new("L", (256, 256), 128).save(tmp_path / "n01440764" / "gray.png")
    images, labels = load_imagefolder_images(tmp_path, 1, seed=0, image_size=32, progress=False)
    assert images.shape == (1, 3, 32, 32) and labels.tolist() == [0]
    torch.testing.assert_close(images, torch.full((1, 3, 32, 32), 128 / 255))


def test_imagefolder_errors_name_the_folder(tmp_path, caplog):
    with pytest.raises(FileNotFoundError, match="missing-val"):
        load_imagefolder_images(tmp_path / "missing-val", 10, seed=0)
    with pytest.raises(FileNotFoundError, match="ImageFolder layout"):
        load_imagefolder_images(tmp_path, 10, seed=0)  # no class folders
    (tmp_path / "n01440764").mkdir()
    (tmp_path / "n01440764" / "readme.txt").write_text("not an image")
    with pytest.raises(FileNotFoundError, match="no images"):
        load_imagefolder_images(tmp_path, 10, seed=0)
    with pytest.raises(ValueError, match="n_images must be at least 1, got 0"):
        load_imagefolder_images(tmp_path, 0, seed=0)
    (tmp_path / "cats").mkdir()
    Image.new("RGB", (40, 40)).save(tmp_path / "cats" / "a.png")
    with caplog.at_level(logging.WARNING, logger="selectivity.data.image_folders"):
        load_imagefolder_images(tmp_path, 1, seed=0, image_size=32, progress=False)
    assert "['cats'] are not WordNet ids" in caplog.text
