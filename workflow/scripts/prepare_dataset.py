"""Rule prepare_dataset: CIFAR-10 (download or local copy) or the synthetic stand-in -> canonical .npz."""

from job_setup import start_job

logger = start_job(snakemake)

from selectivity.data import dataset_digest, save_dataset  # noqa: E402
from selectivity.datasets import build_dataset  # noqa: E402
from selectivity.io import save_text  # noqa: E402

settings = snakemake.params.settings
logger.info("building dataset %s with %s", settings["name"], settings)
dataset = build_dataset(settings)
logger.info(
    "%s: %d training and %d test images of %dx%d px, %d classes",
    dataset.description,
    len(dataset.y_train),
    len(dataset.y_test),
    dataset.image_size,
    dataset.image_size,
    dataset.num_classes,
)
digest = dataset_digest(dataset)
logger.info("content digest %s", digest)
save_dataset(snakemake.output.dataset, dataset)
# The small file that stands for the dataset's content (see dataset_inputs in common.smk).
save_text(digest + "\n", snakemake.output.digest)
