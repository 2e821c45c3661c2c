# The input functions and settings of the tuning stage (tuning.smk).
from selectivity.tuning.features import THRESHOLD_SETTINGS


def network_files(wildcards):
    """Every weights file of the network (none for the built-in VGG16's named weights)."""
    return analysed(wildcards).files


def network_checkpoint_names(wildcards):
    return analysed(wildcards).checkpoint_names


# Tuning settings that do not change a tuning table: the batch size (scripts read it from the
# config) and the selectivity threshold (used by the summary, the claims and the figures,
# which get it as their own params; so a threshold change reruns no tuning or causal job).
NOT_TUNING_SETTINGS = ("batch_size", "selectivity_threshold", *THRESHOLD_SETTINGS.values())


def tuning_settings():
    """Tuning settings that change the tuning tables."""
    return {key: value for key, value in config["tuning"].items() if key not in NOT_TUNING_SETTINGS}


def tuning_runtime(wildcards, attempt):
    """Minutes for one network's tuning: about 5 per checkpoint on a CPU, more on a retry."""
    return 5 * len(analysed(wildcards).checkpoint_names) * attempt
