# Stage 3: orientation tuning of every unit of every analysed layer, per saved checkpoint.


rule measure_tuning:
    input:
        weights="results/networks/{network}/checkpoints/{checkpoint_name}.pt",
    output:
        table="results/tuning/{network}/{checkpoint_name}.csv",
        curves="results/tuning/{network}/{checkpoint_name}_curves.npz",
        provenance="results/tuning/{network}/{checkpoint_name}.provenance.json",
    log:
        "logs/tuning/{network}/{checkpoint_name}.log",
    benchmark:
        "results/benchmarks/tuning/{network}/{checkpoint_name}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        gpu=1,
        mem_mb=4000,
        runtime=30,
    params:
        method_version=method_version("tuning"),
        settings=tuning_settings(),
    script:
        "../scripts/measure_tuning.py"
