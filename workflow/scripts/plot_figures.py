"""Figure rules: draw one group of figures of one model (selectivity.figures.catalogue) from its tables."""

from job_setup import start_job

logger = start_job(snakemake)

from selectivity.figures.drawing import draw_figure  # noqa: E402

model = snakemake.wildcards.model
for figure, files in snakemake.params.files.items():
    logger.info("drawing %s of %s", figure, model)
    draw_figure(
        figure,
        files,
        model,
        snakemake.params.options[figure],
        snakemake.output[f"{figure}_pdf"],
        snakemake.output[f"{figure}_png"],
    )
