"""Users' own architectures for the tests: constructors named as ``own_models:<function>``.

The workflow tests copy this file into their working directory, as a user would put their
module beside their config (constructors are imported from the working directory).
"""

from __future__ import annotations

import torch
from torch import nn


class SmallCNN(nn.Module):
    """Two conv blocks (conv, BN, ReLU, max-pool) and a linear head: small enough for CPU tests."""

    def __init__(self, num_classes: int = 10, width: int = 8, dropout: float = 0.0):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(3, width, 3, padding=1),
            nn.BatchNorm2d(width),
            nn.ReLU(),
            nn.MaxPool2d(2),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.BatchNorm2d(2 * width),
            nn.ReLU(),
            nn.AdaptiveAvgPool2d(4),
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(32 * width, 4 * width),
            nn.ReLU(),
            nn.Linear(4 * width, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


def small_cnn(num_classes: int = 10, width: int = 8) -> nn.Module:
    return SmallCNN(num_classes, width)


def dropout_cnn(num_classes: int = 10, width: int = 8) -> nn.Module:
    """SmallCNN with dropout: its training-mode forward pass draws random numbers."""
    return SmallCNN(num_classes, width, dropout=0.5)


class _Residual(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(x + self.conv(x))


def residual_cnn(num_classes: int = 10, width: int = 8) -> nn.Module:
    """A stem and one residual block: the block's ``conv`` is bypassed by the shortcut."""
    return nn.Sequential(
        nn.Conv2d(3, width, 3, padding=1),
        nn.ReLU(),
        _Residual(width),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(width, num_classes),
    )


class _SharedReLU(nn.Module):
    def __init__(self, num_classes: int, width: int):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, 3, padding=1)
        self.conv2 = nn.Conv2d(width, width, 3, padding=1)
        self.relu = nn.ReLU()  # used after both convolutions
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(width, num_classes))

    def forward(self, x):
        return self.head(self.relu(self.conv2(self.relu(self.conv1(x)))))


def shared_relu_cnn(num_classes: int = 10, width: int = 8) -> nn.Module:
    return _SharedReLU(num_classes, width)


class _DataDependent(SmallCNN):
    def forward(self, x):
        h = self.features(x)
        if h.sum() > 0:  # control flow on a value: torch.func cannot vmap it
            h = h * 1.0
        return self.classifier(h)


def data_dependent_cnn(num_classes: int = 10, width: int = 8) -> nn.Module:
    return _DataDependent(num_classes, width)


def ten_class_cnn(width: int = 8) -> nn.Module:
    """A head of exactly ten classes, whatever the dataset (class_argument: null)."""
    return SmallCNN(10, width)


@torch.no_grad()
def not_a_module(num_classes: int = 10):
    return "a string"
