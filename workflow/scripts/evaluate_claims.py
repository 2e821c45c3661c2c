"""Rule evaluate_claims: a computed verdict for each claim C1-C6, as CSV and as an HTML table for the report."""

from job_setup import start_job

logger = start_job(snakemake)

from selectivity.claims.table import ClaimSettings  # noqa: E402
from selectivity.claims.evaluation import evaluate_claims, feature_tables_of, headline_claims  # noqa: E402
from selectivity.claims.report import claims_html  # noqa: E402
from selectivity.io import save_table, save_text  # noqa: E402
from selectivity.tables import read_table, rows_of_models  # noqa: E402

# The trained models and the users' given networks (whose claims that need a training history
# are "not applicable"); the published VGG16 is one network and gets none.
given = getattr(snakemake.params, "given", None) or {"layers": {}, "not_applicable": {}}
layers = {**snakemake.params.layers, **given["layers"]}
models = list(layers)
settings = ClaimSettings(**snakemake.params.settings)
claims = evaluate_claims(
    rows_of_models(read_table(snakemake.input.summary, "selectivity_summary"), models),
    rows_of_models(read_table(snakemake.input.half_ablation, "half_ablation"), models),
    rows_of_models(read_table(snakemake.input.shift_invariance, "shift_invariance"), models),
    settings,
    layers,
    feature_tables=feature_tables_of(snakemake.input, snakemake.params.features, models),
    not_applicable=given["not_applicable"],
)
for row in headline_claims(claims).itertuples():
    logger.info(
        "%s %s (%s) %s [%s]: %s (effect %.4g, CI [%.4g, %.4g], %d networks)",
        row.model,
        row.claim,
        row.feature,
        row.test,
        row.layer,
        row.verdict,
        row.effect_size,
        row.ci_low,
        row.ci_high,
        row.n_networks,
    )
save_table(claims, snakemake.output.table)
save_text(claims_html(claims, settings, layers), snakemake.output.html)
