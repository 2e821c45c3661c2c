"""Rule networks_needed: per claim, the networks per level that would decide it (80% power), logged as a table."""

from job_setup import start_job

logger = start_job(snakemake)

from selectivity.io import save_table  # noqa: E402
from selectivity.tables import read_table  # noqa: E402
from selectivity.claims.power import format_networks_needed, networks_needed_table  # noqa: E402

needed = networks_needed_table(read_table(snakemake.input[0], "claims"))
logger.info(
    "networks each claim would need to decide its observed effect at 80%% power:\n%s",
    format_networks_needed(needed),
)
save_table(needed, snakemake.output[0])
