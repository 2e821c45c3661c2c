"""Rule summarise_features: per network, checkpoint, layer and low-level feature, the layer's index summary, with that epoch's metrics."""

from job_setup import start_job

logger = start_job(snakemake)

from selectivity.io import save_table  # noqa: E402
from selectivity.tables import read_table  # noqa: E402
from selectivity.tuning.feature_summaries import feature_summary  # noqa: E402

thresholds = dict(snakemake.params.thresholds)
summary = feature_summary(
    read_table(snakemake.input.tuning, "tuning"),
    read_table(snakemake.input.metrics, "metrics"),
    thresholds=thresholds,
    features=list(thresholds),
)
logger.info("%d feature summary rows of the features %s", len(summary), list(thresholds))
save_table(summary, snakemake.output[0])
