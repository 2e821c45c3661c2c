"""Rule half_ablation: ablate the top / bottom / random / matched 50% of a layer's units (by gOSI and by class selectivity)."""

from job_setup import (
    batch_size,
    causal_tuning_table,
    expected_identity,
    job_device,
    load_network_and_test_images,
    save_provenance,
    start_job,
)

logger = start_job(snakemake)

from selectivity.causal.ablation import AblationSettings, half_ablation, unit_scores_from_tables  # noqa: E402
from selectivity.io import save_table  # noqa: E402
from selectivity.causal.matching import layer_strata, preferred_frequencies_from_table  # noqa: E402
from selectivity.tables import read_table  # noqa: E402

settings = AblationSettings(**snakemake.params.settings, batch_size=batch_size(snakemake, "causal"))
tuning = causal_tuning_table(snakemake)
scores = unit_scores_from_tables(
    tuning, read_table(snakemake.input.class_selectivity, "class_selectivity", expected_identity(snakemake))
)
frequencies = preferred_frequencies_from_table(tuning)
with job_device(snakemake, logger) as device:
    network, identifiers, images, labels, _ = load_network_and_test_images(snakemake, device, logger)
    strata = layer_strata(network, images, frequencies, settings.layers, settings.batch_size)
    table, comparisons = half_ablation(
        network, images, labels, scores, settings, identifiers, strata=strata, progress=True
    )
    save_provenance(snakemake, device, identifiers["seed"])
save_table(table, snakemake.output.table)
save_table(comparisons, snakemake.output.comparisons)
