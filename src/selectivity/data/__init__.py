"""Stage 1, data: the dataset a run trains and tests on.

Reads CIFAR-10 (torchvision download, MD5-checked, or a local copy) or builds the synthetic
stand-in; writes the canonical ``results/data/{dataset}.npz`` with its content digest, the
stratified train/validation split and the test set on its own. Also the image operations the
later stages share (Keras-style shifts and flips).

Modules: :mod:`.dataset` (the canonical arrays, split, digests, test images),
:mod:`.cifar10`, :mod:`.synthetic`, :mod:`.build` (choosing between them),
:mod:`.augmentation`.
"""

# The stage's public API: what the data and training rule scripts import. Their text decides
# whether Snakemake reruns their jobs (its code trigger), so it stays put when modules move.
from selectivity.data.build import build_dataset  # noqa: E402
from selectivity.data.dataset import (  # noqa: E402
    Dataset,
    DatasetError,
    Split,
    dataset_digest,
    load_dataset,
    load_split,
    load_test_images,
    save_dataset,
    save_split,
    save_test_set,
    stratified_split,
)

__all__ = [
    "Dataset",
    "DatasetError",
    "Split",
    "build_dataset",
    "dataset_digest",
    "load_dataset",
    "load_split",
    "load_test_images",
    "save_dataset",
    "save_split",
    "save_test_set",
    "stratified_split",
]
