"""Rule depth_profiles: every claim's per-layer effect per architecture, at each layer's relative depth."""

from job_setup import start_job

logger = start_job(snakemake)

import pandas as pd  # noqa: E402

from selectivity.claims.table import ClaimSettings  # noqa: E402
from selectivity.claims.depth_profiles import depth_profiles  # noqa: E402
from selectivity.io import save_table  # noqa: E402

profiles = depth_profiles(
    pd.read_csv(snakemake.input.summary),
    pd.read_csv(snakemake.input.half_ablation),
    pd.read_csv(snakemake.input.shift_invariance),
    ClaimSettings(**snakemake.params.settings),
    snakemake.params.layers,
)
logger.info("%d per-layer effects of %s", len(profiles), sorted(profiles["model"].unique()))
save_table(profiles, snakemake.output.table)
