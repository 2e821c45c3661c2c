# The input functions and settings of the data stage (data.smk).
from selectivity.config import dataset_settings, local_dataset_files
from selectivity.dataset_shapes import TORCHVISION_DATASETS


def local_dataset_input(wildcards):
    """A local copy of a dataset read by name is an input, so a missing path stops the run before
    any job. For a folder, every file in it is an input: editing a batch file rebuilds the dataset.
    (An image folder's files enter through a fingerprint param instead: they may be many.)
    """
    dataset = config["dataset"]
    if dataset["name"] in TORCHVISION_DATASETS and dataset["source"] == "local":
        return [str(path) for path in local_dataset_files(dataset)] or [dataset["local_path"]]
    return []


# Evaluation images of given networks from an image folder (class subfolders), read once at the
# network's input size into a test-set file that the causal rules read like the dataset's own.


def image_folder(wildcards):
    return FOLDER_SETS[wildcards.image_set].folder


def image_folder_settings(wildcards):
    return FOLDER_SETS[wildcards.image_set].folder_settings()
