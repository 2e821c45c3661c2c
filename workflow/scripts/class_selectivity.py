"""Rule class_selectivity: each unit's class-selectivity index on the test set (Morcos et al. 2018)."""

from job_setup import batch_size, job_device, load_network_and_test_images, save_provenance, start_job

logger = start_job(snakemake)

from selectivity.causal.class_selectivity import class_selectivity_table  # noqa: E402
from selectivity.io import save_table  # noqa: E402

with job_device(snakemake, logger) as device:
    network, identifiers, images, labels, num_classes = load_network_and_test_images(
        snakemake, device, logger
    )
    table = class_selectivity_table(
        network,
        images,
        labels,
        network.model.layer_names,
        identifiers,
        num_classes,
        batch_size=batch_size(snakemake, "causal"),
        every_class=snakemake.params.every_class,
        progress=True,
    )
    save_provenance(snakemake, device, identifiers["seed"])
save_table(table, snakemake.output.table)
