"""Rule plot_figure: draw one figure of one model (selectivity.figures.catalogue) from its tables."""

from job_setup import start_job

logger = start_job(snakemake)

from selectivity.figures.drawing import draw_figure  # noqa: E402

logger.info("drawing %s of %s", snakemake.wildcards.figure, snakemake.wildcards.model)
draw_figure(
    snakemake.wildcards.figure,
    dict(snakemake.input.items()),
    snakemake.wildcards.model,
    snakemake.params.options,
    snakemake.output.pdf,
    snakemake.output.png,
)
