"""Rule external_tuning: orientation tuning of the configured layers of a user's own network."""

from job_setup import batch_size, job_device, load_external, save_provenance, start_job

logger = start_job(snakemake)

from selectivity.io import save_npz, save_table  # noqa: E402
from selectivity.tuning.analysis import TuningSettings, analyse_tuning  # noqa: E402

settings = TuningSettings(**{**snakemake.params.settings, "batch_size": batch_size(snakemake, "tuning")})
with job_device(snakemake, logger) as device:
    network, identifiers = load_external(snakemake, device)
    logger.info("tuning of %s, layers %s", identifiers["model"], network.model.layer_names)
    result = analyse_tuning(network, settings, identifiers, progress=True)
    save_provenance(snakemake, device, identifiers["seed"])
save_table(result.table, snakemake.output.table)
save_npz(snakemake.output.curves, **result.curves)
