# Stage 4, causal tests of every network with evaluation images (trained networks of the
# levels in causal.label_corruption, given networks with test images), on its causal
# checkpoint (trained: causal.checkpoint; given: its weights): class selectivity (Morcos),
# ablation by gOSI and by class selectivity, shift invariance, and both tests again with units
# ranked by each other low-level feature of tuning.features ({feature}: one job per network and
# feature). Tests that rank by tuning read the tuning table as ancient and rerun on their key
# (rule causal_key, see scored_inputs), so a new feature in tuning.features reruns no test that
# does not read it.


include: "causal_inputs.smk"


rule causal_key:
    input:
        unpack(network_test_inputs),
    output:
        "results/causal/{network}/{analysis}.key.json",
    log:
        "logs/causal/{network}/{analysis}.key.log",
    wildcard_constraints:
        analysis=alternatives(SCORED_ANALYSES),
    localrule: True
    conda:
        "../../envs/analysis.yaml"
    threads: 1
    params:
        method_version=method_version("causal"),
        network=network_description,
        checkpoint_name=causal_checkpoint,
        settings=analysis_settings,
        test_images=analysis_test_images,
        script=analysis_script,
        scores=scores_read,
    script:
        "../scripts/causal_key.py"


rule class_selectivity:
    input:
        unpack(network_test_inputs),
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
        unpack(scored_inputs("half_ablation")),
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
        unpack(scored_inputs("cumulative_ablation")),
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
        unpack(scored_inputs("shift_invariance")),
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


rule half_ablation_by_feature:
    input:
        unpack(scored_inputs("half_ablation_{feature}")),
    output:
        table="results/causal/{network}/half_ablation_{feature}.csv",
        comparisons="results/causal/{network}/half_ablation_comparisons_{feature}.csv",
        provenance="results/causal/{network}/half_ablation_{feature}.provenance.json",
    log:
        "logs/causal/{network}/half_ablation_{feature}.log",
    benchmark:
        "results/benchmarks/causal/{network}/half_ablation_{feature}.tsv"
    wildcard_constraints:
        feature=alternatives(FEATURES_RANKED),
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
        settings=feature_ablation_settings,
        test_images=causal_test_images,
        features=lambda wildcards: features_read(wildcards.feature),
    script:
        "../scripts/half_ablation_by_feature.py"


rule shift_invariance_by_feature:
    input:
        unpack(scored_inputs("shift_invariance_{feature}")),
    output:
        table="results/causal/{network}/shift_invariance_{feature}.csv",
        provenance="results/causal/{network}/shift_invariance_{feature}.provenance.json",
    log:
        "logs/causal/{network}/shift_invariance_{feature}.log",
    benchmark:
        "results/benchmarks/causal/{network}/shift_invariance_{feature}.tsv"
    wildcard_constraints:
        feature=alternatives(FEATURES_RANKED),
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
        features=lambda wildcards: features_read(wildcards.feature),
    script:
        "../scripts/shift_invariance_by_feature.py"
