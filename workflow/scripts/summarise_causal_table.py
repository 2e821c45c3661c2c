"""Rule summarise_causal_table: across-network means and t intervals of a causal table."""

from job_setup import start_job

logger = start_job(snakemake)

from selectivity.io import save_table  # noqa: E402
from selectivity.causal.summaries import summarise_causal_table  # noqa: E402
from selectivity.tables import read_table  # noqa: E402

summary = summarise_causal_table(
    read_table(snakemake.input[0], snakemake.wildcards.causal_table),
    snakemake.wildcards.causal_table,
    confidence=snakemake.params.confidence,
)
logger.info("%s: %d summary rows", snakemake.wildcards.causal_table, len(summary))
save_table(summary, snakemake.output[0])
