"""Rule correlate_selectivity_with_accuracy: selectivity vs test accuracy across epochs and across networks."""

from job_setup import start_job

logger = start_job(snakemake)

from selectivity.io import save_table  # noqa: E402
from selectivity.tables import rows_of_models  # noqa: E402
from selectivity.tuning.summaries import (  # noqa: E402
    correlations_across_epochs,
    correlations_across_networks,
    summarise_across_seeds,
)
from selectivity.tables import read_table  # noqa: E402

# Networks with a training history only: given networks have no epochs or accuracies here.
summary = rows_of_models(read_table(snakemake.input[0], "selectivity_summary"), snakemake.params.models)
confidence = snakemake.params.confidence
across_epochs = correlations_across_epochs(summary)
save_table(across_epochs, snakemake.output.across_epochs)
save_table(
    summarise_across_seeds(across_epochs, confidence=confidence), snakemake.output.across_epochs_summary
)
across_networks = correlations_across_networks(summary, checkpoint="final", confidence=confidence)
save_table(across_networks, snakemake.output.across_networks)
for row in across_networks.itertuples():
    logger.info(
        "%s %s: correlation across %d networks %.3f [%.3f, %.3f]",
        row.model,
        row.layer,
        row.n_networks,
        row.correlation,
        row.ci_low,
        row.ci_high,
    )
