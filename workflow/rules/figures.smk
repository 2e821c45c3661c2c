# Stage 6, figures of the study, per model (trained architectures and given networks), as PDF
# and PNG; the PNGs go into the report. One rule draws every figure:
# selectivity.figures.catalogue.FIGURE_TABLE says which figures exist, what each reads, what a
# model needs to have it, and where the report shows it; selectivity.figures.drawing draws.


include: "figures_inputs.smk"


rule plot_figure:
    input:
        unpack(figure_inputs),
    output:
        pdf="results/figures/{model}/{figure}.pdf",
        png=report(
            "results/figures/{model}/{figure}.png",
            caption="../report/figure.rst",
            category=figure_category,
            subcategory="{model}",
            labels=figure_labels,
        ),
    log:
        "logs/figures/{model}/{figure}.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        method_version=method_version("figures"),
        options=figure_options,
        caption=figure_caption,
    script:
        "../scripts/plot_figure.py"
