"""Stage 6, figures: every figure of the report, as PDF and PNG.

Reads the tables of the earlier stages; writes one figure per file pair. :mod:`.catalogue` is
the table of figures (what each reads, its caption and report category; torch-free, used by the
workflow controller), :mod:`.drawing` reads a figure's files and calls its drawing function,
:mod:`.style` holds what every figure shares, and :mod:`.training_figures`,
:mod:`.tuning_figures`, :mod:`.causal_figures`, :mod:`.architecture_figures` draw them;
:mod:`.plots` gathers every drawing function in one namespace.
"""
