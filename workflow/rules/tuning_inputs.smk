# The input functions and settings of the tuning stage (tuning.smk).
import yaml

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


# A fixed order of the tuning settings, config.yaml's (so runs made before it plan nothing new):
# Snakemake compares a dict param by its repr, key order included, and the merged config puts a
# config file's keys before config.yaml's, so a setting restated at its default would otherwise
# rerun every tuning job. Settings config.yaml lacks follow, by name.
CONFIG_ORDER = list(yaml.safe_load((Path(workflow.basedir) / "config.yaml").read_text())["tuning"])


def tuning_settings():
    """Tuning settings that change the tuning tables, in config.yaml's order (then by name)."""
    keys = sorted(
        (key for key in config["tuning"] if key not in NOT_TUNING_SETTINGS),
        key=lambda key: (CONFIG_ORDER.index(key) if key in CONFIG_ORDER else len(CONFIG_ORDER), key),
    )
    return {key: config["tuning"][key] for key in keys}


def tuning_runtime(wildcards, attempt):
    """Minutes for one network's tuning: about 5 per checkpoint on a CPU, more on a retry."""
    return 5 * len(analysed(wildcards).checkpoint_names) * attempt
