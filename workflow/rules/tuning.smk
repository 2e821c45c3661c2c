# Stage 3, tuning: every unit of every analysed layer of a network shown gratings, at every
# checkpoint of the network (trained: each saved epoch and the best; given: its weights). One
# job per network, one table per network with a row per checkpoint x unit x stimulus set.


include: "tuning_inputs.smk"


rule measure_tuning:
    input:
        weights=network_files,
    output:
        table="results/tuning/{network}/tuning.csv",
        curves="results/tuning/{network}/curves.npz",
        provenance="results/tuning/{network}/tuning.provenance.json",
    log:
        "logs/tuning/{network}.log",
    benchmark:
        "results/benchmarks/tuning/{network}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: network_threads
    resources:
        gpu=GPUS_PER_NETWORK_JOB,
        mem_mb=network_memory,
        runtime=tuning_runtime,
    params:
        method_version=method_version("tuning"),
        network=network_description,
        settings=tuning_settings(),
        checkpoint_names=network_checkpoint_names,
    script:
        "../scripts/measure_tuning.py"
