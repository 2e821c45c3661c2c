"""Rule image_folder_test_set: a seeded subset of an image folder as a test-set file at a network's input size."""

from job_setup import start_job

logger = start_job(snakemake)

from selectivity.data.image_folders import save_folder_test_set  # noqa: E402

settings = snakemake.params.settings
count = save_folder_test_set(
    snakemake.input[0], snakemake.output[0], settings["images"], settings["seed"], settings["image_size"]
)
logger.info("%d images of %s at %d px", count, snakemake.input[0], settings["image_size"])
