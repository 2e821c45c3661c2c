"""Rule shift_invariance: higher-layer invariance to small image shifts, intact and with lower-layer units ablated."""

from job_setup import (
    batch_size,
    causal_tuning_table,
    job_device,
    load_network_and_test_images,
    save_provenance,
    start_job,
)

logger = start_job(snakemake)

from selectivity.causal.ablation import unit_scores_from_tables  # noqa: E402
from selectivity.causal.invariance import InvarianceSettings, shift_invariance  # noqa: E402
from selectivity.io import save_table  # noqa: E402
from selectivity.causal.matching import layer_strata, preferred_frequencies_from_table  # noqa: E402

settings = InvarianceSettings(**snakemake.params.settings, batch_size=batch_size(snakemake, "causal"))
tuning = causal_tuning_table(snakemake)
gosi = unit_scores_from_tables(tuning, None)["gosi"]
frequencies = preferred_frequencies_from_table(tuning)
with job_device(snakemake, logger) as device:
    network, identifiers, images, _, _ = load_network_and_test_images(snakemake, device, logger)
    strata = layer_strata(network, images, frequencies, settings.ablated_layers, settings.batch_size)
    table = shift_invariance(network, images, gosi, settings, identifiers, strata=strata, progress=True)
    save_provenance(snakemake, device, identifiers["seed"])
save_table(table, snakemake.output.table)
