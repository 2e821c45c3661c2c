"""The networks every stage works on, whatever their origin.

Reads nothing of the workflow's own: it defines the trainable architectures (layer shapes in
:mod:`.architectures`, the analysable models in :mod:`.models`, K networks stacked for grouped
training in :mod:`.grouped`), the checkpoint file that training writes and every later stage
reads (:mod:`.checkpoints`), the published VGG16 (:mod:`.published`), users' own modules read
through forward hooks (:mod:`.hooked`), and :class:`.loaded.LoadedNetwork`, the one object every
analysis receives (a model plus how to feed it images).
"""
