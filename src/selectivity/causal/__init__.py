"""Stage 4, causal tests: what a network's units do for its generalization.

Reads a network, its test images and its tuning table; writes per unit the class-selectivity
index (Morcos et al.), per layer the half and cumulative ablation losses (top / bottom / random /
matched units by a selectivity score), and the shift invariance of higher layers, intact and with
lower-layer units ablated.

Modules: :mod:`.class_selectivity`, :mod:`.ablation`, :mod:`.matching` (the matched-random
control), :mod:`.invariance`, :mod:`.unit_counts`.
"""
