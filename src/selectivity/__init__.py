"""Unit-level selectivity of image classifiers (Ukita 2020; Morcos et al. 2018).

One subpackage per stage of the workflow, shallow to deep: ``data`` (datasets, splits,
test images), ``networks`` (architectures, checkpoints, published and users' networks, the
one loaded-network object), ``training``, ``tuning`` (gratings, selectivity indices,
summaries), ``causal`` (class selectivity, ablation, shift invariance), ``claims``
(verdicts) and ``figures``. Shared basics: ``config`` (validation and what a config
implies), ``tables`` (table columns and reading), ``statistics``, ``io``, ``provenance``,
``versions`` and ``devices``.
"""

__version__ = "0.1.0"
