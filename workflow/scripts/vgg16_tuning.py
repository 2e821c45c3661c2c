"""Rule vgg16_tuning: orientation tuning of the 20 analysed layers of VGG16 on 224-px gratings."""

from job_setup import batch_size, job_device, save_provenance, start_job

logger = start_job(snakemake)

from selectivity.io import save_npz, save_table  # noqa: E402
from selectivity.tuning.analysis import TuningSettings, analyse_tuning  # noqa: E402
from selectivity.networks.published import load_vgg16, vgg16_identifiers  # noqa: E402

with job_device(snakemake, logger) as device:
    network = load_vgg16(snakemake.params.weights, device)
    logger.info("VGG16 weights: %s", network.info.get("weights_source"))
    result = analyse_tuning(
        network,
        TuningSettings(**{**snakemake.params.settings, "batch_size": batch_size(snakemake, "vgg16")}),
        vgg16_identifiers(),
        progress=True,
    )
    save_provenance(snakemake, device)
save_table(result.table, snakemake.output.table)
save_npz(snakemake.output.curves, **result.curves)
