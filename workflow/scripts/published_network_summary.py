"""Rules vgg16_summary and external_summary: per-layer selectivity of a network with given weights
(no training metrics: nothing was trained here)."""

from job_setup import start_job

logger = start_job(snakemake)

import pandas as pd  # noqa: E402

from selectivity.io import save_table  # noqa: E402
from selectivity.summaries import selectivity_summary  # noqa: E402
from selectivity.tables import read_table  # noqa: E402

summary = selectivity_summary(
    read_table(snakemake.input[0], "tuning"),
    pd.DataFrame(),
    selectivity_threshold=snakemake.params.selectivity_threshold,
)
save_table(summary, snakemake.output[0])
