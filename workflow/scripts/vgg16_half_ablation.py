"""Rule vgg16_half_ablation: ablate the top / bottom / random 50% of VGG16 units by gOSI, on ImageNet validation images."""

from job_setup import batch_size, job_device, save_provenance, start_job

logger = start_job(snakemake)

from selectivity.causal.ablation import AblationSettings, half_ablation, unit_scores_from_tables  # noqa: E402
from selectivity.io import save_table  # noqa: E402
from selectivity.tables import read_table  # noqa: E402
from selectivity.networks.published import (
    load_imagefolder_images,
    load_vgg16,
    vgg16_identifiers,
)  # noqa: E402

settings = AblationSettings(**snakemake.params.settings, batch_size=batch_size(snakemake, "vgg16"))
scores = unit_scores_from_tables(read_table(snakemake.input.tuning, "tuning"), None)
images, labels = load_imagefolder_images(
    snakemake.input.images[0], snakemake.params.images, snakemake.params.image_seed
)
with job_device(snakemake, logger) as device:
    network = load_vgg16(snakemake.params.weights, device)
    table, comparisons = half_ablation(
        network, images.to(device), labels.to(device), scores, settings, vgg16_identifiers(), progress=True
    )
    save_provenance(snakemake, device)
save_table(table, snakemake.output.table)
save_table(comparisons, snakemake.output.comparisons)
