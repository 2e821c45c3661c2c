"""Rule cumulative_ablation: accuracy and loss as a growing fraction of a layer's units is ablated."""

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

from selectivity.causal.ablation import AblationSettings, cumulative_ablation  # noqa: E402
from selectivity.causal.ablation import unit_scores_from_tables  # noqa: E402
from selectivity.io import save_table  # noqa: E402
from selectivity.tables import read_table  # noqa: E402

settings = AblationSettings(**snakemake.params.settings, batch_size=batch_size(snakemake, "causal"))
scores = unit_scores_from_tables(
    causal_tuning_table(snakemake),
    read_table(snakemake.input.class_selectivity, "class_selectivity", expected_identity(snakemake)),
)
with job_device(snakemake, logger) as device:
    network, identifiers, images, labels, _ = load_network_and_test_images(snakemake, device, logger)
    curves, areas = cumulative_ablation(network, images, labels, scores, settings, identifiers, progress=True)
    save_provenance(snakemake, device, identifiers["seed"])
save_table(curves, snakemake.output.curves)
save_table(areas, snakemake.output.areas)
