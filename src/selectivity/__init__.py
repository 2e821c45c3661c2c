"""Unit-level selectivity of image classifiers (Ukita 2020; Morcos et al. 2018).

Modules: ``models`` (networks with named, ablatable layers), ``data`` (datasets,
splits, preprocessing), ``training`` and ``grouped`` (training one or many networks),
``stimuli`` and ``tuning`` (gratings, orientation selectivity), ``ablation``,
``class_selectivity`` and ``invariance`` (causal tests), ``statistics`` and
``claims`` (verdicts), ``plots`` (figures), ``io``, ``checkpoints``, ``provenance``
and ``devices`` (plumbing).
"""

__version__ = "0.1.0"
