"""Rule depth_profiles: every claim's per-layer effect per architecture, at each layer's relative depth."""

from job_setup import start_job

logger = start_job(snakemake)

from selectivity.claim_table import ClaimSettings  # noqa: E402
from selectivity.depth_profiles import depth_profiles  # noqa: E402
from selectivity.io import save_table  # noqa: E402
from selectivity.tables import read_table  # noqa: E402

profiles = depth_profiles(
    read_table(snakemake.input.summary, "selectivity_summary"),
    read_table(snakemake.input.half_ablation, "half_ablation"),
    read_table(snakemake.input.shift_invariance, "shift_invariance"),
    ClaimSettings(**snakemake.params.settings),
    snakemake.params.layers,
)
logger.info("%d per-layer effects of %s", len(profiles), sorted(profiles["model"].unique()))
save_table(profiles, snakemake.output.table)
