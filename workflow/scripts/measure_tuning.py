"""Rule measure_tuning: gratings -> responses -> tuning curves, OSI, gOSI (and the shuffled
control), for every checkpoint of one network; one table and one curves file per network."""

from job_setup import batch_size, job_device, open_network, save_provenance, start_job

logger = start_job(snakemake)

import pandas as pd  # noqa: E402
from tqdm.auto import tqdm  # noqa: E402

from selectivity.io import save_npz, save_table  # noqa: E402
from selectivity.networks.loading import checkpoint_weights  # noqa: E402
from selectivity.tuning.analysis import TuningSettings, analyse_tuning, checkpoint_curves  # noqa: E402

settings = TuningSettings(**{**snakemake.params.settings, "batch_size": batch_size(snakemake, "tuning")})
weights = checkpoint_weights(snakemake.params.checkpoint_names, snakemake.input.weights)
tables, curves = [], {}
with job_device(snakemake, logger) as device:
    for checkpoint_name, path in tqdm(
        list(zip(snakemake.params.checkpoint_names, weights)), desc="checkpoints"
    ):
        network, identifiers = open_network(snakemake, path, checkpoint_name, device)
        logger.info("tuning of %s", identifiers)
        result = analyse_tuning(network, settings, identifiers, progress=True)
        tables.append(result.table)
        curves.update(checkpoint_curves(checkpoint_name, result.curves))
        gratings = result.table[result.table.stimulus_set == "gratings"]
        for layer, rows in gratings.groupby("layer_index"):
            logger.info(
                "%s %s: mean gOSI %.3f, median gOSI %.3f, dead %d of %d",
                checkpoint_name,
                rows.layer.iloc[0],
                rows.gosi.mean(),
                rows.gosi.median(),
                rows.dead.sum(),
                len(rows),
            )
    save_provenance(snakemake, device, identifiers["seed"])
save_table(pd.concat(tables, ignore_index=True), snakemake.output.table)
save_npz(snakemake.output.curves, **curves)
