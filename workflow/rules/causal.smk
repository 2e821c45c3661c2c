# Stage 4: causal tests per trained network, on the checkpoint chosen by causal.checkpoint:
# class selectivity (Morcos), ablation by gOSI and by class selectivity, shift invariance.


rule class_selectivity:
    input:
        test_set=f"results/data/{DATASET}_test.npz",
        weights=causal_checkpoint,
    output:
        table="results/causal/{network}/class_selectivity.csv",
        provenance="results/causal/{network}/class_selectivity.provenance.json",
    log:
        "logs/causal/{network}/class_selectivity.log",
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        gpu=GPUS_PER_NETWORK_JOB,
        mem_mb=4000,
        runtime=30,
    params:
        method_version=method_version("causal"),
        test_images=config["causal"]["test_images"],
        checkpoint_name=causal_checkpoint_name(),
    script:
        "../scripts/class_selectivity.py"


rule half_ablation:
    input:
        test_set=f"results/data/{DATASET}_test.npz",
        weights=causal_checkpoint,
        tuning=causal_tuning_table,
        class_selectivity="results/causal/{network}/class_selectivity.csv",
    output:
        table="results/causal/{network}/half_ablation.csv",
        comparisons="results/causal/{network}/half_ablation_comparisons.csv",
        provenance="results/causal/{network}/half_ablation.provenance.json",
    log:
        "logs/causal/{network}/half_ablation.log",
    benchmark:
        "results/benchmarks/causal/{network}/half_ablation.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        gpu=GPUS_PER_NETWORK_JOB,
        mem_mb=6000,
        runtime=60,
    params:
        method_version=method_version("causal"),
        settings=ablation_settings,
        test_images=config["causal"]["test_images"],
        checkpoint_name=causal_checkpoint_name(),
    script:
        "../scripts/half_ablation.py"


rule cumulative_ablation:
    input:
        test_set=f"results/data/{DATASET}_test.npz",
        weights=causal_checkpoint,
        tuning=causal_tuning_table,
        class_selectivity="results/causal/{network}/class_selectivity.csv",
    output:
        curves="results/causal/{network}/cumulative_ablation.csv",
        areas="results/causal/{network}/cumulative_ablation_auc.csv",
        provenance="results/causal/{network}/cumulative_ablation.provenance.json",
    log:
        "logs/causal/{network}/cumulative_ablation.log",
    benchmark:
        "results/benchmarks/causal/{network}/cumulative_ablation.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        gpu=GPUS_PER_NETWORK_JOB,
        mem_mb=6000,
        runtime=60,
    params:
        method_version=method_version("causal"),
        settings=ablation_settings,
        test_images=config["causal"]["test_images"],
        checkpoint_name=causal_checkpoint_name(),
    script:
        "../scripts/cumulative_ablation.py"


rule shift_invariance:
    input:
        test_set=f"results/data/{DATASET}_test.npz",
        weights=causal_checkpoint,
        tuning=causal_tuning_table,
    output:
        table="results/causal/{network}/shift_invariance.csv",
        provenance="results/causal/{network}/shift_invariance.provenance.json",
    log:
        "logs/causal/{network}/shift_invariance.log",
    benchmark:
        "results/benchmarks/causal/{network}/shift_invariance.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        gpu=GPUS_PER_NETWORK_JOB,
        mem_mb=6000,
        runtime=60,
    params:
        method_version=method_version("causal"),
        settings=invariance_settings,
        test_images=config["causal"]["invariance"]["test_images"],
        checkpoint_name=causal_checkpoint_name(),
    script:
        "../scripts/shift_invariance.py"
