# Stage 7 (optional, vgg16.enabled): the paper's second model, torchvision's VGG16 trained
# on ImageNet (no training). Tuning of its 20 layers always; ablation and shift invariance
# only when vgg16.imagenet_val_dir points to an ImageNet validation folder. Its figures come
# from the figure rule (selectivity.figures.catalogue, scopes vgg16 and vgg16_causal).


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
        gpu=GPUS_PER_NETWORK_JOB,
        mem_mb=16000,
        runtime=240,
    params:
        weights=config["vgg16"]["weights"],
        settings=tuning_settings(),
    script:
        "../scripts/vgg16_tuning.py"


rule vgg16_summary:
    input:
        "results/vgg16/tuning.csv",
    output:
        "results/vgg16/selectivity_summary.csv",
    log:
        "logs/vgg16/summary.log",
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        selectivity_threshold=config["tuning"]["selectivity_threshold"],
    script:
        "../scripts/published_network_summary.py"


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
        gpu=GPUS_PER_NETWORK_JOB,
        mem_mb=16000,
        runtime=240,
    params:
        weights=config["vgg16"]["weights"],
        settings=vgg16_ablation_settings(),
        images=config["vgg16"]["images"],
        image_seed=config["causal"]["ablation"]["seed"],
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
        gpu=GPUS_PER_NETWORK_JOB,
        mem_mb=16000,
        runtime=240,
    params:
        weights=config["vgg16"]["weights"],
        settings=vgg16_invariance_settings(),
        images=config["vgg16"]["images"],
        image_seed=config["causal"]["invariance"]["seed"],
    script:
        "../scripts/vgg16_shift_invariance.py"
