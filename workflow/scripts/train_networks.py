"""Training rules: train one group of networks and write each network's checkpoints and metrics."""

from job_setup import batch_size, job_device, start_job

logger = start_job(snakemake)

from pathlib import Path  # noqa: E402

from selectivity.data import load_dataset, load_split  # noqa: E402
from selectivity.training import NetworkOutputs, NetworkSpec, TrainingSettings, train_networks  # noqa: E402

settings = TrainingSettings(
    **snakemake.params.settings,
    evaluation_batch_size=batch_size(snakemake, "training"),
    cuda_graphs=snakemake.config["training"]["cuda_graphs"],
)
networks = [NetworkSpec(**network) for network in snakemake.params.networks]
outputs = [
    NetworkOutputs(
        checkpoints={int(epoch): Path(path) for epoch, path in files["checkpoints"].items()},
        best_checkpoint=Path(files["best_checkpoint"]),
        metrics=Path(files["metrics"]),
    )
    for files in snakemake.params.outputs
]
dataset = load_dataset(snakemake.input.dataset)
split = load_split(snakemake.input.split)
logger.info("training %d network(s): %s", len(networks), [n.path_fragment() for n in networks])
with job_device(snakemake, logger) as device:
    train_networks(networks, dataset, split, settings, outputs, Path(snakemake.params.state_dir), device)
