# Stage 7 (optional, vgg16.enabled): the paper's second model, torchvision's VGG16 trained
# on ImageNet (no training). Tuning of its 20 layers always; ablation and shift invariance
# only when vgg16.imagenet_val_dir points to an ImageNet validation folder.

VGG16_FIGURES = [
    "stimuli",
    "example_tuning_curves",
    "gosi_distributions",
    "osi_distributions",
    "selectivity_by_depth",
]
VGG16_CAUSAL_FIGURES = ["half_ablation", "shift_invariance"]


rule vgg16_tuning:
    input:
        vgg16_weights_input,
    output:
        table="results/vgg16/tuning.csv",
        curves="results/vgg16/tuning_curves.npz",
        provenance="results/vgg16/tuning.provenance.json",
    log:
        "logs/vgg16/tuning.log",
    benchmark:
        "results/benchmarks/vgg16/tuning.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=240,
    params:
        weights=config["vgg16"]["weights"],
        settings=tuning_settings(),
        device=config["device"],
        lock_dir=LOCK_DIR,
    script:
        "../scripts/vgg16_tuning.py"


rule vgg16_summary:
    input:
        "results/vgg16/tuning.csv",
    output:
        "results/vgg16/selectivity_summary.csv",
    log:
        "logs/vgg16/summary.log",
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        selectivity_threshold=config["tuning"]["selectivity_threshold"],
    script:
        "../scripts/vgg16_summary.py"


rule vgg16_half_ablation:
    input:
        weights=vgg16_weights_input,
        tuning="results/vgg16/tuning.csv",
        images=vgg16_validation_folder,
    output:
        table="results/vgg16/half_ablation.csv",
        comparisons="results/vgg16/half_ablation_comparisons.csv",
        provenance="results/vgg16/half_ablation.provenance.json",
    log:
        "logs/vgg16/half_ablation.log",
    benchmark:
        "results/benchmarks/vgg16/half_ablation.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=240,
    params:
        weights=config["vgg16"]["weights"],
        settings=vgg16_ablation_settings(),
        images=config["vgg16"]["images"],
        image_seed=config["causal"]["ablation"]["seed"],
        device=config["device"],
        lock_dir=LOCK_DIR,
    script:
        "../scripts/vgg16_half_ablation.py"


rule vgg16_shift_invariance:
    input:
        weights=vgg16_weights_input,
        tuning="results/vgg16/tuning.csv",
        images=vgg16_validation_folder,
    output:
        table="results/vgg16/shift_invariance.csv",
        provenance="results/vgg16/shift_invariance.provenance.json",
    log:
        "logs/vgg16/shift_invariance.log",
    benchmark:
        "results/benchmarks/vgg16/shift_invariance.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        gpu=1,
        mem_mb=16000,
        runtime=240,
    params:
        weights=config["vgg16"]["weights"],
        settings=vgg16_invariance_settings(),
        images=config["vgg16"]["images"],
        image_seed=config["causal"]["invariance"]["seed"],
        device=config["device"],
        lock_dir=LOCK_DIR,
    script:
        "../scripts/vgg16_shift_invariance.py"


use rule plot_stimuli as plot_vgg16_stimuli with:
    output:
        pdf="results/figures/{model}/stimuli.pdf",
        png=report(
            "results/figures/{model}/stimuli.png",
            caption="../report/stimuli.rst",
            category="5. VGG16 (ImageNet)",
            labels={"model": "{model}", "figure": "grating stimuli"},
        ),
    log:
        "logs/figures/{model}/stimuli.log",
    wildcard_constraints:
        model="vgg16_imagenet",
    params:
        figure="stimuli",
        options={"image_size": 224, **stimulus_settings()},


use rule plot_stimuli as plot_vgg16_example_tuning_curves with:
    input:
        table="results/vgg16/tuning.csv",
        curves="results/vgg16/tuning_curves.npz",
    output:
        pdf="results/figures/{model}/example_tuning_curves.pdf",
        png=report(
            "results/figures/{model}/example_tuning_curves.png",
            caption="../report/example_tuning_curves.rst",
            category="5. VGG16 (ImageNet)",
            labels={"model": "{model}", "figure": "example tuning curves"},
        ),
    log:
        "logs/figures/{model}/example_tuning_curves.log",
    wildcard_constraints:
        model="vgg16_imagenet",
    params:
        figure="example_tuning_curves",
        options={},


use rule plot_stimuli as plot_vgg16_selectivity_distribution with:
    input:
        table="results/vgg16/tuning.csv",
    output:
        pdf="results/figures/{model}/{index}_distributions.pdf",
        png=report(
            "results/figures/{model}/{index}_distributions.png",
            caption="../report/selectivity_distributions.rst",
            category="5. VGG16 (ImageNet)",
            labels={"model": "{model}", "figure": "{index} distributions"},
        ),
    log:
        "logs/figures/{model}/{index}_distributions.log",
    wildcard_constraints:
        model="vgg16_imagenet",
        index="gosi|osi",
    params:
        figure=distribution_figure_name,
        options=distribution_options(),


use rule plot_stimuli as plot_vgg16_selectivity_by_depth with:
    input:
        table="results/vgg16/selectivity_summary.csv",
    output:
        pdf="results/figures/{model}/selectivity_by_depth.pdf",
        png=report(
            "results/figures/{model}/selectivity_by_depth.png",
            caption="../report/selectivity_by_depth.rst",
            category="5. VGG16 (ImageNet)",
            labels={"model": "{model}", "figure": "selectivity by depth"},
        ),
    log:
        "logs/figures/{model}/selectivity_by_depth.log",
    wildcard_constraints:
        model="vgg16_imagenet",
    params:
        figure="selectivity_by_depth",
        options={"checkpoint": "final"},


use rule plot_stimuli as plot_vgg16_causal with:
    input:
        table="results/vgg16/{figure}.csv",
    output:
        pdf="results/figures/{model}/{figure}.pdf",
        png=report(
            "results/figures/{model}/{figure}.png",
            caption="../report/vgg16_causal.rst",
            category="5. VGG16 (ImageNet)",
            labels={"model": "{model}", "figure": "{figure}"},
        ),
    log:
        "logs/figures/{model}/{figure}.log",
    wildcard_constraints:
        model="vgg16_imagenet",
        figure="|".join(VGG16_CAUSAL_FIGURES),
    params:
        figure=figure_name,
        options={},
