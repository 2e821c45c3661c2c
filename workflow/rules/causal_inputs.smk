# The input functions and settings of the causal stage (causal.smk).
import hashlib

from selectivity.tuning.features import RANKED_FEATURES, ranked_features

# The features ranked in causal tests of their own (tuning.features without orientation, whose
# tests are the paper's): one half-ablation and one shift-invariance job per network and feature.
FEATURES_RANKED = ranked_features(config["tuning"]["features"])
# The tuning settings that shape every index of the gratings rows a causal test ranks or matches
# by (the shuffled control, the other tuning settings and the thresholds do not).
GRATING_SETTINGS = ("orientations", "phases", "spatial_frequencies")
# The causal analyses that read a tuning table, by name: the orientation ones (gOSI, and class
# selectivity where the network has it) and one of each kind per ranked feature.
SCORED_ANALYSES = [
    "half_ablation",
    "cumulative_ablation",
    "shift_invariance",
    *(f"{kind}_{feature}" for kind in ("half_ablation", "shift_invariance") for feature in RANKED_FEATURES),
]


def network_test_inputs(wildcards):
    """What every causal test of a network reads besides its tuning: its test images and its weights file."""
    network = analysed(wildcards)
    return {"test_set": network.evaluation.test_set, "weights": network.causal_files}


def scored_inputs(analysis):
    """The inputs of a causal test that ranks units by their tuning (``analysis``: a name of
    SCORED_ANALYSES, or a pattern with {feature}).

    The tuning table is read as ``ancient``: the table is rewritten whenever any tuning setting
    or tuning.features changes, and a test must rerun only when what it reads changes. That is
    carried by the test's key (made by causal_key), an ordinary input made from everything else
    the result depends on: the test's own params, the grating settings and tuning method version
    that shape the indices it reads, its test images and weights. Snakemake does not re-check a
    job downstream of a rerunning job whose link to it is ancient (docs/development.md,
    "Rerunning only what changed"), so the key must not depend on the tuning job, and it does not.
    """

    def inputs(wildcards):
        name = analysis.format(**dict(wildcards.items()))
        return {
            **network_test_inputs(wildcards),
            "tuning": ancient(f"results/tuning/{wildcards.network}/tuning.csv"),
            "key": f"results/causal/{wildcards.network}/{name}.key.json",
        }

    return inputs


def causal_checkpoint(wildcards):
    return analysed(wildcards).causal_checkpoint


def causal_test_images(wildcards):
    """How many test images the causal tests use: causal.test_images of the dataset's test set;
    all images of an image folder's set (its size is chosen where it is built)."""
    network = analysed(wildcards)
    return config["causal"]["test_images"] if network.evaluation.kind == "dataset" else None


def invariance_test_images(wildcards):
    network = analysed(wildcards)
    return config["causal"]["invariance"]["test_images"] if network.evaluation.kind == "dataset" else None


def every_class_required(wildcards):
    """The dataset's test set must hold every class; an image folder's subset may miss some."""
    return analysed(wildcards).evaluation.kind == "dataset"


def ablation_settings(wildcards):
    """What the ablation sweeps of a network ablate (causal.ablation, on its ablation layers)."""
    ablation = config["causal"]["ablation"]
    return {
        "layers": list(analysed(wildcards).ablation_layers),
        "fraction": ablation["fraction"],
        "random_draws": ablation["random_draws"],
        "cumulative_fractions": sorted(ablation["cumulative_fractions"]),
        "seed": ablation["seed"],
    }


def invariance_settings(wildcards):
    """The shift-invariance settings of a network: its ablated (lower) and measured (higher) layers."""
    network = analysed(wildcards)
    invariance = config["causal"]["invariance"]
    return {
        "measured_layers": list(network.invariance_measured),
        "ablated_layers": list(network.invariance_ablated),
        "shifts": invariance["shifts"],
        "directions": invariance["directions"],
        "fraction": config["causal"]["ablation"]["fraction"],
        "random_draws": invariance["random_draws"],
        "seed": invariance["seed"],
    }


def feature_ablation_settings(wildcards):
    """A feature's half ablation: as the orientation one, without the cumulative fractions it does not use."""
    return {
        key: value for key, value in ablation_settings(wildcards).items() if key != "cumulative_fractions"
    }


def features_read(feature):
    """The features whose indices a test reads: the ranked one, and for its matched control
    every other measured feature (orientation always); orientation's tests read gOSI only."""
    if feature == "orientation":
        return ["orientation"]
    return [feature] + [other for other in ("orientation", *FEATURES_RANKED) if other != feature]


# Each scored analysis: its script, and its settings and test images (the params the job itself gets).
ANALYSIS_KINDS = {
    "half_ablation": ("half_ablation.py", ablation_settings, causal_test_images),
    "cumulative_ablation": ("cumulative_ablation.py", ablation_settings, causal_test_images),
    "shift_invariance": ("shift_invariance.py", invariance_settings, invariance_test_images),
    "half_ablation_by_feature": (
        "half_ablation_by_feature.py",
        feature_ablation_settings,
        causal_test_images,
    ),
    "shift_invariance_by_feature": (
        "shift_invariance_by_feature.py",
        invariance_settings,
        invariance_test_images,
    ),
}


def analysis_kind(analysis):
    """(kind of ANALYSIS_KINDS, ranked feature) of a scored analysis's name."""
    for feature in RANKED_FEATURES:
        if analysis.endswith(f"_{feature}"):
            return f"{analysis.removesuffix(f'_{feature}')}_by_feature", feature
    return analysis, "orientation"


def script_digest(script):
    """A digest of a script of the rules: Snakemake reruns a job whose script changed, but not one it
    skips as downstream of an ancient link, so the key carries the script too."""
    path = Path(workflow.basedir) / "workflow" / "scripts" / script
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def analysis_settings(wildcards):
    """A scored causal test's settings (the ``settings`` param of its own rule)."""
    return ANALYSIS_KINDS[analysis_kind(wildcards.analysis)[0]][1](wildcards)


def analysis_test_images(wildcards):
    """A scored causal test's number of test images (the ``test_images`` param of its own rule)."""
    return ANALYSIS_KINDS[analysis_kind(wildcards.analysis)[0]][2](wildcards)


def analysis_script(wildcards):
    return script_digest(ANALYSIS_KINDS[analysis_kind(wildcards.analysis)[0]][0])


def scores_read(wildcards):
    """What shapes the tuning rows a scored causal test reads: the tuning method version, the
    grating settings and the features whose indices it reads."""
    return {
        "method_version": method_version("tuning"),
        **{key: config["tuning"][key] for key in GRATING_SETTINGS},
        "features_read": features_read(analysis_kind(wildcards.analysis)[1]),
    }
