# Stage 3: orientation tuning of every unit of every analysed layer, per saved checkpoint.
# One job per network measures all its checkpoints (one process, one model load per
# checkpoint), but writes one table per checkpoint, so what downstream rules read is the same.


rule measure_tuning:
    input:
        weights=tuning_checkpoints,
    output:
        tables=per_checkpoint("results/tuning/{{network}}/{checkpoint_name}.csv"),
        curves=per_checkpoint("results/tuning/{{network}}/{checkpoint_name}_curves.npz"),
        provenance=per_checkpoint("results/tuning/{{network}}/{checkpoint_name}.provenance.json"),
    log:
        "logs/tuning/{network}.log",
    benchmark:
        "results/benchmarks/tuning/{network}.tsv"
    conda:
        "../../envs/torch.yaml"
    threads: 1
    resources:
        gpu=GPUS_PER_NETWORK_JOB,
        mem_mb=4000,
        runtime=tuning_runtime,
    params:
        method_version=method_version("tuning"),
        settings=tuning_settings(),
        checkpoint_names=checkpoint_names(),
    script:
        "../scripts/measure_tuning.py"
