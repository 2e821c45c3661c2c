# Stage 2: training. One job per group of training.group_size networks (1 = one job per
# network); a group is trained as one stacked network and writes exactly the per-network
# files that separate jobs would, so later stages never see the grouping. The rules are
# generated per group because a job's outputs must be listed explicitly.

for group in training_groups(config):
    structured_outputs, flat_outputs = training_outputs(group)

    rule:
        name:
            f"train_{group.name}"
        input:
            dataset=f"results/data/{DATASET}.npz",
            split=f"results/data/{DATASET}_split.npz",
        output:
            flat_outputs,
        log:
            f"logs/training/{group.name}.log",
        benchmark:
            f"results/benchmarks/training/{group.name}.tsv"
        conda:
            "../../envs/torch.yaml"
        threads: 2
        resources:
            gpu=1,
            mem_mb=training_memory,
            runtime=training_runtime,
        params:
            networks=[
                {
                    "model": n.model,
                    "dataset": n.dataset,
                    "label_corruption": n.label_corruption,
                    "seed": n.seed,
                }
                for n in group.networks
            ],
            settings=training_settings(),
            outputs=structured_outputs,
            state_dir=f"results/training_state/{group.name}",
            device=config["device"],
            lock_dir=LOCK_DIR,
        script:
            "../scripts/train_networks.py"
