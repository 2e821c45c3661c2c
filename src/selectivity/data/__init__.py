"""Stage 1, data: the dataset a run trains and tests on.

Reads CIFAR-10 (torchvision download, MD5-checked, or a local copy) or builds the synthetic
stand-in; writes the canonical ``results/data/{dataset}.npz`` with its content digest, the
stratified train/validation split and the test set on its own. Also the image operations the
later stages share (Keras-style shifts and flips).

Modules: :mod:`.dataset` (the canonical arrays, split, digests, test images),
:mod:`.cifar10`, :mod:`.synthetic`, :mod:`.build` (choosing between them),
:mod:`.augmentation`.
"""
