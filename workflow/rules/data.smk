# Stage 1: the dataset, converted once into the canonical .npz, and the train/validation split.


rule prepare_dataset:
    input:
        local_dataset_input,
    output:
        "results/data/{dataset}.npz",
    log:
        "logs/data/prepare_{dataset}.log",
    benchmark:
        "results/benchmarks/data/prepare_{dataset}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        settings=dataset_settings(),
    script:
        "../scripts/prepare_dataset.py"


rule split_dataset:
    input:
        "results/data/{dataset}.npz",
    output:
        "results/data/{dataset}_split.npz",
    log:
        "logs/data/split_{dataset}.log",
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        validation_size=config["dataset"]["validation_size"],
        split_seed=config["dataset"]["split_seed"],
    script:
        "../scripts/split_dataset.py"
