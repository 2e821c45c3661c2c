"""Stage 3, tuning: how selective each unit is for low-level features.

Reads a network (any :class:`selectivity.networks.loaded.LoadedNetwork`); writes per unit and
stimulus set (real gratings and the shuffled control) the orientation indices (OSI, gOSI),
preferred orientation and spatial frequency, and the tuning curves. Then per layer the
selectivity summary and its relation to test accuracy across epochs and networks.

Modules: :mod:`.stimuli` (gratings), :mod:`.analysis` (responses, curves, indices, the tuning
table), :mod:`.summaries` (per-layer summaries and selectivity-accuracy correlations).
"""
