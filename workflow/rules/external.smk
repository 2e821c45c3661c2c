# Stage 8 (optional, external_networks): users' own networks, analysed without training
# (selectivity.networks.hooked: layers found by module name, read and ablated by forward hooks).
# Tuning always; with test_images "dataset" also class selectivity, half ablation and shift
# invariance on the workflow's test set, by the same scripts as the trained networks.


rule external_tuning:
    input:
        weights=external_weights,
    output:
        table="results/external/{external}/tuning.csv",
        curves="results/external/{external}/tuning_curves.npz",
        provenance="results/external/{external}/tuning.provenance.json",
    log:
        "logs/external/{external}/tuning.log",
    benchmark:
        "results/benchmarks/external/{external}/tuning.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        gpu=GPUS_PER_NETWORK_JOB,
        mem_mb=8000,
        runtime=120,
    params:
        method_version=method_version("tuning"),
        external=external_entry,
        settings=tuning_settings(),
    script:
        "../scripts/external_tuning.py"


rule external_summary:
    input:
        "results/external/{external}/tuning.csv",
    output:
        "results/external/{external}/selectivity_summary.csv",
    log:
        "logs/external/{external}/summary.log",
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


rule external_class_selectivity:
    input:
        weights=external_weights,
        test_set=f"results/data/{DATASET}_test.npz",
    output:
        table="results/external/{external}/class_selectivity.csv",
        provenance="results/external/{external}/class_selectivity.provenance.json",
    log:
        "logs/external/{external}/class_selectivity.log",
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        gpu=GPUS_PER_NETWORK_JOB,
        mem_mb=8000,
        runtime=60,
    params:
        method_version=method_version("causal"),
        external=external_entry,
        test_images=config["causal"]["test_images"],
    script:
        "../scripts/class_selectivity.py"


rule external_half_ablation:
    input:
        weights=external_weights,
        test_set=f"results/data/{DATASET}_test.npz",
        tuning="results/external/{external}/tuning.csv",
        class_selectivity="results/external/{external}/class_selectivity.csv",
    output:
        table="results/external/{external}/half_ablation.csv",
        comparisons="results/external/{external}/half_ablation_comparisons.csv",
        provenance="results/external/{external}/half_ablation.provenance.json",
    log:
        "logs/external/{external}/half_ablation.log",
    benchmark:
        "results/benchmarks/external/{external}/half_ablation.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        gpu=GPUS_PER_NETWORK_JOB,
        mem_mb=8000,
        runtime=120,
    params:
        method_version=method_version("causal"),
        external=external_entry,
        settings=external_ablation_settings,
        test_images=config["causal"]["test_images"],
    script:
        "../scripts/half_ablation.py"


rule external_shift_invariance:
    input:
        weights=external_weights,
        test_set=f"results/data/{DATASET}_test.npz",
        tuning="results/external/{external}/tuning.csv",
    output:
        table="results/external/{external}/shift_invariance.csv",
        provenance="results/external/{external}/shift_invariance.provenance.json",
    log:
        "logs/external/{external}/shift_invariance.log",
    benchmark:
        "results/benchmarks/external/{external}/shift_invariance.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 2
    resources:
        gpu=GPUS_PER_NETWORK_JOB,
        mem_mb=8000,
        runtime=120,
    params:
        method_version=method_version("causal"),
        external=external_entry,
        settings=external_invariance_settings,
        test_images=config["causal"]["test_images"],
    script:
        "../scripts/shift_invariance.py"
