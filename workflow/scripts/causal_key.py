"""Rule causal_key: write what a scored causal test depends on besides the tuning table (its params
and inputs) to its key file, whole or not at all (a killed job leaves no half-written key).

A script rather than a ``run:`` block: Snakemake runs every local ``run:`` job in a new Snakemake
process that parses the whole workflow again (about 2 s each, dozens of keys per run); a script
starts in a fraction of that. Keep it this small: editing it reruns every key and so every scored
causal test of every finished run.
"""

import json
import os
from pathlib import Path

from job_setup import start_job

logger = start_job(snakemake)

record = {"params": dict(snakemake.params.items()), "inputs": list(snakemake.input)}
key = Path(snakemake.output[0])
partial = key.with_name(f"{key.name}.part")
partial.write_text(f"{json.dumps(record, indent=1, sort_keys=True, default=str)}\n")
os.replace(partial, key)
logger.info("key of %s: %d inputs", key, len(record["inputs"]))
