"""Shared start of every rule script: imports, logging to the rule's log, threads, device.

Snakemake puts this folder on ``sys.path`` when it runs a script, so every script
starts with ``from job_setup import start_job``.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from pathlib import Path

# The package is imported from this workflow's src/, also inside a rule's conda env and also
# where another copy is installed: first on the path, whatever Snakemake's preamble appended
# (it appends the controller's path, which holds src/ behind site-packages).
SOURCE_DIR = Path(__file__).resolve().parents[2] / "src"
sys.path.insert(0, str(SOURCE_DIR))


def start_job(snakemake) -> logging.Logger:
    """Send stdout, stderr (tracebacks, tqdm) and logging to the rule's log file.

    Snakemake itself sets OMP_NUM_THREADS and the other thread variables to the
    rule's ``threads`` before the script starts.
    """
    log_file = open(snakemake.log[0], "w", buffering=1)
    sys.stdout = sys.stderr = log_file
    logging.basicConfig(
        stream=log_file,
        level=logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    import selectivity  # which code runs this job, for the log

    logger = logging.getLogger(snakemake.rule)
    logger.info("selectivity %s from %s", selectivity.__version__, Path(selectivity.__file__).parent)
    return logger


@contextlib.contextmanager
def job_device(snakemake, logger: logging.Logger):
    """The device this job runs on (see selectivity.devices.select_device).

    The device choice comes from the config, not from params: where a job runs does
    not change its result, so changing it must not rerun finished jobs (provenance
    records the device).
    """
    import torch

    from selectivity.devices import GPU_LOCK_DIR, select_device

    torch.set_num_threads(max(1, int(snakemake.threads)))
    gpus = int(getattr(snakemake.resources, "gpu", 0) or 0)
    requested = snakemake.config["device"]
    with select_device(requested, gpus, GPU_LOCK_DIR) as lease:
        logger.info(
            "torch %s on %s (config device=%s, gpus allotted=%d, %d CPU threads)",
            torch.__version__,
            lease.device,
            requested,
            gpus,
            torch.get_num_threads(),
        )
        yield lease.device


def save_provenance(snakemake, device, seed: int | None = None, path=None, inputs=None) -> None:
    """Write the job's provenance record (seed, config hash, versions, device) to ``path``
    (default output.provenance); ``inputs`` (default all of the job's) are the files it used.

    The hash covers the rule, its wildcards and its result-affecting params, i.e. exactly
    what Snakemake tracks for reruns.
    """
    from selectivity.io import save_json
    from selectivity.provenance import provenance

    settings = {
        "rule": snakemake.rule,
        "wildcards": dict(snakemake.wildcards.items()),
        "params": dict(snakemake.params.items()),
        "inputs": list(snakemake.input) if inputs is None else list(inputs),
    }
    save_json(provenance(seed, settings, device), path or snakemake.output.provenance)


def batch_size(snakemake, section: str) -> int:
    """A batch size from the config. Read here, not passed as a param: it does not change
    results, so changing it must not rerun finished jobs."""
    key = "evaluation_batch_size" if section == "training" else "batch_size"
    return int(snakemake.config[section][key])


def load_network_and_test_images(snakemake, device, logger: logging.Logger):
    """The causal rules' common inputs: the network, its identifier columns, the test images.

    The network is a trained checkpoint (input ``weights``), or a user's own network when the
    rule has param ``external`` (its config entry). Returns (network, identifiers, images in
    [0, 1], labels, number of classes), all on ``device``.
    """
    from selectivity.data import load_test_images

    if hasattr(snakemake.params, "external"):
        network, identifiers = load_external(snakemake, device)
    else:
        from selectivity.checkpoints import checkpoint_identifiers, load_checkpoint

        network = load_checkpoint(snakemake.input.weights, device, expected_identity(snakemake))
        identifiers = checkpoint_identifiers(network, snakemake.params.checkpoint_name)
    images, labels, num_classes = load_test_images(
        snakemake.input.test_set, snakemake.params.test_images, device
    )
    logger.info("%s of %s on %d test images", snakemake.rule, identifiers, len(labels))
    return network, identifiers, images, labels, num_classes


def expected_identity(snakemake) -> dict:
    """What this job's per-network inputs must say they are (checked where they are read): the
    network and checkpoint its wildcard and params name, or the user network's name."""
    from selectivity.identity import checkpoint_identity

    wildcards = dict(snakemake.wildcards.items())
    if "network" in wildcards:
        return checkpoint_identity(wildcards["network"], snakemake.params.checkpoint_name)
    if "external" in wildcards:
        return {"model": wildcards["external"]}
    return {}


def load_external(snakemake, device):
    """A user's own network (config ``external_networks``) and its identifier columns."""
    from selectivity.external import ExternalNetworkSpec, external_identifiers, load_external_network

    entry = dict(snakemake.params.external)
    spec = ExternalNetworkSpec.from_config(
        snakemake.wildcards.external, {**entry, "weights": snakemake.input.weights}
    )
    dataset = snakemake.config["dataset"]["name"] if entry["test_images"] == "dataset" else None
    return load_external_network(spec, device), external_identifiers(spec.name, dataset)
