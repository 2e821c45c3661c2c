"""Rule evaluate_claims: a computed verdict for each claim C1-C6, as CSV and as an HTML table for the report."""

from job_setup import start_job

logger = start_job(snakemake)

from selectivity.claim_table import ClaimSettings  # noqa: E402
from selectivity.claims import evaluate_claims, headline_claims  # noqa: E402
from selectivity.claims_report import claims_html  # noqa: E402
from selectivity.io import save_table, save_text  # noqa: E402
from selectivity.tables import read_table  # noqa: E402

settings = ClaimSettings(**snakemake.params.settings)
claims = evaluate_claims(
    read_table(snakemake.input.summary, "selectivity_summary"),
    read_table(snakemake.input.half_ablation, "half_ablation"),
    read_table(snakemake.input.shift_invariance, "shift_invariance"),
    settings,
    snakemake.params.layers,
)
for row in headline_claims(claims).itertuples():
    logger.info(
        "%s %s %s [%s]: %s (effect %.4g, CI [%.4g, %.4g], %d networks)",
        row.model,
        row.claim,
        row.test,
        row.layer,
        row.verdict,
        row.effect_size,
        row.ci_low,
        row.ci_high,
        row.n_networks,
    )
save_table(claims, snakemake.output.table)
save_text(claims_html(claims, settings, snakemake.params.layers), snakemake.output.html)
