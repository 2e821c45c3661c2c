"""Rule half_ablation: ablate the top / bottom / random 50% of a layer's units (by gOSI and by class selectivity)."""

from job_setup import batch_size, job_device, load_network_and_test_images, save_provenance, start_job

logger = start_job(snakemake)

import pandas as pd  # noqa: E402

from selectivity.ablation import AblationSettings, half_ablation, unit_scores_from_tables  # noqa: E402
from selectivity.io import save_table  # noqa: E402

settings = AblationSettings(**snakemake.params.settings, batch_size=batch_size(snakemake, "causal"))
scores = unit_scores_from_tables(
    pd.read_csv(snakemake.input.tuning), pd.read_csv(snakemake.input.class_selectivity)
)
with job_device(snakemake, logger) as device:
    network, identifiers, images, labels, _ = load_network_and_test_images(snakemake, device, logger)
    table, comparisons = half_ablation(network, images, labels, scores, settings, identifiers, progress=True)
    save_provenance(snakemake, device, identifiers["seed"])
save_table(table, snakemake.output.table)
save_table(comparisons, snakemake.output.comparisons)
