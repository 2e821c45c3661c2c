"""Rule vgg16_shift_invariance: VGG16 higher-layer shift invariance, intact and with lower-layer units ablated."""

from job_setup import batch_size, job_device, save_provenance, start_job

logger = start_job(snakemake)

from selectivity.causal.ablation import unit_scores_from_tables  # noqa: E402
from selectivity.causal.invariance import InvarianceSettings, shift_invariance  # noqa: E402
from selectivity.io import save_table  # noqa: E402
from selectivity.tables import read_table  # noqa: E402
from selectivity.networks.published import (
    load_imagefolder_images,
    load_vgg16,
    vgg16_identifiers,
)  # noqa: E402

settings = InvarianceSettings(**snakemake.params.settings, batch_size=batch_size(snakemake, "vgg16"))
gosi = unit_scores_from_tables(read_table(snakemake.input.tuning, "tuning"), None)["gosi"]
images, _ = load_imagefolder_images(
    snakemake.input.images[0], snakemake.params.images, snakemake.params.image_seed
)
with job_device(snakemake, logger) as device:
    network = load_vgg16(snakemake.params.weights, device)
    table = shift_invariance(network, images.to(device), gosi, settings, vgg16_identifiers(), progress=True)
    save_provenance(snakemake, device)
save_table(table, snakemake.output.table)
