"""The study's figures: the one table that says which figures exist, what each reads, what a
model needs to have it, and where it goes in the report.

The workflow's figure rules (``plot_<group>_figures`` in workflow/rules/figures.smk, one per
:data:`FIGURE_GROUPS` entry) take every figure from here: its inputs, caption file and report
category; the drawing itself is :func:`selectivity.figures.drawing.draw_figure`. Adding a figure
means adding a row here, a drawing function there and a caption file in workflow/report/figures/.

Torch- and matplotlib-free on purpose: the Snakemake controller imports it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping

# Which models a figure is drawn for. "model": once per model, trained or given (a given
# network is drawn under its name), if the model has what the figure needs; "across": once
# for all trained models together (under the name ACROSS_ARCHITECTURES).
SCOPES = ("model", "across")
ACROSS_ARCHITECTURES = "architectures"
#: Figures "across" compare architectures: with fewer trained models they are not drawn (the
#: report's workflow page says so; the depth-profile table is still written).
MINIMUM_ARCHITECTURES = 2
#: What a figure may need beyond tuning: a training history (trained networks: epochs,
#: accuracies, label corruption), evaluation images (networks with causal tests), a low-level
#: feature besides orientation in tuning.features (its index, summary and causal tables), or
#: networks trained with the selectivity regulariser (training.selectivity_regularisation).
NEEDS = ("training", "test_images", "features", "regularisation")

CATEGORIES = {
    "claims": "1. Claims",
    "training": "2. Training",
    "selectivity": "3. Orientation selectivity",
    "causal": "4. Causal tests",
    "given": "5. Given networks (published and your own)",
    "provenance": "6. Provenance",
    "features": "7. Low-level features",
    "regularisation": "8. Selectivity regularisation",
}

# Placeholders of input patterns, besides {model}: filled in by the workflow from the config.
#   {example_network}  the network shown in example figures (the model's first network: the
#                      first seed with the least label corruption, or a given network's first weights)
AGGREGATE = "results/aggregate"


@dataclass(frozen=True)
class FigureEntry:
    """One figure: what it reads, what a model needs to have it, and how the report shows it.

    A given network's figures go to the report category of given networks, whatever the
    figure's own category.
    """

    figure: str
    scope: str
    label: str
    category: str
    caption: str
    inputs: Mapping[str, str] = field(default_factory=dict)
    # Which config-derived settings the drawing gets (the workflow builds them):
    # "none", "stimuli" (grating settings and image size), "distributions" (checkpoint and
    # gOSI threshold), "feature_distributions" (checkpoint and the other features' thresholds),
    # "checkpoint" (the causal-tests checkpoint), "example" (the example network's causal
    # checkpoint) or "regularisation" (the regularised feature, the model's regularised layers and
    # the claims' checkpoint).
    options: str = "none"
    needs: frozenset[str] = frozenset()

    def __post_init__(self):
        if self.scope not in SCOPES:
            raise ValueError(f"{self.figure}: scope must be one of {SCOPES}, got {self.scope!r}")
        if self.category not in CATEGORIES.values():
            raise ValueError(f"{self.figure}: category must be one of {list(CATEGORIES.values())}")
        unknown = set(self.needs) - set(NEEDS)
        if unknown:
            raise ValueError(f"{self.figure}: needs {sorted(unknown)} are not among {NEEDS}")

    @property
    def group(self) -> str:
        """The figure group: figures drawn by one job per model (the figures rule of that group)."""
        if self.scope == "across":
            return "across"
        if "regularisation" in self.needs:
            return "regularisation"
        if "training" in self.needs:
            return "training"
        return "causal" if "test_images" in self.needs else "tuning"

    def drawn_for(
        self,
        trained: bool,
        has_test_images: bool,
        has_features: bool = True,
        has_regularisation: bool = False,
    ) -> bool:
        """Whether a model (trained or given, with or without test images) gets this figure, in a
        run with (or without) a low-level feature besides orientation and regularised networks."""
        return (
            self.scope == "model"
            and (trained or "training" not in self.needs)
            and (has_test_images or "test_images" not in self.needs)
            and self.drawn_in_run(has_features, has_regularisation)
        )

    def drawn_in_run(self, has_features: bool, has_regularisation: bool = False) -> bool:
        """Whether a run with (or without) a feature besides orientation and regularised networks has
        this figure at all."""
        return (has_features or "features" not in self.needs) and (
            has_regularisation or "regularisation" not in self.needs
        )


def _figure(figure, label, category, caption, options="none", needs=(), **inputs) -> FigureEntry:
    return FigureEntry(
        figure, "model", label, CATEGORIES[category], caption, inputs, options, frozenset(needs)
    )


TRAINING, TEST_IMAGES, FEATURES = ("training",), ("test_images",), ("features",)
REGULARISATION = ("regularisation",)

FIGURE_TABLE: tuple[FigureEntry, ...] = (
    _figure(
        "claims", "claims C1-C6", "claims", "claims", needs=TRAINING + TEST_IMAGES, table="results/claims.csv",
    ),
    _figure("stimuli", "grating stimuli", "selectivity", "stimuli", options="stimuli"),
    _figure(
        "training_curves", "training curves", "training", "training_curves", needs=TRAINING,
        table=f"{AGGREGATE}/training_metrics.csv",
    ),
    _figure(
        "example_tuning_curves", "example tuning curves", "selectivity", "example_tuning_curves",
        options="example",
        table="results/tuning/{example_network}/tuning.csv",
        curves="results/tuning/{example_network}/curves.npz",
    ),
    _figure(
        "gosi_distributions", "gosi distributions", "selectivity", "selectivity_distributions",
        options="distributions", table=f"{AGGREGATE}/tuning.csv",
    ),
    _figure(
        "osi_distributions", "osi distributions", "selectivity", "selectivity_distributions",
        options="distributions", table=f"{AGGREGATE}/tuning.csv",
    ),
    _figure(
        "selectivity_by_depth", "selectivity by depth", "selectivity", "selectivity_by_depth",
        options="checkpoint", table=f"{AGGREGATE}/selectivity_summary.csv",
    ),
    _figure(
        "selectivity_over_training", "selectivity over training", "selectivity", "selectivity_over_training",
        needs=TRAINING, table=f"{AGGREGATE}/selectivity_summary.csv",
    ),
    _figure(
        "selectivity_vs_accuracy", "selectivity vs accuracy", "selectivity", "selectivity_vs_accuracy",
        needs=TRAINING, table=f"{AGGREGATE}/selectivity_summary.csv",
    ),
    _figure(
        "half_ablation", "half ablation", "causal", "half_ablation", needs=TEST_IMAGES,
        table=f"{AGGREGATE}/half_ablation.csv",
    ),
    _figure(
        "cumulative_ablation", "cumulative ablation", "causal", "cumulative_ablation", needs=TEST_IMAGES,
        table=f"{AGGREGATE}/cumulative_ablation.csv",
    ),
    _figure(
        "shift_invariance", "shift invariance", "causal", "shift_invariance", needs=TEST_IMAGES,
        table=f"{AGGREGATE}/shift_invariance.csv",
    ),
    FigureEntry(
        "depth_profiles", "across", "claims by relative depth", CATEGORIES["claims"], "depth_profiles",
        {"table": f"{AGGREGATE}/depth_profiles.csv"},
    ),
    _figure(
        "feature_distributions", "feature indices per layer", "features", "feature_distributions",
        options="feature_distributions", needs=FEATURES, table=f"{AGGREGATE}/tuning.csv",
    ),
    _figure(
        "feature_development", "feature indices over training", "features", "feature_development",
        needs=TRAINING + FEATURES, table=f"{AGGREGATE}/feature_summary.csv",
    ),
    _figure(
        "feature_claims", "claims by feature", "features", "feature_claims",
        needs=TRAINING + TEST_IMAGES + FEATURES, table="results/claims.csv",
    ),
    _figure(
        "feature_ablation", "ablation by feature", "features", "feature_ablation", needs=TEST_IMAGES + FEATURES,
        orientation=f"{AGGREGATE}/half_ablation.csv", features=f"{AGGREGATE}/feature_half_ablation.csv",
    ),
    FigureEntry(
        "feature_depth_profiles", "across", "claims by feature and relative depth", CATEGORIES["features"],
        "feature_depth_profiles", {"table": f"{AGGREGATE}/depth_profiles.csv"}, needs=frozenset(FEATURES),
    ),
    _figure(
        "selectivity_vs_coefficient", "selectivity against the regularisation coefficient", "regularisation",
        "selectivity_vs_coefficient", options="regularisation", needs=TRAINING + REGULARISATION,
        table=f"{AGGREGATE}/feature_summary.csv",
    ),
    _figure(
        "accuracy_vs_selectivity", "generalization against achieved selectivity", "regularisation",
        "accuracy_vs_selectivity", options="regularisation", needs=TRAINING + REGULARISATION,
        table=f"{AGGREGATE}/feature_summary.csv",
    ),
)  # fmt: skip


def figure_names() -> list[str]:
    """Every figure name, once each, in table order."""
    return list(dict.fromkeys(entry.figure for entry in FIGURE_TABLE))


#: Figures drawn together, by one job per model (one process: one start-up for several figures):
#: "tuning" for every model, "training" for trained models, "causal" for models with test
#: images, "regularisation" for trained models in a run with regularised networks, "across" once
#: for all trained models (when there are several: :func:`across_drawn`).
FIGURE_GROUPS = ("tuning", "training", "causal", "regularisation", "across")


def across_drawn(trained_models) -> bool:
    """Whether the figures across architectures are drawn: only for several trained models."""
    return len(set(trained_models)) >= MINIMUM_ARCHITECTURES


def _label_corruption(network) -> float:
    """A network's label corruption (0 for a given network: it has no training labels here)."""
    return float(network.description.get("network", {}).get("label_corruption", 0.0))


def caption_facts(networks, trained: bool) -> dict:
    """What the captions of a model's figures say about its networks (the figure rules' ``caption``
    param; the drawing does not read it), from the model's networks
    (:class:`selectivity.networks.catalogue.AnalysedNetwork`).

    ``networks``: how many the model has; ``clean_networks``: how many have its least label
    corruption (the figures of clean networks); ``causal_networks``: how many of those with causal
    tests have their least label corruption (the causal figures; one network means the error
    bars are over test images); ``least_corruption``; ``given``: a given network (no training).
    """
    networks = list(networks)
    if not networks:
        raise ValueError("a model without networks has no figures")
    least = min(_label_corruption(network) for network in networks)
    causal = [network for network in networks if network.gets_causal_tests]
    causal_least = min((_label_corruption(network) for network in causal), default=least)
    return {
        "given": not trained,
        "networks": len(networks),
        "clean_networks": sum(_label_corruption(network) == least for network in networks),
        "least_corruption": least,
        "causal_networks": sum(_label_corruption(network) == causal_least for network in causal),
    }


def figures_in_group(group: str, has_features: bool = True, has_regularisation: bool = False) -> list[str]:
    """The figures of a group, in a run with (or without) a low-level feature besides orientation and
    regularised networks."""
    if group not in FIGURE_GROUPS:
        raise ValueError(f"figure group must be one of {FIGURE_GROUPS}, got {group!r}")
    return [
        entry.figure
        for entry in FIGURE_TABLE
        if entry.group == group and entry.drawn_in_run(has_features, has_regularisation)
    ]


def groups_of(
    trained: bool, has_test_images: bool, has_features: bool = True, has_regularisation: bool = False
) -> list[str]:
    """The figure groups a model gets (trained or given, with or without test images)."""
    return [
        group
        for group in FIGURE_GROUPS[:-1]
        if any(
            entry.drawn_for(trained, has_test_images, has_features, has_regularisation)
            for entry in FIGURE_TABLE
            if entry.group == group
        )
    ]


def figures_of(
    scope: str,
    trained: bool = True,
    has_test_images: bool = True,
    has_features: bool = True,
    has_regularisation: bool = False,
) -> list[str]:
    """The figures of a scope; for "model", those a trained/given model with(out) test images gets
    (in a run with or without a low-level feature besides orientation and regularised networks)."""
    if scope == "across":
        return [
            entry.figure
            for entry in FIGURE_TABLE
            if entry.scope == "across" and entry.drawn_in_run(has_features, has_regularisation)
        ]
    return [
        entry.figure
        for entry in FIGURE_TABLE
        if entry.drawn_for(trained, has_test_images, has_features, has_regularisation)
    ]


def figure_entry(
    model: str,
    figure: str,
    trained_models,
    given_models=(),
    has_features: bool = True,
    has_regularisation: bool = False,
) -> FigureEntry:
    """The table row of ``figure`` for ``model``; ValueError if that model has no such figure.

    ``given_models`` maps each given network's name to whether it has test images.
    """
    given_models = dict(given_models)
    for entry in FIGURE_TABLE:
        if entry.figure != figure:
            continue
        if (
            model == ACROSS_ARCHITECTURES
            and entry.scope == "across"
            and entry.drawn_in_run(has_features, has_regularisation)
        ):
            return entry
        if model in trained_models and entry.drawn_for(True, True, has_features, has_regularisation):
            return entry
        if model in given_models and entry.drawn_for(
            False, given_models[model], has_features, has_regularisation
        ):
            return entry
    raise ValueError(f"there is no figure {figure!r} for model {model!r}; figures are {figure_names()}")
