# Stage 2, training. One job per group of networks (training.group_size; 1 = one job per
# network). A job is named by the networks it trains (selectivity.config.TrainingGroup), so
# adding or dropping networks never renames or reruns the jobs of the others. A group is
# trained as one stacked network and writes exactly the per-network files that separate
# jobs would, so later stages never see the grouping. The rules are generated per group
# because a job's outputs must be listed explicitly. The name train_networks stands for all
# of them in --set-resources and --set-threads (training_inputs.smk).


include: "training_inputs.smk"


for group in training_groups(config):
    structured_outputs, flat_outputs = training_outputs(group)

    rule:
        name:
            f"train_{group.name}"
        input:
            **dataset_inputs(),
            split=f"results/data/{DATASET}_split.npz",
        output:
            flat_outputs,
        log:
            f"logs/training/{group.name}.log",
        benchmark:
            f"results/benchmarks/training/{group.name}.tsv"
        conda:
            "../../envs/torch.yaml"
        threads: config["training"]["cpu_threads"]
        resources:
            gpu=GPUS_PER_NETWORK_JOB,
            mem_mb=training_memory,
            runtime=training_runtime,
        params:
            **training_params(group),
            outputs=structured_outputs,
            state_dir="results/training_state",
        script:
            "../scripts/train_networks.py"

    apply_training_overrides(f"train_{group.name}")
