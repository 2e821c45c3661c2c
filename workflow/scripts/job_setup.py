"""Shared start of every rule script: imports, logging to the rule's log, a quick exit, threads,
device.

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
    """Send stdout, stderr (tracebacks, tqdm) and logging to the rule's log file, and shorten the
    job's exit.

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
    from selectivity.process_exit import freeze_collector_at_exit

    freeze_collector_at_exit()  # about half a second of CPU per job

    logger = logging.getLogger(snakemake.rule)
    logger.info("selectivity %s from %s", selectivity.__version__, Path(selectivity.__file__).parent)
    return logger


def allotted_gpus(snakemake) -> int:
    """The job's Snakemake ``gpu`` resource (0 where the rule declares none)."""
    return int(getattr(snakemake.resources, "gpu", 0) or 0)


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
    gpus = allotted_gpus(snakemake)
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
    results, so changing it must not rerun finished jobs. A given network's own ``batch_size``
    (e.g. vgg16.batch_size) overrides the section's for its analysis jobs. ``auto`` (the
    default) is resolved for the device the job will run on (selectivity.devices)."""
    from selectivity.devices import device_type, forward_batch_size

    network = getattr(snakemake.params, "network", None) or {}
    if network.get("origin") == "given" and section != "training":
        from selectivity.networks.catalogue import given_entries

        own = given_entries(snakemake.config).get(network["name"], {}).get("batch_size")
        if own:
            return int(own)
    key = "evaluation_batch_size" if section == "training" else "batch_size"
    kind = device_type(snakemake.config["device"], allotted_gpus(snakemake))
    size = forward_batch_size(snakemake.config[section][key], kind, section)
    logging.getLogger(snakemake.rule).info(
        "%s.%s: %d images per forward pass on the %s", section, key, size, kind
    )
    return size


def open_network(snakemake, weights, checkpoint_name: str, device):
    """The job's network (any origin: param ``network``) from ``weights`` and its identifier columns."""
    from selectivity.networks.loading import load_network

    return load_network(dict(snakemake.params.network), weights, checkpoint_name, device)


def causal_weights(snakemake):
    """The causal checkpoint's file (None for the built-in VGG16's named weights)."""
    files = list(snakemake.input.weights)
    return files[0] if files else None


def expected_identity(snakemake, checkpoint: bool = True) -> dict:
    """What this job's per-network inputs must say they are (checked where they are read): the
    network its param ``network`` describes and, with ``checkpoint``, the checkpoint it names."""
    from selectivity.networks.loading import expected_identity as identity_of

    name = snakemake.params.checkpoint_name if checkpoint else None
    return identity_of(dict(snakemake.params.network), name)


def causal_tuning_table(snakemake):
    """The tuning rows of the checkpoint the causal tests use (input ``tuning``: the network's
    table, checked to be this network's)."""
    from selectivity.tables import read_table
    from selectivity.tuning.analysis import rows_of_checkpoint

    table = read_table(snakemake.input.tuning, "tuning", expected_identity(snakemake, checkpoint=False))
    return rows_of_checkpoint(table, snakemake.params.checkpoint_name)


def load_network_and_test_images(snakemake, device, logger: logging.Logger):
    """The causal rules' common inputs: the network, its identifier columns, the test images.

    Returns (network, identifiers, images in [0, 1], labels, number of classes), all on ``device``.
    """
    from selectivity.data.dataset import load_test_images

    network, identifiers = open_network(
        snakemake, causal_weights(snakemake), snakemake.params.checkpoint_name, device
    )
    images, labels, num_classes = load_test_images(
        snakemake.input.test_set, snakemake.params.test_images, device
    )
    logger.info("%s of %s on %d test images", snakemake.rule, identifiers, len(labels))
    return network, identifiers, images, labels, num_classes
