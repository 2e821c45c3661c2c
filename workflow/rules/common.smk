# What several stages share: config validation, the networks of the run, wildcard
# constraints, the dataset's inputs, and the list of final targets. Each stage's own input
# functions sit beside its rules in its .smk file.
import os
import re
import sys
from pathlib import Path

from snakemake.exceptions import WorkflowError
from snakemake.logging import logger

# The package is importable from src/ without installation (the controller needs
# only the torch-free config helpers; jobs add src/ themselves in job_setup.py).
sys.path.insert(0, str(Path(workflow.basedir) / "src"))

from selectivity.config import (
    ConfigError,
    check_config_files,
    validate_config,
    gpus_per_network_job,
)
from selectivity.networks.catalogue import analysed_networks, folder_sets, models_of
from selectivity.identity import is_regularised
from selectivity.figures.catalogue import ACROSS_ARCHITECTURES
from selectivity.versions import method_version
from selectivity.process_exit import freeze_collector_at_exit

# Snakemake's exit, like every job's, skips the garbage collections over objects about to be
# given back (selectivity.process_exit: about 0.5 s of CPU per call, dry runs included).
freeze_collector_at_exit()

# The SLURM plugin's partition file (profiles/slurm/partitions.yaml: GPU jobs to the GPU
# partition, the rest to the CPU one), found from any working directory; a user's own
# SNAKEMAKE_SLURM_PARTITIONS or --slurm-partition-config wins. Other executors ignore it.
os.environ.setdefault(
    "SNAKEMAKE_SLURM_PARTITIONS", str(Path(workflow.basedir) / "profiles/slurm/partitions.yaml")
)

# The default configuration is the config.yaml beside the Snakefile (see there). One in another
# working directory is not read unless given with --configfile: say so instead of ignoring it.
if Path("config.yaml").exists() and Path("config.yaml").resolve() not in {
    Path(path).resolve() for path in workflow.configfiles
}:
    logger.warning(
        f"{Path('config.yaml').resolve()} is not read: the default configuration is "
        f"{Path(workflow.basedir) / 'config.yaml'}; pass yours with --configfile config.yaml"
    )

# Stop before any job on a bad config: one pass fills in the schema defaults, checks every
# key against the schema and the cross-key rules, and names each bad key and value.
try:
    check_config_files(workflow.configfiles)
    for message in validate_config(config, Path(workflow.basedir) / "workflow/schemas/config.schema.yaml"):
        logger.warning(message)
    # Every network of the run, trained or given (selectivity.networks.catalogue): one
    # {network} wildcard takes each of them through the same analyses.
    ANALYSED = {network.path: network for network in analysed_networks(config)}
    # Image folders that given networks are tested on, by name (one rule builds each once).
    FOLDER_SETS = folder_sets(config)
except ConfigError as error:
    raise WorkflowError(f"Invalid configuration: {error}") from None


def alternatives(names):
    """A wildcard constraint that matches exactly these values ("(?!)" matches nothing)."""
    return "|".join(re.escape(name) for name in names) or "(?!)"


# The models of the study, each with its networks; a model's regularised variants (its networks
# trained with the selectivity regulariser, docs/method.md §2.10) are not models of their own: they
# get the regularisation figures and claim C7 of their model.
MODELS = models_of([network for network in ANALYSED.values() if not is_regularised(network.model)])
TRAINED_MODELS = list(config["networks"]["models"])
GIVEN_MODELS = [group.model for group in MODELS if group.origin == "given"]


wildcard_constraints:
    dataset=alternatives([config["dataset"]["name"]]),
    network=alternatives(ANALYSED),
    model=alternatives([*TRAINED_MODELS, ACROSS_ARCHITECTURES, *GIVEN_MODELS]),


DATASET = config["dataset"]["name"]
# The `gpu` resource of the jobs that run a network: 1, or 0 with device cpu (CPU-only clusters).
GPUS_PER_NETWORK_JOB = gpus_per_network_job(config)


def analysed(wildcards):
    """The network of a job's {network} wildcard."""
    return ANALYSED[wildcards.network]


def network_description(wildcards):
    """Where the network comes from and how it is fed (a param: it determines the results)."""
    return dict(analysed(wildcards).description)


def network_paths(*, causal=False, origin=None):
    """The paths of the run's networks (only those with causal tests, or of one origin)."""
    return [
        path
        for path, network in ANALYSED.items()
        if (not causal or network.gets_causal_tests) and (origin is None or network.origin == origin)
    ]


def network_memory(wildcards, attempt):
    """MB for a job that runs one network: more for large inputs (VGG16), more on a retry."""
    return (6000 if analysed(wildcards).input_size <= 64 else 16000) * attempt


def network_threads(wildcards):
    """CPU threads of a job that runs one network: 2 for large inputs (VGG16), else 1."""
    return 1 if analysed(wildcards).input_size <= 64 else 2


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


def all_targets():
    return [
        "results/claims.csv",
        "results/claims.html",
        "results/aggregate/networks_needed.csv",
        "results/provenance.html",
        *aggregate_targets(),
        *figure_targets(),
    ]
