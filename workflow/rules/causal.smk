# Stage 4, causal tests of every network with evaluation images (trained networks of the
# levels in causal.label_corruption, given networks with test images), on its causal
# checkpoint (trained: causal.checkpoint; given: its weights): class selectivity (Morcos),
# ablation by gOSI and by class selectivity, shift invariance.


include: "causal_inputs.smk"


rule class_selectivity:
    input:
        unpack(causal_inputs),
    output:
        table="results/causal/{network}/class_selectivity.csv",
        provenance="results/causal/{network}/class_selectivity.provenance.json",
    log:
        "logs/causal/{network}/class_selectivity.log",
    conda:
        "../../envs/torch.yaml"
    threads: network_threads
    resources:
        gpu=GPUS_PER_NETWORK_JOB,
        mem_mb=network_memory,
        runtime=30,
    params:
        method_version=method_version("causal"),
        network=network_description,
        checkpoint_name=causal_checkpoint,
        test_images=causal_test_images,
        every_class=every_class_required,
    script:
        "../scripts/class_selectivity.py"


rule half_ablation:
    input:
        unpack(causal_inputs),
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
    threads: network_threads
    resources:
        gpu=GPUS_PER_NETWORK_JOB,
        mem_mb=network_memory,
        runtime=60,
    params:
        method_version=method_version("causal"),
        network=network_description,
        checkpoint_name=causal_checkpoint,
        settings=ablation_settings,
        test_images=causal_test_images,
    script:
        "../scripts/half_ablation.py"


rule cumulative_ablation:
    input:
        unpack(causal_inputs),
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
    threads: network_threads
    resources:
        gpu=GPUS_PER_NETWORK_JOB,
        mem_mb=network_memory,
        runtime=60,
    params:
        method_version=method_version("causal"),
        network=network_description,
        checkpoint_name=causal_checkpoint,
        settings=ablation_settings,
        test_images=causal_test_images,
    script:
        "../scripts/cumulative_ablation.py"


rule shift_invariance:
    input:
        unpack(causal_inputs),
    output:
        table="results/causal/{network}/shift_invariance.csv",
        provenance="results/causal/{network}/shift_invariance.provenance.json",
    log:
        "logs/causal/{network}/shift_invariance.log",
    benchmark:
        "results/benchmarks/causal/{network}/shift_invariance.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: network_threads
    resources:
        gpu=GPUS_PER_NETWORK_JOB,
        mem_mb=network_memory,
        runtime=60,
    params:
        method_version=method_version("causal"),
        network=network_description,
        checkpoint_name=causal_checkpoint,
        settings=invariance_settings,
        test_images=invariance_test_images,
    script:
        "../scripts/shift_invariance.py"
