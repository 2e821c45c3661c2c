# The input functions and settings of the figures stage (figures.smk).
from selectivity.figures.catalogue import (
    CATEGORIES,
    FIGURE_GROUPS,
    FIGURE_TABLE,
    across_drawn,
    caption_facts,
    figure_entry,
    figures_in_group,
    groups_of,
)
from selectivity.config import regularisation_layers
from selectivity.tuning.stimuli import spatial_frequency_count

# Caption files of the figures (relative to the rule files), one per figure entry.
CAPTIONS = "../report/figures"

# Given networks by name -> whether they have test images (and so the causal figures).
GIVEN_WITH_TEST_IMAGES = {group.model: group.has_causal_tests for group in MODELS if group.origin == "given"}
# Whether tuning.features lists a low-level feature besides orientation (the feature figures).
HAS_FEATURES = bool(FEATURES_RANKED)
# Whether the run trains networks with the selectivity regulariser (the regularisation figures;
# REGULARISATION: claims_inputs.smk).
HAS_REGULARISATION = REGULARISATION is not None


def group_models(group):
    """The models a figure group is drawn for (the {model} values of its rule)."""
    if group == "across":
        # the claims across architectures need several (workflow.rst says why a run has none)
        return [ACROSS_ARCHITECTURES] if across_drawn(TRAINED_MODELS) else []
    return [
        models.model
        for models in MODELS
        if group
        in groups_of(
            models.origin == "trained",
            models.has_causal_tests or models.origin == "trained",
            HAS_FEATURES,
            HAS_REGULARISATION,
        )
    ]


def entry_of(model, figure):
    return figure_entry(
        model, figure, TRAINED_MODELS, GIVEN_WITH_TEST_IMAGES, HAS_FEATURES, HAS_REGULARISATION
    )


def example_network(model):
    """The network an example figure shows: the model's first (first seed, least corruption)."""
    return next(network for network in ANALYSED.values() if network.model == model)


def figure_files(group):
    """The files each figure of a group reads (selectivity.figures.catalogue), per model: a
    function of the {model} wildcard giving {figure: {name: path}}."""

    def files(wildcards):
        fields = {"model": wildcards.model}
        if wildcards.model != ACROSS_ARCHITECTURES:
            fields["example_network"] = example_network(wildcards.model).path
        return {
            figure: {
                name: pattern.format(**fields)
                for name, pattern in entry_of(wildcards.model, figure).inputs.items()
            }
            for figure in figures_in_group(group, HAS_FEATURES, HAS_REGULARISATION)
        }

    return files


def figure_group_inputs(group):
    """Every file a group's figures read, once each (Snakemake inputs)."""
    files = figure_files(group)

    def inputs(wildcards):
        return sorted({path for paths in files(wildcards).values() for path in paths.values()})

    return inputs


def figure_options(model, figure):
    """The config-derived settings a figure's drawing gets (its entry's ``options`` kind).

    Figures with intervals across networks get the claims' confidence, so that their bars and
    bands are the tables' intervals at the configured level.
    """
    kind = entry_of(model, figure).options
    confidence = {"confidence": config["claims"]["confidence"]}
    if kind == "none":
        return confidence
    network = example_network(model)
    if kind == "example":
        return {"checkpoint": network.causal_checkpoint}
    tuning = config["tuning"]
    if kind == "regularisation":
        return {
            "feature": REGULARISATION.feature,
            "layers": regularisation_layers(config, model),
            "checkpoint": config["causal"]["checkpoint"],
        }
    if kind == "stimuli":
        # the count itself (null in the config means the input size's default), for the caption too
        count = tuning["spatial_frequencies"] or spatial_frequency_count(network.input_size)
        return {
            "image_size": network.input_size,
            "orientations": tuning["orientations"],
            "phases": tuning["phases"],
            "spatial_frequencies": count,
        }
    # trained networks: the causal tests' checkpoint; a given network has one, taken for any choice
    tuning_checkpoint = config["causal"]["checkpoint"] if model in TRAINED_MODELS else "final"
    if kind == "distributions":
        return {"checkpoint": tuning_checkpoint, "selectivity_threshold": tuning["selectivity_threshold"]}
    if kind == "feature_distributions":
        thresholds = {
            feature: value for feature, value in feature_thresholds().items() if feature != "orientation"
        }
        return {"checkpoint": tuning_checkpoint, "thresholds": thresholds, **confidence}
    return {"checkpoint": tuning_checkpoint, **confidence}


def figure_caption_facts(wildcards):
    """What the captions of a model's figures say about its networks (selectivity.figures.catalogue)."""
    if wildcards.model == ACROSS_ARCHITECTURES:
        return {"models": list(TRAINED_MODELS)}
    group = next(group for group in MODELS if group.model == wildcards.model)
    return caption_facts(group.networks, trained=wildcards.model in TRAINED_MODELS)


def figure_group_options(group):
    def options(wildcards):
        return {
            figure: figure_options(wildcards.model, figure)
            for figure in figures_in_group(group, HAS_FEATURES, HAS_REGULARISATION)
        }

    return options


def figure_category(figure):
    """A figure's report category: its own, or that of given networks for a given network's."""

    def category(wildcards, **_):
        if wildcards.model in GIVEN_WITH_TEST_IMAGES:
            return CATEGORIES["given"]
        return entry_of(wildcards.model, figure).category

    return category


def figure_labels(figure):
    def labels(wildcards, **_):
        return {"model": wildcards.model, "figure": entry_of(wildcards.model, figure).label}

    return labels


def figure_outputs(group):
    """PDF and PNG of each figure of a group; the PNGs go into the report with their captions."""
    outputs = {}
    for figure in figures_in_group(group, HAS_FEATURES, HAS_REGULARISATION):
        caption = next(
            entry.caption for entry in FIGURE_TABLE if entry.figure == figure and entry.group == group
        )
        outputs[f"{figure}_pdf"] = f"results/figures/{{model}}/{figure}.pdf"
        outputs[f"{figure}_png"] = report(
            f"results/figures/{{model}}/{figure}.png",
            caption=f"{CAPTIONS}/{caption}.rst",
            category=figure_category(figure),
            subcategory="{model}",
            labels=figure_labels(figure),
        )
    return outputs


def figure_targets():
    return [
        f"results/figures/{model}/{figure}.png"
        for group in FIGURE_GROUPS
        for model in group_models(group)
        for figure in figures_in_group(group, HAS_FEATURES, HAS_REGULARISATION)
    ]
