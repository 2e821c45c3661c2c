"""The study's figures: the one table that says which figures exist, what each reads, and
where it goes in the report.

The workflow's single figure rule (``plot_figure`` in workflow/rules/figures.smk) takes
every figure from here: its inputs, caption file and report category; the drawing itself
is :func:`selectivity.figures.drawing.draw_figure`. Adding a figure means adding a row here, a
drawing function there and a caption file in workflow/report/figures/.

Torch- and matplotlib-free on purpose: the Snakemake controller imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

# Which models a figure is drawn for. "trained": once per trained model (networks.models);
# "across": once for all trained models together (under the name ACROSS_ARCHITECTURES);
# "vgg16": once for the VGG16 branch (vgg16.enabled), "vgg16_causal" only with an ImageNet
# folder (vgg16.imagenet_val_dir); "external": once per user network (external_networks),
# "external_causal" for those with test images.
SCOPES = ("trained", "across", "vgg16", "vgg16_causal", "external", "external_causal")
ACROSS_ARCHITECTURES = "architectures"

CATEGORIES = {
    "claims": "1. Claims",
    "training": "2. Training",
    "selectivity": "3. Orientation selectivity",
    "causal": "4. Causal tests",
    "vgg16": "5. VGG16 (ImageNet)",
    "external": "6. Users' own networks",
}

# Placeholders of input patterns, besides {model}: filled in by the workflow from the config.
#   {example_network}  the network shown in example figures (first seed, least corruption)
#   {causal_checkpoint} the checkpoint the causal tests use (best, or the last epoch)
AGGREGATE = "results/aggregate"


@dataclass(frozen=True)
class FigureEntry:
    """One figure of one scope: what it reads and how the report shows it."""

    figure: str
    scope: str
    label: str
    category: str
    caption: str
    inputs: Mapping[str, str] = field(default_factory=dict)
    # Which config-derived settings the drawing gets (the workflow builds them):
    # "none", "stimuli" (grating settings and image size), "distributions" (checkpoint and
    # gOSI threshold) or "checkpoint" (the causal-tests checkpoint).
    options: str = "none"

    def __post_init__(self):
        if self.scope not in SCOPES:
            raise ValueError(f"{self.figure}: scope must be one of {SCOPES}, got {self.scope!r}")
        if self.category not in CATEGORIES.values():
            raise ValueError(f"{self.figure}: category must be one of {list(CATEGORIES.values())}")


def _trained(figure, label, category, caption, options="none", **inputs) -> FigureEntry:
    return FigureEntry(figure, "trained", label, CATEGORIES[category], caption, inputs, options)


def _vgg16(figure, label, caption, options="none", scope="vgg16", **inputs) -> FigureEntry:
    return FigureEntry(figure, scope, label, CATEGORIES["vgg16"], caption, inputs, options)


def _external(figure, label, caption, options="none", scope="external", **inputs) -> FigureEntry:
    return FigureEntry(figure, scope, label, CATEGORIES["external"], caption, inputs, options)


EXTERNAL = "results/external/{model}"


FIGURE_TABLE: tuple[FigureEntry, ...] = (
    _trained("claims", "claims C1-C6", "claims", "claims", table="results/claims.csv"),
    _trained("stimuli", "grating stimuli", "selectivity", "stimuli", options="stimuli"),
    _trained(
        "training_curves", "training curves", "training", "training_curves",
        table=f"{AGGREGATE}/training_metrics.csv",
    ),
    _trained(
        "example_tuning_curves", "example tuning curves", "selectivity", "example_tuning_curves",
        table="results/tuning/{example_network}/{causal_checkpoint}.csv",
        curves="results/tuning/{example_network}/{causal_checkpoint}_curves.npz",
    ),
    _trained(
        "gosi_distributions", "gosi distributions", "selectivity", "selectivity_distributions",
        options="distributions", table=f"{AGGREGATE}/tuning.csv",
    ),
    _trained(
        "osi_distributions", "osi distributions", "selectivity", "selectivity_distributions",
        options="distributions", table=f"{AGGREGATE}/tuning.csv",
    ),
    _trained(
        "selectivity_by_depth", "selectivity by depth", "selectivity", "selectivity_by_depth",
        options="checkpoint", table=f"{AGGREGATE}/selectivity_summary.csv",
    ),
    _trained(
        "selectivity_over_training", "selectivity over training", "selectivity", "selectivity_over_training",
        table=f"{AGGREGATE}/selectivity_summary.csv",
    ),
    _trained(
        "selectivity_vs_accuracy", "selectivity vs accuracy", "selectivity", "selectivity_vs_accuracy",
        table=f"{AGGREGATE}/selectivity_summary.csv",
    ),
    _trained(
        "half_ablation", "half ablation", "causal", "half_ablation",
        table=f"{AGGREGATE}/half_ablation.csv",
    ),
    _trained(
        "cumulative_ablation", "cumulative ablation", "causal", "cumulative_ablation",
        table=f"{AGGREGATE}/cumulative_ablation.csv",
    ),
    _trained(
        "shift_invariance", "shift invariance", "causal", "shift_invariance",
        table=f"{AGGREGATE}/shift_invariance.csv",
    ),
    FigureEntry(
        "depth_profiles", "across", "claims by relative depth", CATEGORIES["claims"], "depth_profiles",
        {"table": f"{AGGREGATE}/depth_profiles.csv"},
    ),
    _vgg16("stimuli", "grating stimuli", "stimuli", options="stimuli"),
    _vgg16(
        "example_tuning_curves", "example tuning curves", "example_tuning_curves",
        table="results/vgg16/tuning.csv", curves="results/vgg16/tuning_curves.npz",
    ),
    _vgg16(
        "gosi_distributions", "gosi distributions", "selectivity_distributions",
        options="distributions", table="results/vgg16/tuning.csv",
    ),
    _vgg16(
        "osi_distributions", "osi distributions", "selectivity_distributions",
        options="distributions", table="results/vgg16/tuning.csv",
    ),
    _vgg16(
        "selectivity_by_depth", "selectivity by depth", "selectivity_by_depth",
        options="checkpoint", table="results/vgg16/selectivity_summary.csv",
    ),
    _vgg16(
        "half_ablation", "half ablation", "vgg16_causal", scope="vgg16_causal",
        table="results/vgg16/half_ablation.csv",
    ),
    _vgg16(
        "shift_invariance", "shift invariance", "vgg16_causal", scope="vgg16_causal",
        table="results/vgg16/shift_invariance.csv",
    ),
    _external("stimuli", "grating stimuli", "stimuli", options="stimuli"),
    _external(
        "example_tuning_curves", "example tuning curves", "example_tuning_curves",
        table=f"{EXTERNAL}/tuning.csv", curves=f"{EXTERNAL}/tuning_curves.npz",
    ),
    _external(
        "gosi_distributions", "gosi distributions", "selectivity_distributions",
        options="distributions", table=f"{EXTERNAL}/tuning.csv",
    ),
    _external(
        "selectivity_by_depth", "selectivity by depth", "selectivity_by_depth",
        options="checkpoint", table=f"{EXTERNAL}/selectivity_summary.csv",
    ),
    _external(
        "half_ablation", "half ablation", "external_causal", scope="external_causal",
        table=f"{EXTERNAL}/half_ablation.csv",
    ),
    _external(
        "shift_invariance", "shift invariance", "external_causal", scope="external_causal",
        table=f"{EXTERNAL}/shift_invariance.csv",
    ),
)  # fmt: skip

VGG16_MODEL = "vgg16_imagenet"


def figure_names() -> list[str]:
    """Every figure name, once each, in table order."""
    return list(dict.fromkeys(entry.figure for entry in FIGURE_TABLE))


def figures_of(scope: str) -> list[str]:
    return [entry.figure for entry in FIGURE_TABLE if entry.scope == scope]


def figure_entry(model: str, figure: str, trained_models: list[str], external_models=()) -> FigureEntry:
    """The table row of ``figure`` for ``model``; ValueError if that model has no such figure."""
    if model in trained_models:
        scopes: tuple[str, ...] = ("trained",)
    elif model == ACROSS_ARCHITECTURES:
        scopes = ("across",)
    elif model in external_models:
        scopes = ("external", "external_causal")
    else:
        scopes = ("vgg16", "vgg16_causal") if model == VGG16_MODEL else ()
    for entry in FIGURE_TABLE:
        if entry.figure == figure and entry.scope in scopes:
            return entry
    raise ValueError(f"there is no figure {figure!r} for model {model!r}; figures are {figure_names()}")
