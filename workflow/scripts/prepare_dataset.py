"""Rule prepare_dataset: CIFAR-10 (download or local copy) or the synthetic stand-in -> canonical .npz."""

from job_setup import start_job

logger = start_job(snakemake)

from selectivity.data import build_dataset, save_dataset  # noqa: E402

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
save_dataset(snakemake.output[0], dataset)
