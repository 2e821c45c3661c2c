"""Rule provenance: every analysed network's seed, settings hash, versions and device, plus the run's config."""

from job_setup import start_job

logger = start_job(snakemake)

from selectivity.networks.checkpoints import provenance_table  # noqa: E402
from selectivity.io import save_table, save_text  # noqa: E402
from selectivity.provenance import provenance_html  # noqa: E402

table = provenance_table(list(snakemake.input.checkpoints))
save_table(table, snakemake.output.table)
# The page shows the run's whole configuration. It is read from snakemake.config, not from
# params: as a param it would be printed whole in dry-run reason lines. The rule's param is
# its digest (workflow/rules/claims_inputs.smk), so any change still rebuilds the page.
save_text(provenance_html(table, snakemake.config), snakemake.output.html)
