# The input functions and settings of the causal stage (causal.smk).
def causal_inputs(wildcards):
    """What every causal test of a network reads: its test images, its weights file, its tuning."""
    network = analysed(wildcards)
    return {
        "test_set": network.evaluation.test_set,
        "weights": network.causal_files,
        "tuning": f"results/tuning/{wildcards.network}/tuning.csv",
    }


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
