"""Rule split_dataset: the stratified train/validation split, fixed by its seed."""

from job_setup import start_job

logger = start_job(snakemake)

import numpy as np  # noqa: E402

from selectivity.data import load_dataset, save_split, stratified_split  # noqa: E402

dataset = load_dataset(snakemake.input.dataset)
split = stratified_split(dataset.y_train, snakemake.params.validation_size, snakemake.params.split_seed)
logger.info(
    "split %d training images into %d train / %d validation (seed %d); validation per class %s",
    len(dataset.y_train),
    len(split.train_indices),
    len(split.validation_indices),
    split.split_seed,
    np.bincount(dataset.y_train[split.validation_indices], minlength=dataset.num_classes).tolist(),
)
save_split(snakemake.output[0], split, snakemake.params.validation_size)
