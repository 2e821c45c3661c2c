# The input functions and settings of the tuning stage (tuning.smk).
def network_files(wildcards):
    """Every weights file of the network (none for the built-in VGG16's named weights)."""
    return analysed(wildcards).files


def network_checkpoint_names(wildcards):
    return analysed(wildcards).checkpoint_names


def tuning_settings():
    """Tuning settings that change results (the batch size does not: scripts read it from config)."""
    return {key: value for key, value in config["tuning"].items() if key != "batch_size"}


def tuning_runtime(wildcards, attempt):
    """Minutes for one network's tuning: about 5 per checkpoint on a CPU, more on a retry."""
    return 5 * len(analysed(wildcards).checkpoint_names) * attempt
