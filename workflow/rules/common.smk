# Config validation, input functions and target lists shared by every stage.
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.utils import validate

# The package is importable from src/ without installation (the controller needs
# only the torch-free config helpers; jobs add src/ themselves in job_setup.py).
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from selectivity.config import (
    ConfigError,
    ablation_layers,
    check_config,
    invariance_layers,
    layer_roles,
    validate_config,
    corruption_label,
    model_layer_names,
    networks,
    saved_epochs,
    training_groups,
)

# Stop before any job on a bad config: first a one-line message per bad key, then
# Snakemake's validation (which fills in the schema defaults), then cross-key checks.
try:
    validate_config(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml")
    validate(config, "../schemas/config.schema.yaml")
    check_config(config)
except ConfigError as error:
    raise WorkflowError(f"Invalid configuration: {error}") from None


wildcard_constraints:
    dataset=r"cifar10|synthetic",
    network=r"cnn\d+/(cifar10|synthetic)/corruption\d\.\d\d/seed\d+",
    checkpoint_name=r"epoch\d+|best",
    model=r"cnn\d+",


DATASET = config["dataset"]["name"]
NETWORKS = networks(config)
NETWORK_PATHS = [network.path for network in NETWORKS]
SAVED_EPOCHS = saved_epochs(config["training"])
LOCK_DIR = ".snakemake/gpu_locks"


# ---- data -------------------------------------------------------------------


def dataset_settings():
    """The settings that determine the canonical dataset file (params of prepare_dataset)."""
    dataset = config["dataset"]
    if dataset["name"] == "synthetic":
        return {"name": "synthetic", "synthetic": dict(dataset["synthetic"])}
    return {
        "name": "cifar10",
        "source": dataset["source"],
        "local_path": dataset["local_path"],
        "download_dir": dataset["download_dir"],
        "verify_checksum": dataset["verify_checksum"],
    }


def local_dataset_input(wildcards):
    """A local CIFAR-10 copy is an input, so a missing path stops the run before any job."""
    dataset = config["dataset"]
    if dataset["name"] == "cifar10" and dataset["source"] == "local":
        return [dataset["local_path"]]
    return []


# ---- training ---------------------------------------------------------------


def network_dir(network):
    return f"results/networks/{network.path}"


def checkpoint_path(network, checkpoint):
    return f"{network_dir(network)}/checkpoints/{checkpoint}.pt"


def training_outputs(group):
    """Per-network files of a training group, structured for the script and flat for Snakemake."""
    structured = [
        {
            "checkpoints": {epoch: checkpoint_path(n, f"epoch{epoch}") for epoch in SAVED_EPOCHS},
            "best_checkpoint": checkpoint_path(n, "best"),
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


def training_settings():
    keys = (
        "epochs",
        "batch_size",
        "learning_rate",
        "adam_betas",
        "adam_epsilon",
        "checkpoint_epochs",
        "augmentation",
        "max_shift_pixels",
        "horizontal_flip",
        "compile",
    )
    return {key: config["training"][key] for key in keys}


def training_runtime(wildcards, attempt):
    """Minutes for a training job: generous for a GPU, growing with each retry (SLURM)."""
    return 60 + config["training"]["epochs"] * 2 * attempt


def training_memory(wildcards, attempt):
    return (4000 + 1000 * config["training"]["group_size"]) * attempt


# ---- analyses ---------------------------------------------------------------


def causal_checkpoint_name():
    """best, or the last epoch (config causal.checkpoint)."""
    if config["causal"]["checkpoint"] == "best":
        return "best"
    return f"epoch{SAVED_EPOCHS[-1]}"


def causal_checkpoint(wildcards):
    return f"results/networks/{wildcards.network}/checkpoints/{causal_checkpoint_name()}.pt"


def causal_tuning_table(wildcards):
    return f"results/tuning/{wildcards.network}/{causal_checkpoint_name()}.csv"


def tuning_settings():
    """Tuning settings that change results (the batch size does not: scripts read it from config)."""
    return {key: value for key, value in config["tuning"].items() if key != "batch_size"}


def stimulus_settings():
    tuning = config["tuning"]
    return {key: tuning[key] for key in ("orientations", "phases", "spatial_frequencies")}


def checkpoint_names():
    return [f"epoch{epoch}" for epoch in SAVED_EPOCHS] + ["best"]


def all_tuning_tables():
    return expand(
        "results/tuning/{network}/{checkpoint_name}.csv",
        network=NETWORK_PATHS,
        checkpoint_name=checkpoint_names(),
    )


def per_network_files(pattern):
    """Every network's file of one kind, e.g. per_network_files("results/causal/{network}/x.csv")."""
    return expand(pattern, network=NETWORK_PATHS)


def ablation_settings_for(model):
    ablation = config["causal"]["ablation"]
    return {
        "layers": ablation_layers(config, model),
        "fraction": ablation["fraction"],
        "random_draws": ablation["random_draws"],
        "cumulative_fractions": sorted(ablation["cumulative_fractions"]),
        "seed": ablation["seed"],
    }


def ablation_settings(wildcards):
    return ablation_settings_for(wildcards.network.split("/")[0])


def invariance_settings(wildcards):
    invariance = config["causal"]["invariance"]
    ablated, measured = invariance_layers(config, wildcards.network.split("/")[0])
    return {
        "measured_layers": measured,
        "ablated_layers": ablated,
        "shifts": invariance["shifts"],
        "directions": invariance["directions"],
        "fraction": config["causal"]["ablation"]["fraction"],
        "random_draws": invariance["random_draws"],
        "seed": invariance["seed"],
    }


# ---- targets ----------------------------------------------------------------


def all_targets():
    targets = [
        "results/claims.csv",
        "results/claims.html",
        "results/provenance.html",
        "results/aggregate/selectivity_summary.csv",
        "results/aggregate/correlations_across_epochs.csv",
        "results/aggregate/correlations_across_networks.csv",
    ]
    targets += expand("results/aggregate/{table}.csv", table=["tuning", *COLLECTED_TABLES])
    targets += expand("results/aggregate/{table}_summary.csv", table=["half_ablation", "shift_invariance"])
    targets += expand(
        "results/figures/{model}/{figure}.png", model=config["networks"]["models"], figure=FIGURES
    )
    if config["vgg16"]["enabled"]:
        targets += vgg16_targets()
    return targets


# ---- aggregation ------------------------------------------------------------

# Combined tables: name -> the per-network (or per-checkpoint) files they collect.
COLLECTED_TABLES = {
    "training_metrics": "results/networks/{network}/metrics.csv",
    "class_selectivity": "results/causal/{network}/class_selectivity.csv",
    "half_ablation": "results/causal/{network}/half_ablation.csv",
    "half_ablation_comparisons": "results/causal/{network}/half_ablation_comparisons.csv",
    "cumulative_ablation": "results/causal/{network}/cumulative_ablation.csv",
    "cumulative_ablation_auc": "results/causal/{network}/cumulative_ablation_auc.csv",
    "shift_invariance": "results/causal/{network}/shift_invariance.csv",
}


def collected_table_inputs(wildcards):
    if wildcards.table == "tuning":
        return all_tuning_tables()
    return per_network_files(COLLECTED_TABLES[wildcards.table])


def claim_layers():
    """Each model's lower and higher layers for the claims."""
    return {
        model: {"lower_layers": list(roles.lower), "higher_layers": list(roles.higher)}
        for model in config["networks"]["models"]
        for roles in [layer_roles(config, model)]
    }


def claim_settings():
    claims = config["claims"]
    return {
        "selectivity_threshold": config["tuning"]["selectivity_threshold"],
        "confidence": claims["confidence"],
        "n_resamples": claims["bootstrap_resamples"],
        "min_networks": claims["min_networks"],
        "seed": claims["seed"],
        "tuning_checkpoint": config["causal"]["checkpoint"],
    }


def causal_checkpoints():
    return [checkpoint_path(network, causal_checkpoint_name()) for network in NETWORKS]


# ---- figures ----------------------------------------------------------------


def stimulus_figure_options(wildcards):
    return {"image_size": 32, **stimulus_settings()}


def example_tuning_input(extension):
    """The example network's tuning table or curves (first seed, least corruption) of a model."""

    def example_file(wildcards):
        network = next(n for n in NETWORKS if n.model == wildcards.model)
        suffix = ".csv" if extension == "csv" else "_curves.npz"
        return f"results/tuning/{network.path}/{causal_checkpoint_name()}{suffix}"

    return example_file


def distribution_options():
    return {
        "checkpoint": config["causal"]["checkpoint"],
        "selectivity_threshold": config["tuning"]["selectivity_threshold"],
    }


def figure_name(wildcards):
    return wildcards.figure


def distribution_figure_name(wildcards):
    return f"{wildcards.index}_distributions"


# ---- VGG16 (ImageNet) -------------------------------------------------------

VGG16 = config["vgg16"]


def vgg16_weights_input(wildcards):
    """A local weights file is an input (a missing path stops the run before any job)."""
    if VGG16["weights"] in ("imagenet", "random"):
        return []
    return [VGG16["weights"]]


def vgg16_validation_folder(wildcards):
    return [VGG16["imagenet_val_dir"]]


def vgg16_ablation_settings():
    ablation = config["causal"]["ablation"]
    return {
        "layers": VGG16["ablation_layers"],
        "fraction": ablation["fraction"],
        "random_draws": ablation["random_draws"],
        "cumulative_fractions": sorted(ablation["cumulative_fractions"]),
        "seed": ablation["seed"],
    }


def vgg16_invariance_settings():
    invariance = config["causal"]["invariance"]
    return {
        "measured_layers": VGG16["measured_layers"],
        "ablated_layers": VGG16["ablation_layers"],
        "shifts": invariance["shifts"],
        "directions": invariance["directions"],
        "fraction": config["causal"]["ablation"]["fraction"],
        "random_draws": invariance["random_draws"],
        "seed": invariance["seed"],
    }


def vgg16_targets():
    figures = list(VGG16_FIGURES)
    if VGG16["imagenet_val_dir"]:
        figures += VGG16_CAUSAL_FIGURES
    return ["results/vgg16/selectivity_summary.csv"] + [
        f"results/figures/vgg16_imagenet/{figure}.png" for figure in figures
    ]
