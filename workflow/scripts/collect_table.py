"""Rule collect_table: concatenate every network's (or checkpoint's) table of one kind."""

from job_setup import start_job

logger = start_job(snakemake)

from selectivity.io import save_table  # noqa: E402
from selectivity.tables import COLLECTED_KINDS, concatenate_tables  # noqa: E402

table = concatenate_tables(list(snakemake.input), COLLECTED_KINDS[snakemake.wildcards.table])
logger.info("%s: %d rows from %d files", snakemake.wildcards.table, len(table), len(snakemake.input))
save_table(table, snakemake.output[0])
