"""The paper's second model: torchvision's VGG16 trained on ImageNet, as an analysable network.

The 20 analysed layers (docs/method.md §1) are every convolution (conv1_1 ... conv5_3),
every max-pool (pool1 ... pool5) and the two hidden fully connected layers (fc1, fc2).
The stages reuse torchvision's own modules, so the logits are exactly those of
``torchvision.models.vgg16`` and the published weights load unchanged. VGG16 has no
BatchNorm, so a stage's response and output coincide (see :mod:`selectivity.networks.models`):

conv stage   conv -> ReLU; response = output = the post-ReLU map (ablation point)
pool stage   2x2 max-pool; response = output = the pooled map
fc1 stage    adaptive 7x7 average pool -> flatten -> linear -> ReLU (response) -> dropout (output)
fc2 stage    linear -> ReLU (response) -> dropout (output)
head         the final linear layer (4096 -> 1000)

Dropout is the identity in evaluation mode, where every analysis runs; it is kept so
that the network in training mode behaves like torchvision's.

Images come from an ImageNet validation folder in torchvision ``ImageFolder`` layout and
go through torchvision's evaluation transform (resize 256, centre crop 224) without the
normalisation, which :class:`~selectivity.networks.checkpoints.LoadedNetwork` applies, so gratings
and photographs are normalised by the same function.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
import torchvision
from torch import nn
from torchvision.models import VGG16_Weights

from selectivity.networks.architectures import VGG16_LAYERS
from selectivity.networks.loaded import LoadedNetwork
from selectivity.networks.models import AnalysableNetwork, MaxPoolStage, Stage

logger = logging.getLogger(__name__)

MODEL_NAME = "vgg16_imagenet"
WEIGHTS_CONFIG_KEY = "vgg16.weights"
PUBLISHED_WEIGHTS = VGG16_Weights.IMAGENET1K_V1

# torchvision's ImageNet evaluation preprocessing of these weights: VGG16_Weights.IMAGENET1K_V1.transforms().
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
IMAGENET_STD: tuple[float, float, float] = (0.229, 0.224, 0.225)
VGG16_INPUT_SIZE = 224

# Parameter keys of a torchvision VGG state_dict (features.N / classifier.N), as opposed to stages.N / head.
_TORCHVISION_KEY = re.compile(r"^(features\.\d+|classifier\.\d+)\.(weight|bias)$")


class VGG16WeightsError(ValueError):
    """VGG16 weights that cannot be obtained or used; the fix is always the value of ``vgg16.weights``."""


class VGGConvStage(Stage):
    """conv -> ReLU. Without BatchNorm the post-ReLU map is both response and output."""

    def __init__(self, name: str, conv: nn.Conv2d, relu: nn.ReLU):
        super().__init__(name, "conv", conv.out_channels)
        self.conv = conv
        self.relu = relu

    def forward(self, h):
        response = self.relu(self.conv(h))
        return response, response


class VGGLinearStage(Stage):
    """[adaptive avgpool -> flatten ->] linear -> ReLU (response) -> dropout (output)."""

    def __init__(
        self,
        name: str,
        linear: nn.Linear,
        relu: nn.ReLU,
        dropout: nn.Dropout,
        avgpool: nn.Module | None = None,
    ):
        super().__init__(name, "fc", linear.out_features)
        self.avgpool = avgpool
        self.linear = linear
        self.relu = relu
        self.dropout = dropout

    def forward(self, h):
        if self.avgpool is not None:
            h = torch.flatten(self.avgpool(h), 1)
        response = self.relu(self.linear(h))
        return response, self.dropout(response)


def _feature_stages(features: nn.Sequential) -> list[Stage]:
    """Name torchvision's ``features`` modules conv{block}_{i} and pool{block}, block by block."""
    stages: list[Stage] = []
    modules = list(features)
    block, conv_in_block, channels, i = 1, 0, 3, 0
    while i < len(modules):
        module = modules[i]
        if isinstance(module, nn.Conv2d):
            relu = modules[i + 1] if i + 1 < len(modules) else None
            if not isinstance(relu, nn.ReLU):
                raise ValueError(
                    f"expected VGG16 without BatchNorm (conv followed by ReLU); features[{i + 1}] is {relu!r}"
                )
            conv_in_block += 1
            channels = module.out_channels
            stages.append(VGGConvStage(f"conv{block}_{conv_in_block}", module, relu))
            i += 2
        elif isinstance(module, nn.MaxPool2d):
            stages.append(MaxPoolStage(f"pool{block}", module, channels))
            block, conv_in_block = block + 1, 0
            i += 1
        else:
            raise ValueError(f"unexpected module features[{i}] = {module!r} in a VGG16")
    return stages


def analysable_vgg16(torchvision_vgg16: torchvision.models.VGG) -> AnalysableNetwork:
    """Wrap a torchvision VGG16 as an :class:`AnalysableNetwork` that shares its modules and weights."""
    classifier = list(torchvision_vgg16.classifier)
    kinds = [type(m) for m in classifier]
    expected = [nn.Linear, nn.ReLU, nn.Dropout, nn.Linear, nn.ReLU, nn.Dropout, nn.Linear]
    if kinds != expected:
        raise ValueError(
            f"expected torchvision's VGG classifier {[k.__name__ for k in expected]}, got {kinds}"
        )
    stages = _feature_stages(torchvision_vgg16.features)
    stages.append(
        VGGLinearStage("fc1", classifier[0], classifier[1], classifier[2], torchvision_vgg16.avgpool)
    )
    stages.append(VGGLinearStage("fc2", classifier[3], classifier[4], classifier[5]))
    names = tuple(s.name for s in stages)
    if names != VGG16_LAYERS:
        raise ValueError(f"not a VGG16: its layers are {names}, expected {VGG16_LAYERS}")
    return AnalysableNetwork(MODEL_NAME, stages, classifier[6], VGG16_INPUT_SIZE)


def build_vgg16(
    weights: str | os.PathLike = "imagenet", *, seed: int = 0, progress: bool = False
) -> AnalysableNetwork:
    """VGG16 with ``weights`` = ``"imagenet"``, ``"random"`` or the path of a local weights file.

    ``"imagenet"``: torchvision's published ImageNet weights (IMAGENET1K_V1), downloaded into
    TORCH_HOME on first use. ``"random"``: torchvision's random initialisation drawn with
    ``seed`` (tests only). A path: a torchvision VGG16 ``state_dict`` ``.pth`` (such as the
    file on download.pytorch.org), or the ``state_dict`` of this analysable network, either
    bare or under a ``"state_dict"``/``"model"`` key of a checkpoint dict. ``seed`` is only
    used for random weights. Returns the network in training mode, like torchvision.
    """
    if str(weights) == "imagenet":
        return analysable_vgg16(_published_vgg16(progress))
    if str(weights) == "random":
        logger.warning(
            "VGG16 with RANDOM weights (seed %d): only meant for tests, results mean nothing", seed
        )
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return analysable_vgg16(torchvision.models.vgg16(weights=None))
    return _vgg16_from_file(Path(weights))


def _published_vgg16(progress: bool) -> torchvision.models.VGG:
    url = PUBLISHED_WEIGHTS.url
    logger.info("loading torchvision's VGG16 ImageNet weights (%s) via %s", url, torch.hub.get_dir())
    try:
        return torchvision.models.vgg16(weights=PUBLISHED_WEIGHTS, progress=progress)
    except (OSError, RuntimeError) as error:  # no network, interrupted download, hash mismatch
        raise VGG16WeightsError(
            f"cannot obtain torchvision's VGG16 ImageNet weights {url} "
            f"(cache: {torch.hub.get_dir()}/checkpoints): "
            f"{error}. On a machine without internet access, download that file elsewhere and set the config "
            f"key {WEIGHTS_CONFIG_KEY} to its local path."
        ) from error


def _vgg16_from_file(path: Path) -> AnalysableNetwork:
    if not path.is_file():
        raise VGG16WeightsError(
            f"{WEIGHTS_CONFIG_KEY} = {str(path)!r} is neither 'imagenet', 'random' nor an existing file"
        )
    state_dict = _read_state_dict(path)
    # Parameters on the meta device take no memory and no time to initialise; the load
    # below assigns the file's tensors in their place (and is checked for completeness).
    with torch.device("meta"):
        torchvision_model = torchvision.models.vgg16(weights=None, init_weights=False)
    network = analysable_vgg16(torchvision_model)
    if any(_TORCHVISION_KEY.match(k) for k in state_dict):
        target: nn.Module = torchvision_model
        layout = "a torchvision VGG16"
    else:
        target, layout = network, "an analysable VGG16"
    problem = (
        f"{WEIGHTS_CONFIG_KEY} = {str(path)!r} does not hold VGG16 weights (read as {layout} state_dict)"
    )
    try:
        result = target.load_state_dict(state_dict, strict=False, assign=True)
    except RuntimeError as error:  # parameters of the wrong shape
        raise VGG16WeightsError(f"{problem}: {error}") from error
    if result.missing_keys or result.unexpected_keys:
        missing = _key_summary("missing", result.missing_keys)
        unexpected = _key_summary("unexpected", result.unexpected_keys)
        raise VGG16WeightsError(f"{problem}: {missing}; {unexpected}")
    logger.info("loaded VGG16 weights from %s (%s state_dict)", path, layout)
    return network


def _key_summary(kind: str, keys: list[str], shown: int = 5) -> str:
    listed = ", ".join(keys[:shown]) + (", ..." if len(keys) > shown else "")
    return f"{len(keys)} {kind} keys" + (f" ({listed})" if keys else "")


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The tensors of a weights file: a bare state_dict or one under "state_dict"/"model"."""
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # not a torch file, truncated, or a pickled module
        raise VGG16WeightsError(
            f"{WEIGHTS_CONFIG_KEY} = {str(path)!r} cannot be read as a weights file "
            f"(a torch.save'd state_dict): {error}"
        ) from error
    if isinstance(blob, Mapping):
        for key in ("state_dict", "model"):
            if isinstance(blob.get(key), Mapping):
                blob = blob[key]
                break
    if (
        not isinstance(blob, Mapping)
        or not blob
        or not all(isinstance(v, torch.Tensor) for v in blob.values())
    ):
        raise VGG16WeightsError(
            f"{WEIGHTS_CONFIG_KEY} = {str(path)!r} is not a state_dict "
            "(a mapping of parameter names to tensors)"
        )
    # Checkpoints written from nn.DataParallel prefix every key with "module.".
    if all(k.startswith("module.") for k in blob):
        blob = {k[len("module.") :]: v for k, v in blob.items()}
    # float32 like torchvision's parameters, whatever precision the file was saved in
    return {k: v.float() if v.is_floating_point() else v for k, v in blob.items()}


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def load_vgg16(
    weights: str | os.PathLike, device: torch.device | str = "cpu", *, seed: int = 0
) -> LoadedNetwork:
    """VGG16 ready for analysis: eval mode on ``device``, inputs normalised like torchvision's.

    ``info`` records the weights and, for a local file, its SHA-256 and whether it is
    byte-identical to torchvision's published file (whose name carries its hash prefix).
    """
    model = build_vgg16(weights, seed=seed).to(device).eval()
    info: dict[str, Any] = {
        "model": MODEL_NAME,
        "weights": str(weights),
        # [D] one published network: dataset "imagenet", no label corruption, seed 0.
        "network": {"model": MODEL_NAME, "dataset": "imagenet", "label_corruption": 0.0, "seed": 0},
    }
    if str(weights) == "imagenet":
        info["weights_source"] = PUBLISHED_WEIGHTS.url
    elif str(weights) == "random":
        info["weights_source"] = f"random initialisation, seed {seed}"
    else:
        path = Path(weights).resolve()
        info["weights_source"] = str(path)
        info["weights_sha256"] = _sha256(path)
        published_prefix = torch.hub.HASH_REGEX.search(Path(PUBLISHED_WEIGHTS.url).name).group(1)
        info["weights_are_published_file"] = info["weights_sha256"].startswith(published_prefix)
        if not info["weights_are_published_file"]:
            logger.warning("%s is not torchvision's published VGG16 file %s", path, PUBLISHED_WEIGHTS.url)
    mean = torch.tensor(IMAGENET_MEAN, dtype=torch.float32, device=device).view(3, 1, 1)
    std = torch.tensor(IMAGENET_STD, dtype=torch.float32, device=device).view(3, 1, 1)
    return LoadedNetwork(model=model, input_mean=mean, epoch=None, info=info, input_std=std)
