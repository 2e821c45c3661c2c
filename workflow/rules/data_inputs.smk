# The input functions and settings of the data stage (data.smk).
from selectivity.config import dataset_settings, files_newer_than, local_dataset_files
from selectivity.dataset_shapes import TORCHVISION_DATASETS


def local_dataset_input(wildcards):
    """A local copy of a dataset read by name is an input, so a missing path stops the run before
    any job. For a folder, every file in it is an input: editing a batch file rebuilds the dataset.
    (An image folder's files enter through a fingerprint param instead: they may be many.)
    A copy made again with the same content (newer, but it builds the dataset the digest file
    holds) is read as ancient, so that it reruns nothing (selectivity.data.build).
    """
    dataset = config["dataset"]
    if not (dataset["name"] in TORCHVISION_DATASETS and dataset["source"] == "local"):
        return []
    files = [str(path) for path in local_dataset_files(dataset)] or [dataset["local_path"]]
    digest_file = f"results/data/{wildcards.dataset}.sha256"
    if files_newer_than(files, digest_file) and same_dataset(dataset, digest_file):
        logger.info(
            f"dataset.local_path: {dataset['local_path']} is newer than {digest_file} but builds the "
            "same dataset: read as unchanged, nothing is rebuilt"
        )
        return [ancient(file) for file in files]
    return files


def same_dataset(dataset, digest_file):
    """Whether the dataset settings build the dataset of the digest file (imported here: it
    needs torch, which a start-up without a newer local copy should not pay for)."""
    from selectivity.data.build import builds_the_dataset_of

    return builds_the_dataset_of(dataset_settings(dataset), digest_file)


# Evaluation images of given networks from an image folder (class subfolders), read once at the
# network's input size into a test-set file that the causal rules read like the dataset's own.


def image_folder(wildcards):
    return FOLDER_SETS[wildcards.image_set].folder


def image_folder_settings(wildcards):
    return FOLDER_SETS[wildcards.image_set].folder_settings()
