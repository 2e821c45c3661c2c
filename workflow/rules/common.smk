# Config validation, input functions and target lists shared by every stage.
import os
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

# The package is importable from src/ without installation (the controller needs
# only the torch-free config helpers; jobs add src/ themselves in job_setup.py).
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from selectivity.config import (
    ConfigError,
    ablation_layers,
    causal_networks,
    check_config_files,
    dataset_settings,
    gpus_per_network_job,
    local_dataset_files,
    invariance_layers,
    layer_roles,
    validate_config,
    corruption_label,
    external_layer_roles,
    model_layer_names,
    networks,
    saved_epochs,
    training_groups,
    training_settings,
)
from selectivity.figure_catalogue import ACROSS_ARCHITECTURES, figure_entry, figure_names, figures_of
from selectivity.versions import method_version

# The SLURM plugin's partition file (profiles/slurm/partitions.yaml: GPU jobs to the GPU
# partition, the rest to the CPU one), found from any working directory; a user's own
# SNAKEMAKE_SLURM_PARTITIONS or --slurm-partition-config wins. Other executors ignore it.
os.environ.setdefault(
    "SNAKEMAKE_SLURM_PARTITIONS", str(Path(workflow.basedir) / "profiles/slurm/partitions.yaml")
)

# Stop before any job on a bad config: one pass fills in the schema defaults, checks every
# key against the schema and the cross-key rules, and names each bad key and value.
try:
    check_config_files(workflow.configfiles)
    for message in validate_config(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"):
        logger.warning(message)
except ConfigError as error:
    raise WorkflowError(f"Invalid configuration: {error}") from None


wildcard_constraints:
    dataset=r"cifar10|synthetic",
    network="(" + "|".join(config["networks"]["models"]) + r")/(cifar10|synthetic)/corruption\d\.\d\d/seed\d+",
    checkpoint_name=r"epoch\d+|best",
    model="|".join(
        [*config["networks"]["models"], ACROSS_ARCHITECTURES, "vgg16_imagenet", *config["external_networks"]]
    ),
    # the names of the user's own networks ("(?!)" matches nothing when there are none)
    external="|".join(config["external_networks"]) or "(?!)",


DATASET = config["dataset"]["name"]
NETWORKS = networks(config)
NETWORK_PATHS = [network.path for network in NETWORKS]
# The networks that get the causal tests (causal.label_corruption).
CAUSAL_NETWORK_PATHS = [network.path for network in causal_networks(config)]
SAVED_EPOCHS = saved_epochs(config["training"])
# The `gpu` resource of the jobs that run a network: 1, or 0 with device cpu (CPU-only clusters).
GPUS_PER_NETWORK_JOB = gpus_per_network_job(config)


# ---- data -------------------------------------------------------------------


def local_dataset_input(wildcards):
    """A local CIFAR-10 copy is an input, so a missing path stops the run before any job.

    For a folder, every file in it is an input: editing a batch file rebuilds the dataset.
    """
    dataset = config["dataset"]
    if dataset["name"] == "cifar10" and dataset["source"] == "local":
        return [str(path) for path in local_dataset_files(dataset)] or [dataset["local_path"]]
    return []


def dataset_inputs():
    """How a job reads the canonical dataset: the file marked ancient, plus its content digest.

    A dataset file rebuilt with the same content (after being deleted, say) must not rerun
    the networks, but the .npz is too large for Snakemake's input checksums, so its time is
    ignored (ancient) and the small digest file beside it carries its content: rebuilt
    identically, the digest keeps its checksum and nothing reruns; rebuilt with other
    content, the digest changes. The digest is an ordinary input on purpose: Snakemake does
    not re-check a job downstream of a rerunning job whose links are all ancient, so every
    ancient link needs this non-ancient twin.
    """
    return {
        "dataset": ancient(f"results/data/{DATASET}.npz"),
        "dataset_digest": f"results/data/{DATASET}.sha256",
    }


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


def training_params(group):
    """What a training job computes: its networks, their settings, the training method version."""
    return {
        "networks": [
            {"model": n.model, "dataset": n.dataset, "label_corruption": n.label_corruption, "seed": n.seed}
            for n in group.networks
        ],
        "settings": training_settings(config["training"]),
        "method_version": method_version("training"),
    }


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


def per_checkpoint(pattern):
    """One path per saved checkpoint of a network: ``{{network}}`` stays a wildcard."""
    return expand(pattern, checkpoint_name=checkpoint_names())


def tuning_checkpoints(wildcards):
    """Every saved checkpoint of the network, in the order of checkpoint_names()."""
    return [f"results/networks/{wildcards.network}/checkpoints/{name}.pt" for name in checkpoint_names()]


def tuning_runtime(wildcards, attempt):
    """Minutes for one network's tuning: about 5 per checkpoint on a CPU, more on a retry."""
    return 5 * len(checkpoint_names()) * attempt


def all_tuning_tables():
    return expand(
        "results/tuning/{network}/{checkpoint_name}.csv",
        network=NETWORK_PATHS,
        checkpoint_name=checkpoint_names(),
    )


def per_network_files(pattern):
    """Every network's file of one kind, e.g. per_network_files("results/causal/{network}/x.csv");
    causal files only for the networks that get the causal tests."""
    paths = CAUSAL_NETWORK_PATHS if pattern.startswith("results/causal/") else NETWORK_PATHS
    return expand(pattern, network=paths)


def ablation_settings_for(model, layers=None):
    """The ablation settings of a model's networks (``layers``: a user network's own layers)."""
    ablation = config["causal"]["ablation"]
    return {
        "layers": ablation_layers(config, model) if layers is None else list(layers),
        "fraction": ablation["fraction"],
        "random_draws": ablation["random_draws"],
        "cumulative_fractions": sorted(ablation["cumulative_fractions"]),
        "seed": ablation["seed"],
    }


def ablation_settings(wildcards):
    return ablation_settings_for(wildcards.network.split("/")[0])


def invariance_settings_for(ablated, measured):
    """The shift-invariance settings for the given ablated (lower) and measured (higher) layers."""
    invariance = config["causal"]["invariance"]
    return {
        "measured_layers": list(measured),
        "ablated_layers": list(ablated),
        "shifts": invariance["shifts"],
        "directions": invariance["directions"],
        "fraction": config["causal"]["ablation"]["fraction"],
        "random_draws": invariance["random_draws"],
        "seed": invariance["seed"],
    }


def invariance_settings(wildcards):
    return invariance_settings_for(*invariance_layers(config, wildcards.network.split("/")[0]))


# ---- targets ----------------------------------------------------------------


def all_targets():
    targets = [
        "results/claims.csv",
        "results/claims.html",
        "results/aggregate/networks_needed.csv",
        "results/provenance.html",
        "results/aggregate/selectivity_summary.csv",
        "results/aggregate/correlations_across_epochs.csv",
        "results/aggregate/correlations_across_networks.csv",
    ]
    targets += expand("results/aggregate/{table}.csv", table=["tuning", *COLLECTED_TABLES])
    targets += expand("results/aggregate/{table}_summary.csv", table=["half_ablation", "shift_invariance"])
    targets += figure_targets()
    targets += external_targets()
    if config["vgg16"]["enabled"]:
        targets.append("results/vgg16/selectivity_summary.csv")
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
        "n_permutations": claims["permutations"],
        "equivalence_margin": claims["equivalence_margin"],
        "seed": claims["seed"],
        "tuning_checkpoint": config["causal"]["checkpoint"],
    }


def causal_checkpoints():
    return [checkpoint_path(network, causal_checkpoint_name()) for network in NETWORKS]


# ---- figures ----------------------------------------------------------------


def example_network(model):
    """The network an example figure shows: the model's first seed at the least corruption."""
    return next(n for n in NETWORKS if n.model == model)


def _figure(wildcards):
    return figure_entry(
        wildcards.model, wildcards.figure, config["networks"]["models"], list(config["external_networks"])
    )


def figure_inputs(wildcards):
    """The files a figure reads (selectivity.figure_catalogue), with its placeholders filled in."""
    entry = _figure(wildcards)
    fields = {"model": wildcards.model, "causal_checkpoint": causal_checkpoint_name()}
    if entry.scope == "trained":
        fields["example_network"] = example_network(wildcards.model).path
    return {name: pattern.format(**fields) for name, pattern in entry.inputs.items()}


def figure_options(wildcards):
    """The config-derived settings a figure's drawing gets (its entry's ``options`` kind)."""
    entry = _figure(wildcards)
    tuning_checkpoint = "final" if entry.scope != "trained" else config["causal"]["checkpoint"]
    image_size = 224 if wildcards.model == "vgg16_imagenet" else 32
    if wildcards.model in config["external_networks"]:
        image_size = config["external_networks"][wildcards.model]["input_size"]
    return {
        "none": {},
        "stimuli": {"image_size": image_size, **stimulus_settings()},
        "distributions": {
            "checkpoint": tuning_checkpoint,
            "selectivity_threshold": config["tuning"]["selectivity_threshold"],
        },
        "checkpoint": {"checkpoint": tuning_checkpoint},
    }[entry.options]


def figure_category(wildcards, **_):
    return _figure(wildcards).category


def figure_labels(wildcards, **_):
    return {"model": wildcards.model, "figure": _figure(wildcards).label}


def figure_caption(wildcards):
    """The figure's caption (workflow/report/figures/<caption>.rst), rendered with the config."""
    import jinja2
    from types import SimpleNamespace

    text = (
        Path(workflow.basedir) / "workflow/report/figures" / f"{_figure(wildcards).caption}.rst"
    ).read_text()
    return jinja2.Template(text).render(snakemake=SimpleNamespace(config=config, wildcards=wildcards))


def figure_targets():
    targets = expand(
        "results/figures/{model}/{figure}.png",
        model=config["networks"]["models"],
        figure=figures_of("trained"),
    )
    targets += expand(
        "results/figures/{model}/{figure}.png", model=ACROSS_ARCHITECTURES, figure=figures_of("across")
    )
    if config["vgg16"]["enabled"]:
        scopes = ["vgg16"] + (["vgg16_causal"] if config["vgg16"]["imagenet_val_dir"] else [])
        targets += [
            f"results/figures/vgg16_imagenet/{figure}.png" for scope in scopes for figure in figures_of(scope)
        ]
    return targets


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
    return ablation_settings_for("vgg16_imagenet", VGG16["ablation_layers"])


def vgg16_invariance_settings():
    return invariance_settings_for(VGG16["ablation_layers"], VGG16["measured_layers"])


# ---- users' own networks (external_networks) ----------------------------------

EXTERNAL = config["external_networks"]
EXTERNAL_OUTPUTS = ["tuning.csv", "selectivity_summary.csv"]
EXTERNAL_CAUSAL_OUTPUTS = ["class_selectivity.csv", "half_ablation.csv", "shift_invariance.csv"]


def external_entry(wildcards):
    """The network's config entry (constructor, arguments, layers, normalisation, ...)."""
    return EXTERNAL[wildcards.external]


def external_weights(wildcards):
    return EXTERNAL[wildcards.external]["weights"]


def external_ablation_settings(wildcards):
    return ablation_settings_for(wildcards.external, EXTERNAL[wildcards.external]["layers"])


def external_invariance_settings(wildcards):
    roles = external_layer_roles(EXTERNAL[wildcards.external])
    return invariance_settings_for(roles.lower, roles.higher)


def external_targets():
    """Each user network's tables and figures (the causal ones only with test images)."""
    targets = []
    for name, entry in EXTERNAL.items():
        causal = entry["test_images"] == "dataset"
        outputs = EXTERNAL_OUTPUTS + (EXTERNAL_CAUSAL_OUTPUTS if causal else [])
        targets += [f"results/external/{name}/{output}" for output in outputs]
        scopes = ["external"] + (["external_causal"] if causal else [])
        targets += [
            f"results/figures/{name}/{figure}.png" for scope in scopes for figure in figures_of(scope)
        ]
    return targets
