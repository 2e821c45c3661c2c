"""Rule shift_invariance_by_feature: higher-layer shift invariance with lower-layer units ablated by one low-level feature index."""

from job_setup import (
    batch_size,
    causal_tuning_table,
    job_device,
    load_network_and_test_images,
    save_provenance,
    start_job,
)

logger = start_job(snakemake)

from selectivity.causal.feature_tests import (  # noqa: E402
    feature_layer_strata,
    feature_scores_from_table,
    shift_invariance_by_feature,
)
from selectivity.causal.invariance import InvarianceSettings  # noqa: E402
from selectivity.io import save_table  # noqa: E402

settings = InvarianceSettings(**snakemake.params.settings, batch_size=batch_size(snakemake, "causal"))
scores = feature_scores_from_table(
    causal_tuning_table(snakemake), snakemake.wildcards.feature, snakemake.params.features
)
with job_device(snakemake, logger) as device:
    network, identifiers, images, _, _ = load_network_and_test_images(snakemake, device, logger)
    strata = feature_layer_strata(network, images, scores, settings.ablated_layers, settings.batch_size)
    table = shift_invariance_by_feature(
        network, images, scores, settings, identifiers, strata=strata, progress=True
    )
    save_provenance(snakemake, device, identifiers["seed"])
save_table(table, snakemake.output.table)
