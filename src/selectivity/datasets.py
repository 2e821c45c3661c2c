"""The name under which the data rule's script imports ``build_dataset``.

The text of a rule's script decides whether Snakemake reruns its jobs (the code trigger): the
script of ``prepare_dataset`` imports ``selectivity.data.build.build_dataset``, and rewriting that
line would rebuild the dataset and, in a dry run, plan every network's training again. The
function lives in :mod:`selectivity.data.build`.
"""

from selectivity.data.build import build_dataset

__all__ = ["build_dataset"]
