# Stage 6, figures of the study, per model (trained architectures and given networks), as PDF
# and PNG; the PNGs go into the report. selectivity.figures.catalogue.FIGURE_TABLE says which
# figures exist, what each reads, what a model needs to have it and where the report shows
# it; its figures are drawn in groups (tuning, training, causal, across), one job per group
# and model, so a model's figures pay a few process start-ups, not one each.


include: "figures_inputs.smk"


# A group without figures in this run (the regularisation figures of a run without regularised
# networks) gets no rule.
for figure_group in (g for g in FIGURE_GROUPS if figures_in_group(g, HAS_FEATURES, HAS_REGULARISATION)):

    rule:
        name:
            f"plot_{figure_group}_figures"
        input:
            figure_group_inputs(figure_group),
        output:
            **figure_outputs(figure_group),
        log:
            f"logs/figures/{{model}}/{figure_group}.log",
        wildcard_constraints:
            model=alternatives(group_models(figure_group)),
        localrule: True
        conda:
            "../../envs/analysis.yaml"
        threads: 1
        resources:
            mem_mb=2000,
            runtime=10,
        params:
            method_version=method_version("figures"),
            files=figure_files(figure_group),
            options=figure_group_options(figure_group),
            caption=figure_caption_facts,
        script:
            "../scripts/plot_figures.py"
