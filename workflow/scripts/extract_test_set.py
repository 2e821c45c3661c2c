"""Rule extract_test_set: the test images, labels and class names on their own (the analyses' input)."""

from job_setup import start_job

logger = start_job(snakemake)

from selectivity.data import load_dataset, save_test_set  # noqa: E402

dataset = load_dataset(snakemake.input.dataset)
logger.info("%d test images of %s", len(dataset.y_test), dataset.description)
save_test_set(snakemake.output[0], dataset)
