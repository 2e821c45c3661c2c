"""Rule measure_tuning: gratings -> responses -> tuning curves, OSI, gOSI (and the shuffled control)."""

from job_setup import batch_size, job_device, save_provenance, start_job

logger = start_job(snakemake)

from selectivity.checkpoints import checkpoint_identifiers, load_checkpoint  # noqa: E402
from selectivity.io import save_npz, save_table  # noqa: E402
from selectivity.tuning import TuningSettings, analyse_tuning  # noqa: E402

with job_device(snakemake, logger) as device:
    network = load_checkpoint(snakemake.input.weights, device)
    identifiers = checkpoint_identifiers(network, snakemake.wildcards.checkpoint_name)
    logger.info("tuning of %s", identifiers)
    result = analyse_tuning(
        network,
        TuningSettings(**{**snakemake.params.settings, "batch_size": batch_size(snakemake, "tuning")}),
        identifiers,
        progress=True,
    )
    save_provenance(snakemake, device, identifiers["seed"])
save_table(result.table, snakemake.output.table)
save_npz(snakemake.output.curves, **result.curves)
gratings = result.table[result.table.stimulus_set == "gratings"]
for layer, rows in gratings.groupby("layer_index"):
    logger.info(
        "%s: mean gOSI %.3f, selective %.1f%%, dead %d of %d",
        rows.layer.iloc[0],
        rows.gosi.mean(),
        100 * rows.selective.mean(),
        rows.dead.sum(),
        len(rows),
    )
