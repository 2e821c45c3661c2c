# The input functions and settings of the figures stage (figures.smk).
from selectivity.figures.catalogue import CATEGORIES, figure_entry, figures_of

# Given networks by name -> whether they have test images (and so the causal figures).
GIVEN_WITH_TEST_IMAGES = {group.model: group.has_causal_tests for group in MODELS if group.origin == "given"}


def figure_of(wildcards):
    return figure_entry(wildcards.model, wildcards.figure, TRAINED_MODELS, GIVEN_WITH_TEST_IMAGES)


def example_network(model):
    """The network an example figure shows: the model's first (first seed, least corruption)."""
    return next(network for network in ANALYSED.values() if network.model == model)


def figure_inputs(wildcards):
    """The files a figure reads (selectivity.figures.catalogue), with its placeholders filled in."""
    entry = figure_of(wildcards)
    fields = {"model": wildcards.model}
    if wildcards.model != ACROSS_ARCHITECTURES:
        fields["example_network"] = example_network(wildcards.model).path
    return {name: pattern.format(**fields) for name, pattern in entry.inputs.items()}


def figure_options(wildcards):
    """The config-derived settings a figure's drawing gets (its entry's ``options`` kind)."""
    entry = figure_of(wildcards)
    kind = entry.options
    if kind == "none":
        return {}
    if kind == "example":
        network = example_network(wildcards.model)
        return {"checkpoint": network.causal_checkpoint}
    image_size = example_network(wildcards.model).input_size
    tuning = config["tuning"]
    if kind == "stimuli":
        return {
            "image_size": image_size,
            **{key: tuning[key] for key in ("orientations", "phases", "spatial_frequencies")},
        }
    # trained networks: the causal tests' checkpoint; given networks have one, taken for any choice
    tuning_checkpoint = config["causal"]["checkpoint"] if wildcards.model in TRAINED_MODELS else "final"
    if kind == "distributions":
        return {"checkpoint": tuning_checkpoint, "selectivity_threshold": tuning["selectivity_threshold"]}
    return {"checkpoint": tuning_checkpoint}


def figure_category(wildcards, **_):
    if wildcards.model in GIVEN_WITH_TEST_IMAGES:
        return CATEGORIES["given"]
    return figure_of(wildcards).category


def figure_labels(wildcards, **_):
    return {"model": wildcards.model, "figure": figure_of(wildcards).label}


def figure_caption(wildcards):
    """The figure's caption (workflow/report/figures/<caption>.rst), rendered with the config."""
    import jinja2
    from types import SimpleNamespace

    caption = Path(workflow.basedir) / "workflow/report/figures" / f"{figure_of(wildcards).caption}.rst"
    network = None if wildcards.model == ACROSS_ARCHITECTURES else example_network(wildcards.model)
    return jinja2.Template(caption.read_text()).render(
        snakemake=SimpleNamespace(config=config, wildcards=wildcards), network=network
    )


def figure_targets():
    targets = []
    for group in MODELS:
        trained = group.origin == "trained"
        for figure in figures_of("model", trained, group.has_causal_tests or trained):
            targets.append(f"results/figures/{group.model}/{figure}.png")
    targets += expand(
        "results/figures/{model}/{figure}.png", model=ACROSS_ARCHITECTURES, figure=figures_of("across")
    )
    return targets
