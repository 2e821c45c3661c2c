"""Rule summarise_selectivity: per network, checkpoint and layer, how selective the units are, with that epoch's metrics."""

from job_setup import start_job

logger = start_job(snakemake)

from selectivity.io import save_table  # noqa: E402
from selectivity.tuning.summaries import selectivity_summary  # noqa: E402
from selectivity.tables import read_table  # noqa: E402

summary = selectivity_summary(
    read_table(snakemake.input.tuning, "tuning"),
    read_table(snakemake.input.metrics, "metrics"),
    selectivity_threshold=snakemake.params.selectivity_threshold,
)
logger.info("%d summary rows", len(summary))
save_table(summary, snakemake.output[0])
