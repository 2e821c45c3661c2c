# Stage 1, data: the dataset, converted once into the canonical .npz; the train/validation split; and
# the test set on its own (what the analyses read, so that rebuilding the dataset file, e.g.
# after deleting it, reruns neither the analyses nor, through them, training).


include: "data_inputs.smk"


rule prepare_dataset:
    input:
        local_dataset_input,
    output:
        dataset="results/data/{dataset}.npz",
        digest="results/data/{dataset}.sha256",
    log:
        "logs/data/prepare_{dataset}.log",
    benchmark:
        "results/benchmarks/data/prepare_{dataset}.tsv"
    localrule: True
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=4000,
        runtime=60,
    params:
        settings=dataset_settings(config["dataset"]),
        method_version=method_version("data"),
    script:
        "../scripts/prepare_dataset.py"


rule split_dataset:
    input:
        dataset=ancient("results/data/{dataset}.npz"),
        dataset_digest="results/data/{dataset}.sha256",
    output:
        "results/data/{dataset}_split.npz",
    log:
        "logs/data/split_{dataset}.log",
    localrule: True
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        validation_size=config["dataset"]["validation_size"],
        split_seed=config["dataset"]["split_seed"],
        method_version=method_version("data"),
    script:
        "../scripts/split_dataset.py"


rule extract_test_set:
    input:
        dataset=ancient("results/data/{dataset}.npz"),
        dataset_digest="results/data/{dataset}.sha256",
    output:
        "results/data/{dataset}_test.npz",
    log:
        "logs/data/extract_test_set_{dataset}.log",
    localrule: True
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=2000,
        runtime=10,
    params:
        method_version=method_version("data"),
    script:
        "../scripts/extract_test_set.py"


rule image_folder_test_set:
    input:
        image_folder,
    output:
        "results/data/image_folders/{image_set}.npz",
    log:
        "logs/data/image_folder_{image_set}.log",
    benchmark:
        "results/benchmarks/data/image_folder_{image_set}.tsv"
    wildcard_constraints:
        image_set=alternatives(FOLDER_SETS),
    localrule: True
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        mem_mb=8000,
        runtime=60,
    params:
        settings=image_folder_settings,
        method_version=method_version("data"),
    script:
        "../scripts/image_folder_test_set.py"
