"""Rule depth_profiles: every claim's per-layer effect per architecture, at each layer's relative depth."""

from job_setup import start_job

logger = start_job(snakemake)

from selectivity.claims.table import ClaimSettings  # noqa: E402
from selectivity.claims.depth_profiles import depth_profiles  # noqa: E402
from selectivity.claims.evaluation import feature_tables_of  # noqa: E402
from selectivity.io import save_table  # noqa: E402
from selectivity.tables import read_table, rows_of_models  # noqa: E402

# The trained models: their claims need training history (given networks have none).
models = list(snakemake.params.layers)
settings = ClaimSettings(**snakemake.params.settings)
profiles = depth_profiles(
    rows_of_models(read_table(snakemake.input.summary, "selectivity_summary"), models),
    rows_of_models(read_table(snakemake.input.half_ablation, "half_ablation"), models),
    rows_of_models(read_table(snakemake.input.shift_invariance, "shift_invariance"), models),
    settings,
    snakemake.params.layers,
    feature_tables_of(snakemake.input, snakemake.params.features, models),
)
logger.info("%d per-layer effects of %s", len(profiles), sorted(profiles["model"].unique()))
save_table(profiles, snakemake.output.table)
