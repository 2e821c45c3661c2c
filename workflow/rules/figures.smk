# Stage 6: the figures of the study, per model, as PDF and PNG; the PNGs go into the report.
# Every figure is drawn by selectivity.figures.draw_figure from the aggregate tables.

FIGURES = [
    "stimuli",
    "training_curves",
    "example_tuning_curves",
    "gosi_distributions",
    "osi_distributions",
    "selectivity_by_depth",
    "selectivity_over_training",
    "selectivity_vs_accuracy",
    "half_ablation",
    "cumulative_ablation",
    "shift_invariance",
]


rule plot_stimuli:
    output:
        pdf="results/figures/{model}/stimuli.pdf",
        png=report(
            "results/figures/{model}/stimuli.png",
            caption="../report/stimuli.rst",
            category="3. Orientation selectivity",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "grating stimuli"},
        ),
    log:
        "logs/figures/{model}/stimuli.log",
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        figure="stimuli",
        options=stimulus_figure_options,
    script:
        "../scripts/plot_figure.py"


use rule plot_stimuli as plot_training_curves with:
    input:
        table="results/aggregate/training_metrics.csv",
    output:
        pdf="results/figures/{model}/training_curves.pdf",
        png=report(
            "results/figures/{model}/training_curves.png",
            caption="../report/training_curves.rst",
            category="2. Training",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "training curves"},
        ),
    log:
        "logs/figures/{model}/training_curves.log",
    params:
        figure="training_curves",
        options={},


use rule plot_stimuli as plot_example_tuning_curves with:
    input:
        table=example_tuning_input("csv"),
        curves=example_tuning_input("npz"),
    output:
        pdf="results/figures/{model}/example_tuning_curves.pdf",
        png=report(
            "results/figures/{model}/example_tuning_curves.png",
            caption="../report/example_tuning_curves.rst",
            category="3. Orientation selectivity",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "example tuning curves"},
        ),
    log:
        "logs/figures/{model}/example_tuning_curves.log",
    params:
        figure="example_tuning_curves",
        options={},


use rule plot_stimuli as plot_gosi_distributions with:
    input:
        table="results/aggregate/tuning.csv",
    output:
        pdf="results/figures/{model}/gosi_distributions.pdf",
        png=report(
            "results/figures/{model}/gosi_distributions.png",
            caption="../report/selectivity_distributions.rst",
            category="3. Orientation selectivity",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "gosi distributions"},
        ),
    log:
        "logs/figures/{model}/gosi_distributions.log",
    params:
        figure="gosi_distributions",
        options=distribution_options(),


use rule plot_stimuli as plot_osi_distributions with:
    input:
        table="results/aggregate/tuning.csv",
    output:
        pdf="results/figures/{model}/osi_distributions.pdf",
        png=report(
            "results/figures/{model}/osi_distributions.png",
            caption="../report/selectivity_distributions.rst",
            category="3. Orientation selectivity",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "osi distributions"},
        ),
    log:
        "logs/figures/{model}/osi_distributions.log",
    params:
        figure="osi_distributions",
        options=distribution_options(),


use rule plot_stimuli as plot_selectivity_by_depth with:
    input:
        table="results/aggregate/selectivity_summary.csv",
    output:
        pdf="results/figures/{model}/selectivity_by_depth.pdf",
        png=report(
            "results/figures/{model}/selectivity_by_depth.png",
            caption="../report/selectivity_by_depth.rst",
            category="3. Orientation selectivity",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "selectivity by depth"},
        ),
    log:
        "logs/figures/{model}/selectivity_by_depth.log",
    params:
        figure="selectivity_by_depth",
        options={"checkpoint": config["causal"]["checkpoint"]},


use rule plot_stimuli as plot_selectivity_over_training with:
    input:
        table="results/aggregate/selectivity_summary.csv",
    output:
        pdf="results/figures/{model}/selectivity_over_training.pdf",
        png=report(
            "results/figures/{model}/selectivity_over_training.png",
            caption="../report/selectivity_over_training.rst",
            category="3. Orientation selectivity",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "selectivity over training"},
        ),
    log:
        "logs/figures/{model}/selectivity_over_training.log",
    params:
        figure="selectivity_over_training",
        options={},


use rule plot_stimuli as plot_selectivity_vs_accuracy with:
    input:
        table="results/aggregate/selectivity_summary.csv",
    output:
        pdf="results/figures/{model}/selectivity_vs_accuracy.pdf",
        png=report(
            "results/figures/{model}/selectivity_vs_accuracy.png",
            caption="../report/selectivity_vs_accuracy.rst",
            category="3. Orientation selectivity",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "selectivity vs accuracy"},
        ),
    log:
        "logs/figures/{model}/selectivity_vs_accuracy.log",
    params:
        figure="selectivity_vs_accuracy",
        options={},


use rule plot_stimuli as plot_half_ablation with:
    input:
        table="results/aggregate/half_ablation.csv",
    output:
        pdf="results/figures/{model}/half_ablation.pdf",
        png=report(
            "results/figures/{model}/half_ablation.png",
            caption="../report/half_ablation.rst",
            category="4. Causal tests",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "half ablation"},
        ),
    log:
        "logs/figures/{model}/half_ablation.log",
    params:
        figure="half_ablation",
        options={},


use rule plot_stimuli as plot_cumulative_ablation with:
    input:
        table="results/aggregate/cumulative_ablation.csv",
    output:
        pdf="results/figures/{model}/cumulative_ablation.pdf",
        png=report(
            "results/figures/{model}/cumulative_ablation.png",
            caption="../report/cumulative_ablation.rst",
            category="4. Causal tests",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "cumulative ablation"},
        ),
    log:
        "logs/figures/{model}/cumulative_ablation.log",
    params:
        figure="cumulative_ablation",
        options={},


use rule plot_stimuli as plot_shift_invariance with:
    input:
        table="results/aggregate/shift_invariance.csv",
    output:
        pdf="results/figures/{model}/shift_invariance.pdf",
        png=report(
            "results/figures/{model}/shift_invariance.png",
            caption="../report/shift_invariance.rst",
            category="4. Causal tests",
            subcategory="{model}",
            labels={"model": "{model}", "figure": "shift invariance"},
        ),
    log:
        "logs/figures/{model}/shift_invariance.log",
    params:
        figure="shift_invariance",
        options={},
