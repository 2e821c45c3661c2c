"""Rule measure_tuning: gratings -> responses -> tuning curves, OSI, gOSI (and the shuffled
control), for every saved checkpoint of one network; one table per checkpoint."""

from job_setup import batch_size, job_device, save_provenance, start_job

logger = start_job(snakemake)

from tqdm.auto import tqdm  # noqa: E402

from selectivity.checkpoints import checkpoint_identifiers, load_checkpoint  # noqa: E402
from selectivity.identity import checkpoint_identity  # noqa: E402
from selectivity.io import save_npz, save_table  # noqa: E402
from selectivity.tuning import TuningSettings, analyse_tuning  # noqa: E402

settings = TuningSettings(**{**snakemake.params.settings, "batch_size": batch_size(snakemake, "tuning")})
jobs = list(
    zip(
        snakemake.params.checkpoint_names,
        snakemake.input.weights,
        snakemake.output.tables,
        snakemake.output.curves,
        snakemake.output.provenance,
    )
)
with job_device(snakemake, logger) as device:
    for checkpoint_name, weights, table_path, curves_path, provenance_path in tqdm(jobs, desc="checkpoints"):
        expected = checkpoint_identity(snakemake.wildcards.network, checkpoint_name)
        network = load_checkpoint(weights, device, expected)
        identifiers = checkpoint_identifiers(network, checkpoint_name)
        logger.info("tuning of %s", identifiers)
        result = analyse_tuning(network, settings, identifiers, progress=True)
        save_table(result.table, table_path)
        save_npz(curves_path, **result.curves)
        save_provenance(snakemake, device, identifiers["seed"], path=provenance_path, inputs=[weights])
        gratings = result.table[result.table.stimulus_set == "gratings"]
        for layer, rows in gratings.groupby("layer_index"):
            logger.info(
                "%s %s: mean gOSI %.3f, selective %.1f%%, dead %d of %d",
                checkpoint_name,
                rows.layer.iloc[0],
                rows.gosi.mean(),
                100 * rows.selective.mean(),
                rows.dead.sum(),
                len(rows),
            )
