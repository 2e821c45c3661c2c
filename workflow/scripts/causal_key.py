"""Rule causal_key: write what a scored causal test depends on besides the tuning table (its params
and inputs) to its key file, whole or not at all (selectivity.io.save_json).

A script rather than a ``run:`` block: Snakemake runs every local ``run:`` job in a new Snakemake
process that parses the whole workflow again (about 2 s each, dozens of keys per run); a script
starts in a fraction of that. Keep it this small: editing it reruns every key and so every scored
causal test of every finished run.
"""

from job_setup import start_job

logger = start_job(snakemake)

from selectivity.io import save_json  # noqa: E402

record = {"params": dict(snakemake.params.items()), "inputs": list(snakemake.input)}
save_json(record, snakemake.output[0])
logger.info("key of %s: %d inputs", snakemake.output[0], len(record["inputs"]))
