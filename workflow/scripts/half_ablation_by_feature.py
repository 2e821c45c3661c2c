"""Rule half_ablation_by_feature: ablate the top / bottom / random / matched 50% of a layer's units ranked by one low-level feature index."""

from job_setup import (
    batch_size,
    causal_tuning_table,
    job_device,
    load_network_and_test_images,
    save_provenance,
    start_job,
)

logger = start_job(snakemake)

from selectivity.causal.ablation import AblationSettings  # noqa: E402
from selectivity.causal.feature_tests import (  # noqa: E402
    feature_layer_strata,
    feature_scores_from_table,
    half_ablation_by_feature,
)
from selectivity.io import save_table  # noqa: E402

settings = AblationSettings(**snakemake.params.settings, batch_size=batch_size(snakemake, "causal"))
scores = feature_scores_from_table(
    causal_tuning_table(snakemake), snakemake.wildcards.feature, snakemake.params.features
)
with job_device(snakemake, logger) as device:
    network, identifiers, images, labels, _ = load_network_and_test_images(snakemake, device, logger)
    strata = feature_layer_strata(network, images, scores, settings.layers, settings.batch_size)
    table, comparisons = half_ablation_by_feature(
        network, images, labels, scores, settings, identifiers, strata=strata, progress=True
    )
    save_provenance(snakemake, device, identifiers["seed"])
matched = table[table["condition"] == "matched"]
logger.info(
    "%s: %d of %d matched draws equal the top half (mean overlap with it %.3f)",
    scores.ranking_name,
    int((matched["overlap_with_top"] == 1).sum()),
    len(matched),
    matched["overlap_with_top"].mean(),
)
save_table(table, snakemake.output.table)
save_table(comparisons, snakemake.output.comparisons)
