"""A shorter exit for the workflow's processes: the Snakemake that runs it and every rule job.

At exit Python runs full garbage collections over every object still alive: in a rule job the
hundreds of thousands of torch, scipy and pandas module objects it loaded, in Snakemake its own
modules and the workflow's DAG. That is about half a second of CPU per process, for memory the
process is about to give back anyway (benchmarks/job_exit.py: about 0.5 CPU-s per job that runs a
network and per Snakemake dry run, a fifth to a quarter of what starting and ending either costs).
Frozen objects are left out of those collections, and nothing else about the exit changes: atexit
handlers (weakref finalizers and temporary folders among them) run, streams are flushed and the
exit status is kept, so a failed job or run still fails. What the collections would have reached is
only cyclic garbage, whose finalizers Python never promises to run at exit; every output of a job
is written whole and closed before the job ends (selectivity.io).
"""

from __future__ import annotations

import atexit
import gc


def freeze_collector_at_exit() -> None:
    """Have this process freeze the garbage collector when it exits (before its teardown).

    Registered with atexit, so it runs before the handlers registered earlier (last in, first
    out) and before the interpreter's teardown; registering it twice is harmless.
    """
    atexit.register(gc.freeze)
