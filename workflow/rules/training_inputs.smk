# The input functions and settings of the training stage (training.smk).
from snakemake.resources import Resource, Resources

from selectivity.config import (
    architecture_grouping,
    architecture_record_of,
    regularisation_settings,
    saved_epochs,
    training_groups,
    training_settings,
)
from selectivity.networks.catalogue import checkpoint_path
from selectivity.networks.user_architectures import used_architectures

SAVED_EPOCHS = saved_epochs(config["training"])
# A user architecture is stacked for grouped training where torch.func can (checked before any
# job, selectivity.networks.user_models); say which way each one trains.
for _model in used_architectures(config):
    _stacked, _how = architecture_grouping(config, _model)
    _size = config["training"]["group_size"] if _stacked else 1
    logger.info(f"architectures.{_model}: {_how}; up to {_size} network(s) per training job")


def network_dir(network):
    return f"results/networks/{network.path}"


def training_outputs(group):
    """Per-network files of a training group, structured for the script and flat for Snakemake."""
    structured = [
        {
            "checkpoints": {epoch: checkpoint_path(n.path, f"epoch{epoch}") for epoch in SAVED_EPOCHS},
            "best_checkpoint": checkpoint_path(n.path, "best"),
            "metrics": f"{network_dir(n)}/metrics.csv",
        }
        for n in group.networks
    ]
    flat = [
        path
        for outputs in structured
        for path in [*outputs["checkpoints"].values(), outputs["best_checkpoint"], outputs["metrics"]]
    ]
    return structured, flat


def training_params(group):
    """What a training job computes: its networks, their settings, the training method version.

    A regularised variant's settings add the regulariser's (docs/method.md §2.10); every other
    group's params are what they were before the regulariser existed, so nothing retrains.
    """
    record = architecture_record_of(config, group.model)  # a user architecture's; None for built-ins
    settings = training_settings(config["training"])
    regularisation = regularisation_settings(config, group.model)  # None unless a regularised variant
    if regularisation is not None:
        settings["selectivity_regularisation"] = regularisation.record()
    return {
        "networks": [
            {"model": n.model, "dataset": n.dataset, "label_corruption": n.label_corruption, "seed": n.seed}
            | ({"architecture": record} if record is not None else {})
            for n in group.networks
        ],
        "settings": settings,
        "method_version": method_version("training"),
    }


def training_runtime(wildcards, attempt):
    """Minutes for a training job: generous for a GPU, growing with each retry (SLURM)."""
    return 60 + config["training"]["epochs"] * 2 * attempt


def training_memory(wildcards, attempt):
    return (4000 + 1000 * config["training"]["group_size"]) * attempt


# What --set-resources and --set-threads (command line or profile) give under this name applies
# to every training job. Snakemake matches those options by rule name only, and a training rule
# is named by its networks (train_<group>), so without it a profile would have to list every
# group. A group's own name still wins over it.
ALL_TRAINING_RULES = "train_networks"


def apply_training_overrides(rule_name):
    """Set a training rule's resources and threads from what was given for train_networks."""
    settings = workflow.resource_settings
    training_rule = workflow.get_rule(rule_name)
    if ALL_TRAINING_RULES in settings.overwrite_resources:
        training_rule.resources.update(
            Resources.from_mapping(settings.overwrite_resources[ALL_TRAINING_RULES])
        )
        # Snakemake applied the rule's own settings already; they must stay on top
        training_rule.resources.update(
            Resources.from_mapping(settings.overwrite_resources.get(rule_name, {}))
        )
    threads = settings.overwrite_threads.get(ALL_TRAINING_RULES)
    if threads is not None and rule_name not in settings.overwrite_threads:
        training_rule.resources["_cores"] = (
            threads if isinstance(threads, Resource) else Resource("_cores", threads)
        )
